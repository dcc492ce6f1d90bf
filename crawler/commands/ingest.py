"""``scrapy ingest``: the one writer of the distributed mode. Drains the items the workers
pushed to Redis (``REDIS_URL``) through dedupe and store into DB_PATH, under the lock.

Runs until stopped (a service), or with ``--until-empty`` until the queue is empty (cron).
Exit codes: 0 fine, 1 a database or queue failure, 2 usage error, 75 the lock is held.
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
)
from crawler.config import get_int
from crawler.distributed.config import DistributedConfig, connect, distributed
from crawler.lock import LockError, LockHeld, RunLock, lock_path_for
from crawler.runner import EXIT_FAILED, EXIT_LOCKED, EXIT_OK, add_rotating_log
from crawler.storage.errors import database_failures

if TYPE_CHECKING:
    import argparse

    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)


def ingest_summary(stats: dict, waiting: int, processing: int) -> str:
    """One line: what this writer did and what is left in the queue."""

    def n(key: str) -> int:
        value = stats.get(key, 0)
        return int(value) if isinstance(value, int | float) else 0

    return (
        f"ingest: {n('ingest/items')} items: {n('store/inserted')} stored, "
        f"{n('store/duplicates')} duplicates, {n('ingest/already_recorded')} already recorded, "
        f"{n('ingest/unreadable')} unreadable, {n('ingest/runs')} worker runs recorded; "
        f"{waiting} waiting, {processing} taken "
        f"({stats.get('finish_reason', 'not run')})"
    )


class Command(OneLineErrors, ScrapyCommand):
    requires_project = True

    def syntax(self) -> str:
        return "[--until-empty [--idle SECONDS]] [-v]"

    def short_desc(self) -> str:
        return "Store the items of the distributed workers (REDIS_URL) into DB_PATH"

    def long_desc(self) -> str:
        return (
            "The single writer of the distributed mode: takes the items that `scrapy crawlall` "
            "workers pushed to Redis (REDIS_URL), runs the dedupe and store steps and commits "
            "them to DB_PATH, acknowledging each batch only after its commit (a writer killed "
            "mid-batch loses nothing). Holds the database's lock (DB_PATH.lock), like a "
            "single-machine crawlall. Runs until stopped (SIGTERM/Ctrl-C finish the current "
            "batch), or with --until-empty until the queue has been empty for --idle seconds. "
            "Logs go to logs/ingest.log next to DB_PATH (stderr too with -v). Exit codes: "
            "0 fine, 1 database failure, 2 usage error, 75 the lock is held."
        )

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument(
            "--until-empty", action="store_true", help="stop once the queue is empty"
        )
        parser.add_argument(
            "--idle",
            type=float,
            default=0.0,
            metavar="SECONDS",
            help="with --until-empty: how long the queue must stay empty (default 0)",
        )
        parser.add_argument(
            "-v", "--verbose", action="store_true", help="print the summary; log to stderr too"
        )

    def process_options(self, args: list[str], opts: argparse.Namespace) -> None:
        super().process_options(args, opts)
        if opts.idle < 0:
            raise UsageError("--idle must be >= 0", print_help=False)
        self.settings.set("INGEST_UNTIL_EMPTY", opts.until_empty, priority="cmdline")
        self.settings.set("INGEST_IDLE", opts.idle, priority="cmdline")
        quiet_unless_verbose(self.settings, opts.verbose)

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        import redis  # late import: the distributed mode's client

        from crawler.distributed.ingest import IngestSpider

        if args:
            raise UsageError(f"unexpected arguments: {' '.join(args)}", print_help=False)
        if not distributed(self.settings):
            raise UsageError(
                "scrapy ingest needs REDIS_URL (-s REDIS_URL=redis://host:6379/0)",
                print_help=False,
            )
        config = DistributedConfig.from_settings(self.settings)
        server = connect(config.redis_url)
        try:
            server.ping()
        except redis.RedisError as exc:
            print(f"ingest: Redis at {config.redis_url} unavailable: {exc}", file=sys.stderr)
            self.exitcode = EXIT_FAILED
            return
        db_path = check_db_path("ingest", self.settings)
        lock = RunLock(lock_path_for(db_path))
        try:
            lock.acquire(note=f"scrapy ingest {' '.join(sys.argv[2:])}".strip())
        except LockError as exc:
            raise CommandFailed("ingest", str(exc)) from None
        except LockHeld as exc:
            print(
                f"ingest: another writer or crawlall is running on {db_path} ({exc.path}: "
                f"{exc.holder or 'held'}); exiting",
                file=sys.stderr,
            )
            self.exitcode = EXIT_LOCKED
            return
        try:
            check_writable("ingest", self.settings)
        except CommandFailed:
            lock.release()
            raise
        path = Path(db_path).parent / "logs" / "ingest.log"
        handler = add_rotating_log(
            path,
            level=self.settings.get("LOG_LEVEL"),
            max_bytes=get_int(self.settings, "CRAWLALL_LOG_MAX_BYTES"),
            backups=get_int(self.settings, "CRAWLALL_LOG_BACKUPS"),
        )
        assert self.crawler_process is not None
        try:
            crawler: Crawler = self.crawler_process.create_crawler(IngestSpider)
            self.crawler_process.crawl(crawler)
            self.crawler_process.start()
            try:
                stats = dict(crawler.stats.get_stats())
            except RuntimeError:
                stats = {}
            try:
                waiting, processing = self._lengths(server, config)
            except redis.RedisError:
                waiting = processing = -1
            summary = ingest_summary(stats, waiting, processing)
            logger.info("%s", summary)
        finally:
            logging.root.removeHandler(handler)
            handler.close()
            lock.release()
        reason = stats.get("finish_reason")
        failed = (
            database_failures()
            or stats.get("ingest/failed")
            or reason not in ("finished", "shutdown")
        )
        self.exitcode = EXIT_FAILED if failed else EXIT_OK
        if opts.verbose or failed:
            print(summary)
            for message in database_failures() or [stats.get("ingest/failed")]:
                if message:
                    print(f"ingest: {message} (the batch stays queued)", file=sys.stderr)
            print(f"log: {path}")

    @staticmethod
    def _lengths(server: object, config: DistributedConfig) -> tuple[int, int]:
        from crawler.distributed.queue import ItemQueue

        return ItemQueue(server, config).lengths()  # type: ignore[arg-type]
