"""Why the archive cannot be opened or written, said in one sentence, and which SQLite errors
mean that no write can succeed in this run (the crawl command then exits non-zero)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

logger = logging.getLogger(__name__)


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
