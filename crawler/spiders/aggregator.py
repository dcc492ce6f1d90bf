"""Aggregator spider: pages or feeds that link out to many publishers.

Every link is routed before anything is fetched from a publisher:

- a Google News link (``news.google.com/rss/articles/<id>``) is decoded to the publisher's
  URL (``crawler/spiders/gnews.py``); one that cannot be is counted
  (``aggregator/unresolved/<reason>``) and not requested;
- a link on the aggregator's own site whose query carries a URL (a redirector:
  ``/go?to=https://…``, ``/out?url=%2Fstory``, ``out.php?u=…``) is taken as that URL;
- among all the links of a page (no ``link_selector``), the aggregator's other links to its
  own site are its own pages (about, login, comments: ``aggregator/own_links``), unless they match ``article_pattern``
  (a portal's article pages) or have a redirector's path (``/r/123``, ``/go/abc``): those are
  fetched once, and kept only when they lead off the site.

The link an article was found through (the redirector, the Google News link) is remembered
with it (meta ``aliases``), so a later run does not request it again. On a portal's copy of
an article (Naver News), ``publisher_selector`` and ``publisher_link_selector`` read the
original publisher's name and its own URL of the story.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from html import unescape
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from scrapy.http import TextResponse

from crawler.config import get_float, get_str
from crawler.extract import url_domain
from crawler.limits import cap_links, declares_entities, links_per_page_max
from crawler.middlewares.incremental import page_dropped
from crawler.spiders.base import NewsSpider
from crawler.spiders.feed import parse_feed
from crawler.spiders.gnews import GoogleNewsLinks, Resolution
from crawler.spiders.listing import page_links
from crawler.storage.incremental import SqliteLinkTargets
from crawler.urls import carried_url, registered_domain, site_of

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    import scrapy
    from scrapy.http import Response

    from crawler.items import ArticleItem

_FEED_TYPES = ("xml", "rss", "atom", "json")
REDIRECT_PATH_RE = re.compile(
    r"^/(?:[\w.-]+/)?(?:go|goto|out|outbound|r|redir|redirect|click|clk|link|l|away|exit|jump"
    r"|visit|track)(?:\.(?:php|aspx?|cgi|jsp))?(?:/[\w.~%-]+)?/?$",
    re.IGNORECASE,
)
"""Paths of an aggregator's own redirectors that carry no URL: ``/r/123``, ``/go/abc``,
``/out.php``, ``/hub/out``; at most one folder before the word and one id after it."""
_WS_RE = re.compile(r"\s+")


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


@dataclass(frozen=True)
class Route:
    """Where one aggregator link leads, as far as can be told before fetching it."""

    url: str | None
    """What to request; ``None``: not an article link."""
    aliases: tuple[str, ...] = ()
    """The link itself, when it is not what is requested (a redirector link)."""
    hop: bool = False
    """A link to the aggregator's own redirector: kept only if it leads off the site."""


def route_link(
    url: str,
    own: set[tuple[str, int | None]],
    *,
    selected: bool,
    article_re: re.Pattern[str] | None,
) -> Route:
    """Route a link of an aggregator whose own sites are ``own`` (``crawler.urls.site_of``).

    ``selected``: the link is a feed entry's or was picked by the site's ``link_selector``
    (the source said which links are stories). See the module docstring for the rules.
    """
    aliases: tuple[str, ...] = ()
    if site_of(url) in own and (target := carried_url(url)):
        url, aliases = target, (url,)
    if site_of(url) not in own or selected:
        return Route(url, aliases)
    if article_re is not None and article_re.search(url):
        return Route(url, aliases)
    if not aliases and REDIRECT_PATH_RE.match(urlsplit(url).path):
        return Route(url, hop=True)
    return Route(None)


def strip_source_suffix(title: str | None, source: str | None) -> str | None:
    """A Google News entry title without the `` - Publisher`` it ends with."""
    if title and source and title.endswith(f" - {source}"):
        return title[: -len(source) - 3].rstrip() or title
    return title


class AggregatorSpider(NewsSpider):
    """Follows outbound links from an aggregator page or feed to any publisher, recording
    which aggregator page (``via``) and position (``via_position``) led to each article."""

    name = "aggregator"
    kind = "aggregator"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.own_sites = {site_of(u) for u in self.site.start_urls}
        self.own_sites |= {(registered_domain(d), None) for d in self.site.allowed_domains}
        self._gnews: GoogleNewsLinks | None = None
        self._link_targets: SqliteLinkTargets | None = None

    @property
    def gnews(self) -> GoogleNewsLinks:
        """The Google News decoder, with its cache in the archive (a distributed worker,
        which has no archive, keeps nothing between runs)."""
        if self._gnews is None:
            settings = self.crawler.settings
            if not get_str(settings, "REDIS_URL"):
                self._link_targets = SqliteLinkTargets.for_settings(settings)
            retry = get_float(settings, "INCREMENTAL_DROPPED_RETRY_DAYS")
            self._gnews = GoogleNewsLinks(self, self._link_targets, retry)
        return self._gnews

    def closed(self, reason: str) -> None:
        if self._link_targets is not None:
            self._link_targets.release()
            self._link_targets = None

    def source_request(self, url: str, **kwargs: Any) -> scrapy.Request:
        if self.site.render_js:
            kwargs.setdefault("meta", {}).update(self.playwright_meta())
        return super().source_request(url, **kwargs)

    def article_request(self, entry: dict[str, Any]) -> scrapy.Request:
        request = super().article_request(entry)
        if entry.get("aliases"):
            request.meta["aliases"] = list(entry["aliases"])
        return request

    # -- sources -------------------------------------------------------------------------
    def candidates(
        self, response: Response
    ) -> tuple[list[tuple[str, dict[str, Any], dict[str, Any]]], bool]:
        """``(link, fallback, source)`` of every story link of a feed or page, in order, and
        whether they were chosen (a feed's entries, or the links ``link_selector`` picks)
        rather than every link of a page."""
        content_type = response.headers.get(b"Content-Type", b"").decode("latin-1") or None
        if looks_like_feed(response.body, content_type):
            if declares_entities(response.body):
                self.crawler.stats.inc_value("aggregator/entities_refused")
                self.logger.warning("feed %s declares XML entities: not expanded", response.url)
            own = {url_domain(u) for u in self.site.start_urls} | set(self.site.allowed_domains)
            entries, _ = parse_feed(response.body, content_type)
            chosen = [
                (
                    response.urljoin(outbound_link(e, own, response.url)),
                    e["fallback"],
                    e.get("source") or {},
                )
                for e in entries
                if not self.too_old(e["timestamp"])
            ]
            return chosen, True
        links = page_links(response, self.site.link_selector)
        return [(u, {}, {}) for u in links], bool(self.site.link_selector)

    async def parse(self, response: Response, page: int = 1) -> AsyncIterator[scrapy.Request]:
        candidates, selected = self.candidates(response)
        google = [u for u, _, _ in candidates if self.gnews.is_link(u)]
        resolved: dict[str, Resolution] = {}
        if google:
            resolved = await self.gnews.resolve(google, limit=self.article_budget_left)
        self._report_unresolved(response.url, resolved)
        entries_out = []
        position = 0
        for url, fallback, source in candidates:
            entry = self._entry(url, fallback, source, response.url, resolved, selected)
            if entry is None:
                continue
            position += 1
            entries_out.append({**entry, "source_url": response.url, "via_position": position})
        limit = links_per_page_max(self.crawler)
        entries_out = list(
            cap_links(entries_out, limit, self.crawler, where=f"aggregator {response.url}")
        )
        self.crawler.stats.inc_value("aggregator/links", len(entries_out))
        if not entries_out:
            self.logger.warning("aggregator %s: no outbound article links", response.url)
        for request in self.article_requests(entries_out):
            yield request
        if self.site.next_selector and page < self.site.max_pages and self.article_budget_left > 0:
            nxt = response.css(self.site.next_selector).xpath("self::a/@href | .//a/@href").get()
            if nxt:
                yield self.source_request(
                    response.urljoin(nxt), callback=self.parse, cb_kwargs={"page": page + 1}
                )

    def _entry(
        self,
        url: str,
        fallback: dict[str, Any],
        source: dict[str, Any],
        page_url: str,
        resolved: dict[str, Resolution],
        selected: bool,
    ) -> dict[str, Any] | None:
        """The article entry of one link, or ``None`` when it is not followed."""
        entry: dict[str, Any] = {"fallback": fallback, "via": page_url}
        if source.get("name"):
            entry["publisher"] = source["name"]
            entry["publisher_site"] = source.get("url")
        if url in resolved:
            if (target := resolved[url].url) is None:
                return None
            title = strip_source_suffix(fallback.get("title"), source.get("name"))
            entry.update(url=target, aliases=(url,), via=url, fallback={**fallback, "title": title})
        else:
            route = route_link(url, self.own_sites, selected=selected, article_re=self._article_re)
            if route.url is None:
                self.crawler.stats.inc_value("aggregator/own_links")
                return None
            entry.update(url=route.url, aliases=route.aliases, hop=route.hop)
        if entry.get("hop"):  # where it leads is only known once fetched
            if self._exclude_re and self._exclude_re.search(entry["url"]):
                return None
        elif not self.is_article_url(entry["url"], any_host=True):
            return None
        return entry

    def _report_unresolved(self, source: str, resolved: dict[str, Resolution]) -> None:
        """A warning for Google News links that could not be resolved; an error (so the
        run shows as failed in ``scrapy report``) when none of them could."""
        tried = [r for r in resolved.values() if r.how != "deferred"]
        failed = Counter(r.reason for r in tried if r.url is None)
        if not failed:
            return
        reasons = ", ".join(f"{reason} {n}" for reason, n in failed.most_common())
        missing = sum(failed.values())
        if missing == len(tried):
            self.logger.error(
                "feed %s: none of its %d Google News links could be resolved to the "
                "publisher (%s); the unofficial link format may have changed",
                source,
                missing,
                reasons,
            )
        else:
            self.logger.warning(
                "feed %s: %d of %d Google News links not resolved (%s)",
                source,
                missing,
                len(tried),
                reasons,
            )

    # -- articles ------------------------------------------------------------------------
    async def parse_article(
        self, response: Response, entry: dict[str, Any]
    ) -> AsyncIterator[ArticleItem]:
        """Article response -> item, unless the page is the aggregator's own (a Google
        News interstitial, a redirector path that did not leave the site): such a page is
        counted (``aggregator/not_article/<reason>``) and remembered, never stored."""
        if self.gnews.is_google(response.url):
            self._not_an_article(response, "interstitial")
            return
        if entry.get("hop") and site_of(response.url) in self.own_sites:
            self._not_an_article(response, "own_page")
            return
        async for item in super().parse_article(response, entry):
            self.credit_publisher(item, response, entry)
            yield item

    def _not_an_article(self, response: Response, reason: str) -> None:
        self.crawler.stats.inc_value(f"aggregator/not_article/{reason}")
        self.logger.info("%s: the aggregator's own page (%s), not an article", response.url, reason)
        self.crawler.signals.send_catch_log(page_dropped, response=response, reason=reason)

    def credit_publisher(
        self, item: ArticleItem, response: Response, entry: dict[str, Any]
    ) -> None:
        """The original publisher: the press a portal page names (``publisher_selector``)
        and links (``publisher_link_selector``, kept when it leaves the portal), else the
        source a feed entry credits (also recorded in ``fallback``)."""
        name = url = None
        if isinstance(response, TextResponse):
            if self.site.publisher_selector:
                name = first_text(response, self.site.publisher_selector)
            if self.site.publisher_link_selector:
                href = (
                    response.css(self.site.publisher_link_selector)
                    .xpath("self::a/@href | .//a/@href")
                    .get()
                )
                if href and (link := response.urljoin(href.strip())).startswith("http"):
                    url = link if site_of(link) not in self.own_sites else None
        if name is None and entry.get("publisher"):
            name = entry["publisher"]
            item.fallback = {**(item.fallback or {}), "publisher": name}
            if entry.get("publisher_site"):
                item.fallback["publisher_site"] = entry["publisher_site"]
        item.publisher = name
        item.publisher_url = url


def first_text(response: TextResponse, selector: str) -> str | None:
    """The first non-empty text ``selector`` finds: a string it selects (``::attr(alt)``,
    ``::text``), else an element's text, else its ``alt``, ``title`` or ``content``, else
    the ``alt`` of an image inside it (a press logo)."""
    for found in response.css(selector):
        if isinstance(found.root, str):
            text = found.root
        else:
            text = " ".join(found.css("::text").getall())
            attrib = found.attrib
            text = text.strip() or attrib.get("alt") or attrib.get("title") or ""
            text = text or attrib.get("content") or found.css("img::attr(alt)").get() or ""
        if text := _WS_RE.sub(" ", text).strip():
            return text
    return None
