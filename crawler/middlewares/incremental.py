"""Incremental crawl: article pages already in the archive are not requested again, and feeds,
sitemaps and listing pages are fetched with conditional GET (an unchanged one costs a 304)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Generic, TypeVar

from scrapy import signals
from scrapy.exceptions import NotConfigured
from scrapy.http import Headers
from scrapy.responsetypes import responsetypes
from scrapy.spidermiddlewares.base import BaseSpiderMiddleware

from crawler.config import get_bool, read_config, setting
from crawler.storage.incremental import SqliteHttpCache, SqliteUrlMemory
from crawler.urls import url_key

if TYPE_CHECKING:
    from typing import Self

    from scrapy import Request, Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from scrapy.settings import BaseSettings

    from crawler.storage.protocols import HttpCache, UrlMemory

logger = logging.getLogger(__name__)

Store = TypeVar("Store", "UrlMemory", "HttpCache")

_VALIDATOR_HEADERS = (b"If-None-Match", b"If-Modified-Since")


@dataclass(frozen=True)
class IncrementalConfig:
    """The incremental crawl's settings, read once."""

    db_path: str = setting("DB_PATH")
    revisit_days: float = setting("INCREMENTAL_REVISIT_DAYS")
    """Re-fetch a stored article last seen this many days ago (0: never)."""
    conditional_get: bool = setting("INCREMENTAL_CONDITIONAL_GET")
    """Send If-None-Match / If-Modified-Since for sources and replay the stored copy on 304."""
    cache_max_bytes: int = setting("INCREMENTAL_CACHE_MAX_BYTES")
    """Larger source bodies are not stored (and so always fetched in full)."""

    def __post_init__(self) -> None:
        if self.revisit_days < 0 or self.cache_max_bytes < 0:
            raise ValueError("INCREMENTAL_REVISIT_DAYS and INCREMENTAL_CACHE_MAX_BYTES >= 0")

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> IncrementalConfig:
        return read_config(cls, settings)


def revisit_due(last_seen: str | None, revisit_days: float, *, now: datetime | None = None) -> bool:
    """Whether a stored article last seen at ``last_seen`` (ISO 8601) is due for a re-fetch.
    Never with ``revisit_days`` 0; always when the last sighting is unknown."""
    if revisit_days <= 0:
        return False
    if not last_seen:
        return True
    try:
        seen = datetime.fromisoformat(last_seen)
    except ValueError:
        return True
    if seen.tzinfo is None:
        seen = seen.replace(tzinfo=UTC)
    return (now or datetime.now(UTC)) - seen >= timedelta(days=revisit_days)


class _StoreUser(Generic[Store]):
    """Holds its store between spider open and close: ``open_store`` opens it in the archive
    of ``DB_PATH`` (on the connection the process shares); a distributed worker's
    subclasses open it in Redis."""

    def __init__(self, crawler: Crawler, config: IncrementalConfig) -> None:
        self.crawler = crawler
        self.config = config
        self.store: Store | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        if not get_bool(crawler.settings, "INCREMENTAL_ENABLED"):
            raise NotConfigured("INCREMENTAL_ENABLED is off")
        mw = cls(crawler, IncrementalConfig.from_settings(crawler.settings))
        crawler.signals.connect(mw.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(mw.spider_closed, signal=signals.spider_closed)
        return mw

    def spider_opened(self, spider: Spider) -> None:
        self._store()

    def spider_closed(self, spider: Spider) -> None:
        if self.store is not None:
            self.store.release()
            self.store = None

    def _store(self) -> Store:
        if self.store is None:
            self.store = self.open_store()
        return self.store

    def open_store(self) -> Store:
        raise NotImplementedError


class SkipStoredMiddleware(_StoreUser["UrlMemory"], BaseSpiderMiddleware):
    """Spider middleware: drops article requests (meta ``article=True``) whose URL the
    archive already holds, by canonical key (``crawler.urls.url_key`` in ``url_keys``),
    before they are scheduled, so they are never downloaded. A stored article last seen
    ``INCREMENTAL_REVISIT_DAYS`` ago or more is let through (meta ``incremental_revisit``
    = its id); the dedupe step then keeps a changed text as a new version. Meta
    ``incremental=False`` exempts a request.

    Filtering here rather than raising ``IgnoreRequest`` in the downloader keeps skipped
    pages out of the download statistics: they are not failed downloads.

    Stats: ``incremental/skipped``, ``incremental/revisit``.
    """

    def open_store(self) -> UrlMemory:
        return SqliteUrlMemory.for_settings(self.crawler.settings, self.config.db_path)

    def get_processed_request(self, request: Request, response: Response | None) -> Request | None:
        meta = request.meta
        if not meta.get("article") or not meta.get("incremental", True):
            return request
        seen = self._store().seen(url_key(request.url))
        if seen is None:
            return request
        article_id, last_seen = seen
        stats = self.crawler.stats
        if revisit_due(last_seen, self.config.revisit_days):
            meta["incremental_revisit"] = article_id
            stats.inc_value("incremental/revisit")
            logger.debug("revisiting %s (#%d, last seen %s)", request.url, article_id, last_seen)
            return request
        stats.inc_value("incremental/skipped")
        logger.debug("skipped %s: stored as #%d", request.url, article_id)
        # Not downloaded, so not counted against the site's max_articles.
        if callable(give_back := getattr(self.crawler.spider, "article_skipped", None)):
            give_back()
        return None

    def spider_closed(self, spider: Spider) -> None:
        super().spider_closed(spider)
        stats = self.crawler.stats
        logger.info(
            "incremental: %d stored articles skipped, %d revisited",
            stats.get_value("incremental/skipped", 0),
            stats.get_value("incremental/revisit", 0),
        )


class ConditionalGetMiddleware(_StoreUser["HttpCache"]):
    """Downloader middleware for source requests (meta ``source=True``: feeds, sitemaps,
    listing pages), which are always sent: with the validators (ETag, Last-Modified) of
    the last 200 stored in ``http_cache``. A 304 is answered with the stored copy (status
    200, flag ``not_modified``): the spider reads it as before, the articles it links are
    skipped as stored, and nothing is logged as an error. Rendered (Playwright) requests are
    left alone.

    Stats: ``incremental/conditional`` (validators sent), ``incremental/not_modified``,
    ``incremental/cached`` (validators stored).
    """

    def open_store(self) -> HttpCache:
        return SqliteHttpCache.for_settings(self.crawler.settings, self.config.db_path)

    def process_request(self, request: Request) -> None:
        if not request.meta.get("source") or not self.config.conditional_get:
            return
        if request.meta.get("playwright"):
            return
        # Validators copied from another URL (a redirect keeps the headers) do not apply.
        for name in _VALIDATOR_HEADERS:
            request.headers.pop(name, None)
        request.meta.pop("incremental_conditional", None)
        cached = self._store().get(request.url)
        if cached is None or cached["body"] is None:
            return
        if not (cached["etag"] or cached["last_modified"]):
            return
        if cached["etag"]:
            request.headers[b"If-None-Match"] = cached["etag"]
        if cached["last_modified"]:
            request.headers[b"If-Modified-Since"] = cached["last_modified"]
        request.meta["incremental_conditional"] = True
        self.crawler.stats.inc_value("incremental/conditional")

    def process_response(self, request: Request, response: Response) -> Request | Response:
        if not request.meta.get("source") or not self.config.conditional_get:
            return response
        if response.status == 304 and request.meta.get("incremental_conditional"):
            return self._replay(request, response)
        if response.status == 200 and "not_modified" not in response.flags:
            self._remember(request, response)
        return response

    def _remember(self, request: Request, response: Response) -> None:
        etag = _header(response, b"ETag")
        last_modified = _header(response, b"Last-Modified")
        cache = self._store()
        if not (etag or last_modified) or len(response.body) > self.config.cache_max_bytes:
            if request.meta.get("incremental_conditional"):
                cache.forget(request.url)
            return
        cache.put(
            request.url,
            etag=etag,
            last_modified=last_modified,
            content_type=_header(response, b"Content-Type"),
            body=response.body,
        )
        self.crawler.stats.inc_value("incremental/cached")

    def _replay(self, request: Request, response: Response) -> Request | Response:
        cache = self._store()
        cached = cache.get(request.url)
        if cached is None or cached["body"] is None:
            # The stored copy went away meanwhile: ask again, unconditionally.
            logger.debug("source %s: 304 without a stored copy; fetching it again", request.url)
            retry = request.replace(dont_filter=True)
            for name in _VALIDATOR_HEADERS:
                retry.headers.pop(name, None)
            retry.meta["incremental_conditional"] = False
            return retry
        self.crawler.stats.inc_value("incremental/not_modified")
        cache.checked(request.url)
        headers = Headers()
        if cached["content_type"]:
            headers[b"Content-Type"] = cached["content_type"]
        if etag := _header(response, b"ETag") or cached["etag"]:
            headers[b"ETag"] = etag
        body = cached["body"]
        respcls = responsetypes.from_args(headers=headers, url=request.url, body=body)
        logger.debug("source %s not modified since %s", request.url, cached["fetched_at"])
        return respcls(
            url=request.url,
            status=200,
            headers=headers,
            body=body,
            request=request,
            flags=[*response.flags, "not_modified"],
        )

    def spider_closed(self, spider: Spider) -> None:
        super().spider_closed(spider)
        stats = self.crawler.stats
        logger.info(
            "incremental: %d of %d conditional source requests not modified",
            stats.get_value("incremental/not_modified", 0),
            stats.get_value("incremental/conditional", 0),
        )


def _header(response: Response, name: bytes) -> str | None:
    value = response.headers.get(name)
    return value.decode("latin-1") if value else None
