"""A worker's ``runs`` rows: each finished site crawl is reported through the writer's queue,
and ``scrapy ingest`` records it in the ``runs`` table like a single-machine run."""

from __future__ import annotations

import logging
import os
import socket
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.exceptions import NotConfigured

from crawler.anomaly import RunFigures, status_problems
from crawler.config import get_bool
from crawler.distributed.config import DistributedConfig, distributed, worker_id
from crawler.distributed.queue import ItemQueue, encode_run
from crawler.items import utcnow

if TYPE_CHECKING:
    from typing import Self

    from scrapy import Spider
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)


def run_report(
    stats: dict[str, Any], *, spider: str, site: str, started_at: str, status: str
) -> dict[str, Any]:
    """What the writer stores for a worker's site crawl (``SqliteRuns.record``)."""
    problems = status_problems(RunFigures.from_stats(stats, status=status))
    return {
        "spider": spider,
        "site": site,
        "started_at": started_at,
        "finished_at": utcnow(),
        "status": status,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "stats": {**stats, "run/problems": problems},
        "problems": problems,
    }


class RunReporter:
    """``RunRecorder``'s counterpart on a distributed worker (which has no database): the run
    is judged by its own figures (close reason, errors logged; a worker sees only its share
    of a site, so the checks against the site's history are not made), the verdict is set in
    ``run/problems`` for crawlall's summary and exit code, and the report is pushed for the
    writer to insert into ``runs``."""

    def __init__(self, crawler: Crawler, queue: ItemQueue) -> None:
        self.crawler = crawler
        self.queue = queue
        self.started_at: str | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        if not get_bool(crawler.settings, "RUNS_ENABLED"):
            raise NotConfigured("RUNS_ENABLED is off")
        if not distributed(crawler.settings):
            raise NotConfigured("REDIS_URL is not set")
        config = DistributedConfig.from_settings(crawler.settings)
        ext = cls(crawler, ItemQueue.from_config(config))
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def spider_opened(self, spider: Spider) -> None:
        self.started_at = utcnow()

    def spider_closed(self, spider: Spider, reason: str) -> None:
        import redis  # late import: loaded already by the connection

        stats = dict(self.crawler.stats.get_stats())
        stats.setdefault("finish_reason", reason)
        site = getattr(spider, "site", None)
        report = run_report(
            stats,
            spider=getattr(spider, "kind", "") or spider.name,
            site=site.name if site else spider.name,
            started_at=self.started_at or utcnow(),
            status=reason,
        )
        self.crawler.stats.set_value("run/problems", report["problems"])
        for problem in report["problems"]:
            logger.warning("%s: %s", report["site"], problem, extra={"spider": spider})
        try:
            self.queue.push_run(encode_run(report, worker=worker_id()))
        except redis.RedisError as exc:
            logger.warning("run of %s not reported to the writer: %s", report["site"], exc)
