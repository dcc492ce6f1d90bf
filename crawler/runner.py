"""Run several configured sites in one Scrapy process and summarise what each did."""

from __future__ import annotations

import logging
import logging.handlers
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from scrapy import signals
from scrapy.exceptions import UsageError
from scrapy.utils.defer import deferred_from_coro

from crawler.config import get_float, setting
from crawler.extensions import RunRecorder
from crawler.progress import RunProgress
from crawler.spiderloader import site_spider_class
from crawler.storage.connection import Connection
from crawler.summary import SiteResult

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler, CrawlerProcessBase
    from scrapy.settings import BaseSettings
    from twisted.internet.interfaces import IDelayedCall

    from crawler.sites import Site

logger = logging.getLogger(__name__)

EXIT_OK = 0
"""Every site finished without problems."""
EXIT_FAILED = 1
"""At least one site failed: closed early (time limit, database error), logged errors, or
an anomaly against its own history (no articles, far fewer, error rate jump)."""
EXIT_USAGE = 2
"""Bad arguments or configuration (Scrapy's code for a ``UsageError``, e.g. a bad sites file)."""
EXIT_LOCKED = 75
"""Another ``crawlall`` holds the lock of this database (``EX_TEMPFAIL``: try again later)."""


@dataclass(frozen=True)
class Limits:
    """Time limits of a multi-site run (settings ``CRAWLALL_*``); 0 means none."""

    site_timeout: float = 0.0
    """Seconds after which one site is closed (``closespider_timeout``); its in-flight
    downloads still end within ``DOWNLOAD_TIMEOUT``."""
    run_timeout: float = 0.0
    """Seconds after which every site still running is closed (``run_timeout``)."""
    stop_grace: float = setting("CRAWLALL_STOP_GRACE")
    """Seconds after ``run_timeout`` after which the process stops regardless: sites still
    closing are recorded as ``run_timeout_forced``, pending writes committed."""

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> Limits:
        limits = cls(
            site_timeout=get_float(settings, "CRAWLALL_SITE_TIMEOUT"),
            run_timeout=get_float(settings, "CRAWLALL_RUN_TIMEOUT"),
            stop_grace=get_float(settings, "CRAWLALL_STOP_GRACE"),
        )
        if min(limits.site_timeout, limits.run_timeout, limits.stop_grace) < 0:
            raise UsageError(
                "CRAWLALL_SITE_TIMEOUT, CRAWLALL_RUN_TIMEOUT and CRAWLALL_STOP_GRACE must be "
                ">= 0 (seconds; 0 = no limit)",
                print_help=False,
            )
        return limits


class _RunWatchdog:
    """Enforces ``Limits.run_timeout``: a graceful close of every open site, then, after
    ``stop_grace``, a forced stop of the reactor."""

    def __init__(self, crawlers: list[tuple[Crawler, Any]], limits: Limits) -> None:
        from twisted.internet import reactor  # imported late: the process installs it

        self.crawlers = [c for c, _ in crawlers]
        self.handles = {id(c): handle for c, handle in crawlers}
        """What ``process.crawl`` returned per crawler: a task (or Deferred) to cancel."""
        self.limits = limits
        self.closed: set[int] = set()
        for crawler in self.crawlers:
            crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)
        self.calls: list[IDelayedCall] = [
            reactor.callLater(limits.run_timeout, self.close_all),
            reactor.callLater(limits.run_timeout + limits.stop_grace, self.force_stop),
        ]

    def spider_closed(self, spider: Spider, reason: str) -> None:
        self.closed.add(id(spider.crawler))

    def open_crawlers(self) -> list[Crawler]:
        return [c for c in self.crawlers if id(c) not in self.closed]

    def close_all(self) -> None:
        still = self.open_crawlers()
        if not still:
            return
        logger.warning(
            "run time limit (%ss) reached: closing %d sites: %s",
            self.limits.run_timeout,
            len(still),
            ", ".join(c.spidercls.name for c in still),
        )
        for crawler in still:
            spider = getattr(crawler, "spider", None)
            try:
                engine = crawler.engine
            except RuntimeError:
                continue  # not started yet; the forced stop covers it
            if spider is None or engine.spider is None:
                continue
            d = deferred_from_coro(engine.close_spider_async(reason="run_timeout"))
            d.addErrback(lambda f: logger.error("closing a site failed: %s", f.value))

    def force_stop(self) -> None:

        still = self.open_crawlers()
        if still:
            logger.error(
                "sites still open %ss after the run time limit, stopping by force: %s",
                self.limits.stop_grace,
                ", ".join(c.spidercls.name for c in still),
            )
        for crawler in still:
            if crawler.spider is not None:
                crawler.stats.set_value("finish_reason", "run_timeout_forced")
                recorder = crawler.get_extension(RunRecorder)
                if recorder is not None:
                    recorder.spider_closed(crawler.spider, "run_timeout_forced")
            # Abandon the crawl: the process stops waiting for it (its downloads still
            # pending are dropped with the reactor).
            self.closed.add(id(crawler))
            handle = self.handles.get(id(crawler))
            if handle is not None:
                handle.cancel()
        Connection.flush_all()

    def cancel(self) -> None:
        for call in self.calls:
            if call.active():
                call.cancel()


def crawl_sites(
    process: CrawlerProcessBase,
    sites: list[Site],
    spider_classes: dict[str, type],
    *,
    limits: Limits | None = None,
    progress: TextIO | None = None,
    progress_interval: float = 5.0,
) -> tuple[list[SiteResult], float]:
    """Crawl ``sites`` concurrently in ``process``; block until all finish.

    ``spider_classes`` maps a kind to its generic spider class; ``limits`` bounds each site
    and the whole run; with a ``progress`` stream, a ``RunProgress`` writes to it every
    ``progress_interval`` seconds. Returns one result per site (in the order given) and the
    wall time in seconds.
    """
    limits = limits or Limits()
    crawlers: list[tuple[Site, Crawler]] = []
    handles: list[tuple[Crawler, Any]] = []
    for site in sites:
        crawler = process.create_crawler(site_spider_class(spider_classes[site.kind], site))
        if limits.site_timeout > 0:
            crawler.settings.set("CLOSESPIDER_TIMEOUT", limits.site_timeout, priority="cmdline")
        handles.append((crawler, process.crawl(crawler)))
        crawlers.append((site, crawler))
    watchdog = _RunWatchdog(handles, limits) if limits.run_timeout > 0 else None
    ticker = None
    if progress is not None:
        ticker = RunProgress([c for _, c in crawlers], interval=progress_interval, stream=progress)
        ticker.start()
    started = time.monotonic()
    try:
        process.start()
    finally:
        if watchdog is not None:
            watchdog.cancel()
        if ticker is not None:
            ticker.stop()
    elapsed = time.monotonic() - started
    results = []
    for site, crawler in crawlers:
        try:
            stats = dict(crawler.stats.get_stats())
        except RuntimeError:  # the crawl never started: no stats collector
            stats = {}
        results.append(SiteResult(site.name, stats))
    return results, elapsed


def exit_code(results: list[SiteResult]) -> int:
    """``EXIT_OK`` when every site is fine, else ``EXIT_FAILED``."""
    return EXIT_OK if all(r.ok for r in results) else EXIT_FAILED


class _SiteField(logging.Filter):
    """Adds ``%(site)s`` (``[name] `` of the record's spider, or nothing) to records."""

    def filter(self, record: logging.LogRecord) -> bool:
        spider = getattr(record, "spider", None)
        record.site = f"[{spider.name}] " if getattr(spider, "name", None) else ""
        return True


def default_log_file(db_path: str | Path) -> Path:
    """``data/logs/crawlall.log`` for ``data/news.db``: the logs live next to the database."""
    return Path(db_path).parent / "logs" / "crawlall.log"


def add_rotating_log(
    path: str | Path, *, level: str | int, max_bytes: int, backups: int
) -> logging.Handler:
    """Send every log record of the process at ``level`` and above to ``path``, rotated at
    ``max_bytes`` with ``backups`` old files (``crawlall.log.1`` ...). Returns the handler
    (remove it with ``logging.root.removeHandler``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
    )
    handler.setLevel(level)
    handler.addFilter(_SiteField())
    handler.setFormatter(
        logging.Formatter(
            "%(asctime)s [%(name)s] %(levelname)s: %(site)s%(message)s", "%Y-%m-%d %H:%M:%S"
        )
    )
    logging.root.addHandler(handler)
    return handler
