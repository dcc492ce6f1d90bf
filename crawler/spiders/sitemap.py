"""Sitemap spider: sitemap indexes, plain and gzipped sitemaps, Google News sitemaps."""

from __future__ import annotations

import gzip
import io
import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from lxml import etree

from crawler.config import get_int
from crawler.extract import normalise_date
from crawler.limits import cap_links, declares_entities, links_per_page_max, strip_doctype
from crawler.spiders.base import NewsSpider

if TYPE_CHECKING:
    from collections.abc import Generator, Iterable, Iterator

    import scrapy
    from scrapy.http import Response
    from twisted.python.failure import Failure

_SITEMAP_LINE_RE = re.compile(rb"^\s*sitemap\s*:\s*(\S+)", re.IGNORECASE | re.MULTILINE)
_GZIP_MAGIC = b"\x1f\x8b"


class SitemapTooLarge(ValueError):
    pass


@dataclass
class SitemapEntry:
    """One ``<url>`` (or, in an index, ``<sitemap>``) of a sitemap."""

    loc: str
    lastmod: str | None = None
    news: dict[str, str] = field(default_factory=dict)
    """Google News extension: ``publication_date``, ``title``, ``name`` (publication),
    ``language``, ``keywords`` — read as their own fields, not flattened."""

    @property
    def published(self) -> str | None:
        return self.news.get("publication_date") or self.lastmod

    @cached_property  # sorting and the recency window both ask: parse the date once
    def timestamp(self) -> float | None:
        iso = normalise_date(self.published)
        if not iso:
            return None
        return datetime.fromisoformat(iso if "T" in iso else iso + "T00:00:00+00:00").timestamp()


def _local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1].lower() if isinstance(tag, str) else ""


def gunzip_limited(body: bytes, max_size: int) -> bytes:
    """Inflate a gzip body, refusing to produce more than ``max_size`` bytes (a zip bomb)."""
    with gzip.GzipFile(fileobj=io.BytesIO(body)) as f:
        data = f.read(max_size + 1)
    if len(data) > max_size:
        raise SitemapTooLarge(f"sitemap inflates beyond {max_size} bytes")
    return data


def parse_sitemap(body: bytes) -> tuple[str, list[SitemapEntry]]:
    """``("index"|"urlset", entries)`` of a sitemap document.

    The XML parser never loads DTDs, never resolves entities and never touches the
    network, so entity bombs and external-entity tricks are inert; broken XML is
    recovered as far as it goes.
    """
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        recover=True,
        remove_comments=True,
        remove_pis=True,
    )
    try:
        root = etree.fromstring(strip_doctype(body), parser=parser)
    except etree.XMLSyntaxError:
        return "unknown", []
    if root is None:
        return "unknown", []
    kind = _local(root.tag)
    entries = []
    for node in root:
        if _local(node.tag) not in ("url", "sitemap"):
            continue
        entry = SitemapEntry(loc="")
        for child in node:
            tag = _local(child.tag)
            if tag == "loc":
                entry.loc = (child.text or "").strip()
            elif tag == "lastmod":
                entry.lastmod = (child.text or "").strip() or None
            elif tag == "news":
                for sub in child.iter():
                    name = _local(sub.tag)
                    if name == "publication":
                        continue
                    if name != "news" and sub.text and sub.text.strip():
                        entry.news[name] = sub.text.strip()
        if entry.loc:
            entries.append(entry)
    return ("index" if kind == "sitemapindex" else kind), entries


def newest_first(entries: list[SitemapEntry]) -> list[SitemapEntry]:
    """Dated entries newest first, then undated ones in document order."""
    dated = [(e.timestamp, i, e) for i, e in enumerate(entries)]
    return [e for _, _, e in sorted(dated, key=lambda t: (t[0] is None, -(t[0] or 0), t[1]))]


class SitemapSpider(NewsSpider):
    """Reads robots.txt ``Sitemap:`` lines, sitemap indexes and sitemaps of the site and
    requests the newest article URLs within the recency window."""

    name = "sitemap"
    kind = "sitemap"

    def source_request(self, url: str, **kwargs: Any) -> scrapy.Request:
        meta = kwargs.setdefault("meta", {})
        meta.setdefault("download_maxsize", self.max_sitemap_bytes)
        return super().source_request(url, **kwargs)

    @property
    def max_sitemap_bytes(self) -> int:
        return get_int(self.crawler.settings, "SITEMAP_MAX_BYTES")

    def parse(
        self,
        response: Response,
        depth: int = 0,
        pending: tuple[tuple[str, int], ...] = (),
    ) -> Iterator[scrapy.Request]:
        """Read one robots.txt, sitemap index or sitemap, then ask for the next sitemap:
        the children of an index first, then ``pending`` (those still to read, with their
        depth; see ``next_sitemap``)."""
        children = yield from self.read_sitemap(response, depth)
        yield from self.next_sitemap(children, pending)

    def read_sitemap(
        self, response: Response, depth: int
    ) -> Generator[scrapy.Request, None, list[tuple[str, int]]]:
        """Requests for what one robots.txt or sitemap lists; returns an index's children."""
        body = response.body
        if response.url.lower().endswith("/robots.txt"):
            for match in _SITEMAP_LINE_RE.finditer(body):
                url = urljoin(response.url, match.group(1).decode("utf-8", "replace"))
                yield self.source_request(url, callback=self.parse, cb_kwargs={"depth": depth})
            return []
        if body.startswith(_GZIP_MAGIC):
            try:
                body = gunzip_limited(body, self.max_sitemap_bytes)
            except (OSError, EOFError, SitemapTooLarge) as exc:
                self.crawler.stats.inc_value("sitemap/invalid")
                self.logger.error("sitemap %s: cannot inflate: %s", response.url, exc)
                return []
        if declares_entities(body):
            self.crawler.stats.inc_value("sitemap/entities_refused")
            self.logger.warning("sitemap %s declares XML entities: not expanded", response.url)
        kind, entries = parse_sitemap(body)
        if kind not in ("index", "urlset"):
            self.crawler.stats.inc_value("sitemap/invalid")
            self.logger.error("sitemap %s is not a sitemap (root <%s>)", response.url, kind)
            return []
        self.crawler.stats.inc_value(f"sitemap/{kind}_entries", len(entries))
        if kind == "index":
            if depth >= 3:
                self.logger.warning("sitemap %s: index nested too deep; ignored", response.url)
                return []
            children = [e for e in newest_first(entries) if not self.too_old(e.timestamp)]
            return [
                (urljoin(response.url, e.loc), depth + 1) for e in children[: self.site.max_pages]
            ]
        limit = links_per_page_max(self.crawler)
        wanted = self.sitemap_articles(entries, response.url)
        yield from self.article_requests(
            cap_links(wanted, limit, self.crawler, where=f"sitemap {response.url}")
        )
        return []

    def next_sitemap(self, *queues: Iterable[tuple[str, int]]) -> Iterator[scrapy.Request]:
        """The request for the first of the sitemaps still to read (the rest ride along in
        its ``pending``), at a lower priority than article requests: it goes out once the
        articles of the sitemaps before it have left the scheduler, which so holds one
        sitemap's articles at a time, not a whole site's (flat memory on big sites). Nothing
        more is read once ``max_articles`` is reached."""
        pending = tuple(entry for queue in queues for entry in queue)
        if not pending or self.article_budget_left <= 0:
            return
        (url, depth), rest = pending[0], pending[1:]
        yield self.source_request(
            url,
            callback=self.parse,
            errback=self.sitemap_failed,
            cb_kwargs={"depth": depth, "pending": rest},
            priority=-1,
        )

    def sitemap_failed(self, failure: Failure) -> Iterator[scrapy.Request]:
        """A sitemap of the queue failed: counted and logged; the next one is read."""
        self.source_failed(failure)
        yield from self.next_sitemap(failure.request.cb_kwargs.get("pending", ()))

    def sitemap_articles(
        self, entries: list[SitemapEntry], source: str
    ) -> Iterable[dict[str, Any]]:
        for entry in newest_first(entries):
            url = urljoin(source, entry.loc)
            if self.too_old(entry.timestamp) or not self.is_article_url(url, any_host=True):
                continue
            if self.article_budget_left <= 0:
                return
            yield {
                "url": url,
                "source_url": source,
                "fallback": {"title": entry.news.get("title"), "published": entry.published},
            }
