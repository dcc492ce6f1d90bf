"""Scrapy extensions: the ``runs`` table row of every crawl, per-crawler log counts, the
start-up objects kept out of the garbage collector's walks."""

from __future__ import annotations

import gc
import logging
import sqlite3
from typing import TYPE_CHECKING, Any, ClassVar

from scrapy import signals
from scrapy.exceptions import NotConfigured

from crawler.anomaly import AnomalyConfig, RunFigures, run_problems, status_problems
from crawler.config import db_path_for, get_bool
from crawler.storage.runs import SqliteRuns

if TYPE_CHECKING:
    from typing import Self

    from scrapy import Spider
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)


class RunRecorder:
    """Opens a ``runs`` row (status ``running``) when a spider opens and closes it with the
    close reason (``finished``, ``shutdown``, ``closespider_timeout``, ...) and the run's
    Scrapy stats when it closes. A row left ``running`` by a killed process is marked
    ``killed`` by the next run on the same host.

    At close it also judges the run (``crawler/anomaly.py``: early close, logged errors,
    figures far from the site's recent history) and records the verdict in ``runs.problems``
    and in the stat ``run/problems`` (a list; empty when the run is healthy)."""

    def __init__(
        self, crawler: Crawler, db_path: str, anomaly: AnomalyConfig | None = None
    ) -> None:
        self.crawler = crawler
        self.db_path = db_path
        self.anomaly = anomaly or AnomalyConfig()
        self.runs: SqliteRuns | None = None
        self.run_id: int | None = None
        self.site: str | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        if not get_bool(crawler.settings, "RUNS_ENABLED"):
            raise NotConfigured("RUNS_ENABLED is off")
        ext = cls(
            crawler,
            db_path_for(crawler.settings),
            AnomalyConfig.from_settings(crawler.settings),
        )
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def spider_opened(self, spider: Spider) -> None:
        self.runs = SqliteRuns.for_settings(self.crawler.settings, self.db_path)
        site = getattr(spider, "site", None)
        kind = getattr(spider, "kind", "") or spider.name
        self.site = site.name if site else spider.name
        self.run_id = self.runs.start(spider=kind, site=self.site)
        self.crawler.stats.set_value("run/id", self.run_id)

    def spider_closed(self, spider: Spider, reason: str) -> None:
        if self.runs is None or self.run_id is None:
            return
        stats = dict(self.crawler.stats.get_stats())
        stats.setdefault("finish_reason", reason)
        try:
            problems = self.problems(stats, reason)
            self.crawler.stats.set_value("run/problems", problems)
            stats["run/problems"] = problems
            self.runs.finish(self.run_id, status=reason, stats=stats, problems=problems)
        except sqlite3.Error as exc:  # a full disk or a lost lock: reported, not a crash
            logger.error("%s: run %s not recorded in %s: %s", self.site, self.run_id,
                         self.runs.path, exc)  # fmt: skip
        finally:
            self.runs.release()
            self.runs = None

    def problems(self, stats: dict[str, Any], reason: str) -> list[str]:
        """Why this run failed, judged against the site's recent runs."""
        seen = self.anomaly.seen_stats
        run = RunFigures.from_stats(stats, status=reason, seen_stats=seen)
        try:
            past = self.runs.recent(
                self.site or "", limit=self.anomaly.history_runs, before_id=self.run_id
            )
        except sqlite3.Error as exc:
            logger.warning("run history of %s unreadable: %s", self.site, exc)
            return status_problems(run)
        history = [
            RunFigures.from_stats(r["stats"], status=r["status"], seen_stats=seen) for r in past
        ]
        problems = run_problems(run, history, self.anomaly)
        for problem in problems:
            logger.warning("%s: %s", self.site, problem, extra={"spider": self.crawler.spider})
        return problems


class SiteLogCount:
    """``log_count/<LEVEL>`` stats like Scrapy's ``LogCount``, but per crawler.

    Scrapy's handler counts every record of the process, so in ``scrapy crawlall`` one
    site's errors would count against all sites. Here a crawler counts the records of its
    own spider (``extra={"spider": ...}``, ``spider.logger``) or its own crawler. Records
    that name neither (module loggers) are counted as usual while this crawler is the only
    one open, and as ``log_count/shared/<LEVEL>`` while several are.

    The first ``FIRST_ERRORS`` ERROR messages it counts are kept in ``log/first_errors``
    (first line, at most ``ERROR_CHARS`` characters): the causes a failed run reports.
    """

    FIRST_ERRORS: ClassVar[int] = 5
    ERROR_CHARS: ClassVar[int] = 200

    _open: ClassVar[set[SiteLogCount]] = set()

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.handler: _CrawlerLogHandler | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        ext = cls(crawler)
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def spider_opened(self, spider: Spider) -> None:
        self.handler = _CrawlerLogHandler(self, level=self.crawler.settings.get("LOG_LEVEL"))
        self._open.add(self)
        logging.root.addHandler(self.handler)

    def spider_closed(self, spider: Spider, reason: str) -> None:
        self._open.discard(self)
        if self.handler is not None:
            logging.root.removeHandler(self.handler)
            self.handler = None


class _CrawlerLogHandler(logging.Handler):
    def __init__(self, owner: SiteLogCount, level: int | str) -> None:
        super().__init__(level)
        self.owner = owner

    def emit(self, record: logging.LogRecord) -> None:
        crawler = self.owner.crawler
        spider = getattr(record, "spider", None)
        source = getattr(record, "crawler", None)
        if spider is not None or source is not None:
            if spider is not crawler.spider and source is not crawler:
                return
            key = f"log_count/{record.levelname}"
        elif len(SiteLogCount._open) <= 1:
            key = f"log_count/{record.levelname}"
        else:
            key = f"log_count/shared/{record.levelname}"
        crawler.stats.inc_value(key)
        if key == "log_count/ERROR":
            first = crawler.stats.get_value("log/first_errors") or []
            if len(first) < SiteLogCount.FIRST_ERRORS:
                crawler.stats.set_value("log/first_errors", [*first, error_cause(record)])


def error_cause(record: logging.LogRecord) -> str:
    """The first line of a logged error, whitespace collapsed, cut to ``ERROR_CHARS``."""
    try:
        message = record.getMessage()
    except (TypeError, ValueError):  # a bad format string: keep the template
        message = str(record.msg)
    line = " ".join((message.strip().splitlines() or [""])[0].split())
    limit = SiteLogCount.ERROR_CHARS
    return line if len(line) <= limit else line[: limit - 3] + "..."


class FreezeStartup:
    """Once the spider is open, the objects built so far (modules, settings, compiled rules,
    the crawler's components) are moved out of the cyclic garbage collector's walks
    (``gc.freeze``): they live as long as the crawl, and each full collection of the crawler
    process walked them all again, about half of its collection time. What the crawl
    allocates is collected as before. They are handed back when the spider closes, so the
    next crawl of a ``crawlall`` run can collect them."""

    def __init__(self) -> None:
        self.frozen = 0

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        ext = cls()
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def spider_opened(self, spider: Spider) -> None:
        gc.collect()
        gc.freeze()
        self.frozen = gc.get_freeze_count()

    def spider_closed(self, spider: Spider) -> None:
        if self.frozen:
            gc.unfreeze()
            self.frozen = 0
