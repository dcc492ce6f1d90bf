"""Sites file validation: every bad case refuses to start and names the site and the key."""

from __future__ import annotations

import pytest

from crawler.sites import SitesError, load_sites
from crawler.spiders.base import site_from_args
from tests.conftest import ROOT, scrapy

GOOD = """
[[site]]
name = "herald"
kind = "feed"
start_urls = ["https://example.org/feed.xml"]
"""

BAD_CASES = {
    "unknown key": (
        GOOD + "max_artciles = 5\n",
        "site 'herald': key 'max_artciles': unknown key",
    ),
    "missing key": (
        '[[site]]\nname = "herald"\nstart_urls = ["https://example.org/feed.xml"]\n',
        "site 'herald': key 'kind': missing",
    ),
    "bad kind": (
        GOOD.replace('"feed"', '"rss"'),
        "site 'herald': key 'kind': 'rss' is not one of feed, sitemap, listing, aggregator",
    ),
    "bad regex": (
        GOOD + 'article_pattern = "/news/(\\\\d+"\n',
        "site 'herald': key 'article_pattern': bad regex",
    ),
    "bad url": (
        GOOD.replace("https://example.org/feed.xml", "example.org/feed.xml"),
        "site 'herald': key 'start_urls': 'example.org/feed.xml' is not an http(s) URL",
    ),
    "file url": (
        GOOD.replace("https://example.org/feed.xml", "file:///etc/passwd"),
        "site 'herald': key 'start_urls': 'file:///etc/passwd' is not an http(s) URL",
    ),
    "duplicate name": (
        GOOD + GOOD,
        "[[site]] #2: site 'herald': key 'name': duplicate name (already used by [[site]] #1)",
    ),
    "bad number": (
        GOOD + "max_articles = 0\n",
        "site 'herald': key 'max_articles': 0 is not a whole number >= 1",
    ),
    "bad bool": (
        GOOD + 'render_js = "yes"\n',
        "site 'herald': key 'render_js': 'yes' is not true or false",
    ),
    "bad css": (
        GOOD + 'link_selector = "ul..stories"\n',
        "site 'herald': key 'link_selector': bad CSS selector",
    ),
    "bad timezone": (
        GOOD + 'timezone = "Seoul"\n',
        "site 'herald': key 'timezone': 'Seoul' is not an IANA time zone",
    ),
    "wait_for without render_js": (
        GOOD + 'wait_for = "#body"\n',
        "site 'herald': key 'wait_for': only meaningful with render_js = true",
    ),
    "listing without pattern": (
        GOOD.replace('"feed"', '"listing"'),
        "site 'herald': key 'article_pattern': a listing site needs",
    ),
    "reserved name": (
        GOOD.replace('"herald"', '"feed"'),
        "site 'feed': key 'name': 'feed' is reserved",
    ),
    "not toml": ("[[site]\nname = 1", "not valid TOML"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_sites_file_names_site_and_key(tmp_path, case):
    text, expected = BAD_CASES[case]
    path = tmp_path / "sites.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SitesError) as info:
        load_sites(path)
    assert expected in str(info.value)
    assert str(path) in str(info.value)


def test_good_file_loads_with_defaults(tmp_path):
    path = tmp_path / "sites.toml"
    path.write_text(GOOD, encoding="utf-8")
    (site,) = load_sites(path)
    assert site.name == "herald"
    assert site.start_urls == ("https://example.org/feed.xml",)
    assert site.enabled is True
    assert site.max_articles == 100
    assert site.hosts == frozenset({"example.org"})


def test_shipped_sites_file_is_valid():
    sites = load_sites(ROOT / "data" / "sites.toml")
    names = {s.name for s in sites}
    assert len(names) == len(sites) >= 10
    assert {s.kind for s in sites} >= {"feed", "aggregator"}


def test_missing_sites_file_is_named(tmp_path):
    with pytest.raises(SitesError, match="sites file not found"):
        load_sites(tmp_path / "nope.toml")


def test_cli_refuses_bad_sites_file_with_exit_code_2(tmp_path):
    path = tmp_path / "sites.toml"
    path.write_text(BAD_CASES["bad regex"][0], encoding="utf-8")
    result = scrapy("list", "-s", f"SITES_FILE={path}")
    assert result.returncode == 2
    assert "site 'herald': key 'article_pattern': bad regex" in result.stderr
    assert "Traceback" not in result.stderr
    crawl = scrapy("crawl", "herald", "-s", f"SITES_FILE={path}")
    assert crawl.returncode == 2
    assert "key 'article_pattern'" in crawl.stderr


def test_adhoc_arguments_are_validated():
    site = site_from_args(None, "feed", {"url": "https://example.org/rss", "max_articles": "5"})
    assert (site.name, site.kind, site.max_articles) == ("example.org", "feed", 5)
    with pytest.raises(SitesError, match="key 'max_articles': 'many' is not a whole number"):
        site_from_args(None, "feed", {"url": "https://example.org/rss", "max_articles": "many"})
    with pytest.raises(SitesError, match="give the source with -a url=URL"):
        site_from_args(None, "feed", {})


def test_cli_rejects_bad_adhoc_argument():
    result = scrapy("crawl", "feed", "-a", "url=https://example.org/rss", "-a", "render_js=maybe")
    assert result.returncode == 2
    assert "key 'render_js': 'maybe' is not true or false" in result.stderr
