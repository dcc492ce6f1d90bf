"""The SSRF guard's connect-time check: Scrapy's DNS resolver, refusing a non-public answer
for a name nobody declared (``TWISTED_DNS_RESOLVER``)."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from scrapy.resolver import CachingThreadedResolver

from crawler.address_policy import addresses_refusal, normalise_host
from crawler.config import get_bool
from crawler.middlewares.ssrf.registry import REGISTRY, SSRFRefused

if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Self

    from scrapy.crawler import Crawler
    from twisted.internet.defer import Deferred


class GuardedResolver(CachingThreadedResolver):
    """Scrapy's caching resolver, refusing a non-public answer for an undeclared name: the
    address the downloader connects to is the one checked (closes the DNS-rebinding window
    between the middleware's check and the connection). IP literals never reach a resolver;
    the middleware judges those."""

    enabled = True

    @classmethod
    def from_crawler(cls, crawler: Crawler, reactor: Any) -> Self:
        resolver = super().from_crawler(crawler, reactor)
        resolver.enabled = get_bool(crawler.settings, "SSRF_GUARD_ENABLED")
        return resolver

    def getHostByName(self, name: str, timeout: Sequence[int] = ()) -> Deferred[str]:
        d = super().getHostByName(name, timeout)
        if self.enabled:
            d.addCallback(self._check, name)
        return d

    def _check(self, address: str, name: str) -> str:
        host = normalise_host(name)
        if REGISTRY.policy.allows(host):
            return address
        refusal = addresses_refusal(host, [ipaddress.ip_address(address)])
        if refusal is not None:
            raise SSRFRefused(name, refusal)
        return address
