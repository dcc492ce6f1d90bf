"""Standalone Scrapy spider (``scrapy runspider``): read the mirror's sitemap index and fetch
every page listed with a no-op callback — the fetch-only ceiling."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import scrapy

_LOC_RE = re.compile(rb"<loc>\s*([^<\s]+)\s*</loc>")


class FetchOnlySpider(scrapy.Spider):
    name = "fetchonly"

    def __init__(self, sitemap: str = "", stats_out: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sitemap = sitemap
        self.stats_out = stats_out

    async def start(self):
        yield scrapy.Request(self.sitemap, callback=self.parse_index)

    def parse_index(self, response):
        for url in _LOC_RE.findall(response.body):
            yield scrapy.Request(url.decode(), callback=self.parse_sitemap)

    def parse_sitemap(self, response):
        for url in _LOC_RE.findall(response.body):
            yield scrapy.Request(url.decode(), callback=self.parse_article)

    def parse_article(self, response):
        self.crawler.stats.inc_value("bench/articles")
        return self.article(response)

    def article(self, response):
        return None

    def closed(self, reason: str) -> None:
        if self.stats_out:
            stats = dict(self.crawler.stats.get_stats())
            Path(self.stats_out).write_text(json.dumps(stats, default=str))
