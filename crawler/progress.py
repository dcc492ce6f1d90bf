"""Progress in a terminal: a line every few seconds while crawling, the summary at the end.

``Progress`` is the extension of ``scrapy crawl NAME``; ``RunProgress`` follows the many sites
of one ``scrapy crawlall`` run (one total line per interval, one line per site as it ends).
Both are silent when stderr is not a terminal (cron, pipes, CI) unless ``PROGRESS_FORCE``.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import TYPE_CHECKING, TextIO

from scrapy import signals
from scrapy.exceptions import NotConfigured
from twisted.internet import task

from crawler.config import get_bool, get_float
from crawler.summary import SiteResult, format_summary, progress_line

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Self

    from scrapy import Spider
    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings

logger = logging.getLogger(__name__)


def progress_wanted(settings: BaseSettings, stream: TextIO) -> bool:
    """``PROGRESS_ENABLED`` and ``stream`` is a terminal (or ``PROGRESS_FORCE``)."""
    if not get_bool(settings, "PROGRESS_ENABLED"):
        return False
    return get_bool(settings, "PROGRESS_FORCE") or is_tty(stream)


def site_name(crawler: Crawler) -> str:
    """The site a crawler crawls (``-a name=`` of a generic spider included)."""
    spider = getattr(crawler, "spider", None)
    site = getattr(spider, "site", None) or getattr(crawler.spidercls, "configured_site", None)
    if site is not None:
        return site.name
    return getattr(spider, "name", None) or getattr(crawler.spidercls, "name", None) or "?"


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
        if not progress_wanted(settings, sys.stderr):
            raise NotConfigured
        interval = get_float(settings, "PROGRESS_INTERVAL")
        if interval <= 0:
            raise NotConfigured("PROGRESS_INTERVAL must be > 0")
        ext = cls(crawler, interval=interval, stream=sys.stderr)
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def result(self) -> SiteResult:
        return SiteResult(site_name(self.crawler), dict(self.crawler.stats.get_stats()))

    def spider_opened(self, spider: Spider) -> None:
        self.started = time.monotonic()
        self._loop = task.LoopingCall(self.tick)
        self._loop.start(self.interval, now=False)

    def tick(self) -> None:
        write(self.stream, progress_line(self.result(), time.monotonic() - self.started))

    def spider_closed(self, spider: Spider, reason: str) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        result = self.result()
        result.stats.setdefault("finish_reason", reason)
        summary = format_summary([result], time.monotonic() - self.started)
        write(self.stream, "\n" + summary + "\n")


class RunProgress:
    """Progress of a multi-site run on ``stream``: every ``interval`` seconds one line with
    the totals of all sites (``[crawlall 2/5 done]``, then the fields of ``progress_line``),
    and one line per site when it closes, with its close reason."""

    def __init__(self, crawlers: list[Crawler], *, interval: float, stream: TextIO) -> None:
        self.crawlers = crawlers
        self.interval = interval
        self.stream = stream
        self.started = time.monotonic()
        self.done = 0
        self._loop = task.LoopingCall(self.tick)
        for crawler in crawlers:
            crawler.signals.connect(self._closer(crawler), signal=signals.spider_closed, weak=False)

    def start(self) -> Self:
        self.started = time.monotonic()
        self._loop.start(self.interval, now=False)
        return self

    def stop(self) -> None:
        if self._loop.running:
            self._loop.stop()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def tick(self) -> None:
        totals: dict[str, int] = {}
        for crawler in self.crawlers:
            stats = _stats(crawler)
            for key, value in stats.items():
                if isinstance(value, int) and not isinstance(value, bool):
                    totals[key] = totals.get(key, 0) + value
        label = f"crawlall {self.done}/{len(self.crawlers)} done"
        write(self.stream, progress_line(SiteResult(label, totals), self.elapsed()))

    def _closer(self, crawler: Crawler) -> Callable[[Spider, str], None]:
        def closed(spider: Spider, reason: str) -> None:
            self.done += 1
            result = SiteResult(site_name(crawler), {**_stats(crawler), "finish_reason": reason})
            verdict = reason if result.ok else f"{reason} !"
            write(self.stream, f"{progress_line(result, self.elapsed())}  {verdict}")

        return closed


def _stats(crawler: Crawler) -> dict:
    try:
        return dict(crawler.stats.get_stats())
    except (AttributeError, RuntimeError):  # not started: no stats collector yet
        return {}


def write(stream: TextIO, text: str) -> None:
    """Write a line; a closed terminal never breaks the crawl."""
    try:
        stream.write(text + "\n")
        stream.flush()
    except (OSError, ValueError):
        logger.debug("progress output failed", exc_info=True)


def is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
