"""Scrapy extensions: the ``runs`` table row of every crawl."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from scrapy import signals
from scrapy.exceptions import NotConfigured

from crawler.db import Archive

if TYPE_CHECKING:
    from typing import Self

    from scrapy import Spider
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)


class RunRecorder:
    """Opens a ``runs`` row (status ``running``) when a spider opens and closes it with the
    close reason (``finished``, ``shutdown``, ``closespider_timeout``, ...) and the run's
    Scrapy stats when it closes. A row left ``running`` by a killed process is marked
    ``killed`` by the next run on the same host."""

    def __init__(self, crawler: Crawler, db_path: str) -> None:
        self.crawler = crawler
        self.db_path = db_path
        self.archive: Archive | None = None
        self.run_id: int | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        if not crawler.settings.getbool("RUNS_ENABLED", True):
            raise NotConfigured("RUNS_ENABLED is off")
        ext = cls(crawler, crawler.settings.get("DB_PATH", "data/news.db"))
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def spider_opened(self, spider: Spider) -> None:
        self.archive = Archive.acquire(self.db_path)
        site = getattr(spider, "site", None)
        kind = getattr(spider, "kind", "") or spider.name
        self.run_id = self.archive.start_run(spider=kind, site=site.name if site else spider.name)
        self.crawler.stats.set_value("run/id", self.run_id)

    def spider_closed(self, spider: Spider, reason: str) -> None:
        if self.archive is None or self.run_id is None:
            return
        stats = dict(self.crawler.stats.get_stats())
        stats.setdefault("finish_reason", reason)
        try:
            self.archive.finish_run(self.run_id, status=reason, stats=stats)
        finally:
            self.archive.release()
            self.archive = None
