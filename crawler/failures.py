"""Why a request failed: one short, stable name per failure, for the ``<kind>/failed/<reason>``
stats (kept apart from ``crawler.limits``, which worker processes import without Scrapy)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    IgnoreRequest,
    ResponseDataLossError,
)
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.internet.error import (
    ConnectionDone,
    ConnectionLost,
    ConnectionRefusedError,
    DNSLookupError,
    TCPTimedOutError,
)
from twisted.internet.error import TimeoutError as TxTimeoutError
from twisted.web.client import ResponseFailed

if TYPE_CHECKING:
    from twisted.python.failure import Failure

_MAX_REDIRECTS_MSG = "max redirections reached"
_REASONS: tuple[tuple[type[BaseException], str], ...] = (
    (DownloadTimeoutError, "timeout"),
    (TxTimeoutError, "timeout"),
    (TCPTimedOutError, "timeout"),
    (CannotResolveHostError, "dns"),
    (DNSLookupError, "dns"),
    (DownloadConnectionRefusedError, "refused"),
    (ConnectionRefusedError, "refused"),
    (ResponseDataLossError, "truncated"),
    (DownloadFailedError, "reset"),
    (ResponseFailed, "reset"),
    (ConnectionLost, "reset"),
    (ConnectionDone, "reset"),
    (DownloadCancelledError, "cancelled"),
)


def failure_reason(failure: Failure) -> str:
    """A short, stable name for a failed request, for ``<kind>/failed/<reason>`` stats:
    ``http_404``, ``timeout``, ``dns``, ``refused``, ``reset``, ``truncated``,
    ``too_large``, ``max_redirects``, ``robots``, ``ssrf_<reason>``, ``ignored`` ..."""
    exc = failure.value
    response = getattr(exc, "response", None)
    if isinstance(exc, HttpError) or response is not None:
        return f"http_{response.status}" if response is not None else "http_error"
    refusal = getattr(exc, "refusal", None)
    if refusal is not None:
        return f"ssrf_{refusal.reason}"
    message = str(exc)
    request = getattr(failure, "request", None)
    too_large = request is not None and request.meta.get("download_too_large")
    if too_large or "larger than download max size" in message or "DOWNLOAD_MAXSIZE" in message:
        return "too_large"
    if isinstance(exc, IgnoreRequest):
        if "robots.txt" in message:
            return "robots"
        if _MAX_REDIRECTS_MSG in message:
            return "max_redirects"
        if message.startswith("redirect loop"):
            return "redirect_loop"
        return "ignored"
    for kind, reason in _REASONS:
        if isinstance(exc, kind):
            return reason
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower()
