"""Listing spider: section and front pages; article links by URL pattern and/or selector."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crawler.limits import cap_links, links_per_page_max
from crawler.spiders.base import NewsSpider

if TYPE_CHECKING:
    from collections.abc import Iterable

    import scrapy
    from parsel import SelectorList
    from scrapy.http import Response


def page_links(response: Response, selector: str | None) -> list[str]:
    """Absolute link targets on a page, in order, without repeats.

    With ``selector``, only the matched elements count: ``a`` elements themselves, or the
    links inside matched containers.
    """
    if selector:
        matched: SelectorList = response.css(selector)
        hrefs = matched.xpath("self::a/@href | .//a/@href").getall()
    else:
        hrefs = response.xpath("//a/@href").getall()
    links = (response.urljoin(h.strip()) for h in hrefs if h and h.strip())
    return list(dict.fromkeys(link.split("#", 1)[0] for link in links))


class ListingSpider(NewsSpider):
    """Walks section pages (following ``next_selector`` up to ``max_pages``) and requests
    the links that look like this site's articles."""

    name = "listing"
    kind = "listing"

    def source_request(self, url: str, **kwargs: Any) -> scrapy.Request:
        if self.site.render_js:
            kwargs.setdefault("meta", {}).update(self.playwright_meta())
        return super().source_request(url, **kwargs)

    def parse(self, response: Response, page: int = 1) -> Iterable[scrapy.Request]:
        links = [u for u in page_links(response, self.site.link_selector) if u != response.url]
        articles = [u for u in links if self.is_article_url(u)]
        limit = links_per_page_max(self.crawler)
        articles = list(cap_links(articles, limit, self.crawler, where=f"listing {response.url}"))
        self.crawler.stats.inc_value("listing/links", len(links))
        self.crawler.stats.inc_value("listing/article_links", len(articles))
        if not articles:
            self.logger.warning("listing %s: no article links found", response.url)
        yield from self.article_requests({"url": u, "source_url": response.url} for u in articles)
        if self.site.next_selector and page < self.site.max_pages and self.article_budget_left > 0:
            nxt = response.css(self.site.next_selector).xpath("self::a/@href | .//a/@href").get()
            if nxt:
                yield self.source_request(
                    response.urljoin(nxt), callback=self.parse, cb_kwargs={"page": page + 1}
                )
