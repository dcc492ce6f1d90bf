"""The ``runs`` table: one row per crawl of a site, opened when the spider opens and closed
with its status, Scrapy stats and problems; the distributed writer records its workers' runs.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from typing import Any

from crawler.items import utcnow
from crawler.storage.connection import SqliteStore

logger = logging.getLogger(__name__)


def _errors(stats: dict[str, Any]) -> int:
    return (
        stats.get("log_count/ERROR", 0)
        + stats.get("spider_exceptions_count", 0)
        + stats.get("downloader/exception_count", 0)
    )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SqliteRuns(SqliteStore):
    """Opens, closes, records and reads ``runs`` rows."""

    def start(self, *, spider: str, site: str | None) -> int:
        """Insert a ``runs`` row with status ``running``; mark this host's dead runs ``killed``."""
        host = socket.gethostname()
        with self.connection.writing() as db:
            for run_id, pid in db.execute(
                "SELECT id, pid FROM runs WHERE status = 'running' AND host = ?", [host]
            ).fetchall():
                if pid and not _pid_alive(pid):
                    db.execute("UPDATE runs SET status = 'killed' WHERE id = ?", [run_id])
            cursor = db.execute(
                "INSERT INTO runs (spider, site, started_at, status, pid, host) "
                "VALUES (?, ?, ?, 'running', ?, ?)",
                [spider, site, utcnow(), os.getpid(), host],
            )
        self.flush()
        return cursor.lastrowid

    def finish(
        self,
        run_id: int,
        *,
        status: str,
        stats: dict[str, Any],
        problems: list[str] | None = None,
    ) -> None:
        """Close a ``runs`` row with the run's final status, Scrapy stats and ``problems``
        (why the run counts as failed; empty when healthy)."""
        with self.connection.writing() as db:
            db.execute(
                "UPDATE runs SET finished_at = ?, status = ?, pages = ?, items_stored = ?, "
                "duplicates = ?, dropped = ?, errors = ?, stats = ?, problems = ? WHERE id = ?",
                [
                    utcnow(),
                    status,
                    stats.get("response_received_count", 0),
                    stats.get("store/inserted", 0),
                    stats.get("store/duplicates", 0),
                    stats.get("item_dropped_count", 0),
                    _errors(stats),
                    json.dumps(stats, default=str, sort_keys=True),
                    json.dumps(problems or [], ensure_ascii=False),
                    run_id,
                ],
            )
        self.flush()

    def record(self, run: dict[str, Any]) -> int | None:
        """Insert the finished run of another process (a distributed worker's report:
        ``spider``, ``site``, ``started_at``, ``finished_at``, ``status``, ``pid``, ``host``,
        ``stats``, ``problems``); ``None`` if that run is recorded already. Items it handed
        to the writer count as its ``items_stored``."""
        key = [run.get("host"), run.get("pid"), run.get("site"), run.get("started_at")]
        known = self.db.execute(
            "SELECT 1 FROM runs WHERE host = ? AND pid = ? AND site = ? AND started_at = ?", key
        ).fetchone()
        if known:
            return None
        stats = run.get("stats") or {}
        with self.connection.writing() as db:
            cursor = db.execute(
                "INSERT INTO runs (spider, site, started_at, finished_at, status, pid, host, "
                "pages, items_stored, duplicates, dropped, errors, stats, problems) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    run.get("spider"),
                    run.get("site"),
                    run.get("started_at"),
                    run.get("finished_at"),
                    run.get("status"),
                    run.get("pid"),
                    run.get("host"),
                    stats.get("response_received_count", 0),
                    stats.get("store/inserted", 0) + stats.get("distributed/pushed", 0),
                    stats.get("store/duplicates", 0),
                    stats.get("item_dropped_count", 0),
                    _errors(stats),
                    json.dumps(stats, default=str, sort_keys=True),
                    json.dumps(run.get("problems") or [], ensure_ascii=False),
                ],
            )
        return cursor.lastrowid

    def recent(
        self, site: str, *, limit: int = 10, before_id: int | None = None
    ) -> list[dict[str, Any]]:
        """The site's last ``limit`` closed runs (newest first, ``stats`` decoded), older
        than run ``before_id`` when given."""
        rows = self.db.execute(
            "SELECT id, status, started_at, stats FROM runs WHERE site = ? AND id < ? "
            "AND finished_at IS NOT NULL ORDER BY id DESC LIMIT ?",
            [site, before_id if before_id is not None else 2**62, limit],
        ).fetchall()
        return [
            {"id": i, "status": st, "started_at": at, "stats": json.loads(js or "{}")}
            for i, st, at, js in rows
        ]
