"""``scrapy list``: the generic spiders, then every enabled site of the sites file in its order
(Scrapy's own command sorts them by name)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from scrapy.commands.list import Command as ScrapyListCommand
from scrapy.exceptions import UsageError
from scrapy.spiderloader import get_spider_loader

from crawler.commands import OneLineErrors, stdout_may_close

if TYPE_CHECKING:
    import argparse


class Command(OneLineErrors, ScrapyListCommand):
    def short_desc(self) -> str:
        return "List the generic spiders, then the enabled sites of SITES_FILE"

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if args:
            raise UsageError(f"unexpected arguments: {' '.join(args)}", print_help=False)
        names = get_spider_loader(self.settings).list()
        with stdout_may_close():
            print("\n".join(names))
