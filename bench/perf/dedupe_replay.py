"""The dedupe step's cost as the archive grows: the mirror's stories (their true text, no
crawl) through ``fingerprint``, ``find_duplicate`` and the insert of new stories into a real
SQLite archive, with the lookup's CPU and its LSH candidates per page, by blocks of pages.

Usage: ``.venv/bin/python -m bench.perf.dedupe_replay [--n 20000] [--block 2000]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from bench.perf.__main__ import SHARED, mirror_for
from crawler.storage.articles import SqliteArticles
from crawler.storage.connection import Connection
from crawler.storage.index import SqliteStoryIndex
from pipelines.dedupe import DedupeConfig, find_duplicate, fingerprint

if TYPE_CHECKING:
    from collections.abc import Iterable


class CountingIndex(SqliteStoryIndex):
    """The archive's story index, counting the LSH candidates it hands out."""

    candidates = 0

    def story_candidates(self, band_keys: Iterable[int], *, limit: int) -> list[int]:
        found = super().story_candidates(band_keys, limit=limit)
        self.candidates += len(found)
        return found


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.perf.dedupe_replay", description=__doc__)
    p.add_argument("--n", type=int, default=20000, help="stories to replay (20000)")
    p.add_argument("--block", type=int, default=2000, help="pages per printed line (2000)")
    p.add_argument("--seed", type=int, default=1, help="mirror seed (1)")
    p.add_argument("--reposts", type=float, default=0.10, help="share of re-posts (0.10)")
    args = p.parse_args(argv)
    if not SHARED.exists():
        print(f"benchmark pages not found: {SHARED}")
        return 2
    mirror = mirror_for(args.seed, args.reposts)
    config = DedupeConfig()
    with tempfile.TemporaryDirectory() as tmp:
        connection = Connection(Path(tmp) / "replay.db")
        index, articles = CountingIndex(connection), SqliteArticles(connection)
        index.reset(config.index_params)
        print(f"{'pages':>6}  find_duplicate ms/page  candidates/page  duplicates")
        spent, duplicates = 0.0, 0
        for i in range(args.n):
            story = mirror.story(mirror.original_of(i) if mirror.is_repost(i) else i)
            text = "\n\n".join(story.paragraphs)
            url = f"http://replay.test/{i}"
            fp = fingerprint(text, config)
            started = time.process_time()
            verdict = find_duplicate(fp, [url], index, config)
            spent += time.process_time() - started
            if verdict is None:
                index.stage(url, list(fp.band_keys))
                row = {"url": url, "title": story.title, "text": text, "text_hash": fp.text_hash}
                articles.insert(row)
            else:
                duplicates += 1
            if (i + 1) % args.block == 0:
                print(
                    f"{i + 1:6d}  {spent / args.block * 1000:22.2f}  "
                    f"{index.candidates / args.block:15.2f}  {duplicates:10d}",
                    flush=True,
                )
                spent, duplicates, index.candidates = 0.0, 0, 0
        connection.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
