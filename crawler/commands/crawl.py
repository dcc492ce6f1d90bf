"""``scrapy crawl NAME``: Scrapy's own command, with the site and its ``-a`` overrides
checked before anything starts."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from scrapy.commands.crawl import Command as ScrapyCrawlCommand
from scrapy.exceptions import UsageError

from crawler.config import db_path_for, get_bool, get_float
from crawler.distributed.config import distributed
from crawler.spiders.base import NewsSpider, site_from_args
from crawler.storage.connection import Connection
from crawler.storage.errors import ArchiveError, database_failures

if TYPE_CHECKING:
    import argparse


class Command(ScrapyCrawlCommand):
    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if len(args) == 1:
            assert self.crawler_process is not None
            try:
                spidercls = self.crawler_process.spider_loader.load(args[0])
            except KeyError:
                raise UsageError(
                    f"no spider or site named {args[0]!r} (see: scrapy list)", print_help=False
                ) from None
            if issubclass(spidercls, NewsSpider):
                # Refuse bad -a values now, naming the key, rather than mid-start.
                site = site_from_args(spidercls.configured_site, spidercls.kind, opts.spargs)
                if site.render_js:
                    self.settings.set("CRAWLER_RENDER_JS", True, priority="cmdline")
        if not self._archive_writable():
            return
        super().run(args, opts)
        if failures := database_failures():
            # Disk full, read-only or locked archive: the crawl did not keep what it fetched.
            for message in failures:
                print(f"crawl: {message}", file=sys.stderr)
            self.exitcode = 1

    def _archive_writable(self) -> bool:
        """Open the archive before crawling: a read-only, full or locked database stops the
        command now with one clear message (exit code 1), not after fetching pages."""
        if not (
            get_bool(self.settings, "STORE_ENABLED") or get_bool(self.settings, "RUNS_ENABLED")
        ) or distributed(self.settings):  # a distributed worker does not open DB_PATH
            return True
        try:
            Connection(
                db_path_for(self.settings),
                busy_timeout=get_float(self.settings, "DB_BUSY_TIMEOUT"),
            ).close()
        except ArchiveError as exc:
            print(f"crawl: {exc}", file=sys.stderr)
            self.exitcode = 1
            return False
        return True
