"""``scrapy report``: per site, the last run and what was stored; the latest Korea stories.

The command only reads the options and the database; the digest (queries and formatting) is
``crawler.digest``. Exit codes: 0 printed, 1 the database cannot be read, 2 usage error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError

from crawler.commands import CommandFailed, OneLineErrors, check_archive, stdout_may_close
from crawler.config import get_float
from crawler.digest import build_report, chart_rows, format_report, report_html
from crawler.storage.connection import open_to_read
from crawler.storage.errors import ArchiveError
from crawler.timespan import parse_since

if TYPE_CHECKING:
    import argparse


class Command(OneLineErrors, ScrapyCommand):
    requires_project = True
    requires_crawler_process = False
    default_settings: ClassVar[dict[str, Any]] = {"LOG_ENABLED": False}

    def syntax(self) -> str:
        return "[--since 24h] [--json | --html FILE] [--limit N]"

    def short_desc(self) -> str:
        return "Per-site health and the latest Korea stories from DB_PATH"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument(
            "--since",
            default="24h",
            help="period: a duration (30m, 24h, 7d, 2w) or an ISO date/time (default 24h)",
        )
        parser.add_argument("--json", action="store_true", help="print JSON (for scripts)")
        parser.add_argument(
            "--html",
            metavar="FILE",
            help="also write a self-contained HTML page with a chart of Korea stories per day",
        )
        parser.add_argument(
            "--limit", type=int, default=10, help="Korea stories to list (default 10)"
        )

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if args:
            raise UsageError(f"unexpected arguments: {' '.join(args)}", print_help=False)
        try:
            since = parse_since(opts.since)
        except ValueError as exc:
            raise UsageError(str(exc), print_help=False) from None
        if opts.limit < 0:
            raise UsageError("--limit must be >= 0", print_help=False)
        db_path = check_archive("report", self.settings, must_exist=True, write=False)
        try:
            db = open_to_read(db_path, busy_timeout=get_float(self.settings, "DB_BUSY_TIMEOUT"))
        except ArchiveError as exc:
            raise CommandFailed("report", str(exc)) from None
        try:
            report = build_report(db, since, limit=opts.limit)
            if opts.html:
                page = report_html(report, chart_rows(db))
                try:
                    Path(opts.html).write_text(page, encoding="utf-8")
                except OSError as exc:
                    raise CommandFailed(
                        "report", f"--html {opts.html} cannot be written: {exc.strerror}"
                    ) from None
        finally:
            db.close()
        with stdout_may_close():
            if opts.json:
                print(json.dumps(report, ensure_ascii=False, indent=2))
            else:
                print(format_report(report, db_path=db_path))
                if opts.html:
                    print(f"\nHTML report: {opts.html}")
