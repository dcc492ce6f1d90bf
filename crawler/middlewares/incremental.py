"""Incremental crawl: an article page is downloaded once. Pages already in the archive are not
requested again, under any URL that led to them (tracking variants, every URL of a redirect
chain, the aggregator link); a page dropped as not an article waits until its feed entry
changes or ``INCREMENTAL_DROPPED_RETRY_DAYS`` pass; within a run, a page that several sites
(or spellings) link is fetched by the first request for it. Feeds, sitemaps and listing pages
are fetched with conditional GET (an unchanged one costs a 304)."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from itemadapter import ItemAdapter
from scrapy import signals
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.http import Headers
from scrapy.responsetypes import responsetypes
from scrapy.spidermiddlewares.base import BaseSpiderMiddleware

from crawler.config import get_bool, read_config, setting
from crawler.storage.incremental import SqliteHttpCache, SqliteUrlMemory
from crawler.storage.protocols import PageOutcomes
from crawler.urls import url_key, url_keys
from pipelines.validate import rejection

if TYPE_CHECKING:
    from collections.abc import Iterable
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
    dropped_retry_days: float = setting("INCREMENTAL_DROPPED_RETRY_DAYS")
    """A page dropped as not an article is fetched again after this many days (0: always)."""
    min_chars: int = setting("VALIDATE_MIN_CHARS")
    """The validate step's minimum: a dropped item is judged again with it."""

    def __post_init__(self) -> None:
        if min(self.revisit_days, self.cache_max_bytes, self.dropped_retry_days) < 0:
            raise ValueError(
                "INCREMENTAL_REVISIT_DAYS, INCREMENTAL_CACHE_MAX_BYTES and "
                "INCREMENTAL_DROPPED_RETRY_DAYS must be >= 0"
            )

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


page_dropped = object()
"""Signal a spider sends for a fetched page it judged not an article without yielding an
item (an aggregator's own page): arguments ``response`` and ``reason``."""


class KnownPage(IgnoreRequest):
    """A redirect led to a page already stored, dropped or fetched in this run: not
    downloaded again (``article_failed`` leaves it uncounted)."""


def fetch_mode(request: Request) -> str:
    """How a request fetches its page: ``rendered`` (in Chromium) or ``""`` (plain). A
    page that is not an article when fetched plain may be one once rendered."""
    return "rendered" if request.meta.get("playwright") else ""


def entry_signature(request: Request | None) -> str | None:
    """What a dropped page is remembered with: a short hash of the feed or sitemap entry
    that linked it (title, date, authors, summary), after ``rendered:`` when the page is
    fetched in Chromium; ``None`` for a bare link fetched plain."""
    if request is None:
        return None
    entry = request.cb_kwargs.get("entry")
    fallback = entry.get("fallback") if isinstance(entry, dict) else None
    digest = ""
    if fallback:
        text = json.dumps(fallback, sort_keys=True, ensure_ascii=False, default=str)
        # A hostile feed can carry lone surrogates: they hash as they came, never raise.
        digest = hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]  # noqa: S324
    mode = fetch_mode(request)
    return f"{mode}:{digest}" if mode else digest or None


def entry_changed(before: str | None, now: str | None) -> bool:
    """Whether a dropped page is worth fetching again by its link: it is now fetched the
    other way (rendered or plain), or both links are feed entries and the entry changed. A
    bare link (a listing's) says nothing about a change."""
    mode_before, _, digest_before = (before or "").rpartition(":")
    mode_now, _, digest_now = (now or "").rpartition(":")
    if mode_before != mode_now:
        return True
    return bool(digest_before and digest_now and digest_before != digest_now)


def chain_urls(request: Request) -> list[str]:
    """Every URL that led to ``request``'s page: the links it stands for (meta ``aliases``:
    a redirector or Google News link resolved before the request), the URLs redirected
    from, and its own."""
    meta = request.meta
    return [*meta.get("aliases", ()), *meta.get("redirect_urls", ()), request.url]


class RunClaims:
    """The article URL keys requested in this run by every crawl of the process (``scrapy
    crawlall`` runs all sites in one): the first request for a key takes it, a later one (a
    tracking variant, the same page linked by another site) is not sent. Scrapy's duplicate
    filter is per spider and compares exact URLs; this is per process and compares keys.
    A rendered and a plain fetch of one page do not stand in for each other (``mode``).
    Claims live while a spider is open and are forgotten when the last one closes."""

    keys: ClassVar[dict[tuple[str, str], str]] = {}
    followers: ClassVar[dict[str, set[str]]] = {}
    """Keys of links skipped because their page was claimed, by the claimed key: they
    become keys of that page's story (or of its drop) once its outcome is known."""
    open_spiders: ClassVar[int] = 0

    @classmethod
    def opened(cls) -> None:
        cls.open_spiders += 1

    @classmethod
    def closed(cls) -> None:
        cls.open_spiders = max(0, cls.open_spiders - 1)
        if cls.open_spiders == 0:
            cls.keys.clear()
            cls.followers.clear()

    @classmethod
    def take(cls, keys: Iterable[str], owner: str, mode: str = "") -> str | None:
        """Claim ``keys`` for ``owner`` fetching in ``mode``; the owner that holds one of
        them already, else ``None``. Outside an open crawl nothing is claimed."""
        claims = [(mode, k) for k in keys]
        if cls.open_spiders <= 0:
            return None
        for claim in claims:
            if claim in cls.keys:
                return cls.keys[claim]
        for claim in claims:
            cls.keys[claim] = owner
        return None

    @classmethod
    def follow(cls, claimed: Iterable[str], keys: Iterable[str], mode: str = "") -> None:
        """Let ``keys`` (a skipped link) share the outcome of the claimed keys' page."""
        claimed = [k for k in claimed if (mode, k) in cls.keys]
        extra = set(keys) - set(claimed)
        if claimed and extra:
            cls.followers.setdefault(claimed[0], set()).update(extra)

    @classmethod
    def take_followers(cls, keys: Iterable[str]) -> set[str]:
        """The keys that follow any of ``keys`` (given once)."""
        found: set[str] = set()
        for key in keys:
            found |= cls.followers.pop(key, set())
        return found


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


class _UrlGate(_StoreUser["UrlMemory"]):
    """What the two gates of article requests share: the URL memory of the archive, the
    dropped pages, the run's claims and the counting of a request not sent."""

    def open_store(self) -> UrlMemory:
        return SqliteUrlMemory.for_settings(self.crawler.settings, self.config.db_path)

    def spider_opened(self, spider: Spider) -> None:
        super().spider_opened(spider)
        RunClaims.opened()

    def spider_closed(self, spider: Spider) -> None:
        super().spider_closed(spider)
        RunClaims.closed()

    @property
    def owner(self) -> str:
        return getattr(self.crawler.spider, "name", None) or "crawl"

    def outcomes(self) -> PageOutcomes | None:
        store = self._store()
        return store if isinstance(store, PageOutcomes) else None

    def stored(self, keys: Iterable[str]) -> tuple[int, str | None] | None:
        store = self._store()
        for key in keys:
            if (seen := store.seen(key)) is not None:
                return seen
        return None

    def dropped_recently(self, keys: Iterable[str], request: Request) -> str | None:
        """The reason a page was dropped, when it was dropped less than
        ``INCREMENTAL_DROPPED_RETRY_DAYS`` ago as linked by the same entry; else ``None``."""
        outcomes = self.outcomes()
        if outcomes is None or self.config.dropped_retry_days <= 0:
            return None
        entry = entry_signature(request)
        for key in keys:
            if (found := outcomes.dropped(key)) is None:
                continue
            reason, was_entry, last_seen = found
            if entry_changed(was_entry, entry) or revisit_due(
                last_seen, self.config.dropped_retry_days
            ):
                return None
            return reason
        return None

    def not_sent(self, stat: str, message: str, *args: Any) -> None:
        self.crawler.stats.inc_value(stat)
        logger.debug(message, *args)
        # Not downloaded, so not counted against the site's max_articles.
        if callable(give_back := getattr(self.crawler.spider, "article_skipped", None)):
            give_back()


class SkipStoredMiddleware(_UrlGate, BaseSpiderMiddleware):
    """Spider middleware: an article request (meta ``article=True``) is not scheduled, so
    never downloaded, when the archive holds its page (its canonical key, ``crawler.urls.
    url_key``, or the key of a link it stands for, meta ``aliases``, is in ``url_keys``),
    when its page was dropped as not an article recently and its feed entry is unchanged,
    or when another request of this run has its key (``RunClaims``). A stored article last
    seen ``INCREMENTAL_REVISIT_DAYS`` ago or more is let through (meta
    ``incremental_revisit`` = its id); the dedupe step then keeps a changed text as a new
    version. Meta ``incremental=False`` exempts a request.

    It also remembers outcomes: every URL that led to a stored or duplicate page (the
    redirect chain, the link it stands for, a portal copy's publisher URL) becomes a key of
    its story, and a page the validate step drops (or a spider judges not an article,
    signal ``page_dropped``) is remembered with its reason.

    Filtering here rather than raising ``IgnoreRequest`` in the downloader keeps skipped
    pages out of the download statistics: they are not failed downloads.

    Stats: ``incremental/skipped`` (stored), ``incremental/skipped_dropped``,
    ``incremental/claimed`` (fetched by another request of the run), ``incremental/revisit``,
    ``incremental/aliases``, ``incremental/dropped``.
    """

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        mw = super().from_crawler(crawler)
        crawler.signals.connect(mw.item_scraped, signal=signals.item_scraped)
        crawler.signals.connect(mw.item_dropped, signal=signals.item_dropped)
        crawler.signals.connect(mw.page_dropped, signal=page_dropped)
        return mw

    def get_processed_request(self, request: Request, response: Response | None) -> Request | None:
        meta = request.meta
        if not meta.get("article") or not meta.get("incremental", True):
            return request
        keys = list(dict.fromkeys(url_key(u) for u in (request.url, *meta.get("aliases", ()))))
        seen = self.stored(keys)
        if seen is not None:
            article_id, last_seen = seen
            if not revisit_due(last_seen, self.config.revisit_days):
                self.not_sent(
                    "incremental/skipped", "skipped %s: stored as #%d", request.url, article_id
                )
                return None
            meta["incremental_revisit"] = article_id
            self.crawler.stats.inc_value("incremental/revisit")
            logger.debug("revisiting %s (#%d, last seen %s)", request.url, article_id, last_seen)
        elif reason := self.dropped_recently(keys, request):
            self.not_sent(
                "incremental/skipped_dropped", "skipped %s: dropped (%s)", request.url, reason
            )
            return None
        if holder := RunClaims.take(keys, self.owner, fetch_mode(request)):
            RunClaims.follow(keys, keys, fetch_mode(request))
            self.not_sent(
                "incremental/claimed", "skipped %s: fetched in this run by %s", request.url, holder
            )
            return None
        return request

    # -- outcomes ------------------------------------------------------------------------
    def item_scraped(self, item: Any, response: Response | None, spider: Spider) -> None:
        """A stored page or a sighting: every URL that led to it is a key of its story."""
        outcomes = self.outcomes()
        if outcomes is None or response is None or response.request is None:
            return
        adapter = ItemAdapter(item)
        url = adapter.get("url")
        if not url:
            return
        article_id = adapter.get("duplicate_of")
        if article_id is None:
            seen = self.stored([url_key(url)])
            article_id = seen[0] if seen else None
        if article_id is None:  # not stored (no store step)
            return
        urls = chain_urls(response.request)
        if adapter.get("publisher_url"):
            urls.append(adapter["publisher_url"])
        known = set(url_keys(url, adapter.get("canonical_url"), adapter.get("request_url")))
        keys = url_keys(url, aliases=urls)
        keys += sorted(RunClaims.take_followers([*keys, *known]))
        aliases = [k for k in dict.fromkeys(keys) if k not in known]
        if aliases:
            outcomes.record_aliases(article_id, aliases, adapter.get("fetched_at"))
            self.crawler.stats.inc_value("incremental/aliases", len(aliases))

    def item_dropped(
        self, item: Any, response: Response | None, exception: BaseException, spider: Spider
    ) -> None:
        """An item the validate step dropped: its page is remembered as not an article. A
        drop for another cause (a database that failed) says nothing about the page."""
        adapter = ItemAdapter(item)
        reason = rejection(adapter, min_chars=self.config.min_chars)
        if reason is None or response is None or response.request is None:
            return
        url = adapter.get("url") or response.url
        keys = url_keys(url, adapter.get("canonical_url"), aliases=chain_urls(response.request))
        self._remember_drop(keys, url, reason, response.request)

    def page_dropped(self, response: Response, reason: str) -> None:
        if response.request is None:
            return
        keys = url_keys(response.url, aliases=chain_urls(response.request))
        self._remember_drop(keys, response.url, reason, response.request)

    def _remember_drop(self, keys: list[str], url: str, reason: str, request: Request) -> None:
        outcomes = self.outcomes()
        if outcomes is None:
            return
        keys = [*keys, *sorted(RunClaims.take_followers(keys))]
        outcomes.record_drop(keys, url=url, reason=reason, entry=entry_signature(request))
        self.crawler.stats.inc_value("incremental/dropped")

    def spider_closed(self, spider: Spider) -> None:
        super().spider_closed(spider)
        stats = self.crawler.stats
        logger.info(
            "incremental: %d stored articles skipped, %d revisited, %d dropped pages skipped, "
            "%d fetched by another request of the run",
            stats.get_value("incremental/skipped", 0),
            stats.get_value("incremental/revisit", 0),
            stats.get_value("incremental/skipped_dropped", 0),
            stats.get_value("incremental/claimed", 0),
        )


class RedirectGateMiddleware(_UrlGate):
    """Downloader middleware for article requests made by a redirect (an opaque redirector
    such as ``t.co`` or ``feedproxy``, a same-host ``/r/123``): the target is not downloaded
    when the archive holds it (the chain's URLs then become keys of that story, so the next
    run does not even ask the redirector), when it was dropped recently, or when another
    request of this run has it. Stats as ``SkipStoredMiddleware``'s."""

    def process_request(self, request: Request) -> None:
        meta = request.meta
        if not meta.get("article") or not meta.get("redirect_urls"):
            return
        if not meta.get("incremental", True) or meta.get("incremental_revisit"):
            return
        key = url_key(request.url)
        before = {url_key(u) for u in chain_urls(request)[:-1]}
        if key in before:  # /story -> /story/: the page the request was made for
            return
        seen = self.stored([key])
        if seen is not None and not revisit_due(seen[1], self.config.revisit_days):
            if (outcomes := self.outcomes()) is not None:
                outcomes.record_aliases(seen[0], sorted(before))
            self.not_sent("incremental/skipped", "skipped %s: stored as #%d", request.url, seen[0])
            raise KnownPage(f"{request.url}: stored as #{seen[0]}")
        if reason := self.dropped_recently([key], request):
            self.not_sent(
                "incremental/skipped_dropped", "skipped %s: dropped (%s)", request.url, reason
            )
            raise KnownPage(f"{request.url}: dropped ({reason})")
        if holder := RunClaims.take([key], self.owner, fetch_mode(request)):
            RunClaims.follow([key], before, fetch_mode(request))
            self.not_sent(
                "incremental/claimed", "skipped %s: fetched in this run by %s", request.url, holder
            )
            raise KnownPage(f"{request.url}: fetched in this run by {holder}")


class ConditionalGetMiddleware(_StoreUser["HttpCache"]):
    """Downloader middleware for source requests (meta ``source=True``: feeds, sitemaps,
    listing pages), which are always sent: with the validators (ETag, Last-Modified) of
    the last 200 stored in ``http_cache``. A 304 is answered with the stored response (status
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
