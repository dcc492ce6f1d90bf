"""The misbehaving HTTP server on 127.0.0.1 (one path per fault, next to healthy articles)
and the canary server on 127.0.0.2 that records any request the SSRF guard let out."""

from __future__ import annotations

import contextlib
import re
import socket
import struct
import threading
import time
from datetime import UTC, datetime, timedelta
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self

from crawler.faultsite.cases import CASES, HEALTHY
from crawler.faultsite.pages import (
    DEEP_JSON,
    LOL,
    PDF,
    PNG,
    XXE,
    article_html,
    article_title,
    article_words,
    bomb,
    encoded_page,
)

_RANGE_RE = re.compile(r"/range-(\d+)-(\d+)\.rss")
"""``/range-FIRST-COUNT.rss``: a feed of healthy articles FIRST ... FIRST+COUNT-1."""


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
            .replace("</head>", f"<script type='application/ld+json'>{DEEP_JSON}</script></head>")
            .encode(),
        )
        r["/deep.json"] = lambda h: h._send(
            200,
            b'{"version": "https://jsonfeed.org/version/1.1", "items": '
            + DEEP_JSON.encode()
            + b"}",
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
