"""URL canonicalisation on real-world URL shapes: every variant of an article URL meets."""

from __future__ import annotations

import pytest

from crawler.urls import (
    canonical_key,
    canonical_url,
    registered_domain,
    same_site,
    url_key,
    url_keys,
)

CANONICAL = [
    # case, default ports, fragments
    ("HTTPS://WWW.Example.COM:443/News/Story#comments", "https://example.com/News/Story"),
    ("http://example.com:80/a/b.html", "http://example.com/a/b.html"),
    ("http://example.com:8080/a/b.html", "http://example.com:8080/a/b.html"),
    ("http://127.0.0.1:40123/a/2026/11/x.html?utm_source=rss", "http://127.0.0.1:40123/a/2026/11/x.html"),
    # tracking parameters go, article ids stay (and the rest is sorted)
    ("https://www.koreaherald.com/view.php?ud=20261126000123&utm_source=twitter&utm_medium=social",
     "https://koreaherald.com/view.php?ud=20261126000123"),
    ("https://edition.cnn.com/2026/11/26/asia/north-korea-missile-intl/index.html?fbclid=IwAR0x&gclid=abc",
     "https://edition.cnn.com/2026/11/26/asia/north-korea-missile-intl/index.html"),
    ("https://www.nytimes.com/2026/11/26/world/asia/north-korea.html?smid=tw-share&ref=homepage",
     "https://nytimes.com/2026/11/26/world/asia/north-korea.html"),
    ("https://news.example.com/article?id=123&mc_cid=abc&mc_eid=def",
     "https://news.example.com/article?id=123"),
    ("https://example.com/news.php?articleId=77&page=2&_ga=2.1.2&igshid=x",
     "https://example.com/news.php?articleId=77&page=2"),
    ("https://news.naver.com/main/read.naver?mode=LSD&mid=sec&sid1=100&oid=001&aid=0012345678",
     "https://news.naver.com/main/read.naver?aid=0012345678&mid=sec&mode=LSD&oid=001&sid1=100"),
    ("https://www.bbc.co.uk/news/world-asia-123?at_medium=RSS&at_campaign=KARANGA",
     "https://bbc.co.uk/news/world-asia-123"),
    ("https://example.com/a?pk_campaign=x&mtm_source=y&hsa_acc=1&b=2", "https://example.com/a?b=2"),
    # AMP variants
    ("https://www.example.com/2026/11/story/amp/", "https://example.com/2026/11/story"),
    ("https://www.example.com/2026/11/story/amp", "https://example.com/2026/11/story"),
    ("https://example.com/amp/2026/11/story", "https://example.com/2026/11/story"),
    ("https://www.bbc.com/news/amp/world-asia-123", "https://bbc.com/news/world-asia-123"),
    ("https://amp.theguardian.com/world/2026/nov/26/north-korea",
     "https://theguardian.com/world/2026/nov/26/north-korea"),
    ("https://example.com/story.amp.html", "https://example.com/story.html"),
    ("https://example.com/story?amp=1", "https://example.com/story"),
    ("https://example.com/story?amp", "https://example.com/story"),
    ("https://example.com/story?outputType=amp&id=9", "https://example.com/story?id=9"),
    ("https://www-example-com.cdn.ampproject.org/c/s/www.example.com/2026/11/story.amp.html",
     "https://example.com/2026/11/story.html"),
    # hosts: www., m., amp. fold into the bare host; other subdomains stay
    ("https://m.yna.co.kr/view/AKR20261126000100504", "https://yna.co.kr/view/AKR20261126000100504"),
    ("https://www2.example.com/a", "https://example.com/a"),
    ("https://en.yna.co.kr/view/AEN20261126000100315", "https://en.yna.co.kr/view/AEN20261126000100315"),
    ("https://m.co/x", "https://m.co/x"),
    # slashes and percent-encoding
    ("https://example.com/a//b/", "https://example.com/a/b"),
    ("https://example.com/", "https://example.com/"),
    ("https://example.com", "https://example.com/"),
    ("https://example.com/%7euser/story", "https://example.com/~user/story"),
    ("https://example.com/기사/1", "https://example.com/%EA%B8%B0%EC%82%AC/1"),
    ("https://example.com/search?q=%ED%95%9C%EA%B5%AD", "https://example.com/search?q=%ED%95%9C%EA%B5%AD"),
    # not an http(s) URL: left alone
    ("mailto:desk@example.com", "mailto:desk@example.com"),
]  # fmt: skip


@pytest.mark.parametrize(("url", "expected"), CANONICAL)
def test_canonical_url(url, expected):
    assert canonical_url(url) == expected
    assert canonical_url(expected) == expected  # idempotent


def test_variants_of_one_article_share_one_key():
    variants = [
        "https://www.example.com/world/2026/11/nk-missile",
        "http://example.com/world/2026/11/nk-missile/",
        "https://example.com/world/2026/11/nk-missile?utm_source=twitter&utm_medium=social",
        "https://amp.example.com/world/2026/11/nk-missile/amp/",
        "https://m.example.com/world/2026/11/nk-missile#top",
        "https://example.com/world/2026/11/nk-missile?amp=1&fbclid=IwAR0",
    ]
    assert {url_key(u) for u in variants} == {"example.com/world/2026/11/nk-missile"}


def test_article_ids_keep_articles_apart():
    assert url_key("https://example.com/view?id=1") != url_key("https://example.com/view?id=2")
    assert url_key("https://example.com/a?id=1&page=2") != url_key("https://example.com/a?id=1")


def test_registered_domain_and_same_site():
    assert registered_domain("news.bbc.co.uk") == "bbc.co.uk"
    assert registered_domain("foo.blogspot.com") == "foo.blogspot.com"
    assert registered_domain("127.0.0.1") == "127.0.0.1"
    assert registered_domain("localhost") == "localhost"
    assert same_site("https://amp.example.co.uk/x", "https://www.example.co.uk/y")
    assert not same_site("https://a.blogspot.com/x", "https://b.blogspot.com/x")
    # Two fixture sites on one machine are two sites.
    assert not same_site("http://127.0.0.1:1/", "http://127.0.0.1:2/")


def test_canonical_key_trusts_same_site_article_urls_only():
    amp = "https://amp.example.com/2026/11/story/amp/"
    assert (
        canonical_key(amp, "https://www.example.com/2026/11/story") == "example.com/2026/11/story"
    )
    # A re-post crediting its source is a copy, not the same URL.
    assert canonical_key("https://blog.example.net/p/1", "https://example.com/story") is None
    # A template pointing every page at the front page says nothing.
    assert canonical_key("https://example.com/story", "https://example.com/") is None
    assert canonical_key("https://example.com/story", None) is None


def test_url_keys_of_a_page():
    keys = url_keys(
        "https://example.com/story/amp",
        "https://www.example.com/story",
        request_url="https://feeds.example.com/~r/news/123?utm_source=rss",
    )
    assert keys == ["example.com/story", "feeds.example.com/~r/news/123"]
