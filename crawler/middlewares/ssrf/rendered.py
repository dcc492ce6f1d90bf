"""The SSRF guard in rendered pages (scrapy-playwright): ``abort_request`` (the
``PLAYWRIGHT_ABORT_REQUEST`` hook) aborts what the text does not need and what the guard
refuses; ``init_page`` bounds a page's lifetime and guards its WebSockets; the browser
context reaches the network only through the guard proxy, which asks ``judge_browser_url``."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from crawler.address_policy import (
    Refusal,
    address_refusal,
    addresses_refusal,
    normalise_host,
    parse_ip,
    static_refusal,
    url_host,
)
from crawler.middlewares.ssrf.proxy import GuardProxy
from crawler.middlewares.ssrf.registry import REGISTRY

if TYPE_CHECKING:
    from scrapy import Request

logger = logging.getLogger(__name__)

_TASKS: set[asyncio.Task[Any]] = set()


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
