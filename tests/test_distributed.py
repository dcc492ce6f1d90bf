"""Distributed mode on a real Redis: workers share one frontier and never fetch a URL twice, one
writer stores every article once, a killed worker's requests and a killed writer's items are
not lost, and without REDIS_URL nothing changes."""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from scrapy.settings import Settings

from crawler.distributed.addon import DistributedAddon
from crawler.distributed.config import DistributedConfig
from crawler.distributed.queue import decode_item
from crawler.siteserver import SiteServers
from tests.conftest import ROOT, needs_redis, rows, scrapy

logger = logging.getLogger(__name__)

redis = pytest.importorskip("redis", reason="pip install -e '.[redis]'")
# Quick heartbeats so that idle workers close, and dead ones are given up, within seconds.
FAST = {
    "DISTRIBUTED_HEARTBEAT": "0.3",
    "DISTRIBUTED_IDLE_CLOSE": "1.5",
    "DISTRIBUTED_WORKER_TIMEOUT": "2",
    "AUTOTHROTTLE_ENABLED": "False",
    "DOWNLOAD_DELAY": "0",
    "LOG_LEVEL": "INFO",
}


# -- processes ---------------------------------------------------------------------------------
def _settings_args(settings: dict[str, str]) -> list[str]:
    return [arg for k, v in settings.items() for arg in ("-s", f"{k}={v}")]


def start(*args: str, log: Path, **settings: str) -> subprocess.Popen:
    """``python -m scrapy ARGS -s K=V ...`` in the background, output to ``log``."""
    cmd = [sys.executable, "-m", "scrapy", *args, *_settings_args(settings)]
    out = log.open("w", encoding="utf-8")
    try:
        return subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    finally:
        out.close()


def worker(n: int, sites_file: Path, redis_url: str, tmp: Path, **settings: str):
    return start(
        "crawlall", "--sites", str(sites_file), "-v",
        log=tmp / f"worker-{n}.out",
        REDIS_URL=redis_url,
        USER_AGENT=f"worker-{n}",
        CRAWLALL_LOG_FILE=str(tmp / f"worker-{n}.log"),
        DB_PATH=str(tmp / f"worker-{n}" / "unused.db"),  # a worker never opens it
        **(FAST | settings),
    )  # fmt: skip


def writer(db: Path, redis_url: str, tmp: Path, *extra: str, name: str = "writer", **settings):
    return start(
        "ingest", "-v", *extra, log=tmp / f"{name}.out",
        REDIS_URL=redis_url, DB_PATH=str(db), **(FAST | settings),
    )  # fmt: skip


def finish(proc: subprocess.Popen, timeout: float = 90) -> int:
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise


def wait_for(condition, timeout: float = 60, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {condition}")


def drained(server) -> bool:
    return (
        server.llen("newscrawler:items") == 0 and server.llen("newscrawler:items:processing") == 0
    )


def count(db: Path, table: str) -> int:
    try:
        return rows(db, f"SELECT COUNT(*) AS n FROM {table}")[0]["n"]
    except sqlite3.OperationalError:  # not created yet
        return 0


def requests_by(servers: SiteServers, since: dict[str, int]) -> Counter:
    """(user agent, site, path) of every request since ``since`` (robots.txt left out)."""
    seen: Counter = Counter()
    for name, site in servers.sites.items():
        start_at = since.get(name, 0)
        for path, agent in zip(site.requests[start_at:], site.user_agents[start_at:], strict=True):
            if path != "/robots.txt":
                seen[(agent, name, path)] += 1
    return seen


def log_marks(servers: SiteServers) -> dict[str, int]:
    return {name: len(site.requests) for name, site in servers.sites.items()}


def write_sites(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def news_feed_site(tmp_path: Path, servers: SiteServers) -> Path:
    """A sites file with the one feed site "news" of ``make_site``."""
    return write_sites(tmp_path / "sites.toml", f"""
[[site]]
name = "news"
kind = "feed"
start_urls = ["{servers.base_urls["news"]}/feed.rss"]
""")  # fmt: skip


HOLD_LOCK = (
    "import fcntl, sys, time; f = open(sys.argv[1], 'a'); fcntl.flock(f, fcntl.LOCK_EX); "
    "print('locked', flush=True); time.sleep(30)"
)

# -- a larger generated site ---------------------------------------------------------------------
WORDS = (
    "council", "budget", "transport", "school", "park", "river", "market", "harbour", "bridge",
    "station", "hospital", "library", "museum", "festival", "election", "minister", "governor",
    "mayor", "police", "court", "factory", "export", "harvest", "weather", "storm", "drought",
    "flood", "rail", "airport", "tunnel", "housing", "wage", "union", "strike", "teacher",
    "student", "nurse", "doctor", "farmer", "engineer", "announced", "approved", "rejected",
)  # fmt: skip


def make_site(root: Path, n: int) -> Path:
    """``root/news``: a feed of ``n`` distinct articles (``/art/<i>.html``)."""
    site = root / "news"
    (site / "art").mkdir(parents=True)
    items = []
    for i in range(n):
        rng = random.Random(i)
        paragraphs = "".join(
            "<p>"
            + " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 30))).capitalize()
            + ".</p>"
            for _ in range(5)
        )
        (site / "art" / f"{i}.html").write_text(
            f"<!DOCTYPE html><html lang='en'><head><title>Story {i}</title>"
            f"<meta charset='utf-8'></head><body><article><h1>Story number {i}</h1>"
            f"{paragraphs}</article></body></html>",
            encoding="utf-8",
        )
        items.append(f"<item><title>Story {i}</title><link>{{{{news}}}}/art/{i}.html</link></item>")
    (site / "feed.rss").write_text(
        f'<rss version="2.0"><channel><title>News</title>{"".join(items)}</channel></rss>',
        encoding="utf-8",
    )
    return root


# -- without REDIS_URL: nothing changes -----------------------------------------------------------
def _project_settings(**overrides: str) -> Settings:
    settings = Settings()
    settings.setmodule("crawler.settings", priority="project")
    for name, value in overrides.items():
        settings.set(name, value, priority="cmdline")
    return settings


def test_the_addon_changes_nothing_without_redis_url():
    before = _project_settings()
    after = _project_settings()
    DistributedAddon().update_settings(after)
    assert after.copy_to_dict() == before.copy_to_dict()


def test_with_redis_url_the_crawl_becomes_a_worker():
    settings = _project_settings(REDIS_URL="redis://127.0.0.1:6379/0")
    DistributedAddon().update_settings(settings)
    assert settings["SCHEDULER"] == "crawler.distributed.frontier.FrontierScheduler"
    assert settings["DUPEFILTER_CLASS"] == "scrapy_redis.dupefilter.RFPDupeFilter"
    assert settings.getbool("SCHEDULER_PERSIST")
    pipelines = settings.getdict("ITEM_PIPELINES")
    assert pipelines["pipelines.dedupe.DedupePipeline"] is None
    assert pipelines["pipelines.store.StorePipeline"] is None
    assert pipelines["crawler.distributed.shared.SharedCleanPipeline"] == 200
    assert pipelines["crawler.distributed.queue.PushPipeline"] == 500
    assert pipelines["pipelines.validate.ValidatePipeline"] == 100
    assert "pipelines.clean.CleanPipeline" not in pipelines
    extensions = settings.getdict("EXTENSIONS")
    assert extensions["crawler.distributed.runs.RunReporter"] == 500
    assert "crawler.extensions.RunRecorder" not in extensions
    middlewares = settings.getdict("SPIDER_MIDDLEWARES")
    assert middlewares["crawler.distributed.shared.SharedSkipStoredMiddleware"] == 950
    assert middlewares["crawler.distributed.frontier.FrontierMiddleware"] == 10
    # The writer (scrapy ingest) keeps the single-machine components.
    writer_settings = _project_settings(REDIS_URL="redis://x:1/0", DISTRIBUTED_ROLE="writer")
    DistributedAddon().update_settings(writer_settings)
    assert writer_settings.get("SCHEDULER") == _project_settings().get("SCHEDULER")


def test_single_machine_mode_imports_no_redis():
    code = (
        "import sys\n"
        "from scrapy.settings import Settings\n"
        "import crawler.commands.crawlall, crawler.commands.crawl, crawler.commands.ingest\n"
        "from crawler.distributed.addon import DistributedAddon\n"
        "s = Settings(); s.setmodule('crawler.settings'); DistributedAddon().update_settings(s)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('redis', 'scrapy_redis')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_config_is_checked():
    settings = Settings({"REDIS_URL": "redis://h:1/0", "DISTRIBUTED_HEARTBEAT": 20})
    with pytest.raises(ValueError, match="at least 2 heartbeats"):
        DistributedConfig.from_settings(settings)
    with pytest.raises(ValueError, match="REDIS_URL"):
        DistributedConfig.from_settings(Settings())
    config = DistributedConfig.from_settings(Settings({"REDIS_URL": " redis://h:1/0 "}))
    assert config.redis_url == "redis://h:1/0"
    assert config.items_key == "newscrawler:items"


def test_ingest_needs_redis_url(db):
    result = scrapy("ingest", db=db)
    assert result.returncode == 2
    assert "needs REDIS_URL" in result.stderr
    assert not db.exists()


# -- pure parts --------------------------------------------------------------------------------
def test_item_payload_round_trip():
    from crawler.distributed.queue import BadPayload, encode_item
    from crawler.items import ArticleItem

    item = ArticleItem(url="https://a.example/x", title="T", text="한국어 text", tags=["korea"],
                       html="<p>x</p>", removed=[{"text": "Join us", "rule": "social_join"}])  # fmt: skip
    delivery = decode_item(encode_item(item, worker="w1"))
    assert delivery.item == item
    assert delivery.worker == "w1"
    assert len(delivery.id) == 32
    assert decode_item(encode_item(item, worker="w1", keep_html=False)).item.html is None
    with pytest.raises(BadPayload):
        decode_item(b"not zlib")


class _Signals:
    def connect(self, *args, **kwargs):
        pass


class _Crawler:
    signals = _Signals()


def test_inflight_entry_is_released_after_output_and_items():
    from crawler.distributed.frontier import Inflight  # imports scrapy-redis

    released: list[str] = []
    inflight = Inflight(_Crawler())
    inflight.release = released.append
    inflight.output_done("no-items")  # a source page: its requests are in the frontier
    assert released == ["no-items"]
    a, b = object(), object()
    inflight.hold("page", a)
    inflight.hold("page", b)
    inflight.item_done(a)  # an item finished while the callback still runs
    assert released == ["no-items"]
    inflight.output_done("page")
    assert released == ["no-items"]
    inflight.item_done(b)
    assert released == ["no-items", "page"]
    inflight.item_done(object())  # not held: ignored


# -- Redis-backed parts ---------------------------------------------------------------------------
@needs_redis
def test_item_queue_acknowledges_only_what_was_committed(server, redis_url):
    from crawler.distributed.queue import ItemQueue

    queue = ItemQueue(server, DistributedConfig(redis_url=redis_url))
    for i in range(5):
        queue.push(f"p{i}".encode(), [f"a.example/{i}"])
    assert server.hget("newscrawler:urlkeys", "a.example/3") == b"pending"
    batch, again = queue.claim(3)
    assert (batch, again) == ([b"p0", b"p1", b"p2"], False)
    assert queue.lengths() == (2, 3)
    # The writer dies here: the next claim takes the same entries again, first.
    batch, again = queue.claim(3)
    assert (batch, again) == ([b"p0", b"p1", b"p2"], True)
    queue.ack(3)
    assert queue.lengths() == (2, 0)
    batch, _ = queue.claim(10)
    queue.ack_each([b"p4"])  # stopped mid-batch: only p4 committed
    assert server.lrange("newscrawler:items:processing", 0, -1) == [b"p3"]
    queue.publish({"a.example/3": "7|2026-11-27T00:00:00+00:00"})
    assert server.hget("newscrawler:urlkeys", "a.example/3") == b"7|2026-11-27T00:00:00+00:00"


@needs_redis
def test_shared_memory_url_keys_http_cache_and_boilerplate(server, redis_url):
    from crawler.distributed.shared import RedisBoilerplate, RedisHttpCache, RedisUrlMemory

    config = DistributedConfig(redis_url=redis_url)
    memory = RedisUrlMemory(server, config)
    assert memory.seen("a.example/1") is None
    server.hset("newscrawler:urlkeys", mapping={"a.example/1": "pending", "a.example/2": "9|2026"})
    pending = memory.seen("a.example/1")
    assert pending is not None
    assert pending[0] == 0
    assert memory.seen("a.example/2") == (9, "2026")

    cache = RedisHttpCache(server, config)
    url = "https://a.example/feed.rss"
    assert cache.get(url) is None
    cache.put(url, etag='"e1"', last_modified=None, content_type="text/xml",
              body=b"<rss/>")  # fmt: skip
    cached = cache.get(url)
    assert cached is not None
    assert (cached["etag"], cached["last_modified"], cached["body"]) == ('"e1"', None, b"<rss/>")
    assert 0 < server.ttl(cache._key(url)) <= 14 * 86400
    cache.forget(url)
    assert cache.get(url) is None

    boilerplate = RedisBoilerplate(server, config)
    lines = {"h1": "Subscribe now", "h2": "A line of one story"}
    for n in range(3):
        boilerplate.record("a.example", f"https://a.example/{n}", {"h1": lines["h1"]}, cap=3)
    boilerplate.record("a.example", "https://a.example/0", lines, cap=3)
    assert boilerplate.frequent("a.example", lines, min_articles=3) == {"h1"}
    assert boilerplate.frequent("b.example", lines, min_articles=3) == set()


# -- end to end: workers and a writer ---------------------------------------------------------------
def clusters(db: Path) -> set[frozenset[str]]:
    """Each story as the set of URL paths it was seen at (its article, and its exact and
    near copies); URL-kind sightings are checked separately (their number depends on timing
    in single-process mode too)."""
    stories = {
        r["id"]: {r["url"].split("/", 3)[3]} for r in rows(db, "SELECT id, url FROM articles")
    }
    for d in rows(db, "SELECT url, article_id, kind FROM duplicates WHERE kind != 'url'"):
        stories[d["article_id"]].add(d["url"].split("/", 3)[3])
    return {frozenset(s) for s in stories.values()}


@needs_redis
def test_three_workers_and_one_writer_store_every_article_once(sites, redis_url, server, tmp_path):
    urls = sites.base_urls
    sites_file = write_sites(tmp_path / "sites.toml", f"""
[[site]]
name = "incr"
kind = "feed"
start_urls = ["{urls["incr"]}/feed.rss"]

[[site]]
name = "incr-blog"
kind = "feed"
start_urls = ["{urls["incr-blog"]}/feed.rss"]

[[site]]
name = "herald"
kind = "feed"
start_urls = ["{urls["pub"]}/atom.xml"]

[[site]]
name = "herald-map"
kind = "sitemap"
start_urls = ["{urls["pub"]}/sitemap_index.xml"]
recency_days = 3650
article_pattern = "/a/"
""")  # fmt: skip
    # The same sites in single-process mode, for comparison.
    single = tmp_path / "single.db"
    result = scrapy("crawlall", "--sites", str(sites_file), db=single)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]

    marks = log_marks(sites)
    db = tmp_path / "news.db"
    the_writer = writer(db, redis_url, tmp_path)
    # Three crawlers with two pool workers each start at once on the test machine's cores: a
    # worker busy starting up can miss FAST's two-second heartbeat deadline and have its
    # requests handed to the others (fetched twice). Dead workers are another test's subject.
    workers = [
        worker(n, sites_file, redis_url, tmp_path, DISTRIBUTED_WORKER_TIMEOUT="10")
        for n in (1, 2, 3)
    ]
    for n, proc in enumerate(workers, 1):
        assert finish(proc) == 0, (tmp_path / f"worker-{n}.out").read_text()[-3000:]
    wait_for(lambda: drained(server))
    the_writer.send_signal(signal.SIGINT)
    assert finish(the_writer) == 0, (tmp_path / "writer.out").read_text()[-3000:]

    # No page fetched twice, across all workers (robots.txt: once per worker and host).
    fetched = requests_by(sites, marks)
    per_path = Counter()
    for (_, site, path), n in fetched.items():
        per_path[(site, path)] += n
    assert per_path, "nothing fetched"
    assert max(per_path.values()) == 1, [k for k, n in per_path.items() if n > 1]
    # ... and the same pages as the single-process crawl (which fetches one URL twice: the
    # re-post blog links the original of one story, found by both sites in both modes).
    per_worker = Counter()
    for (agent, _, _), n in fetched.items():
        per_worker[agent] += n
    logger.info("requests per worker: %s", dict(per_worker))

    # Every story stored once, its copies recorded as duplicates, as in single-process mode.
    assert count(db, "articles") == count(single, "articles") > 0
    assert clusters(db) == clusters(single)
    near = "SELECT COUNT(*) AS n FROM duplicates WHERE kind = 'near'"
    assert rows(db, near) == rows(single, near)
    for d in rows(db, "SELECT d.url, a.url AS stored FROM duplicates d JOIN articles a "
                      "ON a.id = d.article_id WHERE d.kind = 'url'"):  # fmt: skip
        assert d["url"] == d["stored"]
    assert len({r["url"] for r in rows(db, "SELECT url FROM articles")}) == count(db, "articles")
    logger.info(
        "%d articles, duplicates %s", count(db, "articles"),
        dict(Counter(r["kind"] for r in rows(db, "SELECT kind FROM duplicates"))),
    )  # fmt: skip

    # The queue is empty, every URL key is published as stored, the frontier is cleaned up.
    assert drained(server)
    values = server.hvals("newscrawler:urlkeys")
    assert values
    assert b"pending" not in values
    assert not list(server.scan_iter("newscrawler:site:*"))
    summary = (tmp_path / "writer.out").read_text()
    assert f"{count(db, 'articles')} stored" in summary
    # Each worker's run of each site is recorded by the writer; no worker opened a database.
    runs = rows(db, "SELECT site, status, problems, host, pid, items_stored FROM runs")
    assert len(runs) == 3 * 4
    assert Counter(r["site"] for r in runs) == dict.fromkeys(
        ("incr", "incr-blog", "herald", "herald-map"), 3
    )
    assert {(r["status"], r["problems"]) for r in runs} == {("finished", "[]")}
    assert len({(r["host"], r["pid"]) for r in runs}) == 3
    assert sum(r["items_stored"] for r in runs) == count(db, "articles") + count(db, "duplicates")
    assert not any((tmp_path / f"worker-{n}").exists() for n in (1, 2, 3))


@needs_redis
def test_a_killed_worker_s_requests_are_finished_by_the_others(redis_url, server, tmp_path):
    n_articles = 30
    with SiteServers(make_site(tmp_path / "www", n_articles)) as servers:
        sites_file = news_feed_site(tmp_path, servers)
        slow = {"DOWNLOAD_DELAY": "0.15", "CONCURRENT_REQUESTS": "4",
                "CONCURRENT_REQUESTS_PER_DOMAIN": "1", "POOL_WORKERS": "0"}  # fmt: skip
        db = tmp_path / "news.db"
        the_writer = writer(db, redis_url, tmp_path, POOL_WORKERS="0")
        workers = {n: worker(n, sites_file, redis_url, tmp_path, **slow) for n in (1, 2, 3)}
        log = servers.sites["news"]

        def articles_by(agent: str) -> int:
            return sum(
                1 for p, a in zip(log.requests, log.user_agents, strict=False)
                if a == agent and p.startswith("/art/")
            )  # fmt: skip

        victim = wait_for(
            lambda: next((n for n in workers if articles_by(f"worker-{n}") >= 2), None)
        )
        os.kill(workers[victim].pid, signal.SIGKILL)
        workers[victim].wait()
        killed_at = len(log.requests)
        for n, proc in workers.items():
            if n != victim:
                assert finish(proc) == 0, (tmp_path / f"worker-{n}.out").read_text()[-3000:]
        wait_for(lambda: drained(server))
        the_writer.send_signal(signal.SIGINT)
        assert finish(the_writer) == 0, (tmp_path / "writer.out").read_text()[-3000:]

        articles = rows(db, "SELECT url FROM articles")
        assert len(articles) == n_articles
        fetched = Counter(p for p in log.requests if p.startswith("/art/"))
        assert set(fetched) == {f"/art/{i}.html" for i in range(n_articles)}
        # Only pages the killed worker had fetched may have been fetched again (it died
        # before pushing them); the others were given back to the frontier untouched.
        by_victim = {
            p for p, a in zip(log.requests[:killed_at], log.user_agents[:killed_at], strict=True)
            if a == f"worker-{victim}"
        }  # fmt: skip
        twice = {p for p, n in fetched.items() if n > 1}
        assert twice <= by_victim
        # At least once: a page the victim pushed just before dying is fetched again and
        # recorded as a sighting of the stored story, never stored twice.
        assert count(db, "duplicates") <= len(twice)
        assert {r["kind"] for r in rows(db, "SELECT kind FROM duplicates")} <= {"url"}
        logs = "".join((tmp_path / f"worker-{n}.log").read_text() for n in workers if n != victim)
        assert "back in the frontier" in logs
        logger.info(
            "killed worker-%s; article requests per worker: %s; fetched twice: %s", victim,
            dict(Counter(a for p, a in zip(log.requests, log.user_agents, strict=True)
                         if p.startswith("/art/"))),
            sorted(twice),
        )  # fmt: skip


@needs_redis
def test_items_wait_for_the_writer_and_survive_its_death(redis_url, server, tmp_path):
    n_articles = 24
    with SiteServers(make_site(tmp_path / "www", n_articles)) as servers:
        sites_file = news_feed_site(tmp_path, servers)
        workers = [worker(n, sites_file, redis_url, tmp_path, POOL_WORKERS="0") for n in (1, 2)]
        for n, proc in enumerate(workers, 1):
            assert finish(proc) == 0, (tmp_path / f"worker-{n}.out").read_text()[-3000:]
    # No writer yet: every item (and each worker's run report) waits in Redis.
    db = tmp_path / "news.db"
    assert server.llen("newscrawler:items") == n_articles + 2
    assert not db.exists()
    entries = [decode_item(p) for p in server.lrange("newscrawler:items", 0, -1)]
    payloads = [e.payload for e in entries if e.item is not None]
    reports = [e.payload for e in entries if e.run is not None]
    assert len(reports) == 2

    # A writer killed mid-way ...
    first = writer(db, redis_url, tmp_path, name="writer-1", INGEST_BATCH_SIZE="2")
    wait_for(lambda: count(db, "articles") >= 2 or first.poll() is not None, interval=0.01)
    first.send_signal(signal.SIGKILL)
    first.wait()
    stored_before = count(db, "articles")
    left = server.llen("newscrawler:items") + server.llen("newscrawler:items:processing")
    # ... and the next one stores the rest, each article once.
    second = writer(db, redis_url, tmp_path, "--until-empty", name="writer-2")
    assert finish(second) == 0, (tmp_path / "writer-2.out").read_text()[-3000:]
    assert count(db, "articles") == n_articles
    assert count(db, "duplicates") == 0
    assert drained(server)
    logger.info("first writer killed after %d articles, %d entries left", stored_before, left)

    # A writer that committed a batch and died before acknowledging it: the batch is taken
    # again and recognised as recorded, not stored (or counted as a sighting) twice.
    assert count(db, "runs") == 2
    server.rpush("newscrawler:items:processing", *payloads[:5], *reports)
    third = writer(db, redis_url, tmp_path, "--until-empty", name="writer-3")
    assert finish(third) == 0, (tmp_path / "writer-3.out").read_text()[-3000:]
    assert count(db, "articles") == n_articles
    assert count(db, "duplicates") == 0
    assert count(db, "runs") == 2
    assert drained(server)
    assert "0 stored, 0 duplicates, 5 already recorded" in (tmp_path / "writer-3.out").read_text()

    # A write that fails: the batch is not acknowledged and the writer exits 1; the next one
    # takes it again (here: copies of fetches already stored, so recognised as such).
    conn = sqlite3.connect(db)
    conn.execute(
        "CREATE TRIGGER fail BEFORE INSERT ON duplicates BEGIN SELECT RAISE(ABORT, 'x'); END"
    )
    conn.commit()
    server.rpush("newscrawler:items", *payloads[:3])
    fourth = writer(db, redis_url, tmp_path, "--until-empty", name="writer-4")
    assert finish(fourth) == 1
    assert "items of a batch not stored" in (tmp_path / "writer-4.out").read_text()
    assert server.llen("newscrawler:items") + server.llen("newscrawler:items:processing") == 3
    conn.execute("DROP TRIGGER fail")
    conn.commit()
    conn.close()
    fifth = writer(db, redis_url, tmp_path, "--until-empty", name="writer-5")
    assert finish(fifth) == 0, (tmp_path / "writer-5.out").read_text()[-3000:]
    assert "0 stored, 0 duplicates, 3 already recorded" in (tmp_path / "writer-5.out").read_text()
    assert count(db, "duplicates") == 0
    assert drained(server)

    # A second writer on the same database is refused (the SQLite file has one writer).
    with subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(db) + ".lock"],
        stdout=subprocess.PIPE, text=True,
    ) as holder:  # fmt: skip
        assert holder.stdout.readline().strip() == "locked"
        refused = scrapy("ingest", "--until-empty", "-s", f"REDIS_URL={redis_url}", db=db)
        holder.kill()
    assert refused.returncode == 75, refused.stderr
    assert "another writer or crawlall is running" in refused.stderr


@needs_redis
def test_a_worker_stops_when_redis_goes_away(redis_url, server, tmp_path):
    with SiteServers(make_site(tmp_path / "www", 30)) as servers:
        sites_file = news_feed_site(tmp_path, servers)
        slow = {"DOWNLOAD_DELAY": "0.2", "CONCURRENT_REQUESTS_PER_DOMAIN": "1",
                "POOL_WORKERS": "0"}  # fmt: skip
        proc = worker(1, sites_file, redis_url, tmp_path, **slow)
        log = servers.sites["news"]
        wait_for(lambda: sum(p.startswith("/art/") for p in log.requests) >= 2)
        with contextlib.suppress(redis.ConnectionError):
            server.shutdown(nosave=True)
        stopped = time.monotonic()
        assert finish(proc, timeout=30) == 1
    assert time.monotonic() - stopped < 15  # DISTRIBUTED_WORKER_TIMEOUT is 2 s here
    out = (tmp_path / "worker-1.out").read_text()
    assert "redis_unavailable" in out
    assert "Redis unreachable for more than 2.0s" in (tmp_path / "worker-1.log").read_text()
