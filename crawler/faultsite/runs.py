"""Crawls against the fault site in a subprocess (``python -m scrapy`` in the checkout) and
what they left in the SQLite file: stats of the last run, stored articles, integrity."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crawler.faultsite.pages import BOMB_KINDS, bomb

if TYPE_CHECKING:
    from crawler.faultsite.server import FaultServer

ROOT = Path(__file__).resolve().parents[2]
"""The checkout (``scrapy.cfg``): crawls run there."""


@dataclass
class CrawlResult:
    returncode: int
    stderr: str
    stats: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def crashed(self) -> bool:
        """A crash: an exception no part of the crawler handled (spider, pipeline, signal
        handler, Deferred or task) or a crawl without its final stats."""
        return (
            any(marker in self.stderr for marker in CRASH_MARKERS)
            or bool(self.stats.get("spider_exceptions_count"))
            or not self.stats
        )


CRASH_MARKERS = (
    "Unhandled error",
    "Spider error processing",
    "Error processing",
    "Error caught on signal handler",
    "exception was never retrieved",
    "Scraper close failure",
)
COMMON = ["-s", "AUTOTHROTTLE_ENABLED=False", "-s", "DOWNLOAD_DELAY=0", "-s", "LOG_LEVEL=INFO"]


def crawl(
    *args: str, db: Path, timeout: float = 180, preexec: Any = None, env: dict | None = None
) -> CrawlResult:
    """``python -m scrapy ARGS`` against ``db``; its stats read back from the runs table."""
    cmd = [sys.executable, "-m", "scrapy", *args, "-s", f"DB_PATH={db}", *COMMON]
    started = time.monotonic()
    proc = subprocess.run(  # noqa: S603 - this interpreter, our own arguments
        cmd,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        preexec_fn=preexec,
        env={**os.environ, **(env or {})},
    )
    result = CrawlResult(proc.returncode, proc.stderr, seconds=time.monotonic() - started)
    with contextlib.suppress(sqlite3.Error, IndexError, TypeError, ValueError):
        result.stats = json.loads(
            query(db, "SELECT stats FROM runs ORDER BY id DESC LIMIT 1")[0]["stats"]
        )
    return result


def query(db: Path, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, params)]
    finally:
        conn.close()


def stored_paths(db: Path, base: str) -> dict[str, dict[str, Any]]:
    return {r["url"].removeprefix(base): r for r in query(db, "SELECT * FROM articles")}


def integrity(db: Path) -> tuple[str, int]:
    """``PRAGMA integrity_check`` and the number of half-written articles (no text, or no
    page row) of the file ``db``. A file killed before its first migration committed has no
    tables and counts as intact; tables without a schema version are a half-migrated file."""
    conn = sqlite3.connect(db, timeout=30)
    try:
        check = conn.execute("PRAGMA integrity_check").fetchone()[0]
        if conn.execute("PRAGMA user_version").fetchone()[0] == 0:
            tables = conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'")
            return (check if tables.fetchone()[0] == 0 else "half-migrated schema"), 0
        half = conn.execute(
            "SELECT COUNT(*) FROM articles a LEFT JOIN pages p ON p.article_id = a.id "
            "WHERE a.text IS NULL OR a.title IS NULL OR p.article_id IS NULL"
        ).fetchone()[0]
    finally:
        conn.close()
    return check, half


def fault_crawl(server: FaultServer, db: Path) -> CrawlResult:
    """The crawl of every article-level case (one feed) with caps low enough to be quick.
    The bombs are compressed beforehand: built on first request, on a busy machine, they
    could take longer than the crawl's 3 s download timeout and fail as ``timeout``."""
    for kind in BOMB_KINDS:
        bomb(kind)
    return crawl(
        "crawl", "feed", "-a", f"url={server.base}/feed.rss", "-a", "name=faults",
        "-s", "DOWNLOAD_TIMEOUT=3", "-s", "EXTRACT_TIMEOUT=2", "-s", "RETRY_AFTER_MAX=10",
        "-s", "RETRY_TIMES=1", "-s", "INCREMENTAL_ENABLED=False",
        db=db,
    )  # fmt: skip
