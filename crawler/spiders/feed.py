"""Feed spider: RSS 0.9x/1.0/2.0, Atom and JSON Feed -> article requests."""

from __future__ import annotations

import calendar
import json
import re
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

import feedparser
from w3lib.html import remove_tags, replace_entities

from crawler.extract import normalise_date
from crawler.limits import cap_links, declares_entities, links_per_page_max, strip_doctype
from crawler.spiders.base import NewsSpider

if TYPE_CHECKING:
    from collections.abc import Iterable

    import scrapy
    from scrapy.http import Response

_ENTRY_BLOCK_RE = re.compile(rb"<(item|entry)[\s>].*?</\1\s*>", re.DOTALL | re.IGNORECASE)
_WS_RE = re.compile(r"\s+")
_HREF_RE = re.compile(r"""<a\s[^>]*?href\s*=\s*["']([^"']+)["']""", re.IGNORECASE)


def _plain(html: str | None) -> str | None:
    if not html:
        return None
    text = _WS_RE.sub(" ", replace_entities(remove_tags(html))).strip()
    return text or None


def _timestamp(parsed: Any) -> float | None:
    return float(calendar.timegm(parsed)) if parsed else None


def _entry_from_feedparser(entry: Any) -> dict[str, Any] | None:
    link = entry.get("link")
    if not link:
        link = next((x.get("href") for x in entry.get("links", []) if x.get("href")), None)
    if not link:
        return None
    authors = [a.get("name") for a in entry.get("authors", []) if a.get("name")]
    if not authors and entry.get("author"):
        authors = [entry["author"]]
    content = " ".join(
        [entry.get("summary") or ""] + [c.get("value") or "" for c in entry.get("content", [])]
    )
    published = entry.get("published") or entry.get("updated") or entry.get("created")
    parsed = entry.get("published_parsed") or entry.get("updated_parsed")
    source = entry.get("source") or {}
    return {
        "url": link.strip(),
        "content_links": _HREF_RE.findall(content),
        # RSS <source url="...">Name</source>: the publisher an aggregator credits.
        "source": {"name": _plain(source.get("title")), "url": source.get("href")},
        "timestamp": _timestamp(parsed),
        "fallback": {
            "title": _plain(entry.get("title")),
            "published": published,
            "authors": authors,
            "description": _plain(entry.get("summary")),
        },
    }


def parse_json_feed(body: bytes) -> list[dict[str, Any]]:
    """Entries of a JSON Feed (https://jsonfeed.org/version/1.1); ``[]`` if not one."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # broken, or nested deeper than Python recurses
        return []
    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
        return []
    entries = []
    for item in data["items"]:
        if not isinstance(item, dict):
            continue
        url = item.get("url") or item.get("external_url")
        if not isinstance(url, str) or not url:
            continue
        authors = item.get("authors") or ([item["author"]] if item.get("author") else [])
        published = item.get("date_published") or item.get("date_modified")
        iso = normalise_date(published)
        timestamp = None
        if iso and "T" in iso:
            timestamp = datetime.fromisoformat(iso).timestamp()
        entries.append(
            {
                "url": url,
                "timestamp": timestamp,
                "fallback": {
                    "title": _plain(item.get("title")),
                    "published": published,
                    "authors": [
                        a.get("name") for a in authors if isinstance(a, dict) and a.get("name")
                    ],
                    "description": _plain(item.get("summary") or item.get("content_html")),
                },
            }
        )
    return entries


def parse_feed(body: bytes, content_type: str | None = None) -> tuple[list[dict[str, Any]], bool]:
    """Entries of an RSS/Atom/JSON feed and whether the feed was malformed.

    feedparser's lenient parser already reads most broken feeds; when it still finds no
    entry, each ``<item>``/``<entry>`` block is parsed on its own so the good ones survive.
    """
    head = body[:512].lstrip()
    if head.startswith((b"{", b"[")) or (content_type and "json" in content_type):
        return parse_json_feed(body), False
    body = strip_doctype(body)  # no entity bomb or external entity reaches the parser
    headers = {"content-type": content_type} if content_type else {}
    parsed = feedparser.parse(body, response_headers=headers, sanitize_html=False)
    malformed = bool(parsed.get("bozo"))
    entries = [e for e in map(_entry_from_feedparser, parsed.entries) if e]
    if not entries and malformed:
        for match in _ENTRY_BLOCK_RE.finditer(body):
            block = match.group(0)
            wrapper = (
                b'<rss version="2.0"><channel>' + block + b"</channel></rss>"
                if match.group(1).lower() == b"item"
                else b'<feed xmlns="http://www.w3.org/2005/Atom">' + block + b"</feed>"
            )
            one = feedparser.parse(wrapper, sanitize_html=False)
            entries.extend(e for e in map(_entry_from_feedparser, one.entries) if e)
    return entries, malformed


class FeedSpider(NewsSpider):
    """Reads each feed of the site and requests the articles its entries link to."""

    name = "feed"
    kind = "feed"

    def parse(self, response: Response) -> Iterable[scrapy.Request]:
        content_type = response.headers.get(b"Content-Type", b"").decode("latin-1") or None
        if declares_entities(response.body):
            self.crawler.stats.inc_value("feed/entities_refused")
            self.logger.warning("feed %s declares XML entities: not expanded", response.url)
        entries, malformed = parse_feed(response.body, content_type)
        self.crawler.stats.inc_value("feed/entries", len(entries))
        if malformed:
            self.crawler.stats.inc_value("feed/malformed")
            self.logger.warning(
                "malformed feed %s: %d entries salvaged", response.url, len(entries)
            )
        if not entries:
            self.crawler.stats.inc_value("feed/empty")
            self.logger.warning("feed %s has no usable entries", response.url)
        limit = links_per_page_max(self.crawler)
        wanted = self.feed_entries(entries, response.url)
        yield from self.article_requests(
            cap_links(wanted, limit, self.crawler, where=f"feed {response.url}")
        )

    def feed_entries(self, entries: list[dict[str, Any]], source: str) -> Iterable[dict[str, Any]]:
        for entry in entries:
            url = urljoin(source, entry["url"])
            if self.too_old(entry["timestamp"]) or not self.is_article_url(url, any_host=True):
                continue
            yield {"url": url, "fallback": entry["fallback"], "source_url": source}
