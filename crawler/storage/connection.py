"""The connection to one archive file: SQLite settings (WAL, busy timeout), the schema brought up
to date on opening, one connection per file per process shared by every component of a crawl,
and writes batched into one transaction committed every ``batch_size`` writes or
``flush_interval`` seconds.

``SqliteStore`` is the base of the stores (``articles.py``, ``runs.py``, ...): each is one
concern's queries over a shared ``Connection``.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import sqlite_utils

from crawler.config import db_path_for, get_float, get_int
from crawler.storage.errors import ArchiveError, describe_error, is_fatal, note_failure
from crawler.storage.schema import SCHEMA_VERSION, migrate, schema_version

if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Self

    from scrapy.settings import BaseSettings

logger = logging.getLogger(__name__)


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
        if schema_version(db) < SCHEMA_VERSION:
            migrate(db)
    except (sqlite3.Error, OSError) as exc:
        raise ArchiveError(describe_error(path, exc, busy_timeout=busy_timeout)) from exc
    return db


def marks(n: int) -> str:
    """``?, ?, ?`` for ``n`` bound values."""
    return ", ".join("?" * n)


class Connection:
    """One open archive, shared by every component of one process that uses the same file.

    Writes go into one open transaction that is committed when ``batch_size`` writes have
    accumulated or ``flush_interval`` seconds have passed (``maybe_flush`` / ``flush``), and
    at ``release``. A killed process loses at most the uncommitted batch: SQLite's WAL
    rolls it back on the next open and the file stays consistent.
    """

    _open: ClassVar[dict[str, Connection]] = {}
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
        self.staged_bands: OrderedDict[str, list[int]] = OrderedDict()
        """Near-duplicate index keys of stories between the dedupe step and the store step,
        by URL (``SqliteStoryIndex.stage``): the steps of every crawl of the process share
        them, like the uncommitted batch."""

    # -- sharing -----------------------------------------------------------------------
    @classmethod
    def acquire(cls, path: str | Path, **options: Any) -> Connection:
        """The process-wide connection to ``path``, opened on first use (reference counted)."""
        key = str(Path(path).resolve())
        with cls._registry_lock:
            connection = cls._open.get(key)
            if connection is None:
                connection = cls._open[key] = cls(path, **options)
            connection._users += 1
            return connection

    @classmethod
    def for_settings(cls, settings: BaseSettings, path: str | Path | None = None) -> Connection:
        """``acquire`` with the options of ``settings`` (``DB_BUSY_TIMEOUT``,
        ``STORE_BATCH_SIZE``, ``STORE_FLUSH_INTERVAL``) for ``path`` (default ``DB_PATH``):
        every user of a crawl opens it this way, so whichever comes first, the options hold."""
        return cls.acquire(
            path if path is not None else db_path_for(settings),
            busy_timeout=get_float(settings, "DB_BUSY_TIMEOUT"),
            batch_size=get_int(settings, "STORE_BATCH_SIZE"),
            flush_interval=get_float(settings, "STORE_FLUSH_INTERVAL"),
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

    @classmethod
    def flush_all(cls) -> None:
        """Commit the open batch of every connection of this process (before a forced stop)."""
        with cls._registry_lock:
            connections = list(cls._open.values())
        for connection in connections:
            try:
                connection.flush()
            except sqlite3.Error as exc:
                logger.error("database %s: final commit failed: %s", connection.path, exc)

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


class SqliteStore:
    """One concern's queries over a shared ``Connection``.

    ``acquire`` and ``for_settings`` take a reference to the file's connection, which
    ``release`` gives back; a store made from a connection (``SqliteRuns(connection)``)
    leaves that to whoever acquired the connection. ``flush`` and ``maybe_flush`` commit
    the connection's batch, which holds the writes of every store of the file.
    """

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    @classmethod
    def acquire(cls, path: str | Path, **options: Any) -> Self:
        return cls(Connection.acquire(path, **options))

    @classmethod
    def for_settings(cls, settings: BaseSettings, path: str | Path | None = None) -> Self:
        return cls(Connection.for_settings(settings, path))

    @property
    def db(self) -> sqlite_utils.Database:
        return self.connection.db

    @property
    def path(self) -> Path:
        return self.connection.path

    @property
    def unsaved(self) -> int:
        """Writes lost with batches whose commit failed."""
        return self.connection.unsaved

    def release(self) -> None:
        self.connection.release()

    def flush(self) -> None:
        self.connection.flush()

    def maybe_flush(self) -> None:
        self.connection.maybe_flush()


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
