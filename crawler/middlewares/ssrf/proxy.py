"""A tiny forward proxy on 127.0.0.1 for rendered pages: every request the browser makes,
each redirect hop and WebSocket included, passes the SSRF guard before a socket is opened."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from crawler.address_policy import Refusal

logger = logging.getLogger(__name__)

_HEAD_LIMIT = 64 * 1024
_TIMEOUT = 30.0
_HOP_HEADERS_RE = re.compile(
    r"^(proxy-connection|proxy-authorization|connection|keep-alive):", re.IGNORECASE
)
_HOST_PORT_RE = re.compile(r"^\[?(?P<host>[^\]]+?)\]?(?::(?P<port>\d+))?$")
_ABSOLUTE_RE = re.compile(r"^(?P<scheme>[a-z]+)://(?P<netloc>[^/?#]*)(?P<rest>.*)$", re.IGNORECASE)


class GuardProxy:
    """HTTP proxy (absolute-form requests and CONNECT tunnels) that asks ``judge(url)`` for
    each request: ``(address, None)`` to connect to ``address`` (an IP the guard checked, so
    no second DNS answer can differ), ``(None, refusal)`` to answer 403. One request per
    client connection for plain HTTP (``Connection: close``): a browser reusing a proxy
    connection cannot slip a second host past the check."""

    def __init__(
        self,
        judge: Callable[[str], Awaitable[tuple[str | None, Refusal | None]]],
        on_refusal: Callable[[str, Refusal], None],
    ) -> None:
        self.judge = judge
        self.on_refusal = on_refusal
        self.server: asyncio.AbstractServer | None = None
        self.port = 0

    async def start(self) -> int:
        if self.server is None:
            self.server = await asyncio.start_server(
                self._client, "127.0.0.1", 0, limit=_HEAD_LIMIT
            )
            self.port = self.server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._serve(reader, writer)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
            logger.debug("browser proxy: %r", exc)
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _TIMEOUT)
        request_line, *headers = head.decode("latin-1").split("\r\n")
        method, target, version = request_line.split(" ", 2)
        if method.upper() == "CONNECT":
            match = _HOST_PORT_RE.match(target)
            if not match:
                raise ValueError(f"bad CONNECT target {target!r}")
            host, port = match["host"], int(match["port"] or 443)
            url = f"https://{_bracket(host)}:{port}/"
        else:
            match = _ABSOLUTE_RE.match(target)
            if not match:
                raise ValueError(f"not an absolute-form request {target!r}")
            url = target
            netloc = match["netloc"].rsplit("@", 1)[-1]
            hp = _HOST_PORT_RE.match(netloc)
            if not hp:
                raise ValueError(f"bad host {netloc!r}")
            host = hp["host"]
            port = int(hp["port"] or (443 if match["scheme"].lower() == "https" else 80))
        address, refusal = await self.judge(url)
        if refusal is not None or address is None:
            if refusal is not None:
                self.on_refusal(url, refusal)
            writer.write(
                b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            await writer.drain()
            return
        up_reader, up_writer = await asyncio.wait_for(
            asyncio.open_connection(address, port, limit=_HEAD_LIMIT), _TIMEOUT
        )
        try:
            if method.upper() == "CONNECT":
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await writer.drain()
            else:
                origin_form = match["rest"] or "/"
                kept = [h for h in headers if h and not _HOP_HEADERS_RE.match(h)]
                up_writer.write(
                    "\r\n".join(
                        [f"{method} {origin_form} {version}", *kept, "Connection: close", "", ""]
                    ).encode("latin-1")
                )
                await up_writer.drain()
            # Either side closing ends the exchange (upstream was asked to close after one
            # response; a tunnel ends with its TLS session).
            tasks = [
                asyncio.ensure_future(_pipe(reader, up_writer)),
                asyncio.ensure_future(_pipe(up_reader, writer)),
            ]
            _done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        finally:
            with contextlib.suppress(Exception):
                up_writer.close()


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(Exception):
            if writer.can_write_eof():
                writer.write_eof()
