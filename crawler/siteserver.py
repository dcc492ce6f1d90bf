"""Serve folders of static sites on 127.0.0.1 (the offline demo and the test fixtures).

Each subfolder of a root becomes one site on its own port. ``{{NAME}}`` in a served file is
replaced by the base URL of site ``NAME`` (e.g. ``http://127.0.0.1:40123``), so feeds,
sitemaps and links can point across sites whose ports are only known at start.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import re
import threading
import time
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Self
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    from types import TracebackType

logger = logging.getLogger(__name__)

CONTENT_TYPES = {
    ".html": "text/html",  # deliberately without charset: pages must declare or be detected
    ".htm": "text/html",
    ".xml": "application/xml",
    ".rss": "application/rss+xml",
    ".atom": "application/atom+xml",
    ".json": "application/json",
    ".js": "application/javascript",
    ".txt": "text/plain",
    ".gz": "application/gzip",
}
_PLACEHOLDER_RE = re.compile(rb"\{\{([A-Za-z0-9_-]+)\}\}")


class _Handler(BaseHTTPRequestHandler):
    server: StaticSite
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        logger.debug("%s %s", self.server.name, format % args)

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    def _serve(self, *, head: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        self.server.record(path, self.headers.get("User-Agent", ""))
        body = self.server.load(path)
        if body is None:
            self._send(HTTPStatus.NOT_FOUND, b"not found", "text/plain", head=head)
            return
        etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'  # noqa: S324 - not security
        if self.headers.get("If-None-Match") == etag:
            self.send_response(HTTPStatus.NOT_MODIFIED)
            self.send_header("ETag", etag)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        suffix = Path(path).suffix.lower() or ".html"
        ctype = CONTENT_TYPES.get(suffix, "application/octet-stream")
        self._send(HTTPStatus.OK, body, ctype, head=head, etag=etag)

    def _send(
        self, status: int, body: bytes, ctype: str, *, head: bool, etag: str | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        if etag:
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", formatdate(self.server.started, usegmt=True))
        self.end_headers()
        if not head:
            self.wfile.write(body)


class StaticSite(ThreadingHTTPServer):
    """One folder served on ``127.0.0.1:<free port>``; ``requests`` logs every path asked."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, name: str, root: Path, substitutions: dict[str, str], port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.name = name
        self.root = root.resolve()
        self.substitutions = substitutions
        self.requests: list[str] = []
        self.user_agents: list[str] = []
        self.started = time.time()
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def record(self, path: str, user_agent: str) -> None:
        with self._lock:
            self.requests.append(path)
            self.user_agents.append(user_agent)

    def load(self, path: str) -> bytes | None:
        """The bytes served for ``path`` (placeholders filled), or ``None`` for a 404.

        ``x.gz`` is served gzipped from ``x`` when only ``x`` exists.
        """
        target = (self.root / path.lstrip("/")).resolve()
        if not target.is_relative_to(self.root):
            return None
        if target.is_dir():
            target = target / "index.html"
        if target.is_file():
            return self._fill(target.read_bytes())
        if target.suffix == ".gz" and target.with_suffix("").is_file():
            return gzip.compress(self._fill(target.with_suffix("").read_bytes()), mtime=0)
        return None

    def _fill(self, body: bytes) -> bytes:
        def sub(match: re.Match[bytes]) -> bytes:
            name = match.group(1).decode()
            return self.substitutions.get(name, match.group(0).decode()).encode()

        return _PLACEHOLDER_RE.sub(sub, body)


class SiteServers:
    """Every subfolder of ``root`` served as its own site, as a context manager::

    with SiteServers(Path("data/demo")) as servers:
        servers.base_urls["news"]  # http://127.0.0.1:40123
    """

    skip: ClassVar[tuple[str, ...]] = ("__pycache__",)

    def __init__(self, root: Path, names: list[str] | None = None, base_port: int = 0) -> None:
        """``base_port`` 0 gives every site a free port; otherwise the sites (in name order)
        take ``base_port``, ``base_port + 1``, ... so their URLs stay the same across runs."""
        self.root = Path(root)
        self.base_port = base_port
        self.base_urls: dict[str, str] = {}
        self.sites: dict[str, StaticSite] = {}
        self._threads: list[threading.Thread] = []
        self._names = names

    def start(self) -> SiteServers:
        names = self._names or sorted(
            p.name for p in self.root.iterdir() if p.is_dir() and p.name not in self.skip
        )
        for i, name in enumerate(names):
            port = self.base_port + i if self.base_port else 0
            try:
                site = StaticSite(name, self.root / name, self.base_urls, port)
            except OSError:
                self.stop()
                raise
            self.sites[name] = site
            self.base_urls[name] = site.base_url
            thread = threading.Thread(target=site.serve_forever, name=f"site-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        for site in self.sites.values():
            site.shutdown()
            site.server_close()
        for thread in self._threads:
            thread.join(timeout=5)

    def fill(self, text: str) -> str:
        """``text`` with every ``{{NAME}}`` replaced by that site's base URL."""
        return re.sub(r"\{\{([A-Za-z0-9_-]+)\}\}", lambda m: self.base_urls.get(m[1], m[0]), text)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
