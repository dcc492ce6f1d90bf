"""Which URLs and addresses a crawl may fetch: the SSRF guard's policy as pure functions
(no network, no Scrapy). A URL is refused for its scheme, credentials or an unusable host, and
an address for being loopback, private, link-local, CGNAT, multicast, unspecified or reserved,
unless its host was declared by the person running the crawl (``HostPolicy``)."""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    from collections.abc import Iterable

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


# -- what a host is -----------------------------------------------------------------------
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
