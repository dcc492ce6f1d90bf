"""The faults the site serves and what a crawl must make of each: article-level cases,
URL spellings the SSRF guard must refuse, and the healthy articles between them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from crawler.faultsite.server import FaultServer


@dataclass(frozen=True)
class Case:
    """One article-level fault: the path the feed links to and what must come of it."""

    name: str
    path: str
    stored: bool = False
    """The article must be stored (a fault the crawler recovers from)."""
    failed: str | None = None
    """The request must fail with this reason (``article <url> failed (<reason>)`` logged,
    ``article/failed/<reason>`` counted)."""
    dropped: str | None = None
    """The page must be dropped by the validate step with this reason."""
    stat: str | None = None
    """A further stat that must be counted (>= 1)."""
    contains: str | None = None
    """With ``stored``: text the stored article must contain (decoding checks)."""
    log: str | None = None
    """Text the log must show, when not the default for ``failed`` / ``dropped``
    (``{url}``, ``{base}`` and ``{canary}`` are filled in)."""

    def expected_log(self, server: FaultServer) -> str | None:
        url = server.url(self.path)
        if self.log:
            return self.log.format(url=url, base=server.base, canary=server.canary_base)
        if self.failed:
            return f"article {url} failed ({self.failed})"
        if self.dropped:
            return f"not an article ({self.dropped}): {url}"
        return None

    def stats(self) -> list[str]:
        keys = [self.stat] if self.stat else []
        if self.failed:
            keys.append(f"article/failed/{self.failed}")
        if self.dropped:
            keys.append(f"validate/dropped/{self.dropped}")
        return keys


CASES: tuple[Case, ...] = (
    Case("http 404", "/f/404", failed="http_404"),
    Case("http 410", "/f/410", failed="http_410"),
    Case("http 429 + Retry-After", "/f/429", stored=True, stat="retry/after_waited"),
    Case("http 429, Retry-After too long", "/f/429-long", failed="http_429",
         stat="retry/after_too_long"),
    Case("http 500", "/f/500", failed="http_500", stat="retry/max_reached"),
    Case("http 503 then ok", "/f/503", stored=True, stat="retry/count"),
    Case("connection refused", "@refused", failed="refused"),
    Case("reset before any response", "/f/reset-early", failed="reset"),
    Case("reset mid-body", "/f/reset", failed="truncated"),
    Case("truncated body", "/f/truncated", failed="truncated"),
    Case("1 byte per second", "/f/trickle", failed="timeout"),
    Case("redirect loop", "/f/loop-a", stat="redirect/loop",
         log="failed (redirect_loop): redirect loop: {base}/f/loop-b -> {base}/f/loop-a"),
    Case("redirect chain too long", "/f/chain/1", stat="article/failed/max_redirects",
         log="article {base}/f/chain/6 failed (max_redirects)"),
    Case("redirect to private address", "/f/redirect-private", stat="ssrf/refused/loopback",
         log="refused {canary}/via-redirect (loopback"),
    Case("50 MB page", "/f/huge", failed="too_large"),
    Case("50 MB page, no length", "/f/huge-stream", failed="too_large"),
    Case("gzip bomb", "/f/bomb-gzip", failed="too_large"),
    Case("deflate bomb", "/f/bomb-deflate", failed="too_large"),
    Case("brotli bomb", "/f/bomb-br", failed="too_large"),
    Case("wrong content type", "/f/wrong-type", stored=True, contains="Report 9001"),
    Case("PDF served as HTML", "/f/pdf", dropped="not_html"),
    Case("image served as HTML", "/f/image", dropped="not_html"),
    Case("empty 200", "/f/empty", dropped="no_text"),
    Case("HTML without article", "/f/no-article", dropped="too_short"),
    Case("broken HTML, NUL bytes", "/f/broken", stored=True, contains="Report 9002"),
    Case("JSON-LD nested 100,000 deep", "/f/deep-jsonld", stored=True, contains="Report 9005"),
    Case("EUC-KR, no charset", "/f/euc-kr", stored=True, contains="도심 재개발 사업의 착공식"),
    Case("CP949, no charset", "/f/cp949", stored=True, contains="똠양꿍 가게"),
    Case("Shift_JIS, no charset", "/f/shift-jis", stored=True, contains="終電時刻を平日に限り"),
    Case("Windows-1252, no charset", "/f/cp1252", stored=True, contains="3,50 € la tasse"),
    Case("charset header lies (utf-8)", "/f/lying-utf8", stored=True, contains="등록금 동결"),
    Case("charset header lies (latin-1)", "/f/lying-latin1", stored=True, contains="감귤 수확"),
    Case("pathological page (slow extraction)", "/f/slow-extract", failed="extract_timeout",
         stat="extract/timeout", log="{url}: not extracted"),
)  # fmt: skip
# Every vector the guard must refuse with no host declared: (URL, reason, kind of vector).
SSRF_VECTORS = [
    ("http://127.0.0.1/", "loopback", "IPv4 loopback"),
    ("http://127.1/", "loopback", "IPv4 short form"),
    ("http://2130706433/", "loopback", "IPv4 as one decimal number"),
    ("http://0x7f.1/", "loopback", "IPv4 in hex"),
    ("http://0x7f000001/", "loopback", "IPv4 in hex"),
    ("http://017700000001/", "loopback", "IPv4 in octal"),
    ("http://0177.0.0.1/", "loopback", "IPv4 in octal"),
    ("http://127.0.0.1./", "loopback", "IPv4 with trailing dot"),
    ("http://%31%32%37.0.0.1/", "loopback", "percent-encoded host"),
    ("http://[::1]/", "loopback", "IPv6 loopback"),
    ("http://[::ffff:127.0.0.1]/", "loopback", "IPv4-mapped IPv6"),
    ("http://[::ffff:7f00:1]/", "loopback", "IPv4-mapped IPv6"),
    ("http://[::127.0.0.1]/", "loopback", "IPv4-compatible IPv6"),
    ("http://[2002:7f00:1::]/", "loopback", "6to4 embedding"),
    ("http://169.254.169.254/latest/meta-data/", "link_local", "cloud metadata (link-local)"),
    ("http://[fe80::1%25eth0]/", "link_local", "IPv6 link-local with zone"),
    ("http://[64:ff9b::a9fe:a9fe]/", "link_local", "NAT64 embedding"),
    ("http://10.0.0.1/", "private", "RFC 1918 private"),
    ("http://172.16.5.4/", "private", "RFC 1918 private"),
    ("http://192.168.1.1/", "private", "RFC 1918 private"),
    ("http://0300.0250.0.1/", "private", "IPv4 in octal"),
    ("http://[fc00::1]/", "private", "IPv6 unique local"),
    ("http://[fd12:3456::1]/", "private", "IPv6 unique local"),
    ("http://[fec0::1]/", "private", "IPv6 site-local"),
    ("http://100.64.0.1/", "cgnat", "carrier-grade NAT"),
    ("http://100.127.255.254/", "cgnat", "carrier-grade NAT"),
    ("http://224.0.0.251/", "multicast", "IPv4 multicast"),
    ("http://[ff02::1]/", "multicast", "IPv6 multicast"),
    ("http://0.0.0.0/", "unspecified", "unspecified"),
    ("http://0/", "unspecified", "unspecified"),
    ("http://[::]/", "unspecified", "unspecified"),
    ("http://240.0.0.1/", "reserved", "reserved / broadcast / documentation"),
    ("http://255.255.255.255/", "reserved", "reserved / broadcast / documentation"),
    ("http://192.0.2.10/", "reserved", "reserved / broadcast / documentation"),
    ("http://198.18.0.1/", "reserved", "reserved / broadcast / documentation"),
    ("file:///etc/passwd", "scheme", "file: scheme"),
    ("ftp://127.0.0.1/x", "scheme", "other scheme (ftp, data, gopher, dict, javascript)"),
    ("data:text/html,<h1>x</h1>", "scheme", "other scheme (ftp, data, gopher, dict, javascript)"),
    ("gopher://127.0.0.1:6379/_INFO", "scheme", "other scheme (ftp, data, gopher, dict, javascript)"),
    ("dict://127.0.0.1:11211/stat", "scheme", "other scheme (ftp, data, gopher, dict, javascript)"),
    ("javascript:alert(1)", "scheme", "other scheme (ftp, data, gopher, dict, javascript)"),
    ("http://example.com@127.0.0.1/", "userinfo", "credentials before the host"),
    ("http://127.0.0.1:99999/", "bad_url", "unparsable port"),
]  # fmt: skip

HEALTHY = tuple(range(1, 9))
"""Healthy articles ``/ok/<n>.html`` interleaved with the faults: all must be stored."""
