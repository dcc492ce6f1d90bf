"""``scrapy crawlall``: every enabled site in one process, under a lock; the cron entry point.

Quiet when all is well (cron mails any output): the summary is printed when a site failed or
with ``-v``; the log goes to a rotating file next to the database. In a terminal it shows
progress on stderr, and the summary at the end. Exit codes: 0 all sites fine, 1 some failed
(or the database or its lock file cannot be written), 2 usage or configuration error,
75 another crawlall holds the lock.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError

from crawler.commands import (
    CommandFailed,
    OneLineErrors,
    check_db_path,
    check_writable,
    quiet_unless_verbose,
    warn_placeholder_contact,
)
from crawler.config import db_path_for, get_float, get_int, get_str
from crawler.distributed.config import distributed
from crawler.lock import LockError, LockHeld, RunLock, lock_path_for
from crawler.progress import progress_wanted
from crawler.runner import (
    EXIT_LOCKED,
    Limits,
    add_rotating_log,
    crawl_sites,
    default_log_file,
    exit_code,
)
from crawler.sites import KINDS
from crawler.summary import format_summary

if TYPE_CHECKING:
    import argparse

    from scrapy.settings import BaseSettings

    from crawler.sites import Site, SiteSet

logger = logging.getLogger(__name__)


def select_sites(site_set: SiteSet, *, group: str | None, names: list[str] | None) -> list[Site]:
    """The sites a run covers: the named ones (``--site``, even if disabled), else the
    enabled ones of ``group``, else every enabled site. Raises ``UsageError``."""
    if group and names:
        raise UsageError("give --group or --site, not both", print_help=False)
    if names:
        unknown = [n for n in names if site_set.get(n) is None]
        if unknown:
            raise UsageError(
                f"{site_set.path}: no site named {', '.join(map(repr, unknown))}",
                print_help=False,
            )
        return [site_set.get(n) for n in dict.fromkeys(names)]  # type: ignore[misc]
    sites = site_set.enabled(group)
    if not sites:
        where = f"in group {group!r} " if group else ""
        raise UsageError(f"{site_set.path}: no enabled site {where}to crawl", print_help=False)
    return sites


def log_file(settings: BaseSettings) -> Path:
    return Path(get_str(settings, "CRAWLALL_LOG_FILE") or default_log_file(db_path_for(settings)))


class Command(OneLineErrors, ScrapyCommand):
    requires_project = True
    progress = False
    """Progress lines on stderr (a terminal, or PROGRESS_FORCE)."""

    def syntax(self) -> str:
        return "[--sites FILE] [--group GROUP | --site NAME ...] [-v]"

    def short_desc(self) -> str:
        return "Crawl every enabled site in one process (the cron entry point)"

    def long_desc(self) -> str:
        return (
            "Crawl every enabled site of the sites file (or one --group, or the --site names) "
            "concurrently in one process, with a per-site and a whole-run time limit "
            "(CRAWLALL_SITE_TIMEOUT, CRAWLALL_RUN_TIMEOUT). One run per database at a time "
            "(flock on DB_PATH.lock). Prints nothing unless a site failed or -v is given "
            "(in a terminal: progress on stderr); logs go to CRAWLALL_LOG_FILE (default: "
            "logs/crawlall.log next to DB_PATH). Exit codes: 0 all sites fine, 1 some sites "
            "failed or the database cannot be written, 2 usage or configuration error, "
            "75 another crawlall is running on this database."
        )

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument("--sites", metavar="FILE", help="sites file (default: SITES_FILE)")
        parser.add_argument("--group", metavar="GROUP", help="only the enabled sites of GROUP")
        parser.add_argument(
            "--site",
            metavar="NAME",
            nargs="+",
            action="extend",
            dest="site_names",
            help="only these sites (repeatable)",
        )
        parser.add_argument(
            "-v",
            "--verbose",
            action="store_true",
            help="print the summary even when all is well, and log to stderr too",
        )

    def process_options(self, args: list[str], opts: argparse.Namespace) -> None:
        super().process_options(args, opts)
        if opts.sites:
            self.settings.set("SITES_FILE", opts.sites, priority="cmdline")
        # Decided before quiet_unless_verbose turns the per-crawler progress off.
        self.progress = (
            progress_wanted(self.settings, sys.stderr)
            and get_float(self.settings, "PROGRESS_INTERVAL") > 0
        )
        quiet_unless_verbose(self.settings, opts.verbose)

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if args:
            raise UsageError(f"unexpected arguments: {' '.join(args)}", print_help=False)
        assert self.crawler_process is not None
        loader = self.crawler_process.spider_loader
        sites = select_sites(loader.sites, group=opts.group, names=opts.site_names)
        limits = Limits.from_settings(self.settings)
        kinds = {k: loader.load(k) for k in KINDS}
        db_path = db_path_for(self.settings)
        # A worker of the distributed mode (REDIS_URL) does not touch DB_PATH: any number
        # of them may run; `scrapy ingest`, the writer, holds the database's lock.
        lock = None
        if not distributed(self.settings):
            check_db_path("crawlall", self.settings)
            lock = RunLock(lock_path_for(db_path))
            try:
                lock.acquire(note=f"scrapy crawlall {' '.join(sys.argv[2:])}".strip())
            except LockError as exc:
                raise CommandFailed("crawlall", str(exc)) from None
            except LockHeld as exc:
                print(
                    f"crawlall: another crawlall is running on {db_path} ({exc.path}: "
                    f"{exc.holder or 'held'}); exiting",
                    file=sys.stderr,
                )
                self.exitcode = EXIT_LOCKED
                return
            try:
                check_writable("crawlall", self.settings)
            except CommandFailed:
                lock.release()
                raise
        path = log_file(self.settings)
        try:
            handler = add_rotating_log(
                path,
                level=self.settings.get("LOG_LEVEL"),
                max_bytes=get_int(self.settings, "CRAWLALL_LOG_MAX_BYTES"),
                backups=get_int(self.settings, "CRAWLALL_LOG_BACKUPS"),
            )
        except OSError as exc:
            if lock is not None:
                lock.release()
            raise CommandFailed("crawlall", f"log file {path} cannot be written: {exc}") from None
        try:
            logger.info("crawlall: %d sites (%s) into %s", len(sites), self._scope(opts), db_path)
            warning = warn_placeholder_contact(
                self.settings, [u for s in sites for u in s.start_urls]
            )
            if warning and self.progress and not opts.verbose:
                print(f"crawlall: {warning}", file=sys.stderr)
            results, elapsed = crawl_sites(
                self.crawler_process,
                sites,
                kinds,
                limits=limits,
                progress=sys.stderr if self.progress else None,
                progress_interval=get_float(self.settings, "PROGRESS_INTERVAL"),
            )
            self.exitcode = exit_code(results)
            summary = format_summary(results, elapsed)
            for line in summary.splitlines():
                logger.info("%s", line)
        finally:
            logging.root.removeHandler(handler)
            handler.close()
            if lock is not None:
                lock.release()
        if opts.verbose or self.exitcode:
            print(summary)
            print(f"log: {path}")
        elif self.progress:  # a person watching: the summary ends the progress lines
            print(f"\n{summary}\nlog: {path}", file=sys.stderr)

    @staticmethod
    def _scope(opts: argparse.Namespace) -> str:
        if opts.site_names:
            return "sites " + ", ".join(opts.site_names)
        return f"group {opts.group}" if opts.group else "all enabled"
