"""``scrapy crawl NAME``: Scrapy's own command, with the site and its ``-a`` overrides
checked before anything starts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from scrapy.commands.crawl import Command as ScrapyCrawlCommand
from scrapy.exceptions import UsageError

from crawler.spiders.base import NewsSpider, site_from_args

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
        super().run(args, opts)
