"""What every kind of spider shares: its site, article requests and the article callback."""

from __future__ import annotations

import difflib
import logging
import re
from dataclasses import asdict, fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

import scrapy
from playwright.async_api import TimeoutError as PlaywrightTimeoutError
from scrapy_playwright.page import PageMethod

from crawler.config import get_bool
from crawler.extract import url_domain
from crawler.extract.encoding import decode_as, decode_html
from crawler.failures import failure_reason
from crawler.items import ArticleItem, utcnow
from crawler.limits import (
    ExtractFailed,
    ExtractTimeout,
    bounded_extract,
    extract_in_worker,
)
from crawler.middlewares.incremental import KnownPage
from crawler.pool import offload, pool_active
from crawler.sites import Site, SitesError, parse_site

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterable

    from playwright.async_api import Page
    from scrapy.http import Response
    from scrapy.settings import BaseSettings
    from twisted.python.failure import Failure

logger = logging.getLogger(__name__)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_SITE_FIELDS = {f.name: f for f in fields(Site)}
PLAYWRIGHT_HANDLERS = {
    "http": "scrapy_playwright.handler.ScrapyPlaywrightDownloadHandler",
    "https": "scrapy_playwright.handler.ScrapyPlaywrightDownloadHandler",
}
_HTML_TYPES = ("text/html", "application/xhtml+xml")
_HTML_SNIFF_RE = re.compile(rb"<(?:!doctype\s+html|html|head|body|article|p|div)[\s>]")
_BINARY_MAGIC = (b"%pdf", b"\x89png", b"gif8", b"\xff\xd8\xff", b"pk\x03\x04", b"\x1f\x8b")


def site_from_args(site: Site | None, kind: str, args: dict[str, Any]) -> Site:
    """The site a spider runs with: its configured ``site`` overridden by ``-a key=value``.

    A generic spider (``scrapy crawl feed -a url=URL``) has no configured site; ``url``
    (comma-separated for several) and the optional ``name`` make one. Values arrive as
    strings and are converted by the type of the site key; errors name the argument, and an
    unknown key is refused as in the sites file.
    """
    known = sorted({*_SITE_FIELDS, "url"} - {"kind"})
    if unknown := sorted(set(args) - set(known)):
        key = unknown[0]
        close = difflib.get_close_matches(key, known, n=1)
        hint = f", did you mean '{close[0]}'?" if close else ""
        raise SitesError(
            f"-a arguments: key '{key}': unknown key{hint} (known keys: {', '.join(known)})"
        )
    raw: dict[str, Any] = asdict(site) if site else {"kind": kind}
    raw = {k: v for k, v in raw.items() if v is not None}
    for key in ("start_urls", "allowed_domains"):
        if key in raw:
            raw[key] = list(raw[key])
    args = dict(args)
    if "url" in args:
        raw["start_urls"] = [u.strip() for u in str(args.pop("url")).split(",") if u.strip()]
    if site is None:
        if not raw.get("start_urls") and "start_urls" not in args:
            raise SitesError(
                f"scrapy crawl {kind}: give the source with -a url=URL (optional -a name=SITE)"
            )
        urls = raw.get("start_urls") or str(args.get("start_urls", "")).split(",")
        raw["name"] = url_domain(urls[0]).replace(":", "-") or kind
    for key, value in args.items():
        if key not in _SITE_FIELDS or key == "kind":
            continue
        raw[key] = _convert(key, value)
    return parse_site(raw, where="-a arguments", adhoc=True)


def _convert(key: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    default = _SITE_FIELDS[key].default
    kind = _SITE_FIELDS[key].type
    if key in ("enabled", "render_js"):
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        raise SitesError(f"-a arguments: key '{key}': {value!r} is not true or false")
    if key in ("max_pages", "max_articles"):
        try:
            return int(value)
        except ValueError:
            raise SitesError(
                f"-a arguments: key '{key}': {value!r} is not a whole number"
            ) from None
    if key in ("recency_days", "wait_timeout"):
        try:
            return float(value)
        except ValueError:
            raise SitesError(f"-a arguments: key '{key}': {value!r} is not a number") from None
    if "tuple" in str(kind) or isinstance(default, tuple):
        return [v.strip() for v in value.split(",") if v.strip()]
    return value


class NewsSpider(scrapy.Spider):
    """Base of the four generic spiders. Subclasses discover article URLs from their sources;
    ``parse_article`` turns each article response into an ``ArticleItem``."""

    kind: ClassVar[str] = ""
    configured_site: ClassVar[Site | None] = None
    """Set on the per-site subclasses made by ``crawler.spiderloader``."""

    @classmethod
    def update_settings(cls, settings: BaseSettings) -> None:
        """Route downloads through scrapy-playwright only for spiders that render pages:
        its handler starts a Playwright driver per crawler, which the others do not need."""
        super().update_settings(settings)
        site = cls.configured_site
        if (site is not None and site.render_js) or get_bool(settings, "CRAWLER_RENDER_JS"):
            handlers = {**settings.getdict("DOWNLOAD_HANDLERS"), **PLAYWRIGHT_HANDLERS}
            settings.set("DOWNLOAD_HANDLERS", handlers, priority="spider")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        site_args = {k: kwargs.pop(k) for k in list(kwargs) if k in _SITE_FIELDS or k == "url"}
        self.site = site_from_args(self.configured_site, self.kind, site_args)
        kwargs.setdefault("name", self.configured_site.name if self.configured_site else self.kind)
        super().__init__(*args, **kwargs)
        self.articles_requested = 0
        self._article_re = (
            re.compile(self.site.article_pattern) if self.site.article_pattern else None
        )
        self._exclude_re = (
            re.compile(self.site.exclude_pattern) if self.site.exclude_pattern else None
        )
        self._site_domains = {url_domain(u).split(":")[0] for u in self.site.start_urls}
        self._site_domains.update(d.removeprefix("www.") for d in self.site.allowed_domains)
        self.declared_hosts = self.site.hosts
        """Hosts named by the person running the crawl (the SSRF guard allows these)."""
        self.oldest = (
            datetime.now(UTC).timestamp() - self.site.recency_days * 86400
            if self.site.recency_days
            else None
        )

    # -- sources -------------------------------------------------------------------------
    async def start(self) -> AsyncIterator[scrapy.Request]:
        for url in self.site.start_urls:
            yield self.source_request(url, callback=self.parse)

    def source_request(self, url: str, **kwargs: Any) -> scrapy.Request:
        """A request for a feed, sitemap or listing page (rendered when the site says so)."""
        kwargs.setdefault("errback", self.source_failed)
        meta = kwargs.pop("meta", {})
        meta.setdefault("source", True)
        return scrapy.Request(url, meta=meta, dont_filter=True, **kwargs)

    def source_failed(self, failure: Failure) -> None:
        request = failure.request
        reason = failure_reason(failure)
        self.crawler.stats.inc_value(f"source/failed/{self.kind}")
        self.crawler.stats.inc_value(f"source/failed/{self.kind}/{reason}")
        self.logger.error(
            "source %s failed (%s): %s", request.url, reason, failure.getErrorMessage()
        )

    def too_old(self, timestamp: float | None) -> bool:
        """True when a dated entry falls outside the site's recency window."""
        if self.oldest is None or timestamp is None or timestamp >= self.oldest:
            return False
        self.crawler.stats.inc_value(f"{self.kind}/skipped_old")
        return True

    # -- article selection ----------------------------------------------------------------
    def is_article_url(self, url: str, *, any_host: bool = False) -> bool:
        """Whether ``url`` qualifies as an article link of this site."""
        if not url.startswith(("http://", "https://")):
            return False
        if self._exclude_re and self._exclude_re.search(url):
            return False
        if self._article_re and not self._article_re.search(url):
            return False
        if any_host:
            return True
        host = url_domain(url).split(":")[0]
        return any(host == d or host.endswith("." + d) for d in self._site_domains)

    @property
    def article_budget_left(self) -> int:
        return self.site.max_articles - self.articles_requested

    def article_skipped(self) -> None:
        """An article request was dropped before download as already stored
        (``crawler/middlewares/incremental.py``): it does not use up ``max_articles``."""
        self.articles_requested -= 1

    def article_requests(self, entries: Iterable[dict[str, Any]]) -> Iterable[scrapy.Request]:
        """Requests for article entries (``{"url", "fallback"?, "source_url"?, "via"?,
        "via_position"?}``) in order, within the site's ``max_articles``."""
        for entry in entries:
            if self.article_budget_left <= 0:
                self.crawler.stats.inc_value(f"{self.kind}/over_max_articles")
                continue
            self.articles_requested += 1
            yield self.article_request(entry)

    def article_request(self, entry: dict[str, Any]) -> scrapy.Request:
        meta: dict[str, Any] = {"article": True}
        if self.site.render_js:
            meta.update(self.playwright_meta())
        return scrapy.Request(
            entry["url"],
            callback=self.parse_article,
            errback=self.article_failed,
            cb_kwargs={"entry": {k: v for k, v in entry.items() if k != "url"}},
            meta=meta,
        )

    def playwright_meta(self) -> dict[str, Any]:
        methods = []
        if self.site.wait_for:
            methods.append(
                PageMethod(wait_softly, self.site.wait_for, self.site.wait_timeout * 1000)
            )
        return {"playwright": True, "playwright_page_methods": methods}

    def article_failed(self, failure: Failure) -> None:
        if failure.check(KnownPage):  # a redirect to a known page: not a failure
            return
        request = failure.request
        reason = failure_reason(failure)
        self.crawler.stats.inc_value(f"article/failed/{reason}")
        self.logger.warning(
            "article %s failed (%s): %s", request.url, reason, failure.getErrorMessage()
        )

    # -- articles -------------------------------------------------------------------------
    async def parse_article(
        self, response: Response, entry: dict[str, Any]
    ) -> AsyncIterator[ArticleItem]:
        """Article response -> ``ArticleItem``. Non-HTML responses still yield an item
        (without text) so that the validate step counts and logs the drop. Decoding and
        extraction run in the worker pool (``crawler/pool.py``) when there is one."""
        content_type = response.headers.get(b"Content-Type", b"").decode("latin-1") or None
        base = {
            "site": self.site.name,
            "source_kind": self.kind,
            "source_url": entry.get("source_url"),
            "via": entry.get("via"),
            "via_position": entry.get("via_position"),
            "fetched_at": utcnow(),
            "status": response.status,
            "content_type": content_type,
            "request_url": _requested_url(response),
        }
        if not _is_html(response, content_type):
            yield ArticleItem(url=response.url, domain=url_domain(response.url), **base)
            return
        job = {
            "url": response.url,
            "fallback": entry.get("fallback"),
            "content_type": content_type,
            "language": self.site.language,
            "timezone": self.site.timezone,
        }
        if pool_active():
            item = await self._extract_in_pool(response.body, job)
            if item is not None and item.encoding:
                item.html = decode_as(response.body, item.encoding)
        else:
            html, encoding = decode_html(response.body, content_type)
            # EXTRACT_TIMEOUT: a pathological page cannot hang the crawl.
            item = bounded_extract(self.crawler, html=html, **job)
            if item is not None:
                item.html = html
                item.encoding = encoding
        if item is None:
            return
        for key, value in base.items():
            setattr(item, key, value)
        yield item

    async def _extract_in_pool(self, body: bytes, job: dict[str, Any]) -> ArticleItem | None:
        """``extract_page`` in a worker process (``extract_in_worker``: the item comes back
        without its HTML), bounded by ``EXTRACT_TIMEOUT``; ``None``
        (counted and logged as ``bounded_extract`` does) when it ran out of time or failed."""
        stats = self.crawler.stats
        try:
            item = await offload(extract_in_worker, body, **job)
        except ExtractTimeout as exc:
            stats.inc_value("extract/timeout")
            stats.inc_value("article/failed/extract_timeout")
            logger.warning("%s: not extracted: %s (EXTRACT_TIMEOUT)", job["url"], exc)
            return None
        except ExtractFailed as exc:
            stats.inc_value("extract/failed")
            stats.inc_value("article/failed/extract_error")
            logger.error("%s: extraction failed: %s", job["url"], exc)
            return None
        return item


async def wait_softly(page: Page, selector: str, timeout_ms: float) -> None:
    """Wait until ``selector`` is in the page (an empty marker element counts); past the
    timeout take the page as it is: a listing page may lack the articles' marker, and a
    page without its article is dropped by the validate step with a counted reason."""
    try:
        await page.wait_for_selector(selector, state="attached", timeout=timeout_ms)
    except PlaywrightTimeoutError:
        logger.warning("%s: %r not found after %.0f ms", page.url, selector, timeout_ms)


def _requested_url(response: Response) -> str | None:
    """The URL first requested for ``response``'s page, when redirects changed it."""
    if response.request is None:
        return None
    first = (response.request.meta.get("redirect_urls") or [response.request.url])[0]
    return None if first == response.url else first


def _is_html(response: Response, content_type: str | None) -> bool:
    """HTML by content, then by header: a page served as ``application/octet-stream`` is
    still taken, a PDF served as ``text/html`` is not."""
    head = response.body[:2048].lstrip()[:1024].lower()
    if head.startswith(_BINARY_MAGIC):
        return False
    if _HTML_SNIFF_RE.search(head):
        return True
    ctype = (content_type or "").split(";")[0].strip().lower()
    return ctype in _HTML_TYPES
