"""Incremental crawling: stored articles are not requested again, sources answer 304, a new
article is the only page fetched, revisits keep changed texts, and the spiders of one crawlall
process see each other's stories."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from datetime import UTC, datetime

import pytest
from scrapy import Request
from scrapy.exceptions import NotConfigured
from scrapy.http import HtmlResponse, Response, XmlResponse
from scrapy.utils.misc import build_from_crawler
from scrapy.utils.test import get_crawler

from crawler.middlewares.incremental import (
    ConditionalGetMiddleware,
    IncrementalConfig,
    KnownPage,
    RedirectGateMiddleware,
    SkipStoredMiddleware,
    entry_changed,
    entry_signature,
    revisit_due,
)
from crawler.siteserver import SiteServers
from crawler.storage.articles import SqliteArticles
from crawler.storage.incremental import SqliteUrlMemory
from tests.conftest import FIXTURES, rows, scrapy

ARTICLES = {"/a/missile.html", "/a/exports.html", "/a/fine-dust.html"}


# -- pure parts ----------------------------------------------------------------------------------
def test_revisit_due():
    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    assert not revisit_due("2026-01-01T00:00:00+00:00", 0, now=now)  # off
    assert revisit_due("2026-11-20T12:00:00+00:00", 7, now=now)
    assert not revisit_due("2026-11-20T12:00:01+00:00", 7, now=now)
    assert revisit_due("2026-11-27T11:00:00", 1 / 48, now=now)  # naive = UTC
    assert revisit_due(None, 7, now=now)
    assert revisit_due("not a date", 7, now=now)


def test_config_validation():
    with pytest.raises(ValueError, match="INCREMENTAL_REVISIT_DAYS"):
        IncrementalConfig(revisit_days=-1)


# -- the middlewares with a crawler -----------------------------------------------------------
@pytest.fixture
def crawler(tmp_path):
    return get_crawler(settings_dict={"DB_PATH": str(tmp_path / "news.db")})


def _stored(tmp_path, url: str) -> int:
    archive = SqliteArticles.acquire(tmp_path / "news.db")
    try:
        return archive.insert({"url": url, "text": "text", "fetched_at": "2026-11-01"})
    finally:
        archive.release()


def _article(url: str, **meta) -> Request:
    return Request(url, meta={"article": True, **meta})


def test_stored_articles_are_not_requested_again(crawler, tmp_path):
    _stored(tmp_path, "https://www.herald.example/a/story")
    mw = build_from_crawler(SkipStoredMiddleware, crawler)
    mw.spider_opened(None)
    try:
        for url in (
            "https://herald.example/a/story",
            "http://www.herald.example/a/story/?utm_source=rss&utm_medium=feed",
            "https://amp.herald.example/a/story/amp/",
        ):
            assert mw.get_processed_request(_article(url), None) is None
        new = _article("https://herald.example/a/other")
        assert mw.get_processed_request(new, None) is new
        source = Request("https://herald.example/a/story", meta={"source": True})
        assert mw.get_processed_request(source, None) is source
        forced = _article("https://herald.example/a/story", incremental=False)
        assert mw.get_processed_request(forced, None) is forced
        assert crawler.stats.get_value("incremental/skipped") == 3
        assert crawler.stats.get_value("incremental/revisit") is None
    finally:
        mw.spider_closed(None)


def test_stored_articles_are_revisited_after_the_revisit_age(tmp_path):
    article_id = _stored(tmp_path, "https://herald.example/a/story")
    crawler = get_crawler(
        settings_dict={"DB_PATH": str(tmp_path / "news.db"), "INCREMENTAL_REVISIT_DAYS": 7}
    )
    mw = build_from_crawler(SkipStoredMiddleware, crawler)
    try:
        request = _article("https://herald.example/a/story")
        assert mw.get_processed_request(request, None) is request  # last seen 2026-11-01
        assert request.meta["incremental_revisit"] == article_id
        assert crawler.stats.get_value("incremental/revisit") == 1
    finally:
        mw.spider_closed(None)


def test_not_configured_when_disabled(tmp_path):
    crawler = get_crawler(settings_dict={"INCREMENTAL_ENABLED": False})
    for cls in (SkipStoredMiddleware, ConditionalGetMiddleware):
        with pytest.raises(NotConfigured):
            build_from_crawler(cls, crawler)


FEED = b'<?xml version="1.0"?><rss version="2.0"><channel><title>x</title></channel></rss>'


def test_conditional_get_stores_validators_and_replays_a_304(crawler):
    mw = build_from_crawler(ConditionalGetMiddleware, crawler)
    url = "https://herald.example/feed.rss"
    try:
        first = Request(url, meta={"source": True})
        mw.process_request(first)
        assert b"If-None-Match" not in first.headers
        ok = XmlResponse(
            url,
            body=FEED,
            headers={"ETag": '"v1"', "Last-Modified": "Wed, 25 Nov 2026 10:00:00 GMT",
                     "Content-Type": "application/rss+xml"},
            request=first,
        )  # fmt: skip
        assert mw.process_response(first, ok) is ok
        second = Request(url, meta={"source": True}, headers={"If-None-Match": '"stale"'})
        mw.process_request(second)
        assert second.headers[b"If-None-Match"] == b'"v1"'
        assert second.headers[b"If-Modified-Since"] == b"Wed, 25 Nov 2026 10:00:00 GMT"
        replay = mw.process_response(second, Response(url, status=304, request=second))
        assert replay.status == 200
        assert replay.body == FEED
        assert isinstance(replay, XmlResponse)
        assert "not_modified" in replay.flags
        # Articles are never asked conditionally; a 304 without our validators is left alone.
        article = Request("https://herald.example/a/1", meta={"article": True})
        mw.process_request(article)
        assert b"If-None-Match" not in article.headers
        plain = Request(url, meta={"source": True, "playwright": True})
        mw.process_request(plain)
        assert b"If-None-Match" not in plain.headers
        stats = crawler.stats
        assert [stats.get_value(f"incremental/{k}") for k in ("cached", "conditional", "not_modified")] == [1, 1, 1]  # fmt: skip
    finally:
        mw.spider_closed(None)


def test_sources_without_validators_or_too_large_are_not_cached(tmp_path):
    crawler = get_crawler(
        settings_dict={"DB_PATH": str(tmp_path / "news.db"), "INCREMENTAL_CACHE_MAX_BYTES": 100}
    )
    mw = build_from_crawler(ConditionalGetMiddleware, crawler)
    try:
        for url, headers, body in (
            ("https://herald.example/a.html", {}, b"<html>listing</html>"),
            ("https://herald.example/b.html", {"ETag": '"x"'}, b"<html>" + b"x" * 200),
        ):
            request = Request(url, meta={"source": True})
            mw.process_request(request)
            mw.process_response(request, HtmlResponse(url, body=body, headers=headers))
            again = Request(url, meta={"source": True})
            mw.process_request(again)
            assert b"If-None-Match" not in again.headers
        assert crawler.stats.get_value("incremental/cached") is None
    finally:
        mw.spider_closed(None)


# -- end to end: real crawls of a fixture site whose feed changes between runs ------------------
@pytest.fixture
def incr(tmp_path):
    """The ``incr`` and ``incr-blog`` fixture sites, copied to tmp_path so a test may change
    them between runs, each on its own port."""
    root = tmp_path / "sites"
    for name in ("incr", "incr-blog"):
        shutil.copytree(FIXTURES / "sites" / name, root / name)
    with SiteServers(root) as servers:
        servers.root_dir = root
        yield servers


def _run(servers, db, *args):
    """One crawl; returns (paths the incr site served during it, the run's stats)."""
    log = servers.sites["incr"].requests
    before = len(log)
    result = scrapy("crawl", *args, "-s", "LOG_LEVEL=INFO", db=db)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ERROR" not in result.stderr, result.stderr[-3000:]
    run = rows(db, "SELECT * FROM runs ORDER BY id DESC LIMIT 1")[0]
    return log[before:], json.loads(run["stats"]) | {"runs.errors": run["errors"]}


def _add_feed_item(servers) -> None:
    feed = servers.root_dir / "incr" / "feed.rss"
    item = (servers.root_dir / "incr" / "new-item.xml").read_text(encoding="utf-8")
    text = feed.read_text(encoding="utf-8")
    feed.write_text(text.replace("</channel>", item + "</channel>"), encoding="utf-8")


def test_second_run_fetches_no_article_and_the_feed_answers_304(incr, db):
    feed = f"{incr.base_urls['incr']}/feed.rss"
    served, stats = _run(incr, db, "feed", "-a", f"url={feed}", "-a", "name=incr")
    assert set(served) == {"/robots.txt", "/feed.rss", *ARTICLES}
    assert stats["store/inserted"] == 3
    assert stats["incremental/cached"] == 1

    served, stats = _run(incr, db, "feed", "-a", f"url={feed}", "-a", "name=incr")
    assert served == ["/robots.txt", "/feed.rss"]  # no article page again
    assert stats["downloader/response_status_count/304"] == 1
    assert stats["incremental/not_modified"] == 1
    assert stats["incremental/skipped"] == 3
    assert stats["downloader/request_count"] == 2  # robots.txt and the feed
    assert "store/inserted" not in stats
    assert "downloader/exception_count" not in stats
    assert stats["runs.errors"] == 0

    _add_feed_item(incr)
    served, stats = _run(incr, db, "feed", "-a", f"url={feed}", "-a", "name=incr")
    assert served == ["/robots.txt", "/feed.rss", "/a/samsung.html"]  # only the new one
    assert stats["downloader/response_status_count/200"] == 2  # the changed feed, the article
    assert stats["incremental/skipped"] == 3
    assert stats["store/inserted"] == 1
    assert len(rows(db, "SELECT id FROM articles")) == 4
    assert len(rows(db, "SELECT id FROM duplicates")) == 0


def test_skipped_articles_do_not_use_up_max_articles(incr, db):
    feed = f"{incr.base_urls['incr']}/feed.rss"
    served, _ = _run(incr, db, "feed", "-a", f"url={feed}", "-a", "max_articles=2")
    assert set(served) - {"/robots.txt", "/feed.rss"} == {"/a/missile.html", "/a/exports.html"}
    served, stats = _run(incr, db, "feed", "-a", f"url={feed}", "-a", "max_articles=2")
    assert served == ["/robots.txt", "/feed.rss", "/a/fine-dust.html"]
    assert stats["incremental/skipped"] == 2
    assert "feed/over_max_articles" not in stats


def test_unchanged_sitemap_index_and_sitemap_are_read_from_their_stored_copies(incr, db):
    index = f"{incr.base_urls['incr']}/sitemap_index.xml"
    served, stats = _run(incr, db, "sitemap", "-a", f"url={index}", "-a", "recency_days=36500")
    assert set(served) == {"/robots.txt", "/sitemap_index.xml", "/sitemap-news.xml", *ARTICLES}
    served, stats = _run(incr, db, "sitemap", "-a", f"url={index}", "-a", "recency_days=36500")
    # The index answered 304, its stored copy still names the child sitemap, which is asked
    # for conditionally too: nothing changed, no article fetched.
    assert served == ["/robots.txt", "/sitemap_index.xml", "/sitemap-news.xml"]
    assert stats["downloader/response_status_count/304"] == 2
    assert stats["incremental/skipped"] == 3


def test_revisit_keeps_a_changed_article_as_a_version(incr, db):
    feed = f"{incr.base_urls['incr']}/feed.rss"
    _run(incr, db, "feed", "-a", f"url={feed}")
    page = incr.root_dir / "incr" / "a" / "missile.html"
    update = "<p>The military later said the missile was a new solid-fuel type, officials said.</p>"
    page.write_text(
        page.read_text(encoding="utf-8").replace("</article>", update + "</article>"),
        encoding="utf-8",
    )
    served, stats = _run(
        incr, db, "feed", "-a", f"url={feed}", "-s", "INCREMENTAL_REVISIT_DAYS=0.000001"
    )
    assert set(served) == {"/robots.txt", "/feed.rss", *ARTICLES}
    assert stats["incremental/revisit"] == 3
    assert stats["dedupe/url"] == 3
    assert stats["dedupe/version"] == 1
    versions = rows(db, "SELECT v.*, a.text AS first FROM article_versions v JOIN articles a "
                        "ON a.id = v.article_id")  # fmt: skip
    assert len(versions) == 1
    assert versions[0]["url"].endswith("/a/missile.html")
    assert "new solid-fuel type" in versions[0]["text"]
    assert "new solid-fuel type" not in versions[0]["first"]  # the first text is kept as is
    assert len(rows(db, "SELECT id FROM articles")) == 3


def test_spiders_of_one_crawlall_process_see_each_others_stories(incr, db, tmp_path):
    """The publisher and a re-post blog crawled concurrently in one process: one article
    per story, every other sighting a duplicate pointing at it."""
    sites_file = tmp_path / "sites.toml"
    sites_file.write_text(
        f"""
[[site]]
name = "incr"
kind = "feed"
start_urls = ["{incr.base_urls["incr"]}/feed.rss"]

[[site]]
name = "incr-blog"
kind = "feed"
start_urls = ["{incr.base_urls["incr-blog"]}/feed.rss"]
""",
        encoding="utf-8",
    )
    result = scrapy("crawlall", "--sites", str(sites_file), "-v", db=db)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    articles = rows(db, "SELECT id, url, text_hash FROM articles")
    assert len(articles) == 3
    assert len({a["text_hash"] for a in articles}) == 3
    dupes = rows(db, "SELECT url, article_id, kind FROM duplicates")
    assert len(dupes) >= 3  # three blog copies (and the original URL if fetched twice)
    slug = {a["id"]: a["url"].rsplit("/", 1)[1] for a in articles}
    for d in dupes:
        assert d["url"].rsplit("/", 1)[1] == slug[d["article_id"]], d
    runs = rows(db, "SELECT site, stats FROM runs")
    assert {r["site"] for r in runs} == {"incr", "incr-blog"}
    total = {
        k: sum(json.loads(r["stats"]).get(f"dedupe/{k}", 0) for r in runs)
        for k in ("new", "url", "exact", "near")
    }
    assert total["new"] == 3
    # each blog copy is a sighting of its story by its text: cleaned of the blog's junk (its
    # headline repeated in capitals, the byline, the footer) it is the same text, or nearly
    assert total["exact"] + total["near"] >= 3


# -- one download per page: claims of the run, dropped pages, redirect chains --------------------
def test_a_page_requested_in_the_run_is_not_requested_again_under_another_spelling(crawler):
    mw = build_from_crawler(SkipStoredMiddleware, crawler)
    mw.spider_opened(None)
    try:
        first = _article("https://herald.example/a/story?utm_source=rss")
        assert mw.get_processed_request(first, None) is first
        for again in (
            "https://www.herald.example/a/story/",
            "https://herald.example/a/story?fbclid=IwAR0x",
        ):
            assert mw.get_processed_request(_article(again), None) is None
        # A rendered fetch of the page is not the same as a plain one.
        rendered = _article("https://herald.example/a/story", playwright=True)
        assert mw.get_processed_request(rendered, None) is rendered
        assert crawler.stats.get_value("incremental/claimed") == 2
    finally:
        mw.spider_closed(None)
    # Claims last one run: a new run asks again.
    mw.spider_opened(None)
    try:
        again = _article("https://herald.example/a/story")
        assert mw.get_processed_request(again, None) is again
    finally:
        mw.spider_closed(None)


def _entry_request(url: str, title: str) -> Request:
    return Request(url, meta={"article": True}, cb_kwargs={"entry": {"fallback": {"title": title}}})


def test_entry_changed():
    feed = entry_signature(_entry_request("https://h.example/a", "Teaser"))
    edited = entry_signature(_entry_request("https://h.example/a", "Teaser, updated"))
    bare = entry_signature(_article("https://h.example/a"))
    rendered = entry_signature(_article("https://h.example/a", playwright=True))
    assert bare is None
    assert not entry_changed(feed, feed)
    assert entry_changed(feed, edited)
    assert not entry_changed(feed, bare)  # a listing's link says nothing about a change
    assert not entry_changed(bare, feed)
    assert entry_changed(bare, rendered)
    assert entry_changed(rendered, feed)
    # A hostile feed's lone surrogate hashes like any other text.
    odd = entry_signature(_entry_request("https://h.example/a", "Teaser \ud800"))
    assert odd
    assert odd != feed


def test_a_dropped_page_waits_for_a_changed_entry_or_the_retry_age(tmp_path):
    settings = {"DB_PATH": str(tmp_path / "news.db")}
    memory = SqliteUrlMemory.acquire(tmp_path / "news.db")
    try:
        memory.record_drop(
            ["herald.example/a/teaser"],
            url="https://herald.example/a/teaser",
            reason="too_short",
            entry=entry_signature(_entry_request("https://herald.example/a/teaser", "Teaser")),
        )
    finally:
        memory.release()
    crawler = get_crawler(settings_dict=settings)
    mw = build_from_crawler(SkipStoredMiddleware, crawler)
    mw.spider_opened(None)
    try:
        same = _entry_request("https://herald.example/a/teaser?utm_source=x", "Teaser")
        assert mw.get_processed_request(same, None) is None
        bare = _article("https://herald.example/a/teaser")
        assert mw.get_processed_request(bare, None) is None
        changed = _entry_request("https://herald.example/a/teaser", "Teaser, now the full story")
        assert mw.get_processed_request(changed, None) is changed
        assert crawler.stats.get_value("incremental/skipped_dropped") == 2
    finally:
        mw.spider_closed(None)
    crawler = get_crawler(settings_dict={**settings, "INCREMENTAL_DROPPED_RETRY_DAYS": 1e-9})
    mw = build_from_crawler(SkipStoredMiddleware, crawler)
    try:
        due = _entry_request("https://herald.example/a/teaser", "Teaser")
        assert mw.get_processed_request(due, None) is due
    finally:
        mw.spider_closed(None)


def test_a_redirect_to_a_stored_page_goes_no_further_and_its_chain_is_remembered(tmp_path):
    article_id = _stored(tmp_path, "https://herald.example/a/story")
    crawler = get_crawler(settings_dict={"DB_PATH": str(tmp_path / "news.db")})
    gate = build_from_crawler(RedirectGateMiddleware, crawler)
    gate.spider_opened(None)
    try:
        hop = Request(
            "https://herald.example/a/story?utm_source=t.co",
            meta={"article": True, "redirect_urls": ["https://t.co/AbC123"]},
        )
        with pytest.raises(KnownPage):
            gate.process_request(hop)
        assert gate.outcomes().seen("t.co/AbC123")[0] == article_id
        # A redirect to the page the request was made for (a trailing slash) goes on.
        slash = Request(
            "https://herald.example/b/new/",
            meta={"article": True, "redirect_urls": ["https://herald.example/b/new"]},
        )
        assert gate.process_request(slash) is None
        # So does one made by a source request.
        feed = Request("https://herald.example/feed/", meta={"redirect_urls": ["x"]})
        assert gate.process_request(feed) is None
    finally:
        gate.spider_closed(None)


def test_a_page_dropped_as_not_an_article_is_not_fetched_on_the_next_run(sites, db):
    sitemap = f"{sites.base_urls['pub']}/sitemap-news.xml"
    log = sites.sites["pub"].requests
    first = scrapy("crawl", "sitemap", "-a", f"url={sitemap}", db=db)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "/about.html" in log  # a line of text: dropped as too_short
    dropped = rows(db, "SELECT url, reason, entry FROM dropped_urls")
    assert [(d["url"].rsplit("/", 1)[1], d["reason"]) for d in dropped] == [
        ("about.html", "too_short")
    ]
    before = len(log)
    second = scrapy("crawl", "sitemap", "-a", f"url={sitemap}", db=db)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "/about.html" not in log[before:]
    stats = json.loads(rows(db, "SELECT stats FROM runs ORDER BY id DESC LIMIT 1")[0]["stats"])
    assert stats["incremental/skipped_dropped"] == 1


def test_one_crawlall_run_downloads_a_page_linked_by_two_sites_once(sites, db, tmp_path):
    pub, agg = sites.base_urls["pub"], sites.base_urls["agg"]
    sites_file = tmp_path / "sites.toml"
    sites_file.write_text(
        f"""
[[site]]
name = "herald"
kind = "feed"
start_urls = ["{pub}/feed.rss"]

[[site]]
name = "links"
kind = "aggregator"
start_urls = ["{agg}/"]
link_selector = "ol.stories"
""",
        encoding="utf-8",
    )
    result = scrapy("crawlall", "--sites", str(sites_file), "-v", db=db)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    served = Counter(sites.sites["pub"].requests)
    # Both sites link the chip-exports and the Korean missile stories.
    assert served["/a/2026/11/chip-exports.html"] == 1
    assert served["/ko/missile.html"] == 1
    claimed = sum(
        json.loads(r["stats"]).get("incremental/claimed", 0)
        for r in rows(db, "SELECT stats FROM runs")
    )
    assert claimed == 2
