"""The worker pool gives what the in-process path gives: the steps' pure functions run both
ways, and whole crawls with POOL_WORKERS=0 and =2 store the same rows."""

from __future__ import annotations

import codecs
import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import pytest
from scrapy.settings import Settings

from crawler.extract import extract_page
from crawler.extract.encoding import decode_as, decode_html
from crawler.limits import (
    ExtractFailed,
    ExtractTimeout,
    extract_in_worker,
    spawn_worker,
    worker_main,
)
from crawler.pool import PRELOAD_LATER, PoolConfig, offload, pool_active
from pipelines.clean import boilerplate_candidates, clean_with_rules_file
from pipelines.dedupe import DedupeConfig, text_fingerprint
from pipelines.tag import TagConfig, TagResult
from pipelines.tag.pipeline import tag_in_worker
from tests.conftest import FIXTURES, ROOT, rows, scrapy
from tests.poolcheck import lexicon_loads, loaded_modules

PAGES = sorted((FIXTURES / "sites" / "pub").rglob("*.html")) + sorted(
    (FIXTURES / "sites" / "agg").rglob("*.html")
)


def run_in_pool(jobs: list[tuple], tmp_path: Path, **config: object) -> dict:
    """``jobs`` through a real WorkerPool in a subprocess (tests/poolcheck.py)."""
    spec = {
        "config": {"workers": 2, "max_jobs": 4, "timeout": 20.0, "memory_mb": 0, **config},
        "jobs": jobs,
    }
    source, target = tmp_path / "jobs.pickle", tmp_path / "results.pickle"
    source.write_bytes(pickle.dumps(spec))
    done = subprocess.run(
        [sys.executable, "-m", "tests.poolcheck", str(source), str(target)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]  # workers end quietly too
    return pickle.loads(target.read_bytes())


def page_jobs() -> list[tuple]:
    jobs = []
    for path in PAGES:
        body = path.read_bytes()
        kwargs = {
            "url": f"http://127.0.0.1:8000/{path.name}",
            "fallback": {"title": "Fallback title", "published": "2026-11-20"},
            "content_type": "text/html",
            "language": None,
            "timezone": "Asia/Seoul",
        }
        jobs.append((extract_page, (body,), kwargs))
    return jobs


DEDUPE = DedupeConfig()
TAGS = TagConfig.from_settings(Settings({"TAG_LEXICON_FILE": "data/korea_lexicon.toml"}))


def test_pure_functions_give_the_same_results_in_the_pool(tmp_path):
    assert PAGES
    jobs = page_jobs()
    expected = [fn(*args, **kwargs) for fn, args, kwargs in jobs]
    texts = [item.text for item in expected if item.text]
    assert len(texts) >= 5
    for item in list(expected):
        if not item.text:
            continue
        kwargs = {"rules_file": None, "title": item.title, "domain": "pub.test"}
        jobs.append((clean_with_rules_file, (item.text,), kwargs))
        expected.append(clean_with_rules_file(item.text, **kwargs))
        jobs.append((boilerplate_candidates, (item.text,), {}))
        expected.append(boilerplate_candidates(item.text))
        jobs.append((text_fingerprint, (item.text, DEDUPE), {"title": item.title}))
        expected.append(text_fingerprint(item.text, DEDUPE, title=item.title))
        jobs.append((tag_in_worker, (TAGS, item.title, item.text, item.language), {}))
        expected.append(tag_in_worker(TAGS, item.title, item.text, item.language))
    assert any(want.tags for want in expected if isinstance(want, TagResult))
    out = run_in_pool(jobs, tmp_path)
    assert [status for status, _ in out["results"]] == ["ok"] * len(jobs)
    for (_, got), want in zip(out["results"], expected, strict=True):
        assert got == want
    # Back-pressure: never more than max_jobs running or queued.
    assert out["stats"]["max_open"] <= 4
    assert out["stats"]["done"] == len(jobs)
    assert out["stats"]["restarts"] == 0


def test_the_pools_extraction_job_leaves_the_page_to_be_decoded_again():
    # The job returns the encoding, not the page; the crawler process decodes the body it
    # holds with it, and must get the very text the extraction saw.
    text = "<html><head><title>한국 é</title></head><body><p>Seoul \u2018quote\u2019 \u2013 é</p></body></html>"
    bodies = [(path.read_bytes(), "text/html") for path in PAGES] + [
        (codecs.BOM_UTF8 + text.encode(), None),
        (codecs.BOM_UTF16_LE + text.encode("utf-16-le"), "text/html; charset=utf-8"),
        (text.encode("cp949", "replace"), None),
        (text.encode("cp949", "replace"), "text/html; charset=iso-8859-1"),
        (text.encode("latin-1", "replace") + b"\x81\x8d\xff", None),
        (text.encode() + b"\xff\xfe broken", "text/html; charset=utf-8"),
    ]
    encodings = set()
    for body, content_type in bodies:
        html, encoding = decode_html(body, content_type)
        encodings.add(encoding)
        assert decode_as(body, encoding) == html
        job = {"url": "http://127.0.0.1/a", "fallback": None, "content_type": content_type,
               "language": None, "timezone": None}  # fmt: skip
        item = extract_in_worker(body, **job)
        assert item.html is None
        assert item.encoding == encoding
        item.html = decode_as(body, item.encoding)
        assert item == extract_page(body, **job)
    assert {"utf-8", "utf-16-le", "cp949"} < encodings  # and what detection made of the rest


HEAVY = ("scrapy", "twisted", "sqlite_utils", "datasketch", "scipy")
PROBE = f"sorted(__import__('sys').modules.keys() & {set(HEAVY)!r})"


def test_workers_stay_free_of_scrapy_and_the_archive(tmp_path):
    # Each worker would otherwise carry ~45 MB of Scrapy and Twisted (multiprocessing's spawn
    # re-runs the parent's main module, here tests.poolcheck, which imports them), plus
    # sqlite-utils and datasketch with scipy if the jobs' modules imported them.
    jobs = page_jobs()[:6]
    text = "A line of text that is long enough to be a paragraph of an article.\n" * 5
    jobs += [(clean_with_rules_file, (text,), {"rules_file": None})] * 4
    jobs += [(boilerplate_candidates, (text,), {})] * 4
    jobs += [(text_fingerprint, (text, DEDUPE), {"title": "A title"})] * 2
    jobs += [(tag_in_worker, (TAGS, "Seoul", text, "en"), {})] * 2
    jobs += [(eval, (PROBE,), {})] * 4
    out = run_in_pool(jobs, tmp_path)
    assert [status for status, _ in out["results"]] == ["ok"] * len(jobs)
    assert [modules for _, modules in out["results"][-4:]] == [[]] * 4


def test_a_job_past_its_deadline_loses_its_worker_and_the_next_job_runs(tmp_path):
    jobs = [
        (time.sleep, (30,), {}),
        (int, ("42",), {}),
        (int, ("not a number",), {}),
    ]
    started = time.monotonic()
    out = run_in_pool(jobs, tmp_path, workers=1, timeout=1.0)
    assert time.monotonic() - started < 30
    (s1, v1), (s2, v2), (s3, v3) = out["results"]
    assert s1 == "error"
    assert isinstance(v1, ExtractTimeout)
    assert (s2, v2) == ("ok", 42)
    assert s3 == "error"
    assert isinstance(v3, ValueError)  # the job's own exception, raised as is
    assert out["stats"]["restarts"] == 1


def test_a_worker_that_dies_fails_its_job_only_and_big_messages_go_through(tmp_path):
    # Each worker holds the job it runs and the next; the next goes back to the queue when
    # the worker is lost. Messages larger than the pipe's buffer are written and read in
    # pieces by the reactor, which never waits on a pipe.
    big = b"\x00\xff" * 3_000_000
    jobs = [
        (os._exit, (3,), {}),
        (len, (big,), {}),
        (bytes, (7_000_000,), {}),
        (int, ("5",), {}),
    ]
    out = run_in_pool(jobs, tmp_path, workers=1)
    (s1, v1), (s2, v2), (s3, v3), (s4, v4) = out["results"]
    assert s1 == "error"
    assert isinstance(v1, ExtractFailed)
    assert (s2, v2) == ("ok", len(big))
    assert (s3, v3) == ("ok", bytes(7_000_000))
    assert (s4, v4) == ("ok", 5)
    assert out["stats"]["restarts"] == 1


def test_a_worker_warms_up_the_steps_it_was_told_to():
    # PRELOAD_LATER: modules imported after the worker reports ready, and ``module:function``
    # entries called as well (the tag step's lexicon, compiled before the first tag job)
    proc, conn = spawn_worker(
        worker_main, 0, ("json",), PRELOAD_LATER, name="newscrawler-warm-test"
    )
    try:
        assert conn.poll(60)
        assert conn.recv() == ("ready", None)
        assert conn.poll(120)
        assert conn.recv() == ("warm", None)
        conn.send_bytes(pickle.dumps((loaded_modules, (), {})))
        assert conn.poll(60)
        status, loaded = conn.recv()
        assert status == "ok"
        for name in PRELOAD_LATER:
            assert name.partition(":")[0] in loaded
        conn.send_bytes(pickle.dumps((lexicon_loads, (), {})))
        assert conn.poll(60)
        assert conn.recv() == ("ok", (1, 1))  # the warm-up compiled the default lexicon
    finally:
        conn.close()
        proc.join(10)
        if proc.is_alive():
            proc.kill()


def test_offload_without_a_pool_runs_in_process():
    assert not pool_active()
    coro = offload(int, "7")
    with pytest.raises(StopIteration) as stop:
        coro.send(None)
    assert stop.value.value == 7


def test_pool_config_from_settings():
    config = PoolConfig.from_settings(Settings({"POOL_WORKERS": 3, "EXTRACT_TIMEOUT": 5}))
    assert (config.workers, config.max_jobs, config.timeout) == (3, 12, 5.0)
    assert PoolConfig.from_settings(Settings({"POOL_WORKERS": 0})).max_jobs == 4
    assert PoolConfig.from_settings(Settings({"POOL_WORKERS": 2, "POOL_MAX_JOBS": 1})).max_jobs == 2
    with pytest.raises(ValueError, match="POOL_WORKERS"):
        PoolConfig.from_settings(Settings({"POOL_WORKERS": -1}))


def _crawl(sites, db: Path, workers: int) -> dict:
    pub = sites.base_urls["pub"]
    agg = sites.base_urls["agg"]
    settings = ["-s", f"POOL_WORKERS={workers}", "-s", "CONCURRENT_REQUESTS=1"]
    if workers == 0:
        settings += ["-s", "EXTRACT_TIMEOUT=0"]  # everything in the reactor thread
    for args in (
        ("crawl", "sitemap", "-a", f"url={pub}/sitemap_index.xml", "-a", "max_pages=5"),
        ("crawl", "feed", "-a", f"url={pub}/feed.rss"),
        ("crawl", "aggregator", "-a", f"url={agg}/", "-a", "link_selector=ol.stories"),
        ("crawl", "aggregator", "-a", f"url={agg}/r/korea.rss", "-s", "INCREMENTAL_ENABLED=False"),
    ):
        result = scrapy(*args, *settings, db=db)
        assert result.returncode == 0, result.stderr[-3000:]
    stats = json.loads(rows(db, "SELECT stats FROM runs ORDER BY id LIMIT 1")[0]["stats"])
    assert stats.get("pool/workers") == (workers or None)
    skip = {"id", "fetched_at"}
    articles = {
        r["url"]: {k: v for k, v in r.items() if k not in skip}
        for r in rows(db, "SELECT * FROM articles")
    }
    duplicates = sorted(
        (d["url"], d["kind"], d["similarity"]) for d in rows(db, "SELECT * FROM duplicates")
    )
    return {"articles": articles, "duplicates": duplicates}


def test_the_workers_start_before_the_pipelines_are_built(sites, tmp_path):
    """They import their modules while the crawler process builds its middlewares and
    pipelines (the clean rules, the lexicon, datasketch), not after the spider opened."""
    pub = sites.base_urls["pub"]
    result = scrapy(
        "crawl", "feed", "-a", f"url={pub}/feed.rss", "-s", "POOL_WORKERS=2", db=tmp_path / "n.db"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stderr
    started = log.index("pool: 2 worker processes")
    assert started < log.index("Enabled item pipelines") < log.index("Spider opened")


def test_a_crawl_stores_the_same_rows_with_and_without_the_pool(sites, tmp_path):
    in_process = _crawl(sites, tmp_path / "zero.db", 0)
    pooled = _crawl(sites, tmp_path / "two.db", 2)
    assert in_process["articles"]
    assert pooled["articles"].keys() == in_process["articles"].keys()
    for url, row in in_process["articles"].items():
        assert pooled["articles"][url] == row, url
    assert pooled["duplicates"] == in_process["duplicates"]
