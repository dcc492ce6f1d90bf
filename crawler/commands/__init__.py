"""Scrapy commands of the news crawler (the module name is the command name), and what they
share: one-line errors, the up-front check of the database, quiet output to a closed pipe."""

from __future__ import annotations

import ipaddress
import logging
import os
import shlex
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn
from urllib.parse import urlsplit

from scrapy.exceptions import UsageError
from scrapy.settings import SETTINGS_PRIORITIES

from crawler.config import db_path_for, get_float
from crawler.storage.connection import Connection
from crawler.storage.errors import ArchiveError
from crawler.timespan import iso, parse_since

if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterable, Iterator

    from scrapy.settings import BaseSettings

logger = logging.getLogger(__name__)

SQLITE_HEADER = b"SQLite format 3\x00"
PLACEHOLDER_CONTACTS = ("crawler-admin@example.org", "github.com/your-org/")
"""Parts of the shipped ``USER_AGENT`` that every deployment must replace with its own."""
_LOCAL_SUFFIXES = (".localhost", ".test", ".invalid", ".example", ".local", ".internal")


class CommandFailed(SystemExit):
    """Ends a command at once with exit code 1 and one line on stderr: ``crawl: message``.

    For failures of the environment (a read-only database, a lock file that cannot be
    made); bad arguments and settings are ``UsageError`` (exit code 2)."""

    def __init__(self, command: str, message: str) -> None:
        super().__init__(f"{command}: {message}")


class OneLineErrors:
    """Mixin of the project's commands: a usage error is one line on stderr,
    ``scrapy report: error: ...``, without Scrapy's usage block (``-h`` shows it)."""

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)  # type: ignore[misc]
        one_line_errors(parser, command_name(self))


def command_name(command: object) -> str:
    return type(command).__module__.rsplit(".", 1)[-1]


def one_line_errors(parser: argparse.ArgumentParser, command: str) -> None:
    """Make ``parser.error`` (argparse's and Scrapy's way to report a usage error) print one
    line and exit with code 2."""

    def error(message: str) -> NoReturn:
        parser.exit(2, f"scrapy {command}: error: {message}\n")

    parser.error = error  # type: ignore[method-assign]


def quiet_unless_verbose(settings: BaseSettings, verbose: bool) -> None:
    """For the unattended commands (crawlall, ingest): the log goes to their rotating file
    (stderr too with -v, or when -L / --logfile are given) and the per-crawler progress
    lines, meant for `scrapy crawl` in a terminal, are off."""
    quiet = {"LOG_ENABLED": bool(verbose), "PROGRESS_ENABLED": False}
    for name, value in quiet.items():
        if settings.getpriority(name) < SETTINGS_PRIORITIES["cmdline"]:
            settings.set(name, value, priority="cmdline")


# -- the database, checked before anything starts ----------------------------------------------
def database_problem(db_path: str | Path, *, must_exist: bool) -> str | None:
    """What is wrong with ``DB_PATH`` as a place for the archive, in one sentence that names
    the path, or ``None``. Looks at the file system only: what SQLite itself refuses (a
    read-only or locked file) shows when the archive is opened. A missing folder is an error
    (a mistyped path is not created); ``must_exist`` for the commands that only read."""
    path = Path(db_path)
    folder = path.parent
    if path.is_dir():
        return f"DB_PATH {path} is a folder; give the database file in it (e.g. {path / 'news.db'})"
    if not folder.exists():
        return f"DB_PATH {path}: folder {folder} does not exist (mistyped? create it first)"
    if not folder.is_dir():
        return f"DB_PATH {path}: {folder} is not a folder"
    if not path.exists():
        if must_exist:
            return f"{path}: no database yet (run a crawl first: scrapy crawlall, or make demo)"
        return None
    if not path.is_file():
        return f"DB_PATH {path} is not a regular file"
    try:
        with path.open("rb") as f:
            head = f.read(len(SQLITE_HEADER))
    except OSError as exc:
        return f"database {path} cannot be read: {exc.strerror}"
    if head and head != SQLITE_HEADER:
        return f"DB_PATH {path} is not an SQLite database (the file holds something else)"
    return None


def folder_not_writable(db_path: str | Path) -> str | None:
    """One sentence when a new database (or a lock file) cannot be created next to
    ``db_path``, else ``None``."""
    folder = Path(db_path).parent
    if os.access(folder, os.W_OK | os.X_OK):
        return None
    return f"database {db_path} cannot be written: folder {folder} is not writable by this user"


# -- output ------------------------------------------------------------------------------------
@contextmanager
def stdout_may_close() -> Iterator[None]:
    """Printing into a pipe whose reader stopped (``scrapy report | head``) ends quietly: the
    rest of the output is dropped, the exit code stays the command's."""
    try:
        yield
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # Python's flush at exit goes nowhere, quietly
        os.close(devnull)


# -- politeness --------------------------------------------------------------------------------
def public_hosts(urls: Iterable[str]) -> list[str]:
    """The hosts of ``urls`` that are on the internet: not loopback, private or reserved
    addresses, ``localhost`` or a reserved test domain."""
    hosts = []
    for url in urls:
        host = (urlsplit(url).hostname or "").lower().rstrip(".")
        if not host or host == "localhost" or host.endswith(_LOCAL_SUFFIXES):
            continue
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            hosts.append(host)
            continue
        if address.is_global:
            hosts.append(host)
    return sorted(set(hosts))


def warn_placeholder_contact(settings: BaseSettings, urls: Iterable[str]) -> str | None:
    """Log a warning (and return it) when ``USER_AGENT`` still carries the shipped placeholder
    contact while crawling public sites: site owners must be able to reach the operator."""
    agent = settings.get("USER_AGENT") or ""
    if not any(p in agent for p in PLACEHOLDER_CONTACTS):
        return None
    hosts = public_hosts(urls)
    if not hosts:
        return None
    message = (
        f"USER_AGENT still has the placeholder contact ({agent}): set your own URL and e-mail "
        f"in crawler/settings.py (USER_AGENT) before crawling public sites ({', '.join(hosts[:3])}"
        f"{', ...' if len(hosts) > 3 else ''})"
    )
    logger.warning("%s", message)
    return message


def since_option(value: str | None) -> str | None:
    """A ``--since`` value (a duration such as ``7d`` or an ISO date/time) as an ISO time;
    ``None`` when not given; a ``UsageError`` naming the bad value."""
    if not value:
        return None
    try:
        return iso(parse_since(value))
    except ValueError as exc:
        raise UsageError(str(exc), print_help=False) from None


def check_archive(
    command: str, settings: BaseSettings, *, must_exist: bool = False, write: bool = True
) -> str:
    """Check ``DB_PATH`` before the command starts and return it: ``check_db_path``, then,
    for a command that writes, ``check_writable``."""
    db_path = check_db_path(command, settings, must_exist=must_exist, write=write)
    if write:
        check_writable(command, settings)
    return db_path


def check_db_path(
    command: str, settings: BaseSettings, *, must_exist: bool = False, write: bool = True
) -> str:
    """Check ``DB_PATH`` on the file system and return it. A path that cannot hold an archive
    (a folder, a missing folder, another kind of file; no database yet when ``must_exist``)
    is a ``UsageError`` (exit code 2); a new database in a folder this user may not write
    (``write``) ends the command with ``CommandFailed`` (exit code 1). Both name the path."""
    db_path = db_path_for(settings)
    if problem := database_problem(db_path, must_exist=must_exist):
        raise UsageError(problem, print_help=False)
    if write and not Path(db_path).exists() and (problem := folder_not_writable(db_path)):
        raise CommandFailed(command, problem)
    return db_path


def check_writable(command: str, settings: BaseSettings) -> None:
    """Open (creating if needed) the archive at ``DB_PATH`` and close it again: a read-only,
    locked or damaged database ends the command now with ``CommandFailed`` (exit code 1) and
    the one-line reason, not after pages were fetched."""
    try:
        Connection(
            db_path_for(settings), busy_timeout=get_float(settings, "DB_BUSY_TIMEOUT")
        ).close()
    except ArchiveError as exc:
        raise CommandFailed(command, str(exc)) from None


def tool_command(name: str) -> str:
    """How to type the command ``name`` installed next to this Python (the project's
    ``.venv/bin``): its bare name when that is what the shell finds, else its path
    (relative to the current folder when inside it)."""
    tool = Path(sys.executable).parent / name
    if not tool.exists():
        return name
    found = shutil.which(name)
    if found and Path(found).resolve() == tool.resolve():
        return name
    try:
        return str(tool.absolute().relative_to(Path.cwd()))
    except ValueError:
        return str(tool.absolute())


def db_option(settings: BaseSettings) -> str:
    """`` -s DB_PATH=...`` when DB_PATH is not the project's default, for printed commands."""
    db_path = db_path_for(settings)
    return "" if db_path == "data/news.db" else f" -s DB_PATH={shlex.quote(str(db_path))}"
