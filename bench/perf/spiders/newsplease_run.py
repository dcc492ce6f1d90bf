"""news-please over the mirror, in its own venv: its library API ``NewsPlease.from_urls``
(threaded download, extraction in a process pool of all cores), chunk by chunk; every article
saved as its JSON dict in an SQLite file. Usage: python newsplease_run.py URLS_FILE DB OUT."""

from __future__ import annotations

import json
import sqlite3
import sys

from newsplease import NewsPlease

CHUNK = 200


def main(urls_file: str, db_path: str, out: str) -> None:
    urls = [u for u in open(urls_file).read().split() if u]  # noqa: PTH123, SIM115
    db = sqlite3.connect(db_path)
    db.execute("CREATE TABLE IF NOT EXISTS articles (url TEXT PRIMARY KEY, article TEXT)")
    done = empty = 0
    for start in range(0, len(urls), CHUNK):
        chunk = urls[start : start + CHUNK]
        results = NewsPlease.from_urls(chunk, request_args={"timeout": 30}, fetch_images=False)
        rows = []
        for url, article in results.items():
            if not article or not getattr(article, "maintext", None):
                empty += 1
                continue
            data = article.get_serializable_dict()
            rows.append((url, json.dumps(data, ensure_ascii=False, default=str)))
        with db:
            db.executemany("INSERT OR REPLACE INTO articles VALUES (?, ?)", rows)
        done += len(chunk)
    db.close()
    with open(out, "w") as f:  # noqa: PTH123
        json.dump({"pages": done, "articles": done - empty, "empty": empty}, f)


if __name__ == "__main__":
    main(*sys.argv[1:4])
