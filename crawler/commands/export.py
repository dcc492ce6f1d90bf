"""``scrapy export``: the stored articles as JSON lines, the fields of a crawl's ``-O`` export.

A crawl's ``-O out.jsonl`` holds only what that crawl fetched: articles already stored are not
downloaded again (the incremental crawl). This command writes what is stored. Exit codes: 0
written, 1 the database cannot be read or the file written, 2 usage error.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TextIO

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError

from crawler.commands import (
    CommandFailed,
    OneLineErrors,
    check_archive,
    since_option,
    stdout_may_close,
)
from crawler.config import get_float
from crawler.progress import is_tty
from crawler.storage.connection import open_to_read
from crawler.storage.errors import ArchiveError
from crawler.storage.reports import iter_articles, stored_sites

if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterable


def write_jsonl(rows: Iterable[dict[str, Any]], out: TextIO) -> int:
    """One JSON object per line; returns the number written."""
    n = 0
    for row in rows:
        out.write(json.dumps(row, ensure_ascii=False) + "\n")
        n += 1
    return n


class Command(OneLineErrors, ScrapyCommand):
    requires_project = True
    requires_crawler_process = False
    default_settings: ClassVar[dict[str, Any]] = {"LOG_ENABLED": False}

    def syntax(self) -> str:
        return "[-O FILE] [--site NAME] [--since 7d] [--korea]"

    def short_desc(self) -> str:
        return "Write the stored articles of DB_PATH as JSON lines (stdout or -O FILE)"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument(
            "-O",
            "--output",
            metavar="FILE",
            help="write to FILE, overwriting it (default: stdout)",
        )
        parser.add_argument("--site", help="only this site's articles")
        parser.add_argument(
            "--since", help="only articles fetched since: a duration (7d, 24h) or ISO date/time"
        )
        parser.add_argument("--korea", action="store_true", help="only Korea stories")

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if args:
            raise UsageError(f"unexpected arguments: {' '.join(args)}", print_help=False)
        since = since_option(opts.since)
        db_path = check_archive("export", self.settings, must_exist=True, write=False)
        try:
            db = open_to_read(db_path, busy_timeout=get_float(self.settings, "DB_BUSY_TIMEOUT"))
        except ArchiveError as exc:
            raise CommandFailed("export", str(exc)) from None
        if opts.site and opts.site not in (known := stored_sites(db)):
            db.close()
            raise UsageError(
                f"--site {opts.site!r}: no stored articles of that site in {db_path} "
                f"(sites: {', '.join(known) or 'none'})",
                print_help=False,
            )
        columns = ["id", *self.settings.getlist("FEED_EXPORT_FIELDS")]
        rows = iter_articles(db, columns, site=opts.site, since=since, korea=opts.korea)
        try:
            if opts.output and opts.output != "-":
                try:
                    with Path(opts.output).open("w", encoding="utf-8") as out:
                        n = write_jsonl(rows, out)
                except OSError as exc:
                    raise CommandFailed(
                        "export", f"{opts.output} cannot be written: {exc.strerror}"
                    ) from None
                if is_tty(sys.stderr):  # quiet in cron and scripts
                    print(f"export: {n} articles from {db_path} in {opts.output}", file=sys.stderr)
            else:
                with stdout_may_close():
                    write_jsonl(rows, sys.stdout)
        finally:
            db.close()
