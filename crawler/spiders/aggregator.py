"""Aggregator spider: pages or feeds that link out to many publishers."""

from __future__ import annotations

from html import unescape
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from crawler.extract import url_domain
from crawler.limits import cap_links, declares_entities, links_per_page_max
from crawler.spiders.base import NewsSpider
from crawler.spiders.feed import parse_feed
from crawler.spiders.listing import page_links

if TYPE_CHECKING:
    from collections.abc import Iterable

    import scrapy
    from scrapy.http import Response

_FEED_TYPES = ("xml", "rss", "atom", "json")


def looks_like_feed(body: bytes, content_type: str | None) -> bool:
    head = body[:1024].lstrip().lower()
    if head.startswith((b"<?xml", b"<rss", b"<feed", b"<rdf", b"{")):
        return True
    ctype = (content_type or "").split(";")[0].lower()
    return "html" not in ctype and any(t in ctype for t in _FEED_TYPES)


def outbound_link(entry: dict[str, Any], own: set[str], base: str) -> str:
    """The story an aggregator feed entry points to.

    Link aggregators such as Reddit link each entry to their own discussion page and put
    the story's address in the entry content ("[link]"): when the entry's link stays on
    the aggregator's host, the first link of the content that leaves it is the story.
    """
    url = urljoin(base, entry["url"])
    if url_domain(url) not in own:
        return url
    for href in entry.get("content_links", []):
        target = urljoin(base, unescape(href))
        if target.startswith(("http://", "https://")) and url_domain(target) not in own:
            return target
    return url


class AggregatorSpider(NewsSpider):
    """Follows outbound links from an aggregator page or feed to any publisher, recording
    which aggregator page (``via``) and position (``via_position``) led to each article."""

    name = "aggregator"
    kind = "aggregator"

    def source_request(self, url: str, **kwargs: Any) -> scrapy.Request:
        if self.site.render_js:
            kwargs.setdefault("meta", {}).update(self.playwright_meta())
        return super().source_request(url, **kwargs)

    def parse(self, response: Response, page: int = 1) -> Iterable[scrapy.Request]:
        content_type = response.headers.get(b"Content-Type", b"").decode("latin-1") or None
        own = {url_domain(u) for u in self.site.start_urls} | set(self.site.allowed_domains)
        if looks_like_feed(response.body, content_type):
            if declares_entities(response.body):
                self.crawler.stats.inc_value("aggregator/entities_refused")
                self.logger.warning("feed %s declares XML entities: not expanded", response.url)
            entries, _ = parse_feed(response.body, content_type)
            candidates = [
                (outbound_link(e, own, response.url), e["fallback"])
                for e in entries
                if not self.too_old(e["timestamp"])
            ]
        else:
            links = page_links(response, self.site.link_selector)
            if not self.site.link_selector:
                # Without a selector, the outbound links are the stories.
                links = [u for u in links if url_domain(u) not in own]
            candidates = [(u, {}) for u in links]
        entries_out = []
        position = 0
        for url, fallback in candidates:
            url = response.urljoin(url)
            if not self.is_article_url(url, any_host=True):
                continue
            position += 1
            entries_out.append(
                {
                    "url": url,
                    "fallback": fallback,
                    "source_url": response.url,
                    "via": response.url,
                    "via_position": position,
                }
            )
        limit = links_per_page_max(self.crawler)
        entries_out = list(
            cap_links(entries_out, limit, self.crawler, where=f"aggregator {response.url}")
        )
        self.crawler.stats.inc_value("aggregator/links", len(entries_out))
        if not entries_out:
            self.logger.warning("aggregator %s: no outbound article links", response.url)
        yield from self.article_requests(entries_out)
        if self.site.next_selector and page < self.site.max_pages and self.article_budget_left > 0:
            nxt = response.css(self.site.next_selector).xpath("self::a/@href | .//a/@href").get()
            if nxt:
                yield self.source_request(
                    response.urljoin(nxt), callback=self.parse, cb_kwargs={"page": page + 1}
                )
