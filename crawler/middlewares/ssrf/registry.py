"""What the parts of the SSRF guard share in one process: the declared hosts of every open
crawl, a cache of DNS answers, the stats to count refusals in, and the settings of rendered
pages. The resolver and the Playwright hooks see no spider; they read it here."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from scrapy.exceptions import IgnoreRequest

from crawler.address_policy import HostPolicy, IPAddress, Refusal
from crawler.config import default

if TYPE_CHECKING:
    from scrapy.statscollectors import StatsCollector

    from crawler.middlewares.ssrf.proxy import GuardProxy

DNS_CACHE_TTL = 60.0
"""Seconds a name's addresses are trusted before it is resolved again."""
DNS_CACHE_SIZE = 10_000

ABORT_RESOURCE_TYPES = frozenset(default("PLAYWRIGHT_ABORT_RESOURCE_TYPES"))
"""Requests of a rendered page that are aborted by default: nothing the text needs."""
AD_HOST_SUFFIXES = (
    "doubleclick.net", "googlesyndication.com", "googleadservices.com", "adservice.google.com",
    "google-analytics.com", "googletagmanager.com", "googletagservices.com",
    "amazon-adsystem.com", "adnxs.com", "criteo.com", "criteo.net", "taboola.com",
    "outbrain.com", "scorecardresearch.com", "quantserve.com", "moatads.com", "rubiconproject.com",
    "pubmatic.com", "openx.net", "casalemedia.com", "adsrvr.org", "advertising.com",
    "facebook.net", "connect.facebook.net", "hotjar.com", "chartbeat.com", "chartbeat.net",
    "mgid.com", "revcontent.com", "zergnet.com", "popads.net", "propellerads.com",
)  # fmt: skip
"""Ad and tracking hosts whose requests a rendered page never makes (with subdomains)."""


def _getaddrinfo(host: str) -> tuple[IPAddress, ...]:
    infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    found = []
    for _family, _type, _proto, _name, sockaddr in infos:
        with contextlib.suppress(ValueError):
            found.append(ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0]))
    return tuple(dict.fromkeys(found))


class DNSCache:
    """Thread-safe cache of ``getaddrinfo`` answers (names that do not resolve cache ``()``)."""

    def __init__(self, ttl: float = DNS_CACHE_TTL, size: int = DNS_CACHE_SIZE) -> None:
        self.ttl = ttl
        self.size = size
        self._entries: OrderedDict[str, tuple[float, tuple[IPAddress, ...]]] = OrderedDict()
        self._lock = threading.Lock()

    def cached(self, host: str) -> tuple[IPAddress, ...] | None:
        with self._lock:
            entry = self._entries.get(host)
            if entry is None or entry[0] < time.monotonic():
                return None
            self._entries.move_to_end(host)
            return entry[1]

    def lookup(self, host: str) -> tuple[IPAddress, ...]:
        """The addresses of ``host`` (blocking; run it in a thread)."""
        found = self.cached(host)
        if found is not None:
            return found
        try:
            found = _getaddrinfo(host)
        except (OSError, UnicodeError):
            found = ()
        with self._lock:
            self._entries[host] = (time.monotonic() + self.ttl, found)
            self._entries.move_to_end(host)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return found


class SSRFRefused(IgnoreRequest):
    """A request refused by the SSRF guard."""

    def __init__(self, url: str, refusal: Refusal) -> None:
        super().__init__(f"SSRF guard refused {url}: {refusal.detail}")
        self.url = url
        self.refusal = refusal
        self.counted = False


@dataclass
class _Registry:
    """Process-wide state for the parts that see no spider: the DNS resolver and the
    Playwright hooks. Holds the union of the declared hosts of every open crawl."""

    enabled: bool = True
    policy: HostPolicy = field(default_factory=HostPolicy)
    dns: DNSCache = field(default_factory=DNSCache)
    stats: StatsCollector | None = None
    abort_types: frozenset[str] = ABORT_RESOURCE_TYPES
    abort_hosts: tuple[str, ...] = AD_HOST_SUFFIXES
    page_lifetime: float = 60.0
    use_proxy: bool = True
    proxy: GuardProxy | None = None

    def count(self, refusal: Refusal) -> None:
        if self.stats is not None:
            self.stats.inc_value("ssrf/refused")
            self.stats.inc_value(f"ssrf/refused/{refusal.reason}")


REGISTRY = _Registry()
