"""The bundled demo: one command serves the demo sites and crawls them all."""

from __future__ import annotations

import json
import re
import socket

from tests.conftest import ROOT, rows, scrapy

SEED_BODY = (
    (ROOT / "tests/fixtures/clean/seed_expected_body.txt").read_text(encoding="utf-8").strip()
)
EXPECTED = json.loads((ROOT / "data" / "demo" / "expected.json").read_text(encoding="utf-8"))


def _fill(text: str, bases: dict[str, str]) -> str:
    return re.sub(r"\{\{(\w+)\}\}", lambda m: bases[m[1]], text)


def test_demo_stores_every_article_with_title_date_and_text(db):
    result = scrapy("demo", "--port", "0", db=db)
    assert result.returncode == 0, result.stderr[-3000:]
    served = re.search(r"^Demo sites: (.+)$", result.stdout, re.MULTILINE)
    bases = dict(pair.split("=", 1) for pair in served.group(1).split(", "))
    assert f"{len(EXPECTED['sites'])} sites, " in result.stdout

    stored = {r["url"]: r for r in rows(db, "SELECT * FROM articles")}
    dupes = {r["url"]: r for r in rows(db, "SELECT * FROM duplicates")}
    by_id = {r["id"]: url for url, r in stored.items()}
    # A re-post and its original: the copy crawled first is stored (sites run
    # concurrently), the other is recorded as its duplicate; nothing else is either.
    pairs = {
        _fill(t, bases): _fill(w["duplicate_of"], bases)
        for t, w in EXPECTED["articles"].items()
        if w.get("duplicate_of")
    }
    assert pairs
    for repost, original in pairs.items():
        assert (repost in stored) != (original in stored), (repost, original)
        later = repost if original in stored else original
        first = original if original in stored else repost
        assert by_id[dupes[later]["article_id"]] == first
        assert dupes[later]["kind"] in ("exact", "near")
    assert len(stored) == len(EXPECTED["articles"]) - len(pairs)

    for url_template, want in EXPECTED["articles"].items():
        url = _fill(url_template, bases)
        if url not in stored:
            continue  # the later copy of a re-post pair, checked above
        got = stored[url]
        assert got["title"] == want["title"], url
        assert got["published_at"] == want["published_at"], url
        assert got["language"] == want["language"], url
        assert want["first_sentence"] in got["text"], url
        assert want["last_sentence"] in got["text"], url
        assert json.loads(got["authors"]) == want["authors"], url
        if "publisher" in want:  # a portal's copy credits the original press
            assert got["publisher"] == want["publisher"], url
            assert got["publisher_url"] == want["publisher_url"], url
        tags = json.loads(got["tags"])
        sides = {t for t in tags if t in ("north_korea", "south_korea")}
        if want["korea"] == "core":
            assert got["is_korea"] == 1, (url, tags)
            assert sides == set(want["subtags"]), (url, tags)
            assert json.loads(got["korea_evidence"]), url
        else:
            assert got["is_korea"] == 0, (url, tags)
            assert ("korea_mention" in tags) == (want["korea"] == "mention"), (url, tags)

    # The re-post blog's spam is gone, every line of it recorded as removed.
    seed_url = _fill("{{blog}}/2026/11/north-korea-accuses-us-asian-nato.html", bases)
    seed = stored[seed_url]
    assert seed["text"] == SEED_BODY
    removed = {r["text"] for r in json.loads(seed["removed"])}
    for url_template, want in EXPECTED["articles"].items():
        row = stored.get(_fill(url_template, bases))
        for line in want.get("spam_lines", []) + want.get("boilerplate_lines", []):
            if row is not None:
                assert line not in row["text"], (url_template, line)
    assert {"Post a Comment", "Previous Post Next Post"} <= removed

    runs = rows(db, "SELECT site, status FROM runs")
    assert sorted(r["site"] for r in runs) == sorted(EXPECTED["sites"])
    assert {r["status"] for r in runs} == {"finished"}
    # The summary names each site with its counts.
    for site in EXPECTED["sites"]:
        assert re.search(rf"^{re.escape(site)}\s+finished", result.stdout, re.MULTILINE)


def _free_port_run(n: int) -> int:
    """A first port of ``n`` consecutive free ports on 127.0.0.1."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + n >= 65535:
            continue
        socks = []
        try:
            for port in range(base, base + n):
                sock = socket.socket()
                socks.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError("no run of free ports")


def test_second_demo_run_stores_nothing_and_fetches_no_article(db):
    port = str(_free_port_run(len(EXPECTED["sites"])))
    first = scrapy("demo", "--port", port, db=db)
    assert first.returncode == 0, first.stderr[-3000:]
    stored = rows(db, "SELECT COUNT(*) n FROM articles")[0]["n"]
    second = scrapy("demo", "--port", port, db=db)
    assert second.returncode == 0, second.stderr[-3000:]
    assert rows(db, "SELECT COUNT(*) n FROM articles")[0]["n"] == stored
    runs = rows(db, "SELECT site, stats FROM runs ORDER BY id")
    second_runs = runs[len(runs) // 2 :]
    assert len(second_runs) == len(EXPECTED["sites"])
    for run in second_runs:
        stats = json.loads(run["stats"])
        # robots.txt and the site's feed, sitemap or first listing page (answered 304 when
        # unchanged, with its stored copy re-read): no article page is downloaded again.
        assert stats.get("store/inserted", 0) == 0, run["site"]
        sources = stats.get("incremental/not_modified", 0) + stats.get("incremental/cached", 0)
        assert sources >= 1, run["site"]
        assert stats["downloader/request_count"] == 1 + sources, run
        assert stats.get("incremental/skipped", 0) >= 1, run["site"]
    # The summary says why nothing new was stored: the links it skipped as already stored.
    known = sum(json.loads(r["stats"]).get("incremental/skipped", 0) for r in second_runs)
    assert f"0 new articles stored, {known} already stored (not fetched again)" in second.stdout
