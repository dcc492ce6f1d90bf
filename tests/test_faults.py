"""Faults a crawl must survive, each against a misbehaving local server (crawler/faultsite):
the healthy pages are kept, every failure is counted and logged, nothing is corrupted."""

from __future__ import annotations

import contextlib
import ctypes
import os
import random
import re
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Request, Response
from scrapy.spidermiddlewares.httperror import HttpError
from scrapy.utils.test import get_crawler
from twisted.internet.error import ConnectionRefusedError as TxConnectionRefusedError
from twisted.python.failure import Failure

from crawler.browser import browser_executable
from crawler.failures import failure_reason
from crawler.faultsite import (
    CASES,
    COMMON,
    HEALTHY,
    LOL,
    ROOT,
    XXE,
    FaultServer,
    crawl,
    fault_crawl,
    integrity,
    query,
    stored_paths,
)
from crawler.items import ArticleItem
from crawler.limits import (
    ExtractFailed,
    ExtractionWorker,
    ExtractTimeout,
    cap_links,
    declares_entities,
    plain_item,
    plain_text,
    strip_doctype,
)
from crawler.middlewares.retry import retry_after_seconds

_CONTROL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")


# -- one crawl meets every article-level fault --------------------------------------------------
@pytest.fixture(scope="module")
def fault_run(tmp_path_factory):
    db = tmp_path_factory.mktemp("faults") / "news.db"
    with FaultServer() as server:
        result = fault_crawl(server, db)
        yield server, db, result, stored_paths(db, server.base)


def test_a_crawl_that_meets_bad_pages_finishes_cleanly(fault_run):
    server, db, result, articles = fault_run
    # It ends normally; its exit code is its verdict, as in crawlall: one logged error (a host
    # that refuses connections) makes the run count as failed, and the last line says why.
    assert result.returncode == 1, result.stderr[-3000:]
    last = result.stderr.splitlines()[-1]
    assert re.search(
        r"^crawl: faults failed: \d+ errors \(1 logged, \d+ failed downloads\): "
        r"Error downloading <GET http://127\.0\.0\.1:\d+/gone\.html>",
        last,
    ), last
    assert not result.crashed, result.stderr[-3000:]
    assert result.stats["finish_reason"] == "finished"
    # Every healthy page is stored: nothing lost to its neighbours' faults.
    assert {f"/ok/{n}.html" for n in HEALTHY} <= set(articles)
    assert server.canary.hits == []
    assert integrity(db) == ("ok", 0)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_fault_case(fault_run, case):
    server, _db, result, articles = fault_run
    path = server.url(case.path).removeprefix(server.base)
    assert (path in articles) is case.stored, case.name
    for key in case.stats():
        assert result.stats.get(key, 0) >= 1, (case.name, key)
    if expected := case.expected_log(server):
        assert expected in result.stderr, (case.name, expected)
    if case.contains:
        article = articles[path]
        assert case.contains in article["title"] + "\n" + article["text"]
        assert not _CONTROL_RE.search(article["text"] + article["title"])


def test_retry_after_is_waited_for_and_bounded(fault_run):
    server, _db, result, _articles = fault_run
    first, second = server.times["/f/429"][:2]
    assert second - first >= 0.9  # Retry-After: 1
    # Retry-After: 3600 is beyond RETRY_AFTER_MAX: asked for once, not waited for.
    assert server.requests.count("/f/429-long") == 1
    assert result.stats["retry/after_max_seconds"] == 1.0


def test_every_stored_field_is_plain_text(fault_run):
    _server, db, _result, _articles = fault_run
    for row in query(db, "SELECT title, text, description, authors FROM articles"):
        for value in row.values():
            assert not _CONTROL_RE.search(value or ""), value


# -- hostile XML ------------------------------------------------------------------------------
def test_entity_bombs_and_external_entities_in_feeds_are_not_expanded(tmp_path):
    db = tmp_path / "news.db"
    with FaultServer() as server:
        urls = ",".join(
            f"{server.base}/{p}"
            for p in ("xxe.rss", "bomb.rss", "malformed.rss", "surrogate.json", "deep.json")
        )
        result = crawl("crawl", "feed", "-a", f"url={urls}", db=db)
        articles = stored_paths(db, server.base)
        assert server.canary.hits == []  # the external entity was never fetched
    assert result.returncode == 0, result.stderr[-3000:]
    assert not result.crashed
    assert {"/ok/9201.html", "/ok/9202.html", "/ok/9211.html", "/ok/9212.html"} <= set(articles)
    assert result.stats["feed/entities_refused"] == 2
    assert result.stats["feed/malformed"] >= 1
    assert result.stats["feed/empty"] == 1  # the JSON Feed nested 100,000 deep
    for row in query(db, "SELECT * FROM articles"):
        blob = " ".join(str(v) for v in row.values())
        assert "root:" not in blob  # /etc/passwd
        assert "lollollol" not in blob
    # A lone surrogate and a NUL from a JSON feed title (fallback title) are dropped.
    title = articles["/surrogate-page.html"]["title"]
    assert " ".join(title.split()) == "Lone surrogate title"
    assert result.seconds < 60


def test_hostile_and_huge_sitemaps_are_bounded(tmp_path):
    db = tmp_path / "news.db"
    with FaultServer() as server:
        urls = ",".join(
            f"{server.base}/{p}" for p in ("xxe-sitemap.xml", "bomb-sitemap.xml", "big-sitemap.xml")
        )
        result = crawl(
            "crawl", "sitemap", "-a", f"url={urls}", "-a", "recency_days=0.05",
            "-a", "max_articles=50", "-s", "LINKS_PER_PAGE_MAX=5", db=db,
        )  # fmt: skip
        articles = stored_paths(db, server.base)
        big = [p for p in server.requests if re.fullmatch(r"/ok/2\d{4}\.html", p)]
        assert server.canary.hits == []
    assert result.returncode == 0, result.stderr[-3000:]
    assert not result.crashed
    assert {"/ok/9301.html", "/ok/9302.html"} <= set(articles)
    assert result.stats["sitemap/entities_refused"] == 2
    # 100,000 URLs: the recency window keeps ~10, LINKS_PER_PAGE_MAX takes 5 of them.
    assert result.stats["sitemap/urlset_entries"] >= 100_000
    assert result.stats["sitemap/skipped_old"] >= 99_900
    assert result.stats["limits/links_capped"] >= 1
    assert len(big) == 5
    assert result.seconds < 60


def test_xml_defusing_helpers():
    assert declares_entities(LOL)
    assert declares_entities(XXE)
    assert not declares_entities(b'<?xml version="1.0"?><!DOCTYPE rss><rss/>')
    assert b"ENTITY" not in strip_doctype(LOL + b"<rss>&lol9;</rss>")
    assert strip_doctype(b"<rss><x/></rss>") == b"<rss><x/></rss>"


# -- robots.txt ---------------------------------------------------------------------------------
def test_robots_disallow_is_honoured(tmp_path):
    db = tmp_path / "news.db"
    with FaultServer(robots="disallow") as server:
        result = crawl("crawl", "feed", "-a", f"url={server.base}/robots-feed.rss", db=db)
        assert "/private/secret.html" not in server.requests
        assert set(stored_paths(db, server.base)) == {"/ok/9401.html"}
    assert result.returncode == 0
    assert result.stats["robotstxt/forbidden"] == 1
    assert result.stats["article/failed/robots"] == 1


def test_robots_txt_that_errors_allows_the_crawl(tmp_path):
    # Scrapy's semantics: a robots.txt answering 5xx imposes no rule (documented in
    # docs/safety.md); the status is counted.
    db = tmp_path / "news.db"
    with FaultServer(robots="error") as server:
        result = crawl("crawl", "feed", "-a", f"url={server.base}/robots-feed.rss", db=db)
        assert set(stored_paths(db, server.base)) == {"/private/secret.html", "/ok/9401.html"}
    assert result.returncode == 0
    assert result.stats["robotstxt/response_status_count/500"] >= 1


# -- concurrency ----------------------------------------------------------------------------------
def _popen(*args: str, db: Path) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "scrapy", *args, "-s", f"DB_PATH={db}", *COMMON]
    return subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def test_same_articles_from_two_spiders_at_once_are_stored_once(tmp_path):
    db = tmp_path / "news.db"
    with FaultServer() as server:
        server.ok_delay = 0.02
        feed = f"url={server.base}/range-700-30.rss"
        procs = [
            _popen("crawl", "feed", "-a", feed, "-a", f"name={name}",
                   "-s", "INCREMENTAL_ENABLED=False", db=db)
            for name in ("alpha", "beta")
        ]  # fmt: skip
        errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors[0][-2000:] + errors[1][-2000:]
    articles = query(db, "SELECT id, url, site FROM articles")
    dupes = query(db, "SELECT url, article_id, site FROM duplicates")
    assert len(articles) == 30
    assert len({a["url"] for a in articles}) == 30
    # Each story's second arrival is recorded as a sighting of the stored one.
    by_id = {a["id"]: a for a in articles}
    assert sorted(d["url"] for d in dupes) == sorted(a["url"] for a in articles)
    for d in dupes:
        assert by_id[d["article_id"]]["url"] == d["url"]
        assert d["site"] != by_id[d["article_id"]]["site"]
    assert integrity(db) == ("ok", 0)


def _hold_lock(db: Path, seconds: float, *, exclusive: bool, ready: threading.Event) -> None:
    conn = sqlite3.connect(db, timeout=30, isolation_level=None)
    try:
        if exclusive:
            conn.execute("BEGIN EXCLUSIVE")
        else:
            conn.execute("BEGIN")
            conn.execute("SELECT COUNT(*) FROM articles").fetchone()  # a reader's snapshot
        ready.set()
        time.sleep(seconds)
        conn.execute("COMMIT")
    finally:
        conn.close()


def _count(db: Path) -> int:
    try:
        return query(db, "SELECT COUNT(*) AS n FROM articles")[0]["n"]
    except sqlite3.Error:
        return 0


@pytest.mark.parametrize("exclusive", [True, False], ids=["writer-lock", "reader"])
def test_locked_database_makes_writes_wait_not_drop(tmp_path, exclusive):
    db = tmp_path / "news.db"
    with FaultServer() as server:
        server.ok_delay = 0.1
        # First run creates the file; the second meets the lock mid-crawl.
        assert (
            crawl("crawl", "feed", "-a", f"url={server.base}/range-800-2.rss", db=db).returncode
            == 0
        )
        proc = _popen(
            "crawl", "feed", "-a", f"url={server.base}/range-810-30.rss",
            "-s", "STORE_BATCH_SIZE=3", "-s", "STORE_FLUSH_INTERVAL=0.2",
            "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=2", db=db,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while _count(db) < 6 and time.monotonic() < deadline:
            time.sleep(0.05)
        ready = threading.Event()
        holder = threading.Thread(target=_hold_lock, args=(db, 2.5), kwargs={
            "exclusive": exclusive, "ready": ready})  # fmt: skip
        holder.start()
        assert ready.wait(30)
        assert proc.poll() is None, "the crawl ended before the lock was taken"
        _, stderr = proc.communicate(timeout=120)
        holder.join()
    assert proc.returncode == 0, stderr[-3000:]
    assert _count(db) == 32  # nothing dropped while the lock was held
    stats = query(db, "SELECT stats FROM runs ORDER BY id DESC LIMIT 1")[0]["stats"]
    assert '"store/errors"' not in stats
    assert integrity(db) == ("ok", 0)


def test_lock_held_past_busy_timeout_stops_with_a_clear_error(tmp_path):
    db = tmp_path / "news.db"
    with FaultServer() as server:
        assert (
            crawl("crawl", "feed", "-a", f"url={server.base}/range-900-2.rss", db=db).returncode
            == 0
        )
        ready = threading.Event()
        holder = threading.Thread(
            target=_hold_lock, args=(db, 4.0), kwargs={"exclusive": True, "ready": ready}
        )
        holder.start()
        assert ready.wait(30)
        result = crawl(
            "crawl", "feed", "-a", f"url={server.base}/range-910-5.rss",
            "-s", "DB_BUSY_TIMEOUT=1", db=db,
        )  # fmt: skip
        holder.join()
    assert result.returncode == 1
    assert f"database {db} is locked by another process for more than 1 s" in result.stderr
    assert integrity(db) == ("ok", 0)
    assert _count(db) == 2


def test_every_user_opens_the_archive_with_the_settings_options(tmp_path):
    """Whichever component of a crawl opens the database first (the incremental middleware,
    the runs extension, a pipeline), DB_BUSY_TIMEOUT and the batch settings hold."""
    from scrapy.settings import Settings

    from crawler.storage.connection import Connection

    settings = Settings(
        {"DB_PATH": str(tmp_path / "news.db"), "DB_BUSY_TIMEOUT": 1.5,
         "STORE_BATCH_SIZE": 7, "STORE_FLUSH_INTERVAL": 0.25}
    )  # fmt: skip
    first = Connection.for_settings(settings)
    second = Connection.for_settings(settings, tmp_path / "news.db")
    try:
        assert second is first
        assert (first.busy_timeout, first.batch_size, first.flush_interval) == (1.5, 7, 0.25)
        timeout_ms = first.db.execute("PRAGMA busy_timeout").fetchone()[0]
        assert timeout_ms == 1500
    finally:
        second.release()
        first.release()


# -- disk full, read-only -------------------------------------------------------------------------
def _limit_file_size(limit: int):
    def preexec() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))  # writes past it fail: EFBIG

    return preexec


def _assert_recovers(server: FaultServer, db: Path, feed: str, expected: int) -> None:
    """Nothing corrupted: the file checks out, and a run with room stores what was missed."""
    assert integrity(db) == ("ok", 0)
    result = crawl("crawl", "feed", "-a", f"url={server.base}/{feed}", db=db)
    assert result.returncode == 0, result.stderr[-3000:]
    assert _count(db) == expected


def test_disk_full_stops_with_a_clear_error_and_no_damage(tmp_path):
    db = tmp_path / "news.db"
    with FaultServer() as server:
        assert (
            crawl("crawl", "feed", "-a", f"url={server.base}/range-1000-3.rss", db=db).returncode
            == 0
        )
        # The file may not grow: every write past 64 KB into the WAL fails, as on a full disk.
        result = crawl(
            "crawl", "feed", "-a", f"url={server.base}/range-1000-40.rss",
            "-s", "STORE_BATCH_SIZE=5", db=db, preexec=_limit_file_size(64 * 1024),
        )  # fmt: skip
        assert result.returncode == 1, result.stderr[-3000:]
        assert f"crawl: database {db} " in result.stderr
        assert "I/O error" in result.stderr or "disk is full" in result.stderr
        assert not result.crashed, result.stderr[-3000:]
        _assert_recovers(server, db, "range-1000-40.rss", 40)


def _tmpfs(path: Path, size: str) -> bool:
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    path.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


def test_full_filesystem_stops_with_a_clear_error_and_no_damage(tmp_path):
    disk = tmp_path / "disk"
    if not _tmpfs(disk, "1m"):
        pytest.skip("needs root and mount permission for a tiny tmpfs (RLIMIT_FSIZE test above)")
    try:
        db = disk / "news.db"
        with FaultServer() as server:
            result = crawl(
                "crawl", "feed", "-a", f"url={server.base}/range-1100-60.rss",
                "-s", "STORE_BATCH_SIZE=5", db=db,
            )  # fmt: skip
            assert result.returncode == 1, result.stderr[-3000:]
            assert f"database {db} cannot grow: the disk is full" in result.stderr
            assert not result.crashed, result.stderr[-3000:]
            assert integrity(db)[0] == "ok"
            assert integrity(db)[1] == 0
            stored = _count(db)
            assert 0 < stored < 60
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _drop_root_file_override() -> None:
    """Let root see file permissions like anyone else (drop CAP_DAC_OVERRIDE and
    CAP_DAC_READ_SEARCH from the bounding set before exec)."""
    if os.geteuid() == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        for cap in (1, 2):
            libc.prctl(24, cap, 0, 0, 0)  # PR_CAPBSET_DROP


def test_read_only_database_stops_with_a_clear_error(tmp_path):
    db = tmp_path / "news.db"
    with FaultServer() as server:
        assert (
            crawl("crawl", "feed", "-a", f"url={server.base}/range-1200-3.rss", db=db).returncode
            == 0
        )
        db.chmod(0o444)
        probe = subprocess.run(
            [sys.executable, "-c", f"open({str(db)!r}, 'r+b')"],
            preexec_fn=_drop_root_file_override,
            capture_output=True,
            check=False,
        )
        if probe.returncode == 0:
            pytest.skip("cannot make a file read-only for this user (root without prctl)")
        result = crawl(
            "crawl", "feed", "-a", f"url={server.base}/range-1200-10.rss",
            db=db, preexec=_drop_root_file_override,
        )  # fmt: skip
        assert result.returncode == 1
        assert f"crawl: database {db} is read-only" in result.stderr
        assert "Traceback" not in result.stderr
        db.chmod(0o644)
        _assert_recovers(server, db, "range-1200-10.rss", 10)


# -- crashes ----------------------------------------------------------------------------------------
N_KILL_ARTICLES = 150
KILLS = 20


def _worker_orphans(marker: str) -> list[int]:
    """Extraction workers started by this test (their environment carries ``marker``)
    whose crawler is gone (their parent is no crawl or test run)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError):
            if b"spawn_main" not in (proc / "cmdline").read_bytes():
                continue
            if marker.encode() not in (proc / "environ").read_bytes():
                continue
            ppid = (proc / "stat").read_text().rsplit(")", 1)[1].split()[1]
            parent = Path(f"/proc/{ppid}/cmdline").read_bytes() if ppid != "1" else b""
            if b"scrapy" not in parent and b"pytest" not in parent:
                found.append(int(proc.name))
    return found


def test_sigkill_at_random_moments_loses_nothing(tmp_path, monkeypatch):
    db = tmp_path / "news.db"
    marker = f"NEWSCRAWLER_TEST_RUN={tmp_path.name}-{os.getpid()}"
    monkeypatch.setenv("NEWSCRAWLER_TEST_RUN", marker.split("=", 1)[1])
    rng = random.Random(20261127)
    feed = f"url={{base}}/range-3000-{N_KILL_ARTICLES}.rss"
    seen = 0
    with FaultServer() as server:
        server.ok_delay = 0.03
        for kill in range(KILLS):
            proc = _popen(
                "crawl", "feed", "-a", feed.format(base=server.base),
                "-a", f"max_articles={N_KILL_ARTICLES}", "-s", "STORE_BATCH_SIZE=4",
                "-s", "STORE_FLUSH_INTERVAL=0.2", "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=4", db=db,
            )  # fmt: skip
            # Random moments: during start-up and migrations, mid-batch, mid-commit.
            time.sleep(rng.uniform(0.2, 2.2))
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=30)
            if not db.exists():
                continue
            assert integrity(db) == ("ok", 0), f"after kill {kill + 1}"
            count = _count(db)
            assert count >= seen, "committed articles disappeared"
            seen = count
        result = crawl(
            "crawl", "feed", "-a", feed.format(base=server.base),
            "-a", f"max_articles={N_KILL_ARTICLES}", db=db,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert _count(db) == N_KILL_ARTICLES  # the last run stored everything the kills missed
    assert integrity(db) == ("ok", 0)
    statuses = [r["status"] for r in query(db, "SELECT status FROM runs ORDER BY id")]
    assert statuses[-1] == "finished"
    assert "running" not in statuses  # killed runs are marked as such
    deadline = time.monotonic() + 5
    while _worker_orphans(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _worker_orphans(marker) == []


# -- rendered pages ---------------------------------------------------------------------------------
@pytest.mark.skipif(
    browser_executable() is None and shutil.which("node") is None,
    reason="no Chromium on this machine (install Debian's chromium or playwright install)",
)
def test_rendered_page_that_never_settles_is_closed_at_its_lifetime(tmp_path):
    db = tmp_path / "news.db"
    with FaultServer() as server:
        result = crawl(
            "crawl", "listing", "-a", f"url={server.base}/js/", "-a", "article_pattern=/js/story",
            "-a", "render_js=true",
            "-a", "wait_for=#never-there", "-a", "wait_timeout=600",
            "-s", "PLAYWRIGHT_PAGE_LIFETIME=1", db=db,
        )  # fmt: skip
    # The listing page never rendered: its source failed, so the crawl exits 1 and says so.
    assert result.returncode == 1, result.stderr[-3000:]
    assert f"source {server.base}/js/ failed" in result.stderr.splitlines()[-1]
    # scrapy-playwright retries a closed page 3 times: bounded by 4 x the lifetime.
    assert 1 <= result.stats["playwright/page_lifetime_exceeded"] <= 4
    assert result.stats["source/failed/listing"] == 1
    assert result.seconds < 60


# -- the caps as functions ------------------------------------------------------------------------
def test_extraction_worker_is_killed_past_its_deadline_and_replaced():
    worker = ExtractionWorker(memory_mb=0)
    try:
        slow = "<html><body>" + "<a href='/x'>link text here</a> " * 80000 + "</body></html>"
        started = time.monotonic()
        with pytest.raises(ExtractTimeout):
            worker.run(1.0, html=slow, url="http://x.test/slow")
        assert time.monotonic() - started < 5
        item = worker.run(
            20.0, html=Path(ROOT / "tests/fixtures/sites/pub/a/2026/11/housing.html").read_text(),
            url="http://x.test/h",
        )  # fmt: skip
        assert item.text
        assert worker.restarts == 1
        # A worker that dies (a crash in C code, the OOM killer) is replaced for the next page.
        os.kill(worker._proc.pid, signal.SIGKILL)
        worker._proc.join(5)
        assert worker.run(20.0, html="<p>x</p>", url="http://x.test/y").url == "http://x.test/y"
    finally:
        worker.stop()


def test_extraction_out_of_memory_fails_that_page_only():
    worker = ExtractionWorker(memory_mb=200)
    try:
        huge = (
            "<html><body>"
            + "<div><p>lorem ipsum dolor sit amet</p></div>" * 60000
            + "</body></html>"
        )
        with pytest.raises(ExtractFailed, match="out of memory"):
            worker.run(60.0, html=huge, url="http://x.test/huge")
        assert worker.run(20.0, html="<p>x</p>", url="http://x.test/y").url == "http://x.test/y"
    finally:
        worker.stop()


def test_plain_text_removes_controls_surrogates_and_keeps_layout():
    assert plain_text("a\x00b\x07c\ud800d\ufffee\n\tf") == "abcde\n\tf"
    item = plain_item(
        ArticleItem(url="http://x/", title="T\x00", authors=["A\udc80"], fallback={"t": "x\x01"})
    )
    assert (item.title, item.authors, item.fallback) == ("T", ["A"], {"t": "x"})


def test_cap_links_counts_what_it_leaves():
    crawler = get_crawler()
    crawler.stats.open_spider()
    assert list(cap_links(range(10), 3, crawler, where="page")) == [0, 1, 2]
    assert crawler.stats.get_value("limits/links_capped") == 7
    assert list(cap_links(range(4), 0, crawler)) == [0, 1, 2, 3]


def test_failure_reasons():
    request = Request("http://x.test/a")
    response = Response("http://x.test/a", status=404, request=request)
    cases = {
        "http_404": HttpError(response),
        "refused": TxConnectionRefusedError(),
        "robots": IgnoreRequest("Forbidden by robots.txt"),
        "max_redirects": IgnoreRequest("max redirections reached"),
        "redirect_loop": IgnoreRequest("redirect loop: a -> b"),
        "too_large": IgnoreRequest("... exceeded DOWNLOAD_MAXSIZE (5 B) during decompression."),
        "ignored": IgnoreRequest("something else"),
        "value_error": ValueError("x"),
    }
    for reason, exc in cases.items():
        failure = Failure(exc)
        failure.request = request
        assert failure_reason(failure) == reason


def test_retry_after_values():
    from datetime import UTC, datetime

    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    assert retry_after_seconds(b"120") == 120
    assert retry_after_seconds(b"Fri, 27 Nov 2026 12:00:30 GMT", now) == 30
    assert retry_after_seconds(b"Fri, 27 Nov 2026 11:00:00 GMT", now) == 0
    assert retry_after_seconds(b"-5") == 0
    assert retry_after_seconds(b"soon") is None
    assert retry_after_seconds(None) is None


def test_every_safety_setting_is_documented():
    docs = (ROOT / "docs" / "safety.md").read_text(encoding="utf-8")
    for setting in (
        "SSRF_GUARD_ENABLED", "SSRF_ALLOWED_HOSTS", "DOWNLOAD_MAXSIZE", "SITEMAP_MAX_BYTES",
        "DOWNLOAD_TIMEOUT", "RETRY_AFTER_MAX", "REDIRECT_MAX_TIMES", "METAREFRESH_MAXDELAY",
        "EXTRACT_TIMEOUT", "EXTRACT_MAX_MEMORY_MB", "LINKS_PER_PAGE_MAX", "DB_BUSY_TIMEOUT",
        "PLAYWRIGHT_PAGE_LIFETIME", "PLAYWRIGHT_GUARD_PROXY", "PLAYWRIGHT_ABORT_RESOURCE_TYPES",
        "PLAYWRIGHT_ABORT_HOSTS", "PLAYWRIGHT_ABORT_REQUEST", "RETRY_GIVE_UP_LOG_LEVEL",
    ):  # fmt: skip
        assert f"`{setting}`" in docs, setting
