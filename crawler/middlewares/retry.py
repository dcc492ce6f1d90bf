"""Scrapy's retry middleware, honouring a 429/503 response's ``Retry-After`` (bounded)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.response import response_status_message
from twisted.internet import task

from crawler.config import default, get_float

if TYPE_CHECKING:
    from typing import Self

    from scrapy.crawler import Crawler
    from scrapy.http import Request, Response

logger = logging.getLogger(__name__)

DEFAULT_RETRY_AFTER_MAX: float = default("RETRY_AFTER_MAX")


def retry_after_seconds(value: bytes | str | None, now: datetime | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (delta-seconds or an HTTP date);
    ``None`` when absent or unreadable; never negative."""
    if value is None:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip()
    if not text:
        return None
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class RetryAfterMiddleware(RetryMiddleware):
    """Retries like Scrapy's ``RetryMiddleware`` (``RETRY_TIMES``, ``RETRY_HTTP_CODES``);
    when a retried response carries ``Retry-After``, the retry waits that long first. A wait
    beyond ``RETRY_AFTER_MAX`` seconds is not retried in this run (the page comes next run).

    Stats: ``retry/after_waited``, ``retry/after_too_long``.
    """

    def __init__(self, settings: object, max_wait: float = DEFAULT_RETRY_AFTER_MAX) -> None:
        super().__init__(settings)  # type: ignore[arg-type]
        self.max_wait = max_wait

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        mw = cls(
            crawler.settings,
            max_wait=get_float(crawler.settings, "RETRY_AFTER_MAX"),
        )
        mw.crawler = crawler
        return mw

    async def process_response(self, request: Request, response: Response) -> Request | Response:
        if request.meta.get("dont_retry", False) or response.status not in self.retry_http_codes:
            return response
        wait = retry_after_seconds(response.headers.get(b"Retry-After"))
        stats = self.crawler.stats
        if wait is not None and wait > self.max_wait:
            stats.inc_value("retry/after_too_long")
            logger.warning(
                "%s: Retry-After %.0f s is beyond RETRY_AFTER_MAX (%.0f s): not retried now",
                request.url,
                wait,
                self.max_wait,
            )
            return response
        retry = self._retry(request, response_status_message(response.status))
        if retry is None:
            return response
        if wait:
            stats.inc_value("retry/after_waited")
            stats.max_value("retry/after_max_seconds", wait)
            logger.info("%s: waiting %.1f s (Retry-After) before retrying", request.url, wait)
            from twisted.internet import reactor

            await maybe_deferred_to_future(task.deferLater(reactor, wait))
        return retry
