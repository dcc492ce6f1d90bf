"""The SQLite archive: schema, migrations, connection settings and every query others need.

Only this module writes SQL. Pipelines, middlewares and commands call the functions and the
``Archive`` methods below; none of them touches another step's tables directly.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sqlite3
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import sqlite_utils
from sqlite_utils.migrations import Migrations

from crawler.urls import url_keys

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 3
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


@migrations(name="0002_runs_problems")
def _m0002_runs_problems(db: sqlite_utils.Database) -> None:
    # Why a run failed (JSON array of sentences; [] when healthy): crawler/anomaly.py.
    db["runs"].add_column("problems", str)


@migrations(name="0003_dedupe_incremental")
def _m0003_dedupe_incremental(db: sqlite_utils.Database) -> None:
    # Every canonical URL key (crawler/urls.py) a stored story is known by: its URL, its
    # same-site rel=canonical, the URL requested before a redirect, and the URLs of its later
    # sightings. The incremental crawl looks article requests up here before downloading;
    # last_seen dates the revisit (INCREMENTAL_REVISIT_DAYS).
    db.execute(
        "CREATE TABLE url_keys (key TEXT PRIMARY KEY, "
        "article_id INTEGER NOT NULL REFERENCES articles(id), first_seen TEXT, last_seen TEXT)"
        " WITHOUT ROWID"
    )
    db.execute("CREATE INDEX idx_url_keys_article_id ON url_keys (article_id)")
    # The near-duplicate index (pipelines/dedupe.py): one row per MinHash LSH band of every
    # stored story; band_key is a 47-bit hash of the band's values and its number.
    db.execute(
        "CREATE TABLE lsh_bands (band_key INTEGER NOT NULL, article_id INTEGER NOT NULL, "
        "PRIMARY KEY (band_key, article_id)) WITHOUT ROWID"
    )
    # The parameters lsh_bands was built with (shingle size, permutations, bands, seed).
    db["dedupe_index"].create({"name": str, "value": str}, pk="name")
    # Later texts of a stored story (a revisited page whose text changed): never overwritten.
    db["article_versions"].create(
        {
            "id": int,
            "article_id": int,
            "url": str,
            "title": str,
            "text": str,
            "text_hash": str,
            "fetched_at": str,
        },
        pk="id",
        not_null={"article_id", "url"},
        foreign_keys=[("article_id", "articles", "id")],
    )
    db["article_versions"].create_index(["article_id"])
    # Conditional GET of feeds, sitemaps and listing pages: validators and the body to replay
    # when the server answers 304 Not Modified.
    db["http_cache"].create(
        {
            "url": str,
            "etag": str,
            "last_modified": str,
            "content_type": str,
            "body": bytes,  # zlib-compressed
            "fetched_at": str,
            "checked_at": str,
        },
        pk="url",
    )
    rows = db.execute(
        "SELECT id, url, canonical_url, NULL, fetched_at FROM articles "
        "UNION ALL SELECT article_id, url, canonical_url, NULL, seen_at FROM duplicates"
    ).fetchall()
    for article_id, url, canonical, request_url, seen in rows:
        _record_url_keys(db, article_id, url_keys(url, canonical, request_url), seen)


class ArchiveError(RuntimeError):
    """The database cannot be opened or written (read-only, disk full, not a database)."""


# SQLite result codes after which no write can succeed in this run (sqlite_errorname).
_FATAL_ERRORS = (
    "SQLITE_FULL", "SQLITE_READONLY", "SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_IOERR",
    "SQLITE_CORRUPT", "SQLITE_CANTOPEN", "SQLITE_NOTADB", "SQLITE_PERM",
)  # fmt: skip
_FAILURES: list[str] = []


def is_fatal(exc: BaseException) -> bool:
    """Whether ``exc`` means the archive cannot be written now (disk full, read-only file,
    lock not obtained within the busy timeout, I/O error, damaged file)."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    return isinstance(exc, OSError | ArchiveError) or name.startswith(_FATAL_ERRORS)


def describe_error(path: str | Path, exc: BaseException, *, busy_timeout: float = 0) -> str:
    """One sentence naming the database file, what is wrong with it and what to check."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    if name.startswith("SQLITE_READONLY") or name == "SQLITE_PERM":
        why = "is read-only (check the permissions of the file, its -wal/-shm files and folder)"
    elif name.startswith("SQLITE_FULL") or getattr(exc, "errno", None) == 28:
        why = "cannot grow: the disk is full"
    elif name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        held = f" for more than {busy_timeout:g} s (DB_BUSY_TIMEOUT)" if busy_timeout else ""
        why = f"is locked by another process{held}"
    elif name.startswith("SQLITE_IOERR"):
        why = "had an I/O error (disk full, a file size limit, or failing storage)"
    elif name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        why = "is damaged or not an SQLite database"
    elif name.startswith("SQLITE_CANTOPEN"):
        why = "cannot be opened (missing folder, or no permission to create it)"
    else:
        why = "cannot be written"
    return f"database {path} {why}: {exc}"


def note_failure(path: str | Path, exc: BaseException, *, busy_timeout: float = 0) -> str:
    """Record that the archive at ``path`` failed for good in this process (the crawl
    command exits non-zero, see ``database_failures``); return the message."""
    message = describe_error(path, exc, busy_timeout=busy_timeout)
    if message not in _FAILURES:
        _FAILURES.append(message)
    return message


def database_failures() -> list[str]:
    """Messages of the archives that could not be opened or written in this process."""
    return list(_FAILURES)


def _migrate(db: sqlite_utils.Database) -> None:
    """Apply pending migrations under the write lock, so that two crawls opening a new
    file at the same moment do not both create its tables."""
    db.execute("BEGIN IMMEDIATE")
    try:
        if (db.execute("PRAGMA user_version").fetchone()[0] or 0) < SCHEMA_VERSION:
            migrations.apply(db)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.commit()
    except BaseException:
        db.rollback()
        raise


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
            _migrate(db)
    except (sqlite3.Error, OSError) as exc:
        raise ArchiveError(describe_error(path, exc, busy_timeout=busy_timeout)) from exc
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


_URL_KEY_SQL = (
    "INSERT INTO url_keys (key, article_id, first_seen, last_seen) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (key) DO UPDATE SET last_seen = MAX(COALESCE(last_seen, ''), excluded.last_seen)"
)
_CANDIDATES_SQL = (
    "SELECT article_id, COUNT(*) AS hits FROM lsh_bands WHERE band_key IN ({marks}) "
    "GROUP BY article_id ORDER BY hits DESC, article_id LIMIT ?"
)


def _record_url_keys(
    db: sqlite_utils.Database, article_id: int, keys: Iterable[str], seen: str | None
) -> None:
    """Point ``keys`` at ``article_id`` (the first story a key named keeps it) and date
    their latest sighting."""
    seen = seen or utcnow()
    db.conn.executemany(_URL_KEY_SQL, [(key, article_id, seen, seen) for key in keys])


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
        self.busy_timeout = busy_timeout
        self.db = connect(self.path, busy_timeout=busy_timeout)
        try:
            # A read-only file opens fine and fails at the first write: find out now.
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            self.db.execute("BEGIN IMMEDIATE")
            try:
                self.db.execute(f"PRAGMA user_version = {int(version)}")
            finally:
                self.db.rollback()
        except sqlite3.Error as exc:
            self.db.close()
            raise ArchiveError(note_failure(path, exc, busy_timeout=busy_timeout)) from exc
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self._pending = 0
        self.unsaved = 0
        """Writes lost with batches whose commit failed."""
        self._batch_started = 0.0
        self._users = 0
        self._staged_bands: OrderedDict[str, list[int]] = OrderedDict()
        """Near-duplicate index keys of stories on their way to the store step, by URL."""

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

    @classmethod
    def for_settings(cls, settings: BaseSettings, path: str | Path | None = None) -> Archive:
        """``acquire`` with the options of ``settings`` (``DB_BUSY_TIMEOUT``,
        ``STORE_BATCH_SIZE``, ``STORE_FLUSH_INTERVAL``) for ``path`` (default ``DB_PATH``):
        every user of a crawl opens it this way, so whichever comes first, the options hold."""
        return cls.acquire(
            path if path is not None else settings.get("DB_PATH", "data/news.db"),
            busy_timeout=settings.getfloat("DB_BUSY_TIMEOUT", 30.0),
            batch_size=settings.getint("STORE_BATCH_SIZE", 100),
            flush_interval=settings.getfloat("STORE_FLUSH_INTERVAL", 2.0),
        )

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
        try:
            if not self.db.conn.in_transaction:
                self.db.execute("BEGIN IMMEDIATE")
                self._batch_started = time.monotonic()
            with self.db.atomic():
                yield self.db
        except sqlite3.Error as exc:
            if is_fatal(exc):
                note_failure(self.path, exc, busy_timeout=self.busy_timeout)
            raise
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
        """Commit the open batch, if any. If the commit fails (disk full ...), the batch is
        rolled back whole (``unsaved`` counts its writes) and the error raised."""
        if self.db.conn.in_transaction:
            try:
                self.db.commit()
            except sqlite3.Error as exc:
                self.unsaved += self._pending
                self._pending = 0
                with contextlib.suppress(sqlite3.Error):
                    self.db.rollback()
                if is_fatal(exc):
                    note_failure(self.path, exc, busy_timeout=self.busy_timeout)
                raise
        self._pending = 0

    # -- articles ----------------------------------------------------------------------
    def insert_article(self, item: dict[str, Any], *, html: str | None = None) -> int | None:
        """Store a first sighting; return its id, or ``None`` if the URL is already stored."""
        row = article_row(item)
        bands = self._staged_bands.pop(row["url"], None)
        with self.writing() as db:
            cursor = db.execute(_insert_sql("articles", row, ignore=True), list(row.values()))
            if cursor.rowcount == 0:
                return None
            article_id = cursor.lastrowid
            keys = url_keys(row["url"], row["canonical_url"], item.get("request_url"))
            _record_url_keys(db, article_id, keys, row["fetched_at"])
            if bands:
                self._insert_bands(db, article_id, bands)
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
        keys = url_keys(row["url"], row["canonical_url"], item.get("request_url"))
        with self.writing() as db:
            cursor = db.execute(_insert_sql("duplicates", row), list(row.values()))
            _record_url_keys(db, row["article_id"], keys, row["seen_at"])
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

    def finish_run(
        self,
        run_id: int,
        *,
        status: str,
        stats: dict[str, Any],
        problems: list[str] | None = None,
    ) -> None:
        """Close a ``runs`` row with the run's final status, Scrapy stats and ``problems``
        (why the run counts as failed; empty when healthy)."""
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
                "duplicates = ?, dropped = ?, errors = ?, stats = ?, problems = ? WHERE id = ?",
                [
                    utcnow(),
                    status,
                    counts["pages"],
                    counts["items_stored"],
                    counts["duplicates"],
                    counts["dropped"],
                    counts["errors"],
                    json.dumps(stats, default=str, sort_keys=True),
                    json.dumps(problems or [], ensure_ascii=False),
                    run_id,
                ],
            )
        self.flush()

    def record_run(self, run: dict[str, Any]) -> int | None:
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
        errors = (
            stats.get("log_count/ERROR", 0)
            + stats.get("spider_exceptions_count", 0)
            + stats.get("downloader/exception_count", 0)
        )
        with self.writing() as db:
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
                    errors,
                    json.dumps(stats, default=str, sort_keys=True),
                    json.dumps(run.get("problems") or [], ensure_ascii=False),
                ],
            )
        return cursor.lastrowid

    def recent_runs(
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

    # -- reprocess (scrapy reprocess) --------------------------------------------------------
    def reprocess_ids(self, *, site: str | None = None, since: str | None = None) -> list[int]:
        """Ids of stored articles that have their HTML kept (``pages``), oldest first;
        only ``site``'s, and only those fetched at or after ``since``, when given."""
        rows = self.db.execute(
            "SELECT a.id FROM articles a JOIN pages p ON p.article_id = a.id "
            "WHERE (? IS NULL OR a.site = ?) AND (? IS NULL OR a.fetched_at >= ?) ORDER BY a.id",
            [site, site, since, since],
        ).fetchall()
        return [i for (i,) in rows]

    def article(self, article_id: int) -> dict[str, Any] | None:
        """One ``articles`` row as stored (JSON columns still encoded)."""
        cursor = self.db.execute("SELECT * FROM articles WHERE id = ?", [article_id])
        row = cursor.fetchone()
        if row is None:
            return None
        return dict(zip([c[0] for c in cursor.description], row, strict=True))

    def update_article(self, article_id: int, changes: dict[str, Any]) -> None:
        """Overwrite some columns of a stored article (values as ``article_row`` gives them)."""
        columns = [c for c in changes if c in ARTICLE_COLUMNS]
        if not columns:
            return
        assignments = ", ".join(f"{c} = ?" for c in columns)
        with self.writing() as db:
            db.execute(
                f"UPDATE articles SET {assignments} WHERE id = ?",  # noqa: S608 - known columns
                [*(changes[c] for c in columns), article_id],
            )

    def duplicate_recorded(self, url: str, article_id: int) -> bool:
        """Whether ``url`` is already recorded as a sighting of story ``article_id``."""
        row = self.db.execute(
            "SELECT 1 FROM duplicates WHERE url = ? AND article_id = ? LIMIT 1", [url, article_id]
        ).fetchone()
        return row is not None

    @classmethod
    def flush_all(cls) -> None:
        """Commit the open batch of every archive of this process (before a forced stop)."""
        with cls._registry_lock:
            archives = list(cls._open.values())
        for archive in archives:
            try:
                archive.flush()
            except sqlite3.Error as exc:
                logger.error("database %s: final commit failed: %s", archive.path, exc)

    # -- URL keys (crawler/urls.py; the incremental crawl and the dedupe step) ------------
    def story_for_keys(self, keys: Iterable[str]) -> int | None:
        """The stored story any of the URL ``keys`` names (first key that is known)."""
        for key in keys:
            row = self.db.execute("SELECT article_id FROM url_keys WHERE key = ?", [key]).fetchone()
            if row:
                return row[0]
        return None

    def url_key_seen(self, key: str) -> tuple[int, str | None] | None:
        """``(article_id, last_seen)`` of a known URL key, else ``None``."""
        row = self.db.execute(
            "SELECT article_id, last_seen FROM url_keys WHERE key = ?", [key]
        ).fetchone()
        return (row[0], row[1]) if row else None

    def iter_url_keys(self, *, batch: int = 5000) -> Iterator[list[tuple[str, int, str | None]]]:
        """Every URL key as ``(key, article_id, last_seen)``, in batches (key order): the
        distributed writer publishes them for the workers' incremental skip."""
        last = ""
        while True:
            rows = self.db.execute(
                "SELECT key, article_id, last_seen FROM url_keys WHERE key > ? ORDER BY key "
                "LIMIT ?",
                [last, batch],
            ).fetchall()
            if not rows:
                return
            yield rows
            last = rows[-1][0]

    def sighting_recorded(self, url: str, seen_at: str | None) -> bool:
        """Whether the fetch of ``url`` at ``seen_at`` is already in the archive (as a story
        or as a later sighting): an item delivered again by the distributed queue."""
        if not seen_at:
            return False
        row = self.db.execute(
            "SELECT 1 FROM articles WHERE url = ? AND fetched_at = ? "
            "UNION ALL SELECT 1 FROM duplicates WHERE url = ? AND seen_at = ? LIMIT 1",
            [url, seen_at, url, seen_at],
        ).fetchone()
        return row is not None

    # -- near-duplicate index (pipelines/dedupe.py) -----------------------------------------
    def story_for_text_hash(self, text_hash: str) -> int | None:
        """The first stored story whose normalised text has this hash."""
        row = self.db.execute(
            "SELECT id FROM articles WHERE text_hash = ? ORDER BY id LIMIT 1", [text_hash]
        ).fetchone()
        return row[0] if row else None

    def story_candidates(self, band_keys: Iterable[int], *, limit: int) -> list[int]:
        """Stored stories sharing at least one LSH band with ``band_keys``, most shared bands
        first (then oldest first), at most ``limit``."""
        keys = list(dict.fromkeys(band_keys))
        if not keys:
            return []
        sql = _CANDIDATES_SQL.format(marks=_marks(len(keys)))
        return [aid for aid, _ in self.db.execute(sql, [*keys, limit]).fetchall()]

    def story_text(self, article_id: int) -> str | None:
        row = self.db.execute("SELECT text FROM articles WHERE id = ?", [article_id]).fetchone()
        return row[0] if row else None

    def story_urls(self, article_id: int) -> tuple[str, str | None] | None:
        """``(url, canonical_url)`` of a stored story."""
        row = self.db.execute(
            "SELECT url, canonical_url FROM articles WHERE id = ?", [article_id]
        ).fetchone()
        return (row[0], row[1]) if row else None

    def stage_story_index(self, url: str, band_keys: list[int], *, cap: int = 10_000) -> None:
        """Hold the band keys of a new story until the store step inserts it (``url``):
        ``insert_article`` indexes them with the new id in the same savepoint. Stories that
        never reach the store (dropped later) fall out after ``cap`` newer ones."""
        self._staged_bands[url] = band_keys
        while len(self._staged_bands) > cap:
            self._staged_bands.popitem(last=False)

    def index_story(self, article_id: int, band_keys: list[int]) -> None:
        """Add a stored story to the near-duplicate index."""
        with self.writing() as db:
            self._insert_bands(db, article_id, band_keys)

    @staticmethod
    def _insert_bands(db: sqlite_utils.Database, article_id: int, band_keys: list[int]) -> None:
        db.conn.executemany(
            "INSERT OR IGNORE INTO lsh_bands (band_key, article_id) VALUES (?, ?)",
            [(key, article_id) for key in dict.fromkeys(band_keys)],
        )

    def dedupe_index_params(self) -> str | None:
        """The parameters (JSON) the near-duplicate index was built with, if any."""
        row = self.db.execute("SELECT value FROM dedupe_index WHERE name = 'params'").fetchone()
        return row[0] if row else None

    def reset_dedupe_index(self, params: str) -> None:
        """Empty the near-duplicate index and record the ``params`` it is rebuilt with."""
        with self.writing() as db:
            db.execute("DELETE FROM lsh_bands")
            db.execute(
                "INSERT OR REPLACE INTO dedupe_index (name, value) VALUES ('params', ?)",
                [params],
            )
        self.flush()

    def iter_story_texts(self, *, batch: int = 1000) -> Iterator[tuple[int, str, str | None]]:
        """``(id, text, text_hash)`` of every stored story, in id order, read in batches."""
        last = 0
        while True:
            rows = self.db.execute(
                "SELECT id, COALESCE(text, ''), text_hash FROM articles WHERE id > ? "
                "ORDER BY id LIMIT ?",
                [last, batch],
            ).fetchall()
            if not rows:
                return
            yield from rows
            last = rows[-1][0]

    def set_text_hash(self, article_id: int, text_hash: str) -> None:
        with self.writing() as db:
            db.execute("UPDATE articles SET text_hash = ? WHERE id = ?", [text_hash, article_id])

    # -- versions of a revisited story ---------------------------------------------------------
    def story_text_hashes(self, article_id: int) -> set[str]:
        """Text hashes of a stored story: the first sighting's and every later version's."""
        rows = self.db.execute(
            "SELECT text_hash FROM articles WHERE id = ? "
            "UNION SELECT text_hash FROM article_versions WHERE article_id = ?",
            [article_id, article_id],
        ).fetchall()
        return {h for (h,) in rows if h}

    def insert_version(self, article_id: int, item: dict[str, Any]) -> int:
        """Keep a changed text of stored story ``article_id`` (``articles`` stays as first
        seen)."""
        with self.writing() as db:
            cursor = db.execute(
                "INSERT INTO article_versions "
                "(article_id, url, title, text, text_hash, fetched_at) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    article_id,
                    item["url"],
                    item.get("title"),
                    item.get("text"),
                    item.get("text_hash"),
                    item.get("fetched_at") or utcnow(),
                ],
            )
        return cursor.lastrowid

    # -- conditional GET of sources (crawler/middlewares/incremental.py) ----------------------
    def http_cache_get(self, url: str) -> dict[str, Any] | None:
        """Validators and body (decompressed) last stored for source ``url``."""
        row = self.db.execute(
            "SELECT etag, last_modified, content_type, body, fetched_at FROM http_cache "
            "WHERE url = ?",
            [url],
        ).fetchone()
        if row is None:
            return None
        etag, last_modified, content_type, body, fetched_at = row
        return {
            "etag": etag,
            "last_modified": last_modified,
            "content_type": content_type,
            "body": zlib.decompress(body) if body is not None else None,
            "fetched_at": fetched_at,
        }

    def http_cache_put(
        self,
        url: str,
        *,
        etag: str | None,
        last_modified: str | None,
        content_type: str | None,
        body: bytes,
    ) -> None:
        """Remember a source response's validators and body (replaces the previous one)."""
        now = utcnow()
        with self.writing() as db:
            db.execute(
                "INSERT OR REPLACE INTO http_cache "
                "(url, etag, last_modified, content_type, body, fetched_at, checked_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [url, etag, last_modified, content_type, zlib.compress(body, 6), now, now],
            )

    def http_cache_checked(self, url: str) -> None:
        """Date a 304 answer: the stored copy is still current."""
        with self.writing() as db:
            db.execute("UPDATE http_cache SET checked_at = ? WHERE url = ?", [utcnow(), url])

    def http_cache_forget(self, url: str) -> None:
        with self.writing() as db:
            db.execute("DELETE FROM http_cache WHERE url = ?", [url])

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
        try:
            with self.writing() as db:
                db.conn.executemany(
                    "INSERT OR IGNORE INTO boilerplate_sightings "
                    "(domain, line_hash, article_key, line, seen_at) VALUES (?, ?, ?, ?, ?)",
                    rows,
                )
        except sqlite3.Error as exc:
            # Learning statistics are best effort: a full, read-only or locked archive must
            # not cost the article itself (the store step reports the failure and stops).
            if not is_fatal(exc):
                raise
            logger.debug("%s: boilerplate sightings not recorded: %s", self.path, exc)

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


# -- reports (scrapy report, the Datasette chart) ---------------------------------------------
_SITE_ACTIVITY_SQL = """
WITH active AS (
    SELECT site FROM runs WHERE started_at >= :since AND site IS NOT NULL
    UNION SELECT site FROM articles WHERE fetched_at >= :since AND site IS NOT NULL
)
SELECT a.site,
    l.status AS last_status, l.started_at AS last_started_at,
    l.finished_at AS last_finished_at, COALESCE(l.problems, '[]') AS last_problems,
    (SELECT COUNT(*) FROM runs WHERE site = a.site AND started_at >= :since) AS runs,
    (SELECT COUNT(*) FROM runs WHERE site = a.site AND started_at >= :since
        AND (status != 'finished' OR COALESCE(problems, '[]') != '[]')) AS failed_runs,
    (SELECT COALESCE(SUM(errors), 0) FROM runs
        WHERE site = a.site AND started_at >= :since) AS errors,
    (SELECT COUNT(*) FROM articles WHERE site = a.site AND fetched_at >= :since) AS stored,
    (SELECT COUNT(*) FROM duplicates WHERE site = a.site AND seen_at >= :since) AS duplicates,
    (SELECT COUNT(*) FROM articles
        WHERE site = a.site AND fetched_at >= :since AND is_korea = 1) AS korea
FROM active a
LEFT JOIN runs l ON l.id = (SELECT MAX(id) FROM runs WHERE site = a.site)
ORDER BY a.site
"""


def site_activity(db: sqlite_utils.Database, since: str) -> list[dict[str, Any]]:
    """Per site active since ``since`` (ISO 8601 UTC): its last run (status, times,
    ``last_problems`` decoded) and, since then, runs, failed runs, errors, articles stored,
    duplicates seen and Korea stories stored."""
    rows = list(db.query(_SITE_ACTIVITY_SQL, {"since": since}))
    for row in rows:
        row["last_problems"] = json.loads(row["last_problems"] or "[]")
    return rows


def latest_korea_stories(
    db: sqlite_utils.Database, since: str, *, limit: int = 10
) -> list[dict[str, Any]]:
    """The newest Korea stories (``is_korea = 1``) stored since ``since``, ``tags`` decoded."""
    rows = list(
        db.query(
            "SELECT id, site, title, url, published_at, fetched_at, language, tags, korea_score "
            "FROM articles WHERE is_korea = 1 AND fetched_at >= ? "
            "ORDER BY COALESCE(published_at, fetched_at) DESC, id DESC LIMIT ?",
            [since, limit],
        )
    )
    for row in rows:
        row["tags"] = json.loads(row["tags"] or "[]")
    return rows


def korea_stories_per_day(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """``{"day", "site", "stories"}`` for every day (of publication, else of fetching) and
    site with Korea stories, oldest day first."""
    return list(
        db.query(
            "SELECT substr(COALESCE(published_at, fetched_at), 1, 10) AS day, site, "
            "COUNT(*) AS stories FROM articles WHERE is_korea = 1 "
            "GROUP BY day, site ORDER BY day, site"
        )
    )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def latest_articles(db: sqlite_utils.Database, *, limit: int = 20) -> list[dict[str, Any]]:
    """The newest stored articles (site, title, published_at, language, tags as JSON)."""
    return list(
        db.query(
            "SELECT site, title, published_at, language, tags FROM articles "
            "ORDER BY id DESC LIMIT ?",
            [limit],
        )
    )


def open_to_read(path: str | Path, *, busy_timeout: float = 30.0) -> sqlite_utils.Database:
    """Open the archive at ``path`` for reading (``scrapy report``, ``export``): like
    ``connect`` (which migrates an older schema) when it can be written, else read-only (a
    file of another user, a read-only mount or copy). Raises ``ArchiveError``."""
    try:
        return connect(path, busy_timeout=busy_timeout)
    except ArchiveError as exc:
        name = getattr(exc.__cause__, "sqlite_errorname", "") or ""
        if not name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM")):
            raise
    try:
        uri = f"{Path(path).resolve().as_uri()}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, timeout=busy_timeout, check_same_thread=False)
        db = sqlite_utils.Database(conn)
        version = db.execute("PRAGMA user_version").fetchone()[0] or 0
    except sqlite3.Error as exc:
        raise ArchiveError(describe_error(path, exc, busy_timeout=busy_timeout)) from exc
    if version < SCHEMA_VERSION:
        db.close()
        raise ArchiveError(
            f"database {path} is read-only and has an older layout (version {version}, this "
            f"crawler reads {SCHEMA_VERSION}): open it once with write access to upgrade it"
        )
    return db


def stored_sites(db: sqlite_utils.Database) -> list[str]:
    """The sites that have stored articles, by name."""
    return [s for (s,) in db.execute("SELECT DISTINCT site FROM articles ORDER BY site") if s]


def iter_articles(
    db: sqlite_utils.Database,
    columns: Iterable[str],
    *,
    site: str | None = None,
    since: str | None = None,
    korea: bool = False,
    batch: int = 500,
) -> Iterator[dict[str, Any]]:
    """Stored articles, oldest first, with ``columns`` (those of ``articles``; JSON columns
    decoded): only ``site``'s, fetched at or after ``since``, Korea stories, when given."""
    names = [c for c in columns if c in ("id", *ARTICLE_COLUMNS)]
    where, params = ["1"], []
    if site:
        where.append("site = ?")
        params.append(site)
    if since:
        where.append("fetched_at >= ?")
        params.append(since)
    if korea:
        where.append("is_korea = 1")
    sql = (
        f"SELECT {', '.join(names)} FROM articles WHERE {' AND '.join(where)} "  # noqa: S608
        "ORDER BY id"
    )
    cursor = db.execute(sql, params)
    while rows := cursor.fetchmany(batch):
        for values in rows:
            row = dict(zip(names, values, strict=True))
            for col in ARTICLE_JSON_COLUMNS:
                if isinstance(row.get(col), str):
                    row[col] = json.loads(row[col])
            if row.get("is_korea") is not None:
                row["is_korea"] = bool(row["is_korea"])
            yield row
