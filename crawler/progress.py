"""``scrapy crawl NAME`` in a terminal: a progress line every few seconds, a summary at the end.

Silent when stderr is not a terminal (cron, pipes, CI) and in ``scrapy crawlall``, which
prints its own summary.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import TYPE_CHECKING, TextIO

from scrapy import signals
from scrapy.exceptions import NotConfigured
from twisted.internet import task

from crawler.summary import SiteResult, format_summary, progress_line

if TYPE_CHECKING:
    from typing import Self

    from scrapy import Spider
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)


class Progress:
    """Writes ``progress_line`` to stderr every ``PROGRESS_INTERVAL`` seconds while the
    spider runs, and ``format_summary`` (with the run's problems) when it closes.

    ``PROGRESS_ENABLED = False`` turns it off; it also stays off when stderr is not a
    terminal, unless ``PROGRESS_FORCE`` is set.
    """

    def __init__(self, crawler: Crawler, *, interval: float, stream: TextIO) -> None:
        self.crawler = crawler
        self.interval = interval
        self.stream = stream
        self.started = time.monotonic()
        self._loop: task.LoopingCall | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        settings = crawler.settings
        # NotConfigured without a reason: Scrapy then logs nothing (with a reason it logs a
        # WARNING, which would land in every crawlall log and demo output).
        if not settings.getbool("PROGRESS_ENABLED", True):
            raise NotConfigured
        stream = sys.stderr
        if not settings.getbool("PROGRESS_FORCE") and not _is_tty(stream):
            raise NotConfigured
        interval = settings.getfloat("PROGRESS_INTERVAL", 5.0)
        if interval <= 0:
            raise NotConfigured("PROGRESS_INTERVAL must be > 0")
        ext = cls(crawler, interval=interval, stream=stream)
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def result(self) -> SiteResult:
        spider = self.crawler.spider
        name = spider.name if spider is not None else "?"
        return SiteResult(name, dict(self.crawler.stats.get_stats()))

    def spider_opened(self, spider: Spider) -> None:
        self.started = time.monotonic()
        self._loop = task.LoopingCall(self.tick)
        self._loop.start(self.interval, now=False)

    def tick(self) -> None:
        self._write(progress_line(self.result(), time.monotonic() - self.started))

    def spider_closed(self, spider: Spider, reason: str) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        result = self.result()
        result.stats.setdefault("finish_reason", reason)
        self._write("\n" + format_summary([result], time.monotonic() - self.started) + "\n")

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text + "\n")
            self.stream.flush()
        except (OSError, ValueError):  # closed terminal: never break the crawl over it
            logger.debug("progress output failed", exc_info=True)


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
