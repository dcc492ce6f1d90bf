"""SSRF guard: no request (plain, redirected, or made by a rendered page) reaches a loopback,
private or otherwise non-public address or a non-http(s) scheme unless its host was declared."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import re
import socket
import threading
import time
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from scrapy import signals
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.resolver import CachingThreadedResolver
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.threads import deferToThread

from crawler.middlewares.browser_proxy import GuardProxy

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from typing import Self

    from scrapy import Request, Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from scrapy.statscollectors import StatsCollector
    from twisted.internet.defer import Deferred

logger = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ALLOWED_SCHEMES = frozenset({"http", "https"})
"""Schemes a crawl may fetch; ``file:``, ``ftp:``, ``data:``, ``gopher:`` ... are refused."""
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_PRIVATE = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_V4_COMPATIBLE = ipaddress.ip_network("::/96")
_DOTS_RE = re.compile("[\u3002\uff0e\uff61]")  # ideographic / full-width full stops
_DEC_RE = re.compile(r"[0-9]+")
_OCT_RE = re.compile(r"[0-7]*")
_HEX_RE = re.compile(r"[0-9a-f]*")
_BAD_HOST_RE = re.compile(r"[\s\\@/?#<>^|%]")

DNS_CACHE_TTL = 60.0
"""Seconds a name's addresses are trusted before it is resolved again."""
DNS_CACHE_SIZE = 10_000

ABORT_RESOURCE_TYPES = frozenset({"image", "media", "font", "imageset", "beacon", "ping"})
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


# -- pure functions: what a host is ------------------------------------------------------
def parse_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """An IPv4 address in any spelling ``inet_aton`` (and so the system resolver) accepts.

    One to four parts separated by dots, each decimal, octal (leading ``0``) or hex (``0x``);
    the last part fills the remaining bytes: ``127.1``, ``0x7f.1``, ``2130706433``,
    ``017700000001`` and ``0177.0.0.1`` all mean ``127.0.0.1``. One trailing dot is allowed
    (as browsers do). ``None`` when ``host`` is not such a number.
    """
    host = host.removesuffix(".")
    parts = host.split(".")
    if not 1 <= len(parts) <= 4 or "" in parts:
        return None
    numbers = []
    for part in parts:
        if part[:2] in ("0x", "0X"):
            digits, base, valid = part[2:].lower(), 16, _HEX_RE
        elif len(part) > 1 and part[0] == "0":
            digits, base, valid = part[1:], 8, _OCT_RE
        else:
            digits, base, valid = part, 10, _DEC_RE
        if not valid.fullmatch(digits):
            return None
        numbers.append(int(digits or "0", base))
    last = numbers.pop()
    if any(n > 255 for n in numbers) or last >= 256 ** (4 - len(numbers)):
        return None
    value = last
    for i, n in enumerate(numbers):
        value += n << (8 * (3 - i))
    return ipaddress.IPv4Address(value)


def normalise_host(host: str) -> str:
    """A host as the network sees it: percent-decoded, NFKC, lower case, without brackets
    or one trailing dot; IP literals in canonical form (``0x7f.1`` -> ``127.0.0.1``)."""
    host = _DOTS_RE.sub(".", unicodedata.normalize("NFKC", unquote(host))).strip().lower()
    host = host.removeprefix("[").removesuffix("]")
    ip = parse_ip(host)
    if ip is not None:
        return str(ip)
    return host.removesuffix(".")


def parse_ip(host: str) -> IPAddress | None:
    """``host`` as an IP address (IPv6 with or without brackets and zone, any IPv4
    spelling), or ``None`` for a host name."""
    host = host.strip().removeprefix("[").removesuffix("]")
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            return None
    return parse_ipv4(host)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, NAT64, Teredo, compatible)."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if any(ip in net for net in _NAT64) or (ip in _V4_COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_refusal(ip: IPAddress) -> str | None:
    """Why a crawl must not connect to ``ip`` (``loopback``, ``private``, ``link_local``,
    ``cgnat``, ``multicast``, ``unspecified``, ``reserved``), or ``None`` for a public one.

    IPv6 addresses that embed an IPv4 address (``::ffff:127.0.0.1``, 6to4, NAT64, Teredo)
    are judged by the embedded address as well.
    """
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None and (reason := address_refusal(embedded)):
            return reason
    if ip.is_unspecified or ip in _THIS_NETWORK:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link_local"
    if ip.is_multicast:
        return "multicast"
    if ip in _CGNAT:
        return "cgnat"
    if any(ip in net for net in _PRIVATE) or (
        isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local
    ):
        return "private"
    # Documentation, benchmarking, 240/4, broadcast, discard-only, IETF protocol ranges ...
    if ip.is_private or ip.is_reserved or not ip.is_global:
        return "reserved"
    return None


@dataclass(frozen=True)
class Refusal:
    """Why one URL is refused: a stats-friendly ``reason`` and a human ``detail``."""

    reason: str
    detail: str


@dataclass(frozen=True)
class HostPolicy:
    """Which hosts may be fetched whatever their address: those the person running the
    crawl declared (``spider.declared_hosts``) and ``SSRF_ALLOWED_HOSTS``."""

    hosts: frozenset[str] = frozenset()
    """Exact host names or IP addresses (normalised)."""
    suffixes: tuple[str, ...] = ()
    """``.example.internal`` entries: the domain and every name under it."""
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    """CIDR entries (``10.1.2.0/24``): IP-literal hosts inside them."""

    @classmethod
    def build(cls, entries: Iterable[str]) -> HostPolicy:
        hosts, suffixes, networks = set(), [], []
        for raw in entries:
            entry = str(raw).strip()
            if not entry:
                continue
            if "/" in entry:
                networks.append(ipaddress.ip_network(entry, strict=False))
            elif entry.startswith("."):
                suffixes.append(normalise_host(entry[1:]))
            else:
                hosts.add(normalise_host(entry))
        return cls(frozenset(hosts), tuple(suffixes), tuple(networks))

    def __or__(self, other: HostPolicy) -> HostPolicy:
        return HostPolicy(
            self.hosts | other.hosts,
            tuple(dict.fromkeys(self.suffixes + other.suffixes)),
            tuple(dict.fromkeys(self.networks + other.networks)),
        )

    def allows(self, host: str) -> bool:
        """Whether the (normalised) ``host`` was declared."""
        if host in self.hosts:
            return True
        if any(host == s or host.endswith("." + s) for s in self.suffixes):
            return True
        if self.networks and (ip := parse_ip(host)) is not None:
            return any(ip in net for net in self.networks)
        return False


def url_host(url: str) -> tuple[str | None, Refusal | None]:
    """The normalised host of ``url``, or the refusal of a URL that has no usable one
    (another scheme, credentials, characters a browser and a socket read differently)."""
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        netloc = parts.netloc
        raw = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        return None, Refusal("bad_url", f"unparsable URL: {exc}")
    if scheme not in ALLOWED_SCHEMES:
        return None, Refusal("scheme", f"scheme {scheme or '(none)'!r} is not http(s)")
    if "@" in netloc:
        return None, Refusal("userinfo", "URL carries credentials (user@host)")
    if not raw:
        return None, Refusal("bad_url", "URL has no host")
    host = normalise_host(raw)
    if _BAD_HOST_RE.search(host):
        return None, Refusal("bad_url", f"host {raw!r} has characters hosts cannot have")
    return host, None


def addresses_refusal(host: str, addresses: Iterable[IPAddress]) -> Refusal | None:
    """The refusal of a host name that resolves to any non-public address (all of a name's
    addresses are judged: the connection may use any of them)."""
    for ip in addresses:
        if reason := address_refusal(ip):
            return Refusal(reason, f"{host} resolves to {reason} address {ip}")
    return None


def static_refusal(url: str, policy: HostPolicy) -> tuple[Refusal | None, str | None]:
    """Judge ``url`` without the network: ``(refusal, None)`` when refused, ``(None, None)``
    when allowed, ``(None, host)`` when ``host`` is a name to resolve before deciding."""
    host, refusal = url_host(url)
    if refusal is not None or host is None:
        return refusal, None
    if policy.allows(host):
        return None, None
    ip = parse_ip(host)
    if ip is None:
        return None, host
    if reason := address_refusal(ip):
        return Refusal(reason, f"{reason} address {ip}"), None
    return None, None


# -- name resolution -------------------------------------------------------------------------
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
_TASKS: set[asyncio.Task[Any]] = set()


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
        REGISTRY.enabled = settings.getbool("SSRF_GUARD_ENABLED", True)
        if not REGISTRY.enabled:
            raise NotConfigured("SSRF_GUARD_ENABLED is off")
        try:
            allowed = HostPolicy.build(settings.getlist("SSRF_ALLOWED_HOSTS"))
        except ValueError as exc:
            raise NotConfigured(f"SSRF_ALLOWED_HOSTS: {exc}") from exc
        REGISTRY.abort_types = frozenset(
            settings.getlist("PLAYWRIGHT_ABORT_RESOURCE_TYPES", sorted(ABORT_RESOURCE_TYPES))
        )
        REGISTRY.abort_hosts = AD_HOST_SUFFIXES + tuple(
            normalise_host(h) for h in settings.getlist("PLAYWRIGHT_ABORT_HOSTS")
        )
        REGISTRY.page_lifetime = settings.getfloat("PLAYWRIGHT_PAGE_LIFETIME", 60.0)
        REGISTRY.use_proxy = settings.getbool("PLAYWRIGHT_GUARD_PROXY", True)
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
            request.meta.setdefault("playwright_page_init_callback", f"{__name__}.init_page")
            if REGISTRY.use_proxy:
                # The browser context (made by the first rendered request) sends everything
                # through the guard proxy: redirect hops and DNS answers included.
                port = await browser_proxy_port()
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


# -- connect-time check ----------------------------------------------------------------------
class GuardedResolver(CachingThreadedResolver):
    """Scrapy's caching resolver, refusing a non-public answer for an undeclared name: the
    address the downloader connects to is the one checked (closes the DNS-rebinding window
    between the middleware's check and the connection). IP literals never reach a resolver;
    the middleware judges those."""

    enabled = True

    @classmethod
    def from_crawler(cls, crawler: Crawler, reactor: Any) -> Self:
        resolver = super().from_crawler(crawler, reactor)
        resolver.enabled = crawler.settings.getbool("SSRF_GUARD_ENABLED", True)
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


# -- rendered pages (scrapy-playwright) ------------------------------------------------------
async def judge_browser_url(url: str) -> tuple[str | None, Refusal | None]:
    """For the browser proxy: the address to connect to for ``url`` (checked), or the
    refusal; ``(None, None)`` when the name does not resolve."""
    host, refusal = url_host(url)
    if refusal is not None or host is None:
        return None, refusal
    if not REGISTRY.enabled or REGISTRY.policy.allows(host):
        return host, None
    ip = parse_ip(host)
    if ip is not None:
        reason = address_refusal(ip)
        return (None, Refusal(reason, f"{reason} address {ip}")) if reason else (str(ip), None)
    addresses = REGISTRY.dns.cached(host)
    if addresses is None:
        addresses = await asyncio.get_running_loop().run_in_executor(
            None, REGISTRY.dns.lookup, host
        )
    if not addresses:
        return None, None
    refusal = addresses_refusal(host, addresses)
    return (None, refusal) if refusal else (str(addresses[0]), None)


def _proxy_refused(url: str, refusal: Refusal) -> None:
    REGISTRY.count(refusal)
    logger.warning(
        "SSRF guard: rendered page request refused %s (%s: %s)", url, refusal.reason, refusal.detail
    )


async def browser_proxy_port() -> int:
    """Port of the guard proxy rendered pages use (started on first use)."""
    if REGISTRY.proxy is None:
        REGISTRY.proxy = GuardProxy(judge_browser_url, _proxy_refused)
    return await REGISTRY.proxy.start()


async def _url_refusal(url: str) -> Refusal | None:
    if url.startswith(("data:", "blob:", "about:")):
        return None  # never leaves the browser
    refusal, host = static_refusal(url, REGISTRY.policy)
    if host is None:
        return refusal
    addresses = REGISTRY.dns.cached(host)
    if addresses is None:
        addresses = await asyncio.get_running_loop().run_in_executor(
            None, REGISTRY.dns.lookup, host
        )
    return addresses_refusal(host, addresses)


async def abort_request(request: Any) -> bool:
    """``PLAYWRIGHT_ABORT_REQUEST``: abort images, media, fonts and ad/tracker requests of a
    rendered page, and any request its JavaScript makes to an address the guard refuses."""
    if request.resource_type in REGISTRY.abort_types:
        return True
    host = normalise_host(urlsplit(request.url).hostname or "")
    if any(host == s or host.endswith("." + s) for s in REGISTRY.abort_hosts):
        return True
    if not REGISTRY.enabled:
        return False
    refusal = await _url_refusal(request.url)
    if refusal is None:
        return False
    REGISTRY.count(refusal)
    logger.warning(
        "SSRF guard: rendered page request refused %s (%s: %s)",
        request.url,
        refusal.reason,
        refusal.detail,
    )
    return True


async def init_page(page: Any, request: Request) -> None:
    """``playwright_page_init_callback`` set by the middleware: close the page after
    ``PLAYWRIGHT_PAGE_LIFETIME`` seconds and refuse WebSockets to refused addresses."""
    loop = asyncio.get_running_loop()

    def expire() -> None:
        if not page.is_closed():
            logger.warning(
                "rendered page %s outlived PLAYWRIGHT_PAGE_LIFETIME (%.0f s): closed",
                request.url,
                REGISTRY.page_lifetime,
            )
            if REGISTRY.stats is not None:
                REGISTRY.stats.inc_value("playwright/page_lifetime_exceeded")
            task = loop.create_task(page.close())
            _TASKS.add(task)
            task.add_done_callback(_TASKS.discard)

    if REGISTRY.page_lifetime > 0:
        timer = loop.call_later(REGISTRY.page_lifetime, expire)
        page.once("close", lambda _page: timer.cancel())
    if REGISTRY.enabled:
        await page.route_web_socket(re.compile(".*"), _guard_websocket)


async def _guard_websocket(ws: Any) -> None:
    refusal = await _url_refusal(re.sub(r"^ws", "http", ws.url))
    if refusal is None:
        ws.connect_to_server()
        return
    REGISTRY.count(refusal)
    logger.warning("SSRF guard: rendered page WebSocket refused %s (%s)", ws.url, refusal.detail)
    await ws.close()
