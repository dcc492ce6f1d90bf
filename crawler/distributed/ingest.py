"""The writer of the distributed mode (``scrapy ingest``): drains the workers' items from Redis
through the dedupe and store steps into the SQLite file, acknowledging only what is committed."""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import scrapy
from itemadapter import ItemAdapter
from scrapy import signals
from scrapy.exceptions import CloseSpider
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet import defer, task

from crawler.config import read_config, setting
from crawler.distributed.config import WRITER, DistributedConfig
from crawler.distributed.queue import BadPayload, ItemQueue, decode_item
from crawler.distributed.shared import url_key_value
from crawler.storage.articles import SqliteArticles
from crawler.storage.connection import Connection
from crawler.storage.errors import ArchiveError, database_failures, note_failure
from crawler.storage.incremental import SqliteUrlMemory
from crawler.storage.runs import SqliteRuns
from crawler.urls import url_keys

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from typing import Self

    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestConfig:
    """``INGEST_*`` settings and the command's options."""

    db_path: str = setting("DB_PATH")
    batch_size: int = setting("INGEST_BATCH_SIZE")
    """Items taken, processed and committed together (one acknowledgement)."""
    poll_interval: float = setting("INGEST_POLL_INTERVAL")
    """Seconds between looks at an empty queue."""
    until_empty: bool = setting("INGEST_UNTIL_EMPTY")
    """Stop once the queue has been empty for ``idle`` seconds (else run until stopped)."""
    idle: float = setting("INGEST_IDLE")

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.poll_interval <= 0 or self.idle < 0:
            raise ValueError(
                "INGEST_BATCH_SIZE must be >= 1, INGEST_POLL_INTERVAL > 0, --idle >= 0"
            )


@dataclass
class _Batch:
    """Entries taken from the queue, and which of their items are done."""

    payloads: list[bytes]
    again: bool
    waiting: dict[int, bytes] = field(default_factory=dict)
    """id(item) -> payload, for items in the pipelines."""
    done: list[tuple[bytes, Any]] = field(default_factory=list)
    """(payload, item or None) finished well: stored, recorded, or recognised as recorded."""
    failed: int = 0
    all_given: bool = False
    """Every item of the batch is in the pipelines (or done already)."""
    all_done: defer.Deferred[None] = field(default_factory=defer.Deferred)

    def finish(self, item: Any, *, ok: bool) -> None:
        payload = self.waiting.pop(id(item), None)
        if payload is None:
            return
        if ok:
            self.done.append((payload, item))
        else:
            self.failed += 1
        self._check()

    def _check(self) -> None:
        if self.all_given and not self.waiting and not self.all_done.called:
            self.all_done.callback(None)


class IngestSpider(scrapy.Spider):
    """Yields the queued items to the item pipelines, which are only the dedupe step and the
    store step here: the workers validated, cleaned and tagged them.

    One batch at a time: take up to ``INGEST_BATCH_SIZE`` entries into the processing list,
    pass their items through the pipelines, commit, publish their URL keys for the workers'
    incremental skip, then drop the entries from the processing list. A writer killed at
    any point leaves its batch in the processing list; the next one takes it again first,
    and those of its items whose fetch (URL and fetch time) is already in the archive are
    acknowledged without being recorded twice.

    The workers' run reports (``crawler/distributed/runs.py``) come through the same queue
    and are recorded in ``runs``, once each.

    Stats: ``ingest/items``, ``ingest/runs``, ``ingest/taken_again``,
    ``ingest/already_recorded``, ``ingest/unreadable``, ``ingest/batches``,
    ``ingest/url_keys_published``.
    """

    name = "ingest"
    custom_settings: ClassVar[dict[str, Any]] = {
        "DISTRIBUTED_ROLE": WRITER,
        "ITEM_PIPELINES": {
            "pipelines.dedupe.DedupePipeline": 300,
            "pipelines.store.StorePipeline": 500,
        },
        "RUNS_ENABLED": False,  # the writer is not a site: no runs row, no anomaly checks
        "ROBOTSTXT_OBEY": False,  # nothing is downloaded
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ingest: IngestConfig | None = None
        self.queue: ItemQueue | None = None
        self.connection: Connection | None = None
        """The archive, shared with the dedupe and store steps of this process."""
        self.runs: SqliteRuns | None = None
        self.articles: SqliteArticles | None = None
        self.urls: SqliteUrlMemory | None = None
        self.batch: _Batch | None = None
        self.failed: str | None = None
        self._redis_warned = float("-inf")

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> Self:
        spider = super().from_crawler(crawler, *args, **kwargs)
        settings = crawler.settings
        spider.ingest = read_config(IngestConfig, settings)
        spider.queue = ItemQueue.from_config(DistributedConfig.from_settings(settings))
        crawler.signals.connect(spider._scraped, signal=signals.item_scraped)
        crawler.signals.connect(spider._dropped, signal=signals.item_dropped)
        crawler.signals.connect(spider._dropped, signal=signals.item_error)
        return spider

    # -- item outcomes ------------------------------------------------------------------------
    def _scraped(self, item: Any, **kwargs: Any) -> None:
        if self.batch is not None:
            self.batch.finish(item, ok=True)

    def _dropped(self, item: Any, **kwargs: Any) -> None:
        # The store step drops an item only when the database write failed.
        if self.batch is not None:
            self.batch.finish(item, ok=False)

    # -- the loop -----------------------------------------------------------------------------
    async def start(self) -> AsyncIterator[Any]:
        assert self.ingest is not None
        assert self.queue is not None
        self.connection = Connection.for_settings(self.crawler.settings, self.ingest.db_path)
        self.runs = SqliteRuns(self.connection)
        self.articles = SqliteArticles(self.connection)
        self.urls = SqliteUrlMemory(self.connection)
        self.publish_all()
        stats = self.crawler.stats
        empty_since: float | None = None
        while True:
            payloads, again = self._claim()
            if not payloads:
                waiting, processing = self._lengths()
                if waiting < 0 and self.ingest.until_empty:
                    self.failed = "Redis unavailable"
                    stats.set_value("ingest/failed", self.failed)
                    logger.error("ingest: Redis unavailable; stopping")
                    return
                if self.ingest.until_empty and waiting == processing == 0:
                    empty_since = empty_since or time.monotonic()
                    if time.monotonic() - empty_since >= self.ingest.idle:
                        logger.info("ingest: the queue is empty; stopping")
                        return
                await _sleep(self.ingest.poll_interval)
                continue
            empty_since = None
            batch = self.batch = _Batch(payloads, again)
            if again:
                stats.inc_value("ingest/taken_again", len(payloads))
                logger.info(
                    "ingest: %d entries left by a previous writer taken again", len(payloads)
                )
            for payload in payloads:
                item = self._item(payload, batch)
                if item is not None:
                    batch.waiting[id(item)] = payload
                    yield item
            batch.all_given = True
            batch._check()
            await maybe_deferred_to_future(batch.all_done)
            if batch.failed or self.failed:
                # Not acknowledged: the whole batch is taken again by the next writer (a
                # failed write rolls back the archive's open transaction, maybe more of it).
                self.failed = self.failed or f"{batch.failed} items of a batch not stored"
                stats.set_value("ingest/failed", self.failed)
                logger.error(
                    "ingest: %d items of the batch not stored; stopping (they stay queued)",
                    batch.failed,
                )
                return
            self._commit(batch)
            self.queue.ack(len(payloads))
            self.batch = None
            stats.inc_value("ingest/batches")

    def _claim(self) -> tuple[list[bytes], bool]:
        import redis  # late import: loaded already by the connection

        assert self.queue is not None
        assert self.ingest is not None
        try:
            batch = self.queue.claim(self.ingest.batch_size)
        except redis.RedisError as exc:
            # A service waits for Redis to come back (saying so once a minute).
            now = time.monotonic()
            if now - self._redis_warned >= 60:
                self._redis_warned = now
                logger.warning("ingest: Redis unavailable (%s); trying again", exc)
            return [], False
        self._redis_warned = float("-inf")
        return batch

    def _lengths(self) -> tuple[int, int]:
        import redis

        assert self.queue is not None
        try:
            return self.queue.lengths()
        except redis.RedisError:
            return -1, -1

    def _item(self, payload: bytes, batch: _Batch) -> Any | None:
        """The item of an entry, or ``None`` when it is done already (unreadable entries are
        set aside; an item whose fetch is already in the archive is not recorded again)."""
        assert self.queue is not None
        assert self.runs is not None
        assert self.articles is not None
        stats = self.crawler.stats
        try:
            delivery = decode_item(payload)
        except BadPayload as exc:
            logger.error("ingest: unreadable queue entry set aside (%s)", exc)
            stats.inc_value("ingest/unreadable")
            self.queue.bury(payload)
            batch.done.append((payload, None))
            return None
        if delivery.run is not None:
            if self.runs.record(delivery.run) is not None:
                stats.inc_value("ingest/runs")
            batch.done.append((payload, None))
            return None
        item = delivery.item
        assert item is not None
        stats.inc_value("ingest/items")
        # Only an entry taken again can be in the archive already: a writer stopped between
        # its commit and its acknowledgement. (Two sites may fetch one URL in the same
        # second: for first deliveries that is a sighting, recorded as such.)
        if batch.again and self.articles.sighting_recorded(item.url, item.fetched_at):
            stats.inc_value("ingest/already_recorded")
            logger.debug("ingest: %s (fetched %s) already recorded", item.url, item.fetched_at)
            batch.done.append((payload, item))
            return None
        return item

    def _commit(self, batch: _Batch) -> None:
        """Commit the archive's open batch, then publish the batch's URL keys."""
        assert self.connection is not None
        assert self.queue is not None
        try:
            self.connection.flush()
        except (sqlite3.Error, ArchiveError) as exc:
            self.failed = note_failure(self.connection.path, exc)
            self.crawler.stats.set_value("ingest/failed", self.failed)
            logger.error("ingest: commit failed: %s; stopping (the batch stays queued)", exc)
            raise CloseSpider("database_error") from None
        assert self.urls is not None
        values: dict[str, str] = {}
        for _, item in batch.done:
            if item is None:
                continue
            adapter = ItemAdapter(item)
            for key in url_keys(
                adapter["url"], adapter.get("canonical_url"), adapter.get("request_url")
            ):
                seen = self.urls.seen(key)
                if seen is not None:
                    values[key] = url_key_value(*seen)
        self.queue.publish(values)
        self.crawler.stats.inc_value("ingest/url_keys_published", len(values))

    def publish_all(self) -> int:
        """Publish every URL key of the archive (replacing the workers' pending marks)."""
        assert self.urls is not None
        assert self.queue is not None
        started = time.monotonic()
        count = 0
        for rows in self.urls.all_keys():
            self.queue.publish({key: url_key_value(aid, last) for key, aid, last in rows})
            count += len(rows)
        logger.info(
            "ingest: %d stored URL keys published in %.1f s", count, time.monotonic() - started
        )
        return count

    def closed(self, reason: str) -> None:
        """Stopped mid-batch (Ctrl-C, SIGTERM): acknowledge what is committed; the rest of
        the batch stays in the processing list for the next writer."""
        import redis  # late import: loaded already by the connection

        batch, self.batch = self.batch, None
        try:
            if batch is not None and batch.done and not self.failed and not database_failures():
                assert self.connection is not None
                assert self.queue is not None
                try:
                    self._commit(batch)
                    self.queue.ack_each([payload for payload, _ in batch.done])
                except CloseSpider:
                    return
                except redis.RedisError as exc:  # committed: recognised when taken again
                    logger.warning("ingest: could not acknowledge the last batch: %s", exc)
                    return
                logger.info(
                    "ingest: stopped mid-batch: %d of %d entries committed and acknowledged",
                    len(batch.done),
                    len(batch.payloads),
                )
        finally:
            if self.connection is not None:
                self.connection.release()
                self.connection = self.runs = self.articles = self.urls = None


async def _sleep(seconds: float) -> None:
    from twisted.internet import reactor  # late import: the one Scrapy installed

    await maybe_deferred_to_future(task.deferLater(reactor, seconds, lambda: None))
