"""A misbehaving HTTP server on 127.0.0.1 for the fault tests and ``bench/fault_suite.py``:
each path is one fault (status codes, resets, trickles, bombs, lying charsets, hostile XML),
next to healthy articles; a canary server on 127.0.0.2 records any request that got out."""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import socket
import sqlite3
import struct
import subprocess
import sys
import threading
import time
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar, Self

import brotli

ROOT = Path(__file__).resolve().parents[1]
FAULT_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "faults"

_VOCABULARY = (
    "city council budget river bridge school teacher museum harbour railway farmer market "
    "election minister report factory export import wage union strike court judge law police "
    "weather storm flood drought harvest rice wheat coffee tea price index bank loan rate "
    "company chip battery engine ship port airline pilot station train bus road tunnel park "
    "forest mountain island coast village festival music film novel artist painter library "
    "hospital doctor nurse patient vaccine study survey census village mayor governor army "
    "navy border treaty summit talks envoy senator parliament committee vote ballot poll "
    "tax tariff subsidy pension housing rent tenant landlord builder architect engineer "
    "software network cable satellite rocket launch orbit telescope planet ocean fishery "
    "whale reef glacier climate carbon solar wind turbine grid outage blackout water pipe"
)
_WORDS = _VOCABULARY.split()
_FILLER = (
    "the", "a", "of", "in", "on", "after", "before", "while", "and", "but", "said", "says",
    "reported", "announced", "expects", "plans", "new", "local", "national", "first", "last",
)  # fmt: skip


def article_words(n: int, count: int = 260) -> str:
    """Distinct, deterministic prose for article ``n`` (no two share a story)."""
    rng = random.Random(n * 7919 + 17)
    words = []
    for i in range(count):
        words.append(rng.choice(_WORDS) if i % 3 else rng.choice(_FILLER))
    sentences = [" ".join(words[i : i + 13]).capitalize() + "." for i in range(0, count, 13)]
    return " ".join(sentences)


def article_title(n: int) -> str:
    rng = random.Random(n)
    return f"Report {n}: {rng.choice(_WORDS)} and {rng.choice(_WORDS)} in the news"


def article_html(n: int, *, title: str | None = None, text: str | None = None) -> str:
    title = title or article_title(n)
    text = text or article_words(n)
    paras = "".join(f"<p>{p.strip()}.</p>" for p in text.split(".") if p.strip())
    return (
        f"<!doctype html><html lang='en'><head><title>{title}</title>"
        f"<meta property='article:published_time' content='2026-11-20T08:00:00+00:00'>"
        f"</head><body><nav><a href='/'>Home</a></nav><article><h1>{title}</h1>{paras}"
        f"</article><footer>Contact us</footer></body></html>"
    )


def encoded_page(name: str, encoding: str, *, drop: str | None = None) -> tuple[str, bytes]:
    """``(title, body)`` of fixture text ``name`` as an HTML page in ``encoding``, with no
    charset declared anywhere."""
    text = (FAULT_FIXTURES / f"{name}.txt").read_text(encoding="utf-8")
    if drop:
        text = text.replace(drop, "")
    title, *paras = [line for line in text.splitlines() if line.strip()]
    html = (
        f"<html><head><title>{title}</title></head><body><article><h1>{title}</h1>"
        + "".join(f"<p>{p}</p>" for p in paras)
        + "</article></body></html>"
    )
    return title, html.encode(encoding)


@cache
def bomb(kind: str, size: int = 200 * 1024 * 1024) -> bytes:
    """``size`` zero bytes compressed with ``kind`` (gzip/deflate/br): a few hundred KB."""
    zeros = bytes(1024 * 1024)
    if kind == "br":
        compressor = brotli.Compressor(quality=1)
        out = [compressor.process(zeros) for _ in range(size // len(zeros))]
        return b"".join(out) + compressor.finish()
    if kind == "deflate":
        compressor = zlib.compressobj(9)
    else:
        compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip container
    out = [compressor.compress(zeros) for _ in range(size // len(zeros))]
    return b"".join(out) + compressor.flush()


_RANGE_RE = re.compile(r"/range-(\d+)-(\d+)\.rss")
"""``/range-FIRST-COUNT.rss``: a feed of healthy articles FIRST ... FIRST+COUNT-1."""
_DEEP = "[" * 100_000 + "]" * 100_000
"""JSON nested deeper than Python's parser recurses."""
PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n" + b"x" * 400
PNG = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + b"\x00" * 17 + b"x" * 400
LOL = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lollollollollollollollol">\n'
    + b"".join(
        f' <!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n'.encode()
        for i in range(1, 10)
    )
    + b"]>\n"
)
XXE = (
    b'<?xml version="1.0"?>\n<!DOCTYPE x [\n <!ENTITY xxe SYSTEM "file:///etc/passwd">\n'
    b' <!ENTITY ext SYSTEM "http://127.0.0.2:{canary}/xxe">\n]>\n'
)


# -- the cases ---------------------------------------------------------------------------------
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


# -- the servers -------------------------------------------------------------------------------
class _Quiet(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class _Canary(_Quiet):
    server: CanaryServer

    def do_GET(self) -> None:
        self.server.hits.append(self.path)
        body = b"SECRET-METADATA"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients hang up on bombs, resets and huge pages by design


class CanaryServer(_QuietServer):
    """Listens on 127.0.0.2 (loopback, never declared): any hit is an SSRF that got out."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.2", 0), _Canary)
        self.hits: list[str] = []


class _Faulty(_Quiet):
    server: FaultServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        self.server.record(path)
        handler = self.server.routes.get(path)
        if handler is None and path.startswith("/ok/"):
            handler = _ok
        if handler is None and (match := _RANGE_RE.fullmatch(path)):
            first, count = int(match[1]), int(match[2])
            entries = [
                (article_title(n), self.server.url(f"/ok/{n}.html"))
                for n in range(first, first + count)
            ]
            self._send(200, _feed_rss(entries), "application/rss+xml")
            return
        if handler is None:
            self._send(404, b"not found", "text/plain")
            return
        handler(self)

    def _send(
        self,
        status: int,
        body: bytes,
        ctype: str | None = "text/html; charset=utf-8",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        if ctype:
            self.send_header("Content-Type", ctype)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def _redirect(self, location: str) -> None:
        self._send(302, b"", None, {"Location": location})


def _ok(h: _Faulty) -> None:
    n = int(h.path.rsplit("/", 1)[-1].split(".")[0])
    if h.server.ok_delay:
        time.sleep(h.server.ok_delay)
    h._send(200, article_html(n).encode())


def _count(h: _Faulty) -> int:
    return h.server.requests.count(h.path.split("?", 1)[0])


def _status(status: int, **headers: str) -> Any:
    def handle(h: _Faulty) -> None:
        h._send(status, f"<html><body><h1>{status}</h1></body></html>".encode(), headers=headers)

    return handle


def _then_ok(status: int, n: int, **headers: str) -> Any:
    def handle(h: _Faulty) -> None:
        if _count(h) == 1:
            _status(status, **headers)(h)
        else:
            h._send(200, article_html(n).encode())

    return handle


def _reset(h: _Faulty) -> None:
    h.send_response(200)
    h.send_header("Content-Type", "text/html")
    h.send_header("Content-Length", "100000")
    h.end_headers()
    h.wfile.write(article_html(9100).encode()[:800])
    h.wfile.flush()
    h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    h.connection.close()
    h.close_connection = True


def _reset_early(h: _Faulty) -> None:
    h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    h.connection.close()
    h.close_connection = True


def _truncated(h: _Faulty) -> None:
    body = article_html(9101).encode()
    h.send_response(200)
    h.send_header("Content-Type", "text/html")
    h.send_header("Content-Length", str(len(body) + 5000))
    h.send_header("Connection", "close")
    h.end_headers()
    h.wfile.write(body)
    h.close_connection = True


def _trickle(h: _Faulty) -> None:
    body = article_html(9102).encode()
    h.send_response(200)
    h.send_header("Content-Type", "text/html")
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    with contextlib.suppress(OSError):
        for byte in body:
            if h.server.stopping.wait(1.0):
                break
            h.wfile.write(bytes([byte]))
            h.wfile.flush()
    h.close_connection = True


def _huge(h: _Faulty, *, length: bool) -> None:
    h.send_response(200)
    h.send_header("Content-Type", "text/html")
    if length:
        h.send_header("Content-Length", str(50 * 1024 * 1024))
    h.send_header("Connection", "close")
    h.end_headers()
    chunk = b"<p>" + b"a" * 65530 + b"</p>"
    with contextlib.suppress(OSError):
        for _ in range(50 * 16):
            if h.server.stopping.is_set():
                break
            h.wfile.write(chunk)
    h.close_connection = True


def _bomb(kind: str) -> Any:
    def handle(h: _Faulty) -> None:
        h._send(200, bomb(kind), headers={"Content-Encoding": kind})

    return handle


def _encoded(name: str, encoding: str, ctype: str = "text/html", drop: str | None = None) -> Any:
    def handle(h: _Faulty) -> None:
        h._send(200, encoded_page(name, encoding, drop=drop)[1], ctype)

    return handle


def _broken(h: _Faulty) -> None:
    text = article_words(9002)
    html = (
        "<html><head><title>Report 9002: broken markup\x00</title><body><div><article>"
        "<h1>Report 9002: broken markup</h1>"
        + "".join(f"<p>{s}.\x00<b><i>" for s in text.split(".") if s.strip())
        + "</div></span><table><tr><td>unclosed"
    )
    h._send(200, html.encode())


def _slow_extract(h: _Faulty) -> None:
    # Hundreds of thousands of links: lxml, trafilatura and readability take many seconds.
    body = "<html><body>" + "<a href='/x'>link text here</a> " * 60000 + "</body></html>"
    h._send(200, body.encode())


def _feed_rss(entries: list[tuple[str, str]]) -> bytes:
    items = "".join(
        f"<item><title>{title}</title><link>{link}</link>"
        f"<pubDate>Fri, 20 Nov 2026 08:00:00 GMT</pubDate></item>"
        for title, link in entries
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>faults</title>{items}'
        "</channel></rss>"
    ).encode()


class FaultServer(_QuietServer):
    """The misbehaving site. ``base`` is its URL; ``requests`` lists the paths asked for;
    ``canary`` is the 127.0.0.2 server undeclared requests would reach."""

    robots: ClassVar[dict[str, Any]] = {}

    def __init__(self, *, robots: str = "allow") -> None:
        super().__init__(("127.0.0.1", 0), _Faulty)
        self.requests: list[str] = []
        self.times: dict[str, list[float]] = {}
        self._lock = threading.Lock()
        self.stopping = threading.Event()
        self.canary = CanaryServer()
        self.refused_port = _closed_port()
        self.robots_mode = robots
        self.ok_delay = 0.0
        """Seconds each healthy article takes to answer (crash tests need a slow crawl)."""
        self.extra_links: list[str] = []
        """More links for ``/agg.html`` (e.g. healthy stories on another declared server)."""
        self.routes: dict[str, Any] = {}
        self.serve_threads: list[threading.Thread] = []
        self._build_routes()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    @property
    def canary_base(self) -> str:
        return f"http://127.0.0.2:{self.canary.server_address[1]}"

    def url(self, path: str) -> str:
        if path == "@refused":
            return f"http://127.0.0.1:{self.refused_port}/gone.html"
        return self.base + path

    def record(self, path: str) -> None:
        with self._lock:
            self.requests.append(path)
            self.times.setdefault(path, []).append(time.monotonic())

    def __enter__(self) -> Self:
        for server in (self, self.canary):
            thread = threading.Thread(target=server.serve_forever, daemon=True)
            thread.start()
            self.serve_threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        for server in (self, self.canary):
            server.shutdown()
            server.server_close()

    # -- routes ------------------------------------------------------------------------
    def _build_routes(self) -> None:
        r = self.routes
        r["/robots.txt"] = self._robots
        r["/f/404"] = _status(404)
        r["/f/410"] = _status(410)
        r["/f/429"] = _then_ok(429, 9003, **{"Retry-After": "1"})
        r["/f/429-long"] = _status(429, **{"Retry-After": "3600"})
        r["/f/500"] = _status(500)
        r["/f/503"] = _then_ok(503, 9004)
        r["/f/reset"] = _reset
        r["/f/reset-early"] = _reset_early
        for i in range(1, 10):
            r[f"/f/chain/{i}"] = lambda h, i=i: h._redirect(f"/f/chain/{i + 1}")
        r["/f/truncated"] = _truncated
        r["/f/trickle"] = _trickle
        r["/f/loop-a"] = lambda h: h._redirect("/f/loop-b")
        r["/f/loop-b"] = lambda h: h._redirect("/f/loop-a")
        r["/f/redirect-private"] = lambda h: h._redirect(self.canary_base + "/via-redirect")
        r["/f/huge"] = lambda h: _huge(h, length=True)
        r["/f/huge-stream"] = lambda h: _huge(h, length=False)
        r["/f/bomb-gzip"] = _bomb("gzip")
        r["/f/bomb-deflate"] = _bomb("deflate")
        r["/f/bomb-br"] = _bomb("br")
        r["/f/wrong-type"] = lambda h: h._send(
            200, article_html(9001).encode(), "application/octet-stream"
        )
        r["/f/pdf"] = lambda h: h._send(200, PDF, "text/html")
        r["/f/image"] = lambda h: h._send(200, PNG, "text/html")
        r["/f/empty"] = lambda h: h._send(200, b"", "text/html")
        r["/f/no-article"] = lambda h: h._send(
            200, b"<html><body><nav><a href='/'>Home</a> <a href='/b'>B</a></nav></body></html>"
        )
        r["/f/broken"] = _broken
        r["/f/deep-jsonld"] = lambda h: h._send(
            200,
            article_html(9005)
            .replace("</head>", f"<script type='application/ld+json'>{_DEEP}</script></head>")
            .encode(),
        )
        r["/deep.json"] = lambda h: h._send(
            200,
            b'{"version": "https://jsonfeed.org/version/1.1", "items": ' + _DEEP.encode() + b"}",
            "application/feed+json",
        )
        r["/f/euc-kr"] = _encoded("korean", "euc-kr", drop="똠방각하 식당 주인 ")
        r["/f/cp949"] = _encoded("korean2", "cp949")
        r["/f/shift-jis"] = _encoded("japanese", "shift_jis")
        r["/f/cp1252"] = _encoded("french", "cp1252")
        r["/f/lying-utf8"] = _encoded("korean3", "cp949", "text/html; charset=utf-8")
        r["/f/lying-latin1"] = _encoded("korean4", "euc-kr", "text/html; charset=iso-8859-1")
        r["/f/slow-extract"] = _slow_extract
        r["/feed.rss"] = self._fault_feed
        # feeds and sitemaps with hostile XML, each next to good entries
        r["/xxe.rss"] = lambda h: h._send(200, self.hostile_feed(XXE, 9201), "application/rss+xml")
        r["/bomb.rss"] = lambda h: h._send(200, self.hostile_feed(LOL, 9202), "application/rss+xml")
        r["/malformed.rss"] = self._malformed_feed
        r["/surrogate.json"] = self._surrogate_feed
        r["/surrogate-page.html"] = lambda h: h._send(
            200,
            f"<html><body><article><p>{article_words(9205)}</p></article></body></html>".encode(),
        )
        r["/xxe-sitemap.xml"] = lambda h: h._send(
            200, self.hostile_sitemap(XXE, 9301), "application/xml"
        )
        r["/bomb-sitemap.xml"] = lambda h: h._send(
            200, self.hostile_sitemap(LOL, 9302), "application/xml"
        )
        r["/big-sitemap.xml"] = lambda h: h._send(200, self.big_sitemap(), "application/xml")
        r["/dup-feed.rss"] = lambda h: h._send(
            200,
            _feed_rss([(article_title(n), self.url(f"/ok/{n}.html")) for n in range(500, 530)]),
            "application/rss+xml",
        )
        # SSRF: pages that try to steer the crawler (or the browser) to undeclared hosts
        r["/agg.html"] = lambda h: h._send(200, self.ssrf_page().encode())
        r["/redirect-to-canary"] = lambda h: h._redirect(self.canary_base + "/redirected")
        r["/ssrf-index.xml"] = lambda h: h._send(200, self.ssrf_index(), "application/xml")
        r["/ok-sitemap.xml"] = lambda h: h._send(
            200,
            b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>'
            + self.url("/ok/9501.html").encode()
            + b"</loc></url></urlset>",
            "application/xml",
        )
        r["/js/"] = lambda h: h._send(
            200, b"<html><body><a href='/js/story.html'>story</a></body></html>"
        )
        r["/js/story.html"] = lambda h: h._send(200, self.js_story().encode())
        r["/private/secret.html"] = lambda h: h._send(200, article_html(9400).encode())
        r["/robots-feed.rss"] = lambda h: h._send(
            200,
            _feed_rss(
                [
                    ("secret", self.url("/private/secret.html")),
                    ("open", self.url("/ok/9401.html")),
                ]
            ),
            "application/rss+xml",
        )

    def ssrf_vectors(self) -> list[tuple[str, str]]:
        """``(url, refusal reason)`` of links aimed at undeclared hosts; the 127.0.0.2 ones
        would reach the canary if the guard let them through."""
        port = self.canary.server_address[1]
        return [
            (f"http://127.0.0.2:{port}/plain", "loopback"),
            (f"http://2130706434:{port}/decimal", "loopback"),
            (f"http://0x7f000002:{port}/hex", "loopback"),
            (f"http://0x7f.0.0.2:{port}/hex-dotted", "loopback"),
            (f"http://017700000002:{port}/octal", "loopback"),
            (f"http://0177.0.0.2:{port}/octal-dotted", "loopback"),
            (f"http://127.2:{port}/short", "loopback"),
            (f"http://127.0.0.2.:{port}/trailing-dot", "loopback"),
            (f"http://[::ffff:127.0.0.2]:{port}/v4-mapped", "loopback"),
            (f"http://[::ffff:7f00:2]:{port}/v4-mapped-hex", "loopback"),
            (f"http://[::1]:{port}/v6-loopback", "loopback"),
            (f"http://localhost:{port}/name", "loopback"),
            (f"http://evil.example@127.0.0.2:{port}/userinfo", "userinfo"),
            ("http://169.254.169.254/latest/meta-data/", "link_local"),
            ("http://10.255.255.1/private", "private"),
            ("http://192.168.0.1/router", "private"),
            ("http://100.64.0.1/cgnat", "cgnat"),
            ("http://[fd00::1]/ula", "private"),
            ("http://224.0.0.1/multicast", "multicast"),
            (f"http://0.0.0.0:{port}/unspecified", "unspecified"),
            ("http://240.0.0.1/reserved", "reserved"),
        ]

    def ssrf_page(self) -> str:
        links = [url for url, _ in self.ssrf_vectors()]
        links += self.extra_links
        return (
            "<html><body><ol>"
            + "".join(f"<li><a href='{u}'>x</a></li>" for u in links)
            + "</ol></body></html>"
        )

    def ssrf_index(self) -> bytes:
        port = self.canary.server_address[1]
        children = [
            "file:///etc/passwd",
            "gopher://127.0.0.2:70/_x",
            "http://169.254.169.254/latest/meta-data/sitemap.xml",
            f"http://127.0.0.2:{port}/sitemap.xml",
            self.url("/ok-sitemap.xml"),
        ]
        body = "".join(f"<sitemap><loc>{c}</loc></sitemap>" for c in children)
        return (
            '<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            f"{body}</sitemapindex>"
        ).encode()

    def js_story(self) -> str:
        c = self.canary_base
        ws = c.replace("http://", "ws://")
        return article_html(9600).replace(
            "</article>",
            f"""</article><img src="http://169.254.169.254/latest/meta-data/x.png">
<iframe src="{c}/iframe"></iframe>
<script>
fetch("{c}/fetch").catch(() => 0);
fetch("/redirect-to-canary").catch(() => 0);
fetch("http://2130706434:{self.canary.server_address[1]}/odd").catch(() => 0);
try {{ new WebSocket("{ws}/ws"); }} catch (e) {{}}
navigator.sendBeacon && navigator.sendBeacon("{c}/beacon", "x");
// #sent: the crawl waits for it (wait_for), so every request above has been routed
setTimeout(() => {{ const d = document.createElement("div"); d.id = "sent";
  document.body.appendChild(d); }}, 500);
</script>""",
        )

    def _robots(self, h: _Faulty) -> None:
        if self.robots_mode == "disallow":
            h._send(200, b"User-agent: *\nDisallow: /private/\n", "text/plain")
        elif self.robots_mode == "error":
            h._send(500, b"User-agent: *\nDisallow: /\n", "text/plain")
        else:
            h._send(404, b"", "text/plain")

    def fault_entries(self) -> list[tuple[str, str]]:
        """Healthy articles interleaved with every case, as feed entries."""
        entries = []
        healthy = list(HEALTHY)
        for i, case in enumerate(CASES):
            entries.append((case.name, self.url(case.path)))
            if i % 4 == 0 and healthy:
                n = healthy.pop(0)
                entries.append((article_title(n), self.url(f"/ok/{n}.html")))
        entries.extend((article_title(n), self.url(f"/ok/{n}.html")) for n in healthy)
        return entries

    def _fault_feed(self, h: _Faulty) -> None:
        h._send(200, _feed_rss(self.fault_entries()), "application/rss+xml")

    def hostile_feed(self, prolog: bytes, n: int) -> bytes:
        prolog = prolog.replace(b"{canary}", str(self.canary.server_address[1]).encode())
        entity = b"&lol9;" if b"lolz" in prolog else b"&xxe;"
        return (
            prolog + b'<rss version="2.0"><channel><title>' + entity + b"</title>"
            b"<item><title>" + entity + b"</title><link>" + self.url("/ok/1.html").encode()
            + b"</link><description>" + entity + b"</description></item>"
            b"<item><title>good</title><link>" + self.url(f"/ok/{n}.html").encode()
            + b"</link></item></channel></rss>"
        )  # fmt: skip

    def hostile_sitemap(self, prolog: bytes, n: int) -> bytes:
        prolog = prolog.replace(b"{canary}", str(self.canary.server_address[1]).encode())
        entity = b"&lol9;" if b"lolz" in prolog else b"&xxe;"
        return (
            prolog + b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            b"<url><loc>" + self.url(f"/ok/{n}.html").encode() + b"</loc></url>"
            b"<url><loc>" + self.base.encode() + b"/ok/" + entity + b"</loc></url>"
            b"</urlset>"
        )  # fmt: skip

    def _malformed_feed(self, h: _Faulty) -> None:
        good = [self.url(f"/ok/{n}.html") for n in (9211, 9212)]
        body = (
            '<?xml version="1.0"?><rss version="2.0"><channel><title>Broken & co</title>'
            f"<item><title>One &nbsp; <b>bold</title><link>{good[0]}</link></item>"
            "<item><title>no link at all</title></item>"
            f"<item><title>Two</title><link>{good[1]}</link><pubDate>not a date</pubDate>"
            "<item><title>never closed"
        ).encode()
        h._send(200, body, "application/rss+xml")

    def _surrogate_feed(self, h: _Faulty) -> None:
        # JSON can spell a lone surrogate, which no UTF-8 database column can hold.
        body = (
            '{"version": "https://jsonfeed.org/version/1.1", "title": "t", "items": [{"id": "1",'
            f' "url": "{self.url("/surrogate-page.html")}", "title": "Lone \\ud800 surrogate'
            ' \\u0000 title", "date_published": "2026-11-20T08:00:00Z"}]}'
        ).encode()
        h._send(200, body, "application/feed+json")

    @cache  # noqa: B019 - one server, built once
    def big_sitemap(self, count: int = 100_000) -> bytes:
        """``count`` URLs, newest first one every 7 minutes: only the last days are recent."""
        now = datetime.now(UTC)
        parts = [
            '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        ]
        for i in range(count):
            stamp = (now - timedelta(minutes=7 * i)).replace(microsecond=0).isoformat()
            parts.append(
                f"<url><loc>{self.base}/ok/{20000 + i}.html</loc><lastmod>{stamp}</lastmod></url>"
            )
        parts.append("</urlset>")
        return "".join(parts).encode()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- running crawls and reading their results --------------------------------------------------
@dataclass
class CrawlResult:
    returncode: int
    stderr: str
    stats: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def crashed(self) -> bool:
        """A crash: an exception no part of the crawler handled (spider, pipeline, signal
        handler, Deferred or task) or a crawl without its final stats."""
        return (
            any(marker in self.stderr for marker in CRASH_MARKERS)
            or bool(self.stats.get("spider_exceptions_count"))
            or not self.stats
        )


CRASH_MARKERS = (
    "Unhandled error",
    "Spider error processing",
    "Error processing",
    "Error caught on signal handler",
    "exception was never retrieved",
    "Scraper close failure",
)
COMMON = ["-s", "AUTOTHROTTLE_ENABLED=False", "-s", "DOWNLOAD_DELAY=0", "-s", "LOG_LEVEL=INFO"]


def crawl(
    *args: str, db: Path, timeout: float = 180, preexec: Any = None, env: dict | None = None
) -> CrawlResult:
    """``python -m scrapy ARGS`` against ``db``; its stats read back from the runs table."""
    cmd = [sys.executable, "-m", "scrapy", *args, "-s", f"DB_PATH={db}", *COMMON]
    started = time.monotonic()
    proc = subprocess.run(
        cmd,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        preexec_fn=preexec,
        env={**os.environ, **(env or {})},
    )
    result = CrawlResult(proc.returncode, proc.stderr, seconds=time.monotonic() - started)
    with contextlib.suppress(sqlite3.Error, IndexError, TypeError, ValueError):
        result.stats = json.loads(
            query(db, "SELECT stats FROM runs ORDER BY id DESC LIMIT 1")[0]["stats"]
        )
    return result


def query(db: Path, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, params)]
    finally:
        conn.close()


def stored_paths(db: Path, base: str) -> dict[str, dict[str, Any]]:
    return {r["url"].removeprefix(base): r for r in query(db, "SELECT * FROM articles")}


def integrity(db: Path) -> tuple[str, int]:
    """``PRAGMA integrity_check`` and the number of half-written articles (no text, or no
    page row) of the file ``db``. A file killed before its first migration committed has no
    tables and counts as intact; tables without a schema version are a half-migrated file."""
    conn = sqlite3.connect(db, timeout=30)
    try:
        check = conn.execute("PRAGMA integrity_check").fetchone()[0]
        if conn.execute("PRAGMA user_version").fetchone()[0] == 0:
            tables = conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'")
            return (check if tables.fetchone()[0] == 0 else "half-migrated schema"), 0
        half = conn.execute(
            "SELECT COUNT(*) FROM articles a LEFT JOIN pages p ON p.article_id = a.id "
            "WHERE a.text IS NULL OR a.title IS NULL OR p.article_id IS NULL"
        ).fetchone()[0]
    finally:
        conn.close()
    return check, half


def fault_crawl(server: FaultServer, db: Path) -> CrawlResult:
    """The crawl of every article-level case (one feed) with caps low enough to be quick."""
    return crawl(
        "crawl", "feed", "-a", f"url={server.base}/feed.rss", "-a", "name=faults",
        "-s", "DOWNLOAD_TIMEOUT=3", "-s", "EXTRACT_TIMEOUT=2", "-s", "RETRY_AFTER_MAX=10",
        "-s", "RETRY_TIMES=1", "-s", "INCREMENTAL_ENABLED=False",
        db=db,
    )  # fmt: skip
