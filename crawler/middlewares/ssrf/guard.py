"""The SSRF guard's downloader middleware: no request (a link, a redirect, robots.txt, a
sitemap entry, a feed) reaches a loopback, private or otherwise non-public address or a
non-http(s) scheme unless its host was declared."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from scrapy import signals
from scrapy.exceptions import NotConfigured
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.threads import deferToThread

from crawler.address_policy import (
    HostPolicy,
    Refusal,
    addresses_refusal,
    normalise_host,
    static_refusal,
)
from crawler.config import get_bool, get_float, get_list
from crawler.middlewares.ssrf import rendered
from crawler.middlewares.ssrf.registry import (
    AD_HOST_SUFFIXES,
    REGISTRY,
    SSRFRefused,
)

if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Self

    from scrapy import Request, Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Response

logger = logging.getLogger(__name__)

INIT_PAGE = f"{rendered.__name__}.init_page"
"""``playwright_page_init_callback`` of rendered requests: page lifetime, WebSocket guard."""


def _spider_declared_hosts(spider: Spider) -> Iterable[str]:
    declared = getattr(spider, "declared_hosts", None)
    if declared is not None:
        return declared
    hosts = [urlsplit(u).hostname or "" for u in getattr(spider, "start_urls", ())]
    return [*hosts, *(getattr(spider, "allowed_domains", None) or ())]


# -- the downloader middleware ------------------------------------------------------------
class SSRFGuardMiddleware:
    """Refuses requests to non-public addresses and non-http(s) schemes, whatever made them
    (a link, a redirect, robots.txt, a sitemap entry, a feed), unless the host was declared.

    Host names are resolved (cached) before the request goes out, and every address they
    resolve to must be public; ``GuardedResolver`` checks again at connect time and the
    response's peer address is checked on arrival. Stats: ``ssrf/refused`` and
    ``ssrf/refused/<reason>``; each refusal is logged with its reason.
    """

    def __init__(self, crawler: Crawler, allowed: HostPolicy) -> None:
        self.crawler = crawler
        self.allowed = allowed
        self.policy = allowed

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        settings = crawler.settings
        REGISTRY.enabled = get_bool(settings, "SSRF_GUARD_ENABLED")
        if not REGISTRY.enabled:
            raise NotConfigured("SSRF_GUARD_ENABLED is off")
        try:
            allowed = HostPolicy.build(get_list(settings, "SSRF_ALLOWED_HOSTS"))
        except ValueError as exc:
            raise NotConfigured(f"SSRF_ALLOWED_HOSTS: {exc}") from exc
        REGISTRY.abort_types = frozenset(get_list(settings, "PLAYWRIGHT_ABORT_RESOURCE_TYPES"))
        REGISTRY.abort_hosts = AD_HOST_SUFFIXES + tuple(
            normalise_host(h) for h in get_list(settings, "PLAYWRIGHT_ABORT_HOSTS")
        )
        REGISTRY.page_lifetime = get_float(settings, "PLAYWRIGHT_PAGE_LIFETIME")
        REGISTRY.use_proxy = get_bool(settings, "PLAYWRIGHT_GUARD_PROXY")
        REGISTRY.policy = REGISTRY.policy | allowed
        REGISTRY.stats = crawler.stats
        mw = cls(crawler, allowed)
        crawler.signals.connect(mw.spider_opened, signal=signals.spider_opened)
        return mw

    def spider_opened(self, spider: Spider) -> None:
        declared = HostPolicy.build(_spider_declared_hosts(spider))
        self.policy = self.allowed | declared
        REGISTRY.policy = REGISTRY.policy | declared
        logger.info(
            "SSRF guard on: non-public addresses refused except declared hosts %s",
            ", ".join(sorted(self.policy.hosts)) or "(none)",
        )

    async def process_request(self, request: Request) -> None:
        refusal, host = static_refusal(request.url, self.policy)
        if host is not None:
            addresses = REGISTRY.dns.cached(host)
            if addresses is None:
                addresses = await maybe_deferred_to_future(deferToThread(REGISTRY.dns.lookup, host))
            refusal = addresses_refusal(host, addresses)
        if refusal is not None:
            self._refuse(request, refusal)
        if request.meta.get("playwright"):
            request.meta.setdefault("playwright_page_init_callback", INIT_PAGE)
            if REGISTRY.use_proxy:
                # The browser context (made by the first rendered request) sends everything
                # through the guard proxy: redirect hops and DNS answers included.
                port = await rendered.browser_proxy_port()
                context_kwargs = request.meta.setdefault("playwright_context_kwargs", {})
                context_kwargs.setdefault("proxy", {"server": f"http://127.0.0.1:{port}"})

    def process_response(self, request: Request, response: Response) -> Response:
        """Refuse a response that came from a non-public address after all (DNS answer
        changed since the check, or a rendered page was redirected by the browser)."""
        refusal, host = static_refusal(response.url, self.policy)
        if refusal is None and host is not None and response.ip_address is not None:
            refusal = addresses_refusal(host, [response.ip_address])
        if refusal is not None:
            self._refuse(request, refusal, response_url=response.url)
        return response

    def process_exception(self, request: Request, exception: Exception) -> None:
        """Count refusals raised at connect time by ``GuardedResolver``."""
        if isinstance(exception, SSRFRefused) and not exception.counted:
            self._record(request.url, request, exception.refusal)
            exception.counted = True

    def _refuse(self, request: Request, refusal: Refusal, *, response_url: str = "") -> None:
        url = response_url or request.url
        self._record(url, request, refusal)
        exc = SSRFRefused(url, refusal)
        exc.counted = True
        raise exc

    def _record(self, url: str, request: Request, refusal: Refusal) -> None:
        stats = self.crawler.stats
        stats.inc_value("ssrf/refused")
        stats.inc_value(f"ssrf/refused/{refusal.reason}")
        origin = request.meta.get("redirect_urls")
        logger.warning(
            "SSRF guard: refused %s (%s: %s)%s",
            url,
            refusal.reason,
            refusal.detail,
            f" [redirected from {origin[0]}]" if origin else "",
        )
