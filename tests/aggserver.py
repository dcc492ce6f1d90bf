"""A local aggregator for the tests, on 127.0.0.1: static pages of a fixture folder plus what
a static server cannot do: a same-host redirector (``/out?url=…``), fixed redirects
(``/r/7`` -> a publisher), and a stand-in for Google News (a search feed built by the test,
article pages with a signature or an interstitial, the ``batchexecute`` endpoint).

Google News ids are built here by the test's own encoder (``old_id``, ``new_id``), not by the
code under test. Every request is logged as ``(method, path)``.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self
from urllib.parse import parse_qs, unquote, urljoin, urlsplit

TIMESTAMP = "1764500000"
_PLACEHOLDER_RE = re.compile(r"\{\{([A-Za-z0-9_-]+)\}\}")


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _id(payload: bytes, tail: bytes = b"") -> str:
    message = b"\x08\x13\x22" + _varint(len(payload)) + payload + tail
    return base64.urlsafe_b64encode(message).decode().rstrip("=")


def old_id(url: str) -> str:
    """An old-format id: the URL itself in field 4 (and an empty AMP field after it)."""
    return _id(url.encode(), b"\xd2\x01\x00")


def new_id(token: str) -> str:
    """A current-format id: an opaque token that only the endpoint resolves."""
    return _id(b"AU_yqL" + token.encode())


def signature_of(article: str) -> str:
    return "sg-" + article[-12:]


class _Handler(BaseHTTPRequestHandler):
    server: AggregatorSite
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        site = self.server
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        site.log("GET", self.path)
        if path == "/out":
            target = parse_qs(parts.query).get("url", [""])[0]
            self._redirect(urljoin(site.base_url + "/", site.fill(target)))
        elif path in site.redirects:
            self._redirect(site.fill(site.redirects[path]))
        elif (match := re.match(r"^/rss/articles/([\w-]+)$", path)) and site.google:
            self._article_page(match.group(1))
        elif path == "/rss/search" and site.feed is not None:
            self._send(200, site.fill(site.feed).encode(), "application/rss+xml")
        elif (body := site.load(path)) is not None:
            self._send(200, body, "text/html")
        else:
            self._send(404, b"not found", "text/plain")

    def do_POST(self) -> None:
        site = self.server
        length = int(self.headers.get("Content-Length", "0"))
        form = parse_qs(self.rfile.read(length).decode())
        site.log("POST", self.path)
        if urlsplit(self.path).path != "/_/DotsSplashUi/data/batchexecute" or not site.google:
            self._send(404, b"not found", "text/plain")
            return
        rows = []
        for envelope in json.loads(form["f.req"][0])[0]:
            _, _context, article, stamp, sig = json.loads(envelope[1])
            url = site.targets.get(article)
            ok = sig == signature_of(article) and str(stamp) == TIMESTAMP
            payload = json.dumps(["garturlres", site.fill(url), 1]) if url and ok else None
            rows.append(["wrb.fr", "Fbv4je", payload, None, None, None if ok else [3], envelope[3]])
        first, second = json.dumps(rows), json.dumps([["di", 31], ["af.httprm", 30, "-1", 7]])
        body = f")]}}'\n\n{len(first)}\n{first}\n{len(second)}\n{second}\n"
        self._send(200, body.encode(), "application/json; charset=utf-8")

    def _article_page(self, article: str) -> None:
        if article in self.server.interstitial:
            page = (
                "<html><body><p>Opening the story…</p><script>/* consent */</script></body></html>"
            )
        else:
            page = (
                '<html><body><c-wiz><div jscontroller="aLI87" jsname="tpl" '
                f'data-n-a-sg="{signature_of(article)}" data-n-a-ts="{TIMESTAMP}" '
                'data-n-a-id="x"></div></c-wiz></body></html>'
            )
        self._send(200, page.encode(), "text/html; charset=utf-8")

    def _redirect(self, location: str) -> None:
        self.send_response(HTTPStatus.FOUND)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _send(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class AggregatorSite(ThreadingHTTPServer):
    """One dynamic fixture site on ``127.0.0.1:<free port>``.

    ``root``: static pages (``{{NAME}}`` filled from ``bases``, ``{{self}}`` is this site);
    ``redirects``: path -> target; ``google``: answer as Google News, ``targets`` (id ->
    URL) resolvable by the endpoint, ``interstitial`` ids whose page has no signature,
    ``feed`` the RSS served at ``/rss/search``.
    """

    daemon_threads = True

    def __init__(
        self,
        root: Path | None = None,
        *,
        bases: dict[str, str] | None = None,
        redirects: dict[str, str] | None = None,
        google: bool = False,
    ) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root = root
        self.bases = dict(bases or {})
        self.redirects = dict(redirects or {})
        self.google = google
        self.targets: dict[str, str] = {}
        self.interstitial: set[str] = set()
        self.feed: str | None = None
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def fill(self, text: str) -> str:
        names = {**self.bases, "self": self.base_url}
        return _PLACEHOLDER_RE.sub(lambda m: names.get(m[1], m[0]), text)

    def load(self, path: str) -> bytes | None:
        if self.root is None:
            return None
        target = (self.root / path.lstrip("/")).resolve()
        if target.is_dir():
            target = target / "index.html"
        if not target.is_relative_to(self.root.resolve()) or not target.is_file():
            return None
        return self.fill(target.read_text(encoding="utf-8")).encode("utf-8")

    def log(self, method: str, path: str) -> None:
        with self._lock:
            self.requests.append((method, path))

    def paths(self, method: str = "GET") -> list[str]:
        """Paths (without query) requested with ``method``, in order."""
        with self._lock:
            return [urlsplit(p).path for m, p in self.requests if m == method]

    def __enter__(self) -> Self:
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
