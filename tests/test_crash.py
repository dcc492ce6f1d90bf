"""A crawl killed with SIGKILL leaves a consistent database, and the next run completes."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.conftest import ROOT, rows, scrapy

N_ARTICLES = 120
WORDS = (
    "council", "budget", "transport", "school", "park", "river", "market", "harbour", "bridge",
    "station", "hospital", "library", "museum", "festival", "election", "minister", "senator",
    "governor", "mayor", "police", "court", "judge", "factory", "export", "import", "harvest",
    "weather", "storm", "drought", "flood", "rail", "airport", "tunnel", "housing", "rent",
    "wage", "union", "strike", "teacher", "student", "nurse", "doctor", "farmer", "fisherman",
    "engineer", "pilot", "announced", "approved", "rejected", "delayed", "expanded", "reduced",
    "opened", "closed", "visited", "promised",
)  # fmt: skip


def story_sentences(n: int) -> list[str]:
    """Six sentences of words drawn for story ``n``: every story is a distinct text (the
    dedupe step would rightly merge stories that differ only in their number)."""
    rng = random.Random(n)
    return [
        " ".join(rng.choice(WORDS) for _ in range(rng.randint(18, 30))).capitalize() + "."
        for _ in range(6)
    ]


class SlowSite(BaseHTTPRequestHandler):
    """A feed of N articles; each article answers after ``delay`` seconds."""

    delay = 0.0

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path == "/feed.rss":
            items = "".join(
                f"<item><title>Story {i}</title><link>http://{self.headers['Host']}/art/{i}.html"
                f"</link></item>"
                for i in range(N_ARTICLES)
            )
            body = f'<rss version="2.0"><channel><title>t</title>{items}</channel></rss>'.encode()
            ctype = "application/rss+xml"
        elif self.path.startswith("/art/"):
            time.sleep(self.delay)
            n = self.path.split("/")[-1].split(".")[0]
            paras = "".join(f"<p>{sentence}</p>" for sentence in story_sentences(int(n)))
            body = (
                f"<html><head><title>Story {n}</title></head><body><article>"
                f"<h1>Story {n}</h1>{paras}</article></body></html>"
            ).encode()
            ctype = "text/html; charset=utf-8"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def slow_site():
    server = ThreadingHTTPServer(("127.0.0.1", 0), SlowSite)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _count(db) -> int:
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute("SELECT COUNT(*) FROM articles").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.OperationalError:
        return 0


def test_sigkill_mid_crawl_keeps_database_consistent(slow_site, db):
    url = f"http://127.0.0.1:{slow_site.server_address[1]}/feed.rss"
    SlowSite.delay = 0.05
    cmd = [
        sys.executable, "-m", "scrapy", "crawl", "feed", "-a", f"url={url}",
        "-a", f"max_articles={N_ARTICLES}", "-s", f"DB_PATH={db}",
        "-s", "STORE_BATCH_SIZE=5", "-s", "STORE_FLUSH_INTERVAL=0.3",
        "-s", "AUTOTHROTTLE_ENABLED=False", "-s", "DOWNLOAD_DELAY=0",
        "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=2",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while _count(db) < 15 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert proc.poll() is None, "crawl finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    stored = _count(db)
    assert 15 <= stored < N_ARTICLES

    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        conn.execute("INSERT INTO articles_fts(articles_fts) VALUES ('integrity-check')")
        # No half-written article: every row has its text and its page.
        half = conn.execute(
            "SELECT COUNT(*) FROM articles a LEFT JOIN pages p ON p.article_id = a.id "
            "WHERE a.text IS NULL OR p.article_id IS NULL"
        ).fetchone()[0]
        assert half == 0
    finally:
        conn.close()
    assert rows(db, "SELECT status FROM runs")[0]["status"] == "running"

    SlowSite.delay = 0.0
    result = scrapy("crawl", "feed", "-a", f"url={url}", "-a", f"max_articles={N_ARTICLES}", db=db)
    assert result.returncode == 0, result.stderr[-2000:]
    assert _count(db) == N_ARTICLES
    statuses = [r["status"] for r in rows(db, "SELECT status FROM runs ORDER BY id")]
    assert statuses == ["killed", "finished"]
