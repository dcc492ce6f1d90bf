"""Standalone Scrapy spider (``scrapy runspider``): the fetch-only spider with
``trafilatura.extract`` in the article callback — the naive baseline (exported with -O)."""

from __future__ import annotations

import sys
from pathlib import Path

import trafilatura

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fetchonly import FetchOnlySpider


class NaiveSpider(FetchOnlySpider):
    name = "naive"

    def article(self, response):
        text = trafilatura.extract(response.text, url=response.url)
        yield {"url": response.url, "text": text}
