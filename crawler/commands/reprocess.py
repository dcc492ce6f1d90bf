"""``scrapy reprocess``: re-run extraction, cleaning, tagging and the duplicate check on the
stored HTML after the rules or the lexicon changed; report what changed. Idempotent.

Exit codes: 0 done, 1 the database cannot be written, 2 usage or configuration error (a bad
option, rules file or lexicon, a site without stored articles)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, ClassVar

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError

from crawler.commands import (
    CommandFailed,
    OneLineErrors,
    check_archive,
    since_option,
    stdout_may_close,
)
from crawler.config import get_str
from crawler.reprocess import DuplicateCheck, Steps, format_outcome, reprocess
from crawler.sites import SitesError, load_sites
from crawler.storage.connection import Connection
from crawler.storage.errors import ArchiveError
from crawler.storage.reports import stored_sites

if TYPE_CHECKING:
    import argparse


class Command(OneLineErrors, ScrapyCommand):
    requires_project = True
    requires_crawler_process = False
    default_settings: ClassVar[dict[str, Any]] = {"LOG_LEVEL": "WARNING"}

    def syntax(self) -> str:
        return "[--site NAME] [--since 7d] [--dry-run] [--json]"

    def short_desc(self) -> str:
        return "Re-run extraction, clean, dedupe check and tag on the stored HTML"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument("--site", help="only this site's articles")
        parser.add_argument(
            "--since", help="only articles fetched since: a duration (7d, 24h) or ISO date/time"
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="report what would change, write nothing"
        )
        parser.add_argument("--json", action="store_true", help="print the outcome as JSON")

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if args:
            raise UsageError(f"unexpected arguments: {' '.join(args)}", print_help=False)
        since = since_option(opts.since)
        db_path = check_archive("reprocess", self.settings, must_exist=True)
        settings = self.settings.copy()
        if opts.dry_run:
            settings.set("CLEAN_LEARN", False, priority="cmdline")  # learning would write
        try:
            connection = Connection.for_settings(self.settings, db_path)
        except ArchiveError as exc:
            raise CommandFailed("reprocess", str(exc)) from None
        try:
            if opts.site and opts.site not in (known := stored_sites(connection.db)):
                raise UsageError(
                    f"--site {opts.site!r}: no stored articles of that site in {db_path} "
                    f"(sites: {', '.join(known) or 'none'})",
                    print_help=False,
                )
            try:
                steps = Steps.from_settings(settings)
                dupes = DuplicateCheck(connection, settings)
            except ValueError as exc:  # a bad rules file, lexicon or threshold setting
                raise UsageError(str(exc), print_help=False) from None
            outcome = reprocess(
                connection,
                steps,
                dupes,
                site=opts.site,
                since=since,
                sites=self._sites(),
                dry_run=opts.dry_run,
            )
        finally:
            connection.release()
        with stdout_may_close():
            if opts.json:
                print(json.dumps(outcome.as_dict(), ensure_ascii=False, indent=2))
            else:
                print(format_outcome(outcome))

    def _sites(self) -> dict[str, Any]:
        """Configured sites by name (their language and time zone hints); none when the
        sites file is missing or broken: reprocessing does not need it."""
        try:
            return {s.name: s for s in load_sites(get_str(self.settings, "SITES_FILE"))}
        except SitesError:
            return {}
