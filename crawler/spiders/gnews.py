"""Google News links resolved to the publisher's URL before anything is fetched from it.

Entries of Google News feeds link to ``news.google.com/rss/articles/<id>``, an interstitial on
Google's host, not the story. The id is a base64url protobuf message: in the old format its
field 4 is the publisher's URL itself; in the current one it holds an opaque token (``AU_yqL…``)
that Google resolves on request. This is not a documented interface. It is decoded the way
public decoders do it today (the ``googlenewsdecoder`` package): the article page
(``/rss/articles/<id>``) carries a signature and a timestamp (``data-n-a-sg``,
``data-n-a-ts``), and one POST to the ``batchexecute`` endpoint resolves several ids with them.

The pure functions read and write those formats; ``GoogleNewsLinks`` runs the requests through
the crawl's own downloader (robots.txt, the SSRF guard, retries), one at a time
``GNEWS_DECODE_DELAY`` apart across the process, and keeps every answer in the archive
(``link_targets``) so that an id is decoded once.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import scrapy
from twisted.python.failure import Failure

from crawler.config import get_float, get_int, get_str
from crawler.failures import failure_reason
from crawler.middlewares.incremental import revisit_due

if TYPE_CHECKING:
    from collections.abc import Iterable

    from scrapy import Spider
    from scrapy.http import Response

    from crawler.storage.protocols import LinkTargets

logger = logging.getLogger(__name__)

_ID_PATH_RE = re.compile(r"^/(?:rss/)?(?:articles|read)/([A-Za-z0-9_-]{8,})/?$")
_SIGNATURE_RE = re.compile(r'\bdata-n-a-sg="([^"]+)"')
_TIMESTAMP_RE = re.compile(r'\bdata-n-a-ts="([^"]+)"')
_XSSI_PREFIX = ")]}'"
BATCH_PATH = "/_/DotsSplashUi/data/batchexecute"
RPC_ID = "Fbv4je"
_URL_FIELD = 4
"""Field of the id's protobuf message that holds the URL (old format) or the token."""
_REQUEST_CONTEXT: list[Any] = [
    ["X", "X", ["X", "X"], None, None, 1, 1, "US:en", None, 1, None, None, None, None, None, 0, 1],
    "X", "X", 1, [1, 1, 1], 1, 1, None, 0, 0, None, 0,
]  # fmt: skip
"""The client context ``garturlreq`` expects; its values do not change the answer."""
LINK_PREFIX = "gnews:"
"""Key prefix of a Google News id in ``link_targets``."""


# -- the formats ---------------------------------------------------------------------------------
def article_id(url: str, hosts: Iterable[str] = ("news.google.com",)) -> str | None:
    """The article id of a Google News link (``/rss/articles/<id>``, ``/articles/<id>``,
    ``/read/<id>``) on one of ``hosts`` (``host[:port]``), else ``None``."""
    parts = urlsplit(url)
    if parts.netloc.lower() not in hosts:
        return None
    match = _ID_PATH_RE.match(parts.path)
    return match.group(1) if match else None


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def id_payload(article: str) -> bytes | None:
    """Field 4 of the id's protobuf message: the URL (old format) or the token to resolve;
    ``None`` when the id is not such a message."""
    try:
        data = base64.urlsafe_b64decode(article + "=" * (-len(article) % 4))
    except (binascii.Error, ValueError):
        return None
    pos = 0
    try:
        while pos < len(data):
            tag, pos = _varint(data, pos)
            field, wire = tag >> 3, tag & 7
            if wire == 0:
                _, pos = _varint(data, pos)
            elif wire == 2:
                size, pos = _varint(data, pos)
                value, pos = data[pos : pos + size], pos + size
                if field == _URL_FIELD:
                    return value
            elif wire == 5:
                pos += 4
            elif wire == 1:
                pos += 8
            else:
                return None
    except ValueError:
        return None
    return None


def decode_offline(article: str) -> str | None:
    """The publisher's URL carried in an old-format id; ``None`` when the id needs Google's
    endpoint (or is not an id)."""
    payload = id_payload(article)
    if payload is None or not payload.startswith((b"http://", b"https://")):
        return None
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        return None


def article_page_url(base: str, article: str, link: str | None = None) -> str:
    """The article page that carries the id's signature, in the language of ``link`` (its
    ``hl``, ``gl``, ``ceid``)."""
    query = parse_qs(urlsplit(link).query) if link else {}
    params = {
        "hl": query.get("hl", ["en-US"])[0],
        "gl": query.get("gl", ["US"])[0],
        "ceid": query.get("ceid", ["US:en"])[0],
    }
    return f"{base.rstrip('/')}/rss/articles/{article}?{urlencode(params)}"


def signature(html: str) -> tuple[str, str] | None:
    """``(signature, timestamp)`` of an article page, ``None`` on a page without them (an
    interstitial, a consent page)."""
    sg, ts = _SIGNATURE_RE.search(html), _TIMESTAMP_RE.search(html)
    return (sg.group(1), ts.group(1)) if sg and ts else None


def batch_body(items: list[tuple[str, str, str]]) -> str:
    """The form body of one ``batchexecute`` POST resolving ``(id, timestamp, signature)``
    items; each is tagged with its position as request id."""
    envelopes = []
    for n, (article, ts, sig) in enumerate(items):
        stamp: int | str = int(ts) if ts.isdigit() else ts
        inner = ["garturlreq", _REQUEST_CONTEXT, article, stamp, sig]
        envelopes.append([RPC_ID, json.dumps(inner, separators=(",", ":")), None, str(n)])
    return "f.req=" + quote(json.dumps([envelopes], separators=(",", ":")), safe="")


def _json_values(text: str) -> Iterable[Any]:
    """Every JSON array in ``text`` (the answer may be split in length-prefixed chunks)."""
    decoder = json.JSONDecoder()
    pos = 0
    while (start := text.find("[", pos)) != -1:
        try:
            value, pos = decoder.raw_decode(text, start)
        except ValueError:
            pos = start + 1
            continue
        yield value


def parse_batch(text: str) -> dict[str, str]:
    """Request id -> publisher URL from a ``batchexecute`` answer (ids without an answer
    are missing)."""
    text = text.lstrip()
    text = text.removeprefix(_XSSI_PREFIX)
    found: dict[str, str] = {}
    for value in _json_values(text):
        rows = value if value and isinstance(value[0], list) else [value]
        for row in rows:
            if not (isinstance(row, list) and len(row) >= 3 and row[1] == RPC_ID):
                continue
            try:
                payload = json.loads(row[2]) if isinstance(row[2], str) else row[2]
            except ValueError:
                continue
            if not (isinstance(payload, list) and len(payload) > 1 and payload[0] == "garturlres"):
                continue
            request_id = next((str(c) for c in reversed(row[3:]) if c is not None), None)
            url = payload[1]
            if request_id is not None and isinstance(url, str) and url.startswith("http"):
                found[request_id] = url
    return found


# -- resolving links within a crawl ------------------------------------------------------------
@dataclass(frozen=True)
class Resolution:
    """What a Google News link led to: the publisher's URL, or why there is none."""

    url: str | None
    reason: str | None = None
    how: str = "cached"
    """``offline`` (the id carried it), ``decoded`` (the endpoint), ``cached``; without a
    URL ``failed``, or ``deferred`` (beyond this run's budget: not an error)."""


class GoogleNewsLinks:
    """Resolves the Google News links of one aggregator spider (see the module docstring).

    Stats: ``aggregator/gnews/offline``, ``aggregator/gnews/decoded``,
    ``aggregator/gnews/cached``, ``aggregator/gnews/deferred``, ``aggregator/unresolved`` and
    ``aggregator/unresolved/<reason>`` (``no_signature``: the article page had none;
    ``not_decoded``: the endpoint gave no URL; ``http_<status>``, ``robots``, ...).
    """

    _ready_at: ClassVar[float] = 0.0
    """Monotonic time of the next decode request of the process (``GNEWS_DECODE_DELAY``)."""
    _in_flight: ClassVar[dict[str, asyncio.Future[Resolution]]] = {}
    """Ids being decoded by a crawl of the process: another site's feed waits for them."""

    def __init__(self, spider: Spider, cache: LinkTargets | None, retry_days: float) -> None:
        settings = spider.crawler.settings
        self.spider = spider
        self.stats = spider.crawler.stats
        self.cache = cache
        self.retry_days = retry_days
        self.base = get_str(settings, "GNEWS_BASE_URL").rstrip("/")
        self.batch_size = max(1, get_int(settings, "GNEWS_BATCH_SIZE"))
        self.delay = max(0.0, get_float(settings, "GNEWS_DECODE_DELAY"))
        self.hosts = frozenset({"news.google.com", urlsplit(self.base).netloc.lower()})

    def is_link(self, url: str) -> bool:
        return article_id(url, self.hosts) is not None

    def is_google(self, url: str) -> bool:
        """Whether ``url`` is on the Google News host (an interstitial, never an article)."""
        return urlsplit(url).netloc.lower() in self.hosts

    async def resolve(self, links: list[str], *, limit: int | None = None) -> dict[str, Resolution]:
        """A ``Resolution`` for each Google News link of ``links``. Ids known from an earlier
        run or carrying their URL cost nothing; of the others, the first ``limit`` are
        decoded (the site's article budget: ``max_articles``) and the rest are left for a
        later run (``aggregator/gnews/deferred``)."""
        results: dict[str, Resolution] = {}
        pending: dict[str, list[str]] = {}
        waiting: dict[str, list[str]] = {}
        for link in dict.fromkeys(links):
            article = article_id(link, self.hosts)
            if article is None:
                continue
            known = self._cached(article)
            if known is not None:
                results[link] = known
            elif article in self._in_flight:
                waiting.setdefault(article, []).append(link)
            elif url := decode_offline(article):
                self._remember(article, url)
                results[link] = Resolution(url, how="offline")
            else:
                pending.setdefault(article, []).append(link)
        articles = list(pending)
        if limit is not None and len(articles) > max(limit, 0):
            for article in articles[max(limit, 0) :]:
                for link in pending[article]:
                    results[link] = Resolution(None, "deferred", how="deferred")
            articles = articles[: max(limit, 0)]
        for start in range(0, len(articles), self.batch_size):
            batch = articles[start : start + self.batch_size]
            decoded = await self._decode(batch, {a: pending[a][0] for a in batch})
            for article in batch:
                for link in pending[article]:
                    results[link] = decoded[article]
        for article, waiting_links in waiting.items():
            if (future := self._in_flight.get(article)) is not None:
                resolution = await asyncio.shield(future)
            else:  # decoded meanwhile
                resolution = self._cached(article) or Resolution(None, "not_decoded", how="failed")
            for link in waiting_links:
                results[link] = resolution
        for resolution in results.values():
            if resolution.url or resolution.how == "deferred":
                self.stats.inc_value(f"aggregator/gnews/{resolution.how}")
            else:
                self.stats.inc_value("aggregator/unresolved")
                self.stats.inc_value(f"aggregator/unresolved/{resolution.reason}")
        return results

    def _cached(self, article: str) -> Resolution | None:
        if self.cache is None:
            return None
        found = self.cache.get(LINK_PREFIX + article)
        if found is None:
            return None
        target, reason, resolved_at = found
        if target:
            return Resolution(target, how="cached")
        if _older_than(resolved_at, self.retry_days):
            return None
        return Resolution(None, reason or "not_decoded", how="cached")

    def _remember(self, article: str, target: str | None, reason: str | None = None) -> None:
        if self.cache is not None:
            self.cache.put(LINK_PREFIX + article, target, reason=reason)

    async def _decode(self, batch: list[str], links: dict[str, str]) -> dict[str, Resolution]:
        """``_decode_batch``, announced to the other crawls of the process meanwhile."""
        loop = asyncio.get_running_loop()
        futures = {a: self._in_flight.setdefault(a, loop.create_future()) for a in batch}
        out: dict[str, Resolution] = {}
        try:
            out = await self._decode_batch(batch, links)
            return out
        finally:
            for article, future in futures.items():
                self._in_flight.pop(article, None)
                if not future.done():
                    failed = Resolution(None, "not_decoded", how="failed")
                    future.set_result(out.get(article, failed))

    async def _decode_batch(self, batch: list[str], links: dict[str, str]) -> dict[str, Resolution]:
        """Signatures of each id's article page, then one POST for those that have one."""
        out: dict[str, Resolution] = {}
        signed: list[tuple[str, str, str]] = []
        for article in batch:
            page, reason = await self._fetch(
                scrapy.Request(article_page_url(self.base, article, links[article]))
            )
            found = signature(page.text) if page is not None and reason is None else None
            if found is None:
                # An interstitial or an error says nothing lasting about the id: asked again
                # next run.
                out[article] = Resolution(None, reason or "no_signature", how="failed")
                continue
            signed.append((article, found[1], found[0]))
        if not signed:
            return out
        answer, reason = await self._fetch(
            scrapy.Request(
                f"{self.base}{BATCH_PATH}",
                method="POST",
                body=batch_body(signed),
                headers={"Content-Type": "application/x-www-form-urlencoded;charset=UTF-8"},
            )
        )
        urls = parse_batch(answer.text) if answer is not None and reason is None else {}
        for n, (article, _, _) in enumerate(signed):
            if url := urls.get(str(n)):
                self._remember(article, url)
                out[article] = Resolution(url, how="decoded")
            elif reason is not None:
                out[article] = Resolution(None, reason, how="failed")
            else:
                self._remember(article, None, "not_decoded")
                out[article] = Resolution(None, "not_decoded", how="failed")
        return out

    async def _fetch(self, request: scrapy.Request) -> tuple[Response | None, str | None]:
        """The response to ``request`` through the crawl's downloader, or why there is none
        (``http_<status>``, ``robots``, ``timeout`` ...)."""
        await self._wait_turn()
        try:
            response = await self.spider.crawler.engine.download_async(request)
        except Exception as exc:  # noqa: BLE001 - every download failure is a reason
            failure = Failure(exc)
            failure.request = request  # type: ignore[attr-defined]
            reason = failure_reason(failure)
            logger.warning("Google News decode %s failed (%s): %s", request.url, reason, exc)
            return None, reason
        if response.status != 200:
            logger.warning("Google News decode %s: HTTP %d", request.url, response.status)
            return None, f"http_{response.status}"
        if not hasattr(response, "text"):
            return None, "not_text"
        return response, None

    async def _wait_turn(self) -> None:
        """Space the decode requests of the process ``GNEWS_DECODE_DELAY`` apart."""
        now = time.monotonic()
        cls = type(self)
        start = max(now, cls._ready_at)
        cls._ready_at = start + self.delay
        if start > now:
            await asyncio.sleep(start - now)  # the crawl runs on the asyncio reactor


def _older_than(when: str | None, days: float) -> bool:
    """Whether an unresolved link is due for another try (``days`` 0: every run)."""
    return days <= 0 or revisit_due(when, days)
