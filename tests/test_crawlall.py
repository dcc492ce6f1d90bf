"""``scrapy crawlall``: exit codes, the lock, time limits against a server that never answers,
anomalies from the runs history; the progress extension and per-crawler log counts."""

from __future__ import annotations

import gc
import io
import json
import logging
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time

import pytest
from scrapy.exceptions import NotConfigured, UsageError
from scrapy.settings import Settings
from scrapy.utils.misc import build_from_crawler
from scrapy.utils.test import get_crawler

from crawler.anomaly import AnomalyConfig, RunFigures, anomalies, run_problems
from crawler.commands.crawlall import select_sites
from crawler.commands.crontab import cron_schedule
from crawler.extensions import FreezeStartup, SiteLogCount
from crawler.lock import LockHeld, RunLock, lock_path_for
from crawler.progress import Progress
from crawler.runner import Limits, exit_code
from crawler.sites import SiteSet, parse_sites
from crawler.storage.runs import SqliteRuns
from crawler.summary import SiteResult, format_summary, progress_line
from tests.conftest import ROOT, rows, scrapy


# -- fixtures -----------------------------------------------------------------------------------
@pytest.fixture
def hang():
    """A server that accepts connections and never answers: ``http://127.0.0.1:PORT``."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    server.settimeout(0.2)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except (TimeoutError, OSError):
                continue
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join(timeout=2)
    for conn in held:
        conn.close()
    server.close()


def write_sites(path, **sites: dict) -> str:
    """A sites file with one ``[[site]]`` per keyword (name = keyword)."""
    blocks = []
    for name, keys in sites.items():
        lines = [f'name = "{name}"']
        for key, value in keys.items():
            lines.append(f"{key} = {json.dumps(value)}")
        blocks.append("[[site]]\n" + "\n".join(lines))
    path.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    return str(path)


def feed(url: str, **extra) -> dict:
    return {"kind": "feed", "start_urls": [url], **extra}


def _statuses(db) -> list[str]:
    """The runs' statuses, or [] while the database is still being created."""
    try:
        return [r["status"] for r in rows(db, "SELECT status FROM runs")] if db.exists() else []
    except sqlite3.OperationalError:
        return []


def runs_by_site(db) -> dict[str, dict]:
    return {r["site"]: r for r in rows(db, "SELECT * FROM runs ORDER BY id")}


# -- exit codes ---------------------------------------------------------------------------------
def test_all_fine_exits_0_quietly_and_logs_to_a_rotating_file(sites, db, tmp_path):
    sites_file = write_sites(
        tmp_path / "sites.toml", herald=feed(sites.base_urls["pub"] + "/feed.rss")
    )
    result = scrapy("crawlall", "--sites", sites_file, db=db)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""  # cron mails any output: nothing when all is well
    assert result.stderr == ""
    run = runs_by_site(db)["herald"]
    assert (run["status"], run["items_stored"], run["errors"]) == ("finished", 4, 0)
    assert json.loads(run["problems"]) == []
    stats = json.loads(run["stats"])
    assert stats["finish_reason"] == "finished"
    assert stats["run/problems"] == []
    log = (tmp_path / "logs" / "crawlall.log").read_text(encoding="utf-8")
    assert "[herald] Spider closed (finished)" in log
    # -v: the summary on stdout even when all is well.
    verbose = scrapy("crawlall", "--sites", sites_file, "-v", db=db)
    assert verbose.returncode == 0, verbose.stderr
    assert "1 site, 0 new articles stored, 4 already stored" in verbose.stdout
    assert "; all fine" in verbose.stdout
    assert f"log: {tmp_path / 'logs' / 'crawlall.log'}" in verbose.stdout


def test_a_failing_site_exits_1_and_is_the_only_one_blamed(sites, db, tmp_path):
    base = sites.base_urls["pub"]
    sites_file = write_sites(
        tmp_path / "sites.toml",
        herald=feed(base + "/feed.rss"),
        broken=feed(base + "/no-such-feed.rss"),
    )
    result = scrapy("crawlall", "--sites", sites_file, db=db)
    assert result.returncode == 1, result.stderr
    assert "; 1 failed" in result.stdout
    cause = f"source {base}/no-such-feed.rss failed (http_404): Ignoring non-200 response"
    assert f"FAILED broken: 1 error logged: {cause}" in result.stdout
    runs = runs_by_site(db)
    assert json.loads(runs["broken"]["problems"]) == [f"1 error logged: {cause}"]
    # The broken site's ERROR is not counted against the other site of the same process.
    assert json.loads(runs["herald"]["problems"]) == []
    assert "log_count/ERROR" not in json.loads(runs["herald"]["stats"])
    assert runs["herald"]["items_stored"] == 4


def test_config_errors_exit_2(sites, db, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[site]]\nname = "x"\nkind = "feed"\nstart_urls = ["http://a.example/"]\n'
                   "colour = 1\n", encoding="utf-8")  # fmt: skip
    result = scrapy("crawlall", "--sites", str(bad), db=db)
    assert result.returncode == 2
    assert "site 'x': key 'colour': unknown key" in result.stderr
    good = write_sites(tmp_path / "sites.toml", herald=feed(sites.base_urls["pub"] + "/feed.rss"))
    no_group = scrapy("crawlall", "--sites", good, "--group", "nightly", db=db)
    assert no_group.returncode == 2
    assert "no enabled site in group 'nightly'" in no_group.stderr
    bad_limit = scrapy("crawlall", "--sites", good, "-s", "CRAWLALL_RUN_TIMEOUT=-1", db=db)
    assert bad_limit.returncode == 2
    assert not db.exists()  # nothing ran


def test_second_crawlall_on_the_same_database_exits_75(sites, db, tmp_path):
    sites_file = write_sites(
        tmp_path / "sites.toml", herald=feed(sites.base_urls["pub"] + "/feed.rss")
    )
    with RunLock(lock_path_for(db)).acquire(note="test holder"):
        started = time.monotonic()
        result = scrapy("crawlall", "--sites", sites_file, db=db)
        elapsed = time.monotonic() - started
    assert result.returncode == 75
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "another crawlall is running on" in result.stderr
    assert "test holder" in result.stderr
    assert elapsed < 20
    assert not db.exists()  # refused before anything was crawled


def test_lock_of_a_sigkilled_crawlall_does_not_block_the_next_run(sites, db, tmp_path, hang):
    hung_file = write_sites(tmp_path / "hung.toml", hung=feed(hang + "/feed.rss"))
    cmd = [sys.executable, "-m", "scrapy", "crawlall", "--sites", hung_file,
           "-s", f"DB_PATH={db}", "-s", "DOWNLOAD_TIMEOUT=300"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if _statuses(db) == ["running"]:
                break
            time.sleep(0.2)
        else:
            pytest.fail("the first crawlall never started its run")
        with pytest.raises(LockHeld):
            RunLock(lock_path_for(db)).acquire()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert lock_path_for(db).exists()  # the file stays; the kernel dropped the flock
    good = write_sites(tmp_path / "sites.toml", herald=feed(sites.base_urls["pub"] + "/feed.rss"))
    result = scrapy("crawlall", "--sites", good, db=db)
    assert result.returncode == 0, result.stdout + result.stderr
    assert runs_by_site(db)["hung"]["status"] == "killed"  # marked by the next run


def test_site_time_limit_against_a_server_that_never_answers(sites, db, tmp_path, hang):
    sites_file = write_sites(
        tmp_path / "sites.toml",
        herald=feed(sites.base_urls["pub"] + "/feed.rss"),
        hung=feed(hang + "/feed.rss"),
    )
    started = time.monotonic()
    result = scrapy(
        "crawlall", "--sites", sites_file, "-s", "CRAWLALL_SITE_TIMEOUT=2",
        "-s", "DOWNLOAD_TIMEOUT=3", "-s", "RETRY_TIMES=0", db=db,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert result.returncode == 1, result.stderr
    assert elapsed < 40
    runs = runs_by_site(db)
    assert runs["hung"]["status"] == "closespider_timeout"
    problems = json.loads(runs["hung"]["problems"])
    assert problems[0] == "closed: site time limit reached (CRAWLALL_SITE_TIMEOUT)"
    assert runs["herald"]["status"] == "finished"
    assert json.loads(runs["herald"]["problems"]) == []
    assert "FAILED hung: closed: site time limit reached" in result.stdout


def test_run_time_limit_ends_a_run_stuck_on_a_server_that_never_answers(db, tmp_path, hang):
    sites_file = write_sites(tmp_path / "sites.toml", hung=feed(hang + "/feed.rss"))
    started = time.monotonic()
    result = scrapy(
        "crawlall", "--sites", sites_file, "-s", "CRAWLALL_SITE_TIMEOUT=0",
        "-s", "CRAWLALL_RUN_TIMEOUT=6", "-s", "CRAWLALL_STOP_GRACE=2",
        "-s", "DOWNLOAD_TIMEOUT=600", db=db,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert result.returncode == 1, result.stderr
    assert elapsed < 40  # not DOWNLOAD_TIMEOUT x retries
    run = runs_by_site(db)["hung"]
    # Closing waits for the hung download; after the grace period the run is ended by force.
    assert run["status"] == "run_timeout_forced"
    assert run["finished_at"]
    assert "FAILED hung: closed: stopped by force" in result.stdout


def test_zero_articles_where_the_site_used_to_yield_some_exits_1(sites, db, tmp_path):
    archive = SqliteRuns.acquire(db)
    try:
        for stored in (5, 6, 4):
            run_id = archive.start(spider="listing", site="quiet")
            archive.finish(
                run_id,
                status="finished",
                stats={"store/inserted": stored, "finish_reason": "finished"},
            )
    finally:
        archive.release()
    sites_file = write_sites(
        tmp_path / "sites.toml",
        quiet={"kind": "listing", "start_urls": [sites.base_urls["pub"] + "/section.html"],
               "article_pattern": "/nothing-matches-this/"},
    )  # fmt: skip
    result = scrapy("crawlall", "--sites", sites_file, db=db)
    assert result.returncode == 1, result.stderr
    assert "FAILED quiet: no articles (median 5 over the last 3 runs)" in result.stdout
    last = rows(db, "SELECT status, problems FROM runs ORDER BY id DESC LIMIT 1")[0]
    assert last["status"] == "finished"
    assert json.loads(last["problems"]) == ["no articles (median 5 over the last 3 runs)"]


# -- pure parts ---------------------------------------------------------------------------------
def _run(seen=10, *, status="finished", pages=10, errors=0, logged=0) -> RunFigures:
    return RunFigures(
        status=status, seen=seen, stored=seen, pages=pages, errors=errors, logged_errors=logged
    )


def test_anomalies_from_history():
    history = [_run(40), _run(38), _run(42), _run(0, status="shutdown"), _run(41)]
    assert anomalies(_run(39), history) == []
    assert anomalies(_run(0), history) == ["no articles (median 40.5 over the last 4 runs)"]
    assert anomalies(_run(5), history) == ["5 articles, far below the median 40.5 (last 4 runs)"]
    # Small sites vary: 1 instead of a median of 3 is not "far below".
    assert anomalies(_run(1), [_run(3)] * 5) == []
    # Zero where the site never yielded anything is not an anomaly; nor without history.
    assert anomalies(_run(0), [_run(0)] * 5) == []
    assert anomalies(_run(0), [_run(40)] * 2) == []
    # Error rate: 8 errors for 2 pages where the site used to have none.
    assert anomalies(_run(39, pages=2, errors=8), history) == [
        "error rate 80% (median 0% over the last 4 runs)"
    ]
    # A site that always has that error rate is not jumping.
    noisy = [_run(10, pages=2, errors=8)] * 4
    assert anomalies(_run(10, pages=2, errors=8), noisy) == []
    assert run_problems(_run(0, status="closespider_timeout", logged=2), history) == [
        "closed: site time limit reached (CRAWLALL_SITE_TIMEOUT)",
        "2 errors logged",
        "no articles (median 40.5 over the last 4 runs)",
    ]


def test_anomaly_config_from_settings():
    config = AnomalyConfig.from_settings(Settings({"ANOMALY_MIN_RUNS": 2}))
    assert config.min_runs == 2
    assert "incremental/skipped" in config.seen_stats
    with pytest.raises(ValueError, match="ANOMALY_MIN_RUNS"):
        AnomalyConfig.from_settings(Settings({"ANOMALY_MIN_RUNS": 20}))
    figures = RunFigures.from_stats(
        {"store/inserted": 1, "store/duplicates": 2, "incremental/skipped": 7,
         "log_count/ERROR": 1, "downloader/exception_count": 3, "finish_reason": "finished"}
    )  # fmt: skip
    assert (figures.seen, figures.errors, figures.logged_errors) == (10, 4, 1)


def test_select_sites(tmp_path):
    site_set = SiteSet(
        tmp_path / "s.toml",
        parse_sites(
            {"site": [
                {"name": "a", "kind": "feed", "start_urls": ["http://a.example/f"]},
                {"name": "b", "kind": "feed", "start_urls": ["http://b.example/f"], "group": "g"},
                {"name": "c", "kind": "feed", "start_urls": ["http://c.example/f"],
                 "enabled": False},
            ]},
            source="s.toml",
        ),
    )  # fmt: skip

    def names(sites: list) -> list[str]:
        return [s.name for s in sites]

    assert names(select_sites(site_set, group=None, names=None)) == ["a", "b"]
    assert names(select_sites(site_set, group="g", names=None)) == ["b"]
    assert names(select_sites(site_set, group=None, names=["c", "a", "c"])) == ["c", "a"]
    with pytest.raises(UsageError, match="no site named 'zz'"):
        select_sites(site_set, group=None, names=["zz"])
    with pytest.raises(UsageError, match="not both"):
        select_sites(site_set, group="g", names=["a"])


def test_lock_is_exclusive_and_released(tmp_path):
    path = lock_path_for(tmp_path / "news.db")
    assert path.name == "news.db.lock"
    first = RunLock(path).acquire(note="first")
    with pytest.raises(LockHeld, match="first"):
        RunLock(path).acquire()
    first.release()
    with RunLock(path):
        pass


def test_limits_exit_codes_and_summary():
    with pytest.raises(UsageError):
        Limits.from_settings(Settings({"CRAWLALL_SITE_TIMEOUT": -5}))
    ok = SiteResult("a", {"finish_reason": "finished", "store/inserted": 3, "run/problems": []})
    slow = SiteResult(
        "b",
        {"finish_reason": "closespider_timeout", "response_received_count": 2,
         "log_count/ERROR": 1, "validate/dropped/too_short": 1, "item_dropped_count": 1},
    )  # fmt: skip
    assert exit_code([ok]) == 0
    assert exit_code([ok, slow]) == 1
    assert exit_code([SiteResult("never", {})]) == 1  # did not start
    summary = format_summary([ok, slow], 12.34)
    assert "2 sites, 3 articles stored, 0 duplicates, 1 dropped, in 12.3 s; 1 failed" in summary
    assert (
        "FAILED b: closed: site time limit reached (CRAWLALL_SITE_TIMEOUT); 1 error logged"
        in summary
    )
    assert "too_short: 1" in summary


def test_cron_schedule():
    assert cron_schedule(30) == "*/30 * * * *"
    assert cron_schedule(60) == "0 * * * *"
    assert cron_schedule(360) == "0 */6 * * *"
    with pytest.raises(ValueError, match="divisor"):
        cron_schedule(45 + 1)


def test_crontab_command_prints_absolute_paths(db):
    result = scrapy("crontab", "--every", "15", db=db)
    assert result.returncode == 0, result.stderr
    line = next(x for x in result.stdout.splitlines() if x.startswith("*/15 "))
    assert (
        f"cd {ROOT} && {sys.executable} -m scrapy crawlall --sites {ROOT}/data/sites.toml" in line
    )
    assert f"DB_PATH={db}" in line
    assert "CRAWLALL_RUN_TIMEOUT=750" in line  # shorter than the interval
    assert f"{db.parent}/logs/crawlall.log" in result.stdout
    units = scrapy("crontab", "--systemd", db=db)
    assert "OnCalendar=*:0/30" in units.stdout
    assert "SuccessExitStatus=75" in units.stdout


# -- progress and log counts ----------------------------------------------------------------------
class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_line_and_summary_in_a_terminal(monkeypatch):
    stats = {"response_received_count": 30, "store/inserted": 12, "store/duplicates": 3,
             "item_dropped_count": 1, "downloader/exception_count": 2}  # fmt: skip
    assert progress_line(SiteResult("herald", stats), 15.2) == (
        "[herald] 0:15  pages 30 (118/min)  stored 12  known 0  dupes 3  dropped 1  errors 2"
    )
    tty = _Tty()
    monkeypatch.setattr(sys, "stderr", tty)
    crawler = get_crawler(settings_dict={"PROGRESS_INTERVAL": 1})
    ext = build_from_crawler(Progress, crawler)
    crawler.spider = crawler.spidercls.from_crawler(crawler)
    for key, value in stats.items():
        crawler.stats.set_value(key, value)
    ext.tick()
    ext.spider_closed(crawler.spider, "finished")
    out = tty.getvalue()
    assert out.startswith(f"[{crawler.spider.name}] 0:00  pages 30")
    assert "1 site, 12 articles stored, 3 duplicates, 1 dropped, in " in out
    assert out.rstrip().endswith("; all fine")


def test_progress_is_silent_without_a_terminal(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    with pytest.raises(NotConfigured):
        build_from_crawler(Progress, get_crawler())
    monkeypatch.setattr(sys, "stderr", _Tty())
    with pytest.raises(NotConfigured):
        build_from_crawler(Progress, get_crawler(settings_dict={"PROGRESS_ENABLED": False}))


def test_log_counts_are_per_crawler():
    crawlers = [get_crawler(settings_dict={"LOG_LEVEL": "INFO"}) for _ in range(2)]
    exts = []
    for crawler in crawlers:
        crawler.spider = crawler.spidercls.from_crawler(crawler)
        ext = build_from_crawler(SiteLogCount, crawler)
        ext.spider_opened(crawler.spider)
        exts.append(ext)
    log = logging.getLogger("tests.logcount")
    try:
        log.error("site one failed", extra={"spider": crawlers[0].spider})
        log.error("no spider named")
    finally:
        for crawler, ext in zip(crawlers, exts, strict=True):
            ext.spider_closed(crawler.spider, "finished")
    one, two = (c.stats.get_stats() for c in crawlers)
    assert one["log_count/ERROR"] == 1
    assert "log_count/ERROR" not in two
    assert one["log_count/shared/ERROR"] == two["log_count/shared/ERROR"] == 1


def test_start_up_objects_stay_out_of_the_collectors_walks_while_a_spider_runs():
    """Frozen when the spider opens, handed back when it closes: the next crawl of a
    crawlall run can collect the closed crawler's objects."""
    crawler = get_crawler()
    ext = build_from_crawler(FreezeStartup, crawler)
    assert gc.get_freeze_count() == 0
    ext.spider_opened(crawler.spider)
    try:
        assert gc.get_freeze_count() > 1000
    finally:
        ext.spider_closed(crawler.spider)
    assert gc.get_freeze_count() == 0
