"""The SQLite archive: schema, migrations, connection settings and every query others need.

Only this module writes SQL. Pipelines, middlewares and commands call the functions and the
``Archive`` methods below; none of them touches another step's tables directly.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sqlite3
import threading
import time
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import sqlite_utils
from sqlite_utils.migrations import Migrations

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
"""Number of migrations below; stored in ``PRAGMA user_version`` after they ran."""

migrations = Migrations("newscrawler")


def utcnow() -> str:
    """Current time as ISO 8601 UTC with seconds (``2026-11-27T19:43:34+00:00``)."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()


@migrations(name="0001_initial")
def _m0001_initial(db: sqlite_utils.Database) -> None:
    db["articles"].create(
        {
            "id": int,
            "url": str,
            "canonical_url": str,
            "site": str,
            "domain": str,
            "title": str,
            "authors": str,  # JSON array
            "published_at": str,
            "published_raw": str,
            "fetched_at": str,
            "language": str,
            "description": str,
            "text": str,
            "text_raw": str,
            "removed": str,  # JSON [{"text", "rule"}]
            "tags": str,  # JSON array
            "is_korea": int,
            "korea_score": float,
            "korea_evidence": str,  # JSON object
            "text_hash": str,
            "source_kind": str,
            "source_url": str,
            "via": str,
            "via_position": int,
            "fallback": str,  # JSON object
            "content_type": str,
            "encoding": str,
            "status": int,
        },
        pk="id",
        not_null={"url"},
        defaults={"tags": "[]", "removed": "[]", "authors": "[]", "is_korea": 0},
    )
    db["articles"].create_index(["url"], unique=True)
    for col in ("canonical_url", "site", "published_at", "fetched_at", "text_hash", "is_korea"):
        db["articles"].create_index([col])
    db["pages"].create(
        {
            "article_id": int,
            "url": str,
            "fetched_at": str,
            "content_type": str,
            "encoding": str,
            "html": bytes,  # zlib-compressed UTF-8
        },
        pk="article_id",
        foreign_keys=[("article_id", "articles", "id")],
    )
    db["duplicates"].create(
        {
            "id": int,
            "url": str,
            "canonical_url": str,
            "article_id": int,
            "kind": str,
            "similarity": float,
            "site": str,
            "title": str,
            "via": str,
            "seen_at": str,
        },
        pk="id",
        not_null={"url", "article_id", "kind"},
        foreign_keys=[("article_id", "articles", "id")],
    )
    db["duplicates"].create_index(["article_id"])
    db["duplicates"].create_index(["url"])
    db["runs"].create(
        {
            "id": int,
            "spider": str,
            "site": str,
            "started_at": str,
            "finished_at": str,
            "status": str,
            "pid": int,
            "host": str,
            "pages": int,
            "items_stored": int,
            "duplicates": int,
            "dropped": int,
            "errors": int,
            "stats": str,  # JSON object: Scrapy's final stats
        },
        pk="id",
    )
    db["runs"].create_index(["site", "started_at"])
    db["articles"].enable_fts(
        ["title", "text"], fts_version="FTS5", create_triggers=True, tokenize="unicode61"
    )
    db["boilerplate_sightings"].create(
        {"domain": str, "line_hash": str, "article_key": str, "line": str, "seen_at": str},
        pk=("domain", "line_hash", "article_key"),
    )


class ArchiveError(RuntimeError):
    """The database cannot be opened or written (read-only, disk full, not a database)."""


def connect(path: str | Path, *, busy_timeout: float = 30.0) -> sqlite_utils.Database:
    """Open (creating if needed) the archive at ``path``, migrated to the current schema.

    WAL journal (readers never block the writer), ``busy_timeout`` seconds of waiting for a
    lock held by another process, ``synchronous=NORMAL`` (safe against corruption in WAL).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), timeout=busy_timeout, check_same_thread=False)
        db = sqlite_utils.Database(conn)
        db.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode.lower() != "wal":
            logger.warning("%s: journal_mode is %s, not WAL", path, mode)
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute("PRAGMA foreign_keys = ON")
        if (db.execute("PRAGMA user_version").fetchone()[0] or 0) < SCHEMA_VERSION:
            migrations.apply(db)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except (sqlite3.Error, OSError) as exc:
        raise ArchiveError(f"cannot open database {path}: {exc}") from exc
    return db


def _json(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(value, ensure_ascii=False, sort_keys=isinstance(value, dict))


ARTICLE_JSON_COLUMNS = ("authors", "removed", "tags", "korea_evidence", "fallback")
ARTICLE_COLUMNS = (
    "url",
    "canonical_url",
    "site",
    "domain",
    "title",
    "authors",
    "published_at",
    "published_raw",
    "fetched_at",
    "language",
    "description",
    "text",
    "text_raw",
    "removed",
    "tags",
    "is_korea",
    "korea_score",
    "korea_evidence",
    "text_hash",
    "source_kind",
    "source_url",
    "via",
    "via_position",
    "fallback",
    "content_type",
    "encoding",
    "status",
)


def article_row(item: dict[str, Any]) -> dict[str, Any]:
    """The ``articles`` row for an item dict (JSON-encodes list/dict columns)."""
    row = {col: item.get(col) for col in ARTICLE_COLUMNS}
    for col in ARTICLE_JSON_COLUMNS:
        row[col] = _json(row[col] if row[col] is not None else None)
    if row["is_korea"] is not None:
        row["is_korea"] = int(bool(row["is_korea"]))
    return row


_FREQUENT_SQL = (
    "SELECT line_hash FROM boilerplate_sightings WHERE domain = ? AND line_hash IN ({marks})"
    " GROUP BY line_hash HAVING COUNT(*) >= ?"
)


def _marks(n: int) -> str:
    """``?, ?, ?`` for ``n`` bound values."""
    return ", ".join("?" * n)


def _insert_sql(table: str, columns: Iterable[str], *, ignore: bool = False) -> str:
    """INSERT statement for ``table``; table and column names come from this module only."""
    cols = list(columns)
    verb = "INSERT OR IGNORE" if ignore else "INSERT"
    return f"{verb} INTO {table} ({', '.join(cols)}) VALUES ({_marks(len(cols))})"


def compress_html(html: str) -> bytes:
    return zlib.compress(html.encode("utf-8"), 6)


def decompress_html(blob: bytes) -> str:
    return zlib.decompress(blob).decode("utf-8")


class Archive:
    """One open archive, shared by every component of one process that uses the same file.

    Writes go into one open transaction that is committed when ``batch_size`` writes have
    accumulated or ``flush_interval`` seconds have passed (``maybe_flush`` / ``flush``), and
    at ``release``. A killed process loses at most the uncommitted batch: SQLite's WAL
    rolls it back on the next open and the file stays consistent.
    """

    _open: ClassVar[dict[str, Archive]] = {}
    _registry_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        path: str | Path,
        *,
        busy_timeout: float = 30.0,
        batch_size: int = 100,
        flush_interval: float = 2.0,
    ) -> None:
        self.path = Path(path)
        self.db = connect(self.path, busy_timeout=busy_timeout)
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self._pending = 0
        self._batch_started = 0.0
        self._users = 0

    # -- sharing -----------------------------------------------------------------------
    @classmethod
    def acquire(cls, path: str | Path, **options: Any) -> Archive:
        """The process-wide archive for ``path``, opened on first use (reference counted)."""
        key = str(Path(path).resolve())
        with cls._registry_lock:
            archive = cls._open.get(key)
            if archive is None:
                archive = cls._open[key] = cls(path, **options)
            archive._users += 1
            return archive

    def release(self) -> None:
        """Drop one reference; the last one commits and closes the connection."""
        key = str(self.path.resolve())
        with self._registry_lock:
            self._users -= 1
            if self._users > 0:
                self.flush()
                return
            self._open.pop(key, None)
        self.close()

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self.db.close()

    # -- transactions ------------------------------------------------------------------
    @contextmanager
    def writing(self) -> Iterator[sqlite_utils.Database]:
        """Run writes inside the current batch transaction (opened on demand).

        The block is a savepoint: if it raises, its own writes are undone and the rest of
        the batch stays.
        """
        if not self.db.conn.in_transaction:
            self.db.execute("BEGIN IMMEDIATE")
            self._batch_started = time.monotonic()
        with self.db.atomic():
            yield self.db
        self._pending += 1
        self.maybe_flush()

    def maybe_flush(self) -> None:
        """Commit if the batch is full or old enough."""
        if not self.db.conn.in_transaction:
            return
        if (
            self._pending >= self.batch_size
            or time.monotonic() - self._batch_started >= self.flush_interval
        ):
            self.flush()

    def flush(self) -> None:
        """Commit the open batch, if any."""
        if self.db.conn.in_transaction:
            self.db.commit()
        self._pending = 0

    # -- articles ----------------------------------------------------------------------
    def insert_article(self, item: dict[str, Any], *, html: str | None = None) -> int | None:
        """Store a first sighting; return its id, or ``None`` if the URL is already stored."""
        row = article_row(item)
        with self.writing() as db:
            cursor = db.execute(_insert_sql("articles", row, ignore=True), list(row.values()))
            if cursor.rowcount == 0:
                return None
            article_id = cursor.lastrowid
            if html is not None:
                db.execute(
                    "INSERT INTO pages (article_id, url, fetched_at, content_type, encoding, html)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        article_id,
                        row["url"],
                        row["fetched_at"],
                        row["content_type"],
                        row["encoding"],
                        compress_html(html),
                    ],
                )
        return article_id

    def insert_duplicate(self, item: dict[str, Any]) -> int:
        """Record a later sighting of stored article ``item['duplicate_of']``."""
        row = {
            "url": item["url"],
            "canonical_url": item.get("canonical_url"),
            "article_id": item["duplicate_of"],
            "kind": item["duplicate_kind"],
            "similarity": item.get("similarity"),
            "site": item.get("site"),
            "title": item.get("title"),
            "via": item.get("via"),
            "seen_at": item.get("fetched_at") or utcnow(),
        }
        with self.writing() as db:
            cursor = db.execute(_insert_sql("duplicates", row), list(row.values()))
        return cursor.lastrowid

    def article_id_for_url(self, url: str) -> int | None:
        row = self.db.execute("SELECT id FROM articles WHERE url = ?", [url]).fetchone()
        return row[0] if row else None

    def stored_html(self, article_id: int) -> str | None:
        row = self.db.execute(
            "SELECT html FROM pages WHERE article_id = ?", [article_id]
        ).fetchone()
        return decompress_html(row[0]) if row else None

    # -- runs --------------------------------------------------------------------------
    def start_run(self, *, spider: str, site: str | None) -> int:
        """Insert a ``runs`` row with status ``running``; mark this host's dead runs ``killed``."""
        host = socket.gethostname()
        with self.writing() as db:
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

    def finish_run(self, run_id: int, *, status: str, stats: dict[str, Any]) -> None:
        """Close a ``runs`` row with the run's final status and Scrapy stats."""
        counts = {
            "pages": stats.get("response_received_count", 0),
            "items_stored": stats.get("store/inserted", 0),
            "duplicates": stats.get("store/duplicates", 0),
            "dropped": stats.get("item_dropped_count", 0),
            "errors": stats.get("log_count/ERROR", 0)
            + stats.get("spider_exceptions_count", 0)
            + stats.get("downloader/exception_count", 0),
        }
        with self.writing() as db:
            db.execute(
                "UPDATE runs SET finished_at = ?, status = ?, pages = ?, items_stored = ?, "
                "duplicates = ?, dropped = ?, errors = ?, stats = ? WHERE id = ?",
                [
                    utcnow(),
                    status,
                    counts["pages"],
                    counts["items_stored"],
                    counts["duplicates"],
                    counts["dropped"],
                    counts["errors"],
                    json.dumps(stats, default=str, sort_keys=True),
                    run_id,
                ],
            )
        self.flush()

    # -- learned boilerplate (pipelines/clean.py) ------------------------------------------
    def boilerplate_record(
        self, domain: str, article_key: str, lines: dict[str, str], *, cap: int
    ) -> None:
        """Record that ``article_key`` of ``domain`` contains ``lines`` (hash -> text).

        Sightings of a line stop being recorded once ``cap`` distinct articles carry it:
        the table stays bounded by lines x cap.
        """
        if not lines:
            return
        frequent = self.boilerplate_frequent(domain, lines, min_articles=cap)
        now = utcnow()
        rows = [
            (domain, h, article_key, text, now) for h, text in lines.items() if h not in frequent
        ]
        if not rows:
            return
        with self.writing() as db:
            db.conn.executemany(
                "INSERT OR IGNORE INTO boilerplate_sightings "
                "(domain, line_hash, article_key, line, seen_at) VALUES (?, ?, ?, ?, ?)",
                rows,
            )

    def boilerplate_frequent(
        self, domain: str, line_hashes: Iterable[str], *, min_articles: int
    ) -> set[str]:
        """The hashes among ``line_hashes`` seen on at least ``min_articles`` articles."""
        hashes = list(dict.fromkeys(line_hashes))
        found: set[str] = set()
        for i in range(0, len(hashes), 500):
            chunk = hashes[i : i + 500]
            sql = _FREQUENT_SQL.format(marks=_marks(len(chunk)))
            rows = self.db.execute(sql, [domain, *chunk, min_articles]).fetchall()
            found.update(h for (h,) in rows)
        return found


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
