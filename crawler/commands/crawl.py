"""``scrapy crawl NAME``: Scrapy's own command, with the site, its ``-a`` overrides and the
database checked before anything starts, and an exit code that says whether the crawl worked.

Exit codes: 0 the crawl finished without problems, 1 it failed (its sources failed, errors
were logged, it was closed early, the database could not be written), 2 usage or
configuration error (unknown site, bad ``-a`` key or value, ``DB_PATH`` not usable).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from scrapy.commands.crawl import Command as ScrapyCrawlCommand
from scrapy.exceptions import UsageError
from scrapy.spiderloader import get_spider_loader

from crawler.commands import OneLineErrors, check_archive, warn_placeholder_contact
from crawler.config import db_path_for, get_bool
from crawler.distributed.config import distributed
from crawler.progress import Progress, site_name
from crawler.spiders.base import NewsSpider, site_from_args
from crawler.storage.errors import database_failures
from crawler.summary import SiteResult

if TYPE_CHECKING:
    import argparse

    from scrapy import Spider
    from scrapy.crawler import Crawler

    from crawler.sites import Site


class Command(OneLineErrors, ScrapyCrawlCommand):
    site: Site | None = None
    crawler: Crawler | None = None

    def long_desc(self) -> str:
        return (
            "Crawl one configured site (scrapy list) or one source with a generic spider "
            "(scrapy crawl feed -a url=URL). -a key=value overrides a key of the site for "
            "this run. Exit codes: 0 fine, 1 the crawl failed (its summary says why), "
            "2 usage or configuration error."
        )

    def process_options(self, args: list[str], opts: argparse.Namespace) -> None:
        super().process_options(args, opts)
        if len(args) == 1:
            self.site = self._site(args[0], opts.spargs)
        if (
            get_bool(self.settings, "STORE_ENABLED") or get_bool(self.settings, "RUNS_ENABLED")
        ) and not distributed(self.settings):  # a distributed worker does not open DB_PATH
            check_archive("crawl", self.settings)

    def _site(self, name: str, spargs: dict[str, str]) -> Site | None:
        """The site a crawl runs with, its ``-a`` overrides applied: an unknown name, key
        or a bad value is a usage error now, before Scrapy starts."""
        try:
            spidercls: type[Spider] = get_spider_loader(self.settings).load(name)
        except KeyError:
            raise UsageError(
                f"no spider or site named {name!r} (see: scrapy list)", print_help=False
            ) from None
        if not issubclass(spidercls, NewsSpider):
            return None
        site = site_from_args(spidercls.configured_site, spidercls.kind, spargs)
        if site.render_js:
            self.settings.set("CRAWLER_RENDER_JS", True, priority="cmdline")
        return site

    def _create_crawler(self, spidercls: type[Spider] | str) -> Crawler:
        self.crawler = super()._create_crawler(spidercls)
        return self.crawler

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if self.site is not None:
            warn_placeholder_contact(self.settings, self.site.start_urls)
        super().run(args, opts)
        if failures := database_failures():
            # Disk full, read-only or locked archive: the crawl did not keep what it fetched.
            for message in failures:
                print(f"crawl: {message}", file=sys.stderr)
            self.exitcode = 1
            return
        if self.crawler is None or self.exitcode:
            return
        result = SiteResult(site_name(self.crawler), dict(self.crawler.stats.get_stats()))
        shown = self.crawler.get_extension(Progress) is not None  # its summary is on stderr
        if not result.ok:
            self.exitcode = 1
            if not shown:
                print(f"crawl: {result.site} failed: {'; '.join(result.problems)}", file=sys.stderr)
        if not shown:
            for note in result.notes:
                print(f"crawl: {result.site}: {note}", file=sys.stderr)
        if (feeds := self.settings.getdict("FEEDS")) and result.known:
            print(
                f"crawl: {result.known} articles already stored in {db_path_for(self.settings)} "
                f"were not fetched again, so they are not in {', '.join(map(str, feeds))}; "
                "all stored articles: scrapy export -O FILE (see scrapy export -h)",
                file=sys.stderr,
            )
