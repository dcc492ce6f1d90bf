"""One ``crawlall`` per database at a time: an ``flock`` on a lock file next to the database.

The kernel releases an ``flock`` when its holder exits, however it exits (SIGKILL, OOM,
power loss of the process), so a lock file left behind never blocks the next run.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from types import TracebackType
    from typing import Self

logger = logging.getLogger(__name__)


class LockError(RuntimeError):
    """The lock file cannot be created or opened (a read-only folder, another user's file);
    the message names the file and the reason."""


class LockHeld(RuntimeError):
    """Another process holds the lock; ``holder`` is what it wrote into the file."""

    def __init__(self, path: Path, holder: str) -> None:
        self.path = path
        self.holder = holder
        who = f" by {holder}" if holder else ""
        super().__init__(f"{path} is held{who}")


def lock_path_for(db_path: str | Path) -> Path:
    """The lock file of a database: ``data/news.db`` -> ``data/news.db.lock``."""
    db_path = Path(db_path)
    return db_path.with_name(db_path.name + ".lock")


class RunLock:
    """An exclusive, non-blocking ``flock`` on ``path``.

    ``acquire()`` raises ``LockHeld`` at once when another process has it, and ``LockError``
    when the file cannot be opened. The file keeps
    the holder's pid and start time (informational only: the lock is the flock, not the
    file's content or existence).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    def acquire(self, *, note: str = "") -> Self:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise LockError(f"lock file {self.path} cannot be opened: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read(fd)
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise LockHeld(self.path, holder) from None
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}{' ' + note if note else ''}\n".encode())
        self._fd = fd
        logger.debug("lock %s acquired", self.path)
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)
            self._fd = None
        logger.debug("lock %s released", self.path)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> Self:
        return self if self.held else self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _read(fd: int) -> str:
    try:
        return os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
    except OSError:
        return ""
