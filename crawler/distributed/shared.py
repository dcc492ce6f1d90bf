"""What workers remember together, in Redis instead of the SQLite file: the stored URL keys
(incremental crawl), the sources' validators and bodies (conditional GET) and the lines each
domain repeats (learned boilerplate). The SQLite file stays the writer's alone.

Each store implements the protocol of ``crawler/storage/protocols.py`` that its SQLite
counterpart implements (``UrlMemory``, ``HttpCache``, ``BoilerplateStore``), and each worker
component here is the single-machine one with ``open_store`` opening the Redis store."""

from __future__ import annotations

import hashlib
import logging
import zlib
from typing import TYPE_CHECKING

from crawler.distributed.config import DistributedConfig, connect, worker_id
from crawler.items import utcnow
from crawler.middlewares.incremental import ConditionalGetMiddleware, SkipStoredMiddleware
from crawler.urls import url_key
from pipelines.clean import CleanPipeline

if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Self

    import redis
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from scrapy.settings import BaseSettings

    from crawler.storage.protocols import CachedSource

logger = logging.getLogger(__name__)

PENDING = b"pending"
"""URL-key value between a worker's push and the writer's commit."""


def _digest(text: str, size: int = 16) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:size]  # noqa: S324 - a key


def url_key_value(article_id: int, last_seen: str | None) -> str:
    """The value of a stored URL key in the shared hash."""
    return f"{article_id}|{last_seen or ''}"


def parse_url_key_value(value: bytes) -> tuple[int, str | None]:
    """``(article_id, last_seen)`` of a shared URL-key value; ``(0, now)`` while pending."""
    if value == PENDING:
        return 0, utcnow()
    article_id, _, last_seen = value.decode().partition("|")
    return int(article_id or 0), last_seen or None


class _RedisStore:
    """Base of the Redis stores: the server and the key names (``DistributedConfig``)."""

    def __init__(self, server: redis.Redis, config: DistributedConfig) -> None:
        self.server = server
        self.config = config

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> Self:
        config = DistributedConfig.from_settings(settings)
        return cls(connect(config.redis_url), config)

    def release(self) -> None:
        """Nothing to give back: the process's Redis client stays open."""


class RedisUrlMemory(_RedisStore):
    """``UrlMemory`` in the ``<prefix>:urlkeys`` hash (URL key -> ``id|last_seen``), filled by
    the writer from the archive, and marked ``pending`` by the worker that pushes an item, so
    no worker fetches it again while it waits for the writer."""

    def seen(self, key: str) -> tuple[int, str | None] | None:
        value = self.server.hget(self.config.url_keys_key, key)
        return None if value is None else parse_url_key_value(value)

    def claim(self, key: str) -> bool:
        """Take the article URL ``key`` for this worker's crawl; ``False`` when another site
        or worker took it in the last ``DISTRIBUTED_RUN_TTL`` seconds (it is being fetched,
        or was fetched and failed or was dropped: tried again after that)."""
        return bool(
            self.server.set(
                self.config.key("claim", key), worker_id(), nx=True, ex=int(self.config.run_ttl)
            )
        )


class RedisHttpCache(_RedisStore):
    """``HttpCache`` in ``<prefix>:http:<sha1(url)>`` hashes, expiring after
    ``DISTRIBUTED_HTTP_CACHE_DAYS``."""

    def _key(self, url: str) -> str:
        return self.config.key("http", _digest(url, 40))

    def get(self, url: str) -> CachedSource | None:
        row = self.server.hgetall(self._key(url))
        if not row or row.get(b"url", b"").decode() != url:
            return None

        def text(name: bytes) -> str | None:
            value = row.get(name)
            return value.decode("utf-8") if value else None

        body = row.get(b"body")
        return {
            "etag": text(b"etag"),
            "last_modified": text(b"last_modified"),
            "content_type": text(b"content_type"),
            "body": zlib.decompress(body) if body else None,
            "fetched_at": text(b"fetched_at"),
        }

    def put(
        self,
        url: str,
        *,
        etag: str | None,
        last_modified: str | None,
        content_type: str | None,
        body: bytes,
    ) -> None:
        key = self._key(url)
        now = utcnow()
        fields = {
            "url": url,
            "etag": etag or "",
            "last_modified": last_modified or "",
            "content_type": content_type or "",
            "body": zlib.compress(body, 6),
            "fetched_at": now,
            "checked_at": now,
        }
        pipe = self.server.pipeline()
        pipe.delete(key)
        pipe.hset(key, mapping=fields)
        pipe.expire(key, int(self.config.http_cache_days * 86400))
        pipe.execute()

    def checked(self, url: str) -> None:
        key = self._key(url)
        pipe = self.server.pipeline()
        pipe.hset(key, "checked_at", utcnow())
        pipe.expire(key, int(self.config.http_cache_days * 86400))
        pipe.execute()

    def forget(self, url: str) -> None:
        self.server.delete(self._key(url))


class RedisBoilerplate(_RedisStore):
    """``BoilerplateStore`` in ``<prefix>:bp:<domain>:<line hash>`` sets of (hashed) story
    keys, expiring ``DISTRIBUTED_BOILERPLATE_DAYS`` after the line was last recorded. A worker
    has no archive: no stored headlines, and stories are keyed by their cleaned text."""

    def titles(self, domain: str, *, limit: int) -> list[str]:
        return []

    def story_for_url(self, url: str) -> int | None:
        return None

    def _key(self, domain: str, line_hash: str) -> str:
        return self.config.key("bp", domain, line_hash)

    def frequent(self, domain: str, line_hashes: Iterable[str], *, min_articles: int) -> set[str]:
        hashes = list(dict.fromkeys(line_hashes))
        if not hashes:
            return set()
        pipe = self.server.pipeline(transaction=False)
        for h in hashes:
            pipe.scard(self._key(domain, h))
        return {h for h, n in zip(hashes, pipe.execute(), strict=True) if n >= min_articles}

    def record(self, domain: str, article_key: str, lines: dict[str, str], *, cap: int) -> None:
        if not lines:
            return
        frequent = self.frequent(domain, lines, min_articles=cap)
        member = _digest(article_key)
        ttl = int(self.config.boilerplate_days * 86400)
        pipe = self.server.pipeline(transaction=False)
        for h in lines:
            if h in frequent:
                continue
            key = self._key(domain, h)
            pipe.sadd(key, member)
            pipe.expire(key, ttl)
        pipe.execute()


class SharedSkipStoredMiddleware(SkipStoredMiddleware):
    """``SkipStoredMiddleware`` asking the shared URL keys (stored or pending) in Redis, and
    claiming each article URL it lets through: a page linked by several sites is fetched by
    one of them (each site has its own frontier and duplicate filter).

    Stats: ``distributed/claimed_elsewhere`` (not requested: another site has it).
    """

    shared: RedisUrlMemory

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        mw = super().from_crawler(crawler)
        mw.shared = RedisUrlMemory.from_settings(crawler.settings)
        return mw

    def open_store(self) -> RedisUrlMemory:
        return self.shared

    def get_processed_request(self, request: Request, response: Response | None) -> Request | None:
        passed = super().get_processed_request(request, response)
        meta = request.meta
        if passed is None or not meta.get("article") or not meta.get("incremental", True):
            return passed
        if self.shared.claim(url_key(request.url)):
            return passed
        self.crawler.stats.inc_value("distributed/claimed_elsewhere")
        logger.debug("skipped %s: another site or worker fetches it", request.url)
        if callable(give_back := getattr(self.crawler.spider, "article_skipped", None)):
            give_back()
        return None


class SharedConditionalGetMiddleware(ConditionalGetMiddleware):
    """``ConditionalGetMiddleware`` with the sources' validators and bodies in Redis."""

    shared: RedisHttpCache

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        mw = super().from_crawler(crawler)
        mw.shared = RedisHttpCache.from_settings(crawler.settings)
        return mw

    def open_store(self) -> RedisHttpCache:
        return self.shared


class SharedCleanPipeline(CleanPipeline):
    """``CleanPipeline`` learning each domain's boilerplate together with the other workers,
    in Redis (``CLEAN_LEARN = False`` still turns learning off)."""

    shared: RedisBoilerplate

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        pipeline = super().from_crawler(crawler)
        pipeline.shared = RedisBoilerplate.from_settings(crawler.settings)
        return pipeline

    def open_store(self) -> RedisBoilerplate:
        return self.shared
