"""Download limits made visible: redirect loops end at the first repeat, and a body cut off
at ``DOWNLOAD_MAXSIZE`` fails as ``too_large`` (both counted and logged, never silent)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from scrapy import signals
from scrapy.exceptions import IgnoreRequest
from w3lib.url import canonicalize_url, safe_url_string

if TYPE_CHECKING:
    from typing import Self

    from scrapy.crawler import Crawler
    from scrapy.http import Request, Response

logger = logging.getLogger(__name__)

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
TOO_LARGE_META = "download_too_large"
"""Request meta key set when the body outgrew the request's maximum size while arriving
(Scrapy then cancels the download without saying why in the failure)."""
_BYTES_META = "_download_bytes_seen"


def _is_robots_request(request: Request) -> bool:
    return bool(request.meta.get("dont_obey_robotstxt")) and request.url.endswith("/robots.txt")


class DownloadLimitsMiddleware:
    """Sees each 3xx before Scrapy's ``RedirectMiddleware``: a ``Location`` that leads back
    to a URL of the same redirect chain is a loop. Without this, the repeat would be dropped
    by the duplicate filter without a word; here the request fails with ``redirect loop``
    (stats ``redirect/loop`` and ``<kind>/failed/redirect_loop``). Chains without a loop
    stop at ``REDIRECT_MAX_TIMES``.

    An error response to a robots.txt request is emptied before Scrapy parses it as rules.

    Also marks a request whose body exceeds ``DOWNLOAD_MAXSIZE`` while streaming (no
    ``Content-Length``), so its failure is named ``too_large``, not ``cancelled``.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.maxsize = crawler.settings.getint("DOWNLOAD_MAXSIZE")

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        mw = cls(crawler)
        crawler.signals.connect(mw.bytes_received, signal=signals.bytes_received)
        return mw

    def bytes_received(self, data: bytes, request: Request, **_: Any) -> None:
        seen = request.meta.get(_BYTES_META, 0) + len(data)
        request.meta[_BYTES_META] = seen
        maxsize = request.meta.get("download_maxsize", self.maxsize)
        if maxsize and seen > maxsize and not request.meta.get(TOO_LARGE_META):
            request.meta[TOO_LARGE_META] = True
            self.crawler.stats.inc_value("limits/too_large")

    def process_response(self, request: Request, response: Response) -> Response:
        if response.status >= 400 and _is_robots_request(request):
            # Scrapy parses whatever body a robots.txt request returns; an error page is
            # not a robots.txt. Empty, it sets no rule (4xx: allowed, as RFC 9309 says;
            # 5xx: allowed too, Scrapy's semantics, where RFC 9309 says disallow).
            self.crawler.stats.inc_value("limits/robots_error_body_ignored")
            return response.replace(body=b"")
        location = response.headers.get(b"Location")
        if response.status not in _REDIRECTS or not location:
            return response
        target = urljoin(request.url, safe_url_string(location))
        chain = [*request.meta.get("redirect_urls", []), request.url]
        if canonicalize_url(target) in {canonicalize_url(u) for u in chain}:
            self.crawler.stats.inc_value("redirect/loop")
            logger.warning(
                "redirect loop: %s leads back to %s (chain: %s)",
                request.url,
                target,
                " -> ".join(chain),
            )
            raise IgnoreRequest(f"redirect loop: {request.url} -> {target}")
        return response
