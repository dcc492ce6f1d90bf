"""The reliable item queue between the workers and the one writer: workers ``RPUSH`` finished
items; the writer moves them into a processing list and removes them only once committed."""

from __future__ import annotations

import json
import logging
import uuid
import zlib
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from itemadapter import ItemAdapter
from scrapy.exceptions import DropItem, NotConfigured

from crawler.config import get_bool
from crawler.distributed.config import DistributedConfig, connect, distributed, worker_id
from crawler.distributed.shared import PENDING
from crawler.items import ArticleItem
from crawler.urls import url_keys

if TYPE_CHECKING:
    from typing import Self

    import redis
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

PAYLOAD_VERSION = 1
_ITEM_FIELDS = frozenset(f.name for f in fields(ArticleItem))


class BadPayload(ValueError):
    """A queue entry that is not an item this version can read."""


@dataclass(frozen=True)
class Delivery:
    """One queue entry as the writer received it: an item, or a worker's run report."""

    payload: bytes
    item: ArticleItem | None
    id: str
    """Set by the worker at push: the same id on a redelivery."""
    worker: str
    run: dict[str, Any] | None = None
    """A finished site crawl of a worker, for the ``runs`` table."""


def _envelope(worker: str, **body: Any) -> bytes:
    envelope = {
        "v": PAYLOAD_VERSION,
        "id": uuid.uuid4().hex,
        "worker": worker,
        "pushed_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
        **body,
    }
    data = json.dumps(envelope, ensure_ascii=False, default=str).encode("utf-8")
    return zlib.compress(data, 3)


def encode_item(item: Any, *, worker: str, keep_html: bool = True) -> bytes:
    """The queue payload of an item: zlib-compressed JSON with a delivery id."""
    data = ItemAdapter(item).asdict()
    if not keep_html:
        data.pop("html", None)
    return _envelope(worker, item=data)


def encode_run(run: dict[str, Any], *, worker: str) -> bytes:
    """The queue payload of a worker's finished site crawl (``SqliteRuns.record`` keys)."""
    return _envelope(worker, run=run)


def decode_item(payload: bytes) -> Delivery:
    """The delivery in a queue payload; ``BadPayload`` when it cannot be read."""
    try:
        envelope = json.loads(zlib.decompress(payload))
    except (zlib.error, ValueError) as exc:
        raise BadPayload(f"not a queue payload: {exc}") from None
    if not isinstance(envelope, dict):
        raise BadPayload("not a queue payload: not an object")
    if envelope.get("v") != PAYLOAD_VERSION:
        raise BadPayload(f"unknown payload version {envelope.get('v')!r}")
    ident, worker = str(envelope.get("id", "")), str(envelope.get("worker", ""))
    run = envelope.get("run")
    if run is not None:
        if not isinstance(run, dict) or not run.get("site") or not run.get("started_at"):
            raise BadPayload("run report without its site or start")
        return Delivery(payload, None, ident, worker, run=run)
    data = envelope.get("item")
    if not isinstance(data, dict) or not data.get("url"):
        raise BadPayload("payload without an item URL")
    unknown = set(data) - _ITEM_FIELDS
    if unknown:
        logger.warning("item fields unknown to this version dropped: %s", sorted(unknown))
    item = ArticleItem(**{k: v for k, v in data.items() if k in _ITEM_FIELDS})
    return Delivery(payload, item, ident, worker)


class ItemQueue:
    """``<prefix>:items`` (waiting), ``<prefix>:items:processing`` (taken by the writer, not
    yet committed) and ``<prefix>:items:dead`` (unreadable entries, kept for inspection).

    There is one writer (it holds the database's lock), so the processing list is its own:
    entries found there when it starts are what a killed writer had taken, taken again first.
    """

    def __init__(self, server: redis.Redis, config: DistributedConfig) -> None:
        self.server = server
        self.config = config

    @classmethod
    def from_config(cls, config: DistributedConfig) -> Self:
        return cls(connect(config.redis_url), config)

    def push(self, payload: bytes, keys: list[str]) -> None:
        """Queue an item and mark its URL keys pending (one transaction)."""
        pipe = self.server.pipeline()
        pipe.rpush(self.config.items_key, payload)
        for key in keys:
            pipe.hsetnx(self.config.url_keys_key, key, PENDING)
        pipe.execute()

    def push_run(self, payload: bytes) -> None:
        """Queue a worker's run report (the writer records it in ``runs``)."""
        self.server.rpush(self.config.items_key, payload)

    def claim(self, count: int) -> tuple[list[bytes], bool]:
        """Up to ``count`` entries to process, oldest first, and whether they are taken again
        (left in the processing list by a writer that stopped before committing them)."""
        held = self.server.lrange(self.config.processing_key, 0, count - 1)
        if held:
            return held, True
        pipe = self.server.pipeline(transaction=False)
        for _ in range(count):
            pipe.lmove(self.config.items_key, self.config.processing_key, "LEFT", "RIGHT")
        return [p for p in pipe.execute() if p is not None], False

    def ack(self, count: int) -> None:
        """The first ``count`` entries of the processing list are committed: drop them."""
        self.server.ltrim(self.config.processing_key, count, -1)

    def ack_each(self, payloads: list[bytes]) -> None:
        """Drop these entries of the processing list (a batch cut short)."""
        pipe = self.server.pipeline()
        for payload in payloads:
            pipe.lrem(self.config.processing_key, 1, payload)
        pipe.execute()

    def bury(self, payload: bytes) -> None:
        """Keep an unreadable entry aside (``<prefix>:items:dead``)."""
        self.server.rpush(self.config.dead_key, payload)

    def publish(self, values: dict[str, str]) -> None:
        """Set stored URL keys (key -> ``id|last_seen``) for the workers' incremental skip."""
        if values:
            self.server.hset(self.config.url_keys_key, mapping=values)

    def lengths(self) -> tuple[int, int]:
        """``(waiting, processing)``."""
        pipe = self.server.pipeline(transaction=False)
        pipe.llen(self.config.items_key)
        pipe.llen(self.config.processing_key)
        waiting, processing = pipe.execute()
        return int(waiting), int(processing)


class PushPipeline:
    """Worker side of the writer's queue (last step, 500): each finished item (validated,
    cleaned, tagged) is pushed to Redis for ``scrapy ingest``, which dedupes and stores it.
    Its URL keys are marked pending at once, so other workers do not fetch it again.

    Stats: ``distributed/pushed``, ``distributed/pushed_bytes``, ``distributed/push_failed``.
    """

    def __init__(self, crawler: Crawler, queue: ItemQueue, *, keep_html: bool) -> None:
        self.crawler = crawler
        self.queue = queue
        self.keep_html = keep_html

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        if not distributed(crawler.settings):
            raise NotConfigured("REDIS_URL is not set")
        config = DistributedConfig.from_settings(crawler.settings)
        return cls(
            crawler,
            ItemQueue.from_config(config),
            keep_html=get_bool(crawler.settings, "STORE_KEEP_HTML"),
        )

    def close_spider(self) -> None:
        logger.info(
            "pushed %d items (%d bytes) for the writer",
            self.crawler.stats.get_value("distributed/pushed", 0),
            self.crawler.stats.get_value("distributed/pushed_bytes", 0),
        )

    def process_item(self, item: Any) -> Any:
        import redis  # late import: loaded already by the connection

        adapter = ItemAdapter(item)
        payload = encode_item(item, worker=worker_id(), keep_html=self.keep_html)
        keys = url_keys(adapter["url"], adapter.get("canonical_url"), adapter.get("request_url"))
        stats = self.crawler.stats
        try:
            self.queue.push(payload, keys)
        except redis.RedisError as exc:
            stats.inc_value("distributed/push_failed")
            raise DropItem(f"not pushed to the writer's queue ({exc}): {adapter['url']}") from exc
        stats.inc_value("distributed/pushed")
        stats.inc_value("distributed/pushed_bytes", len(payload))
        logger.debug("pushed %s (%d bytes)", adapter["url"], len(payload))
        return item
