"""End to end: one real crawl per spider kind against the fixture sites, read back from SQLite."""

from __future__ import annotations

import json
from datetime import datetime

from tests.conftest import rows, scrapy

MISSILE = "/a/2026/11/missile-launch.html"
CHIPS = "/a/2026/11/chip-exports.html"
COFFEE = "/a/2026/11/coffee-harvest.html"
NO_DATE = "/a/2026/11/no-date.html"
HOUSING = "/a/2026/11/housing.html"
KOREAN = "/ko/missile.html"


def _by_path(db, base):
    return {r["url"].removeprefix(base): r for r in rows(db, "SELECT * FROM articles")}


def _assert_ok(result):
    assert result.returncode == 0, result.stderr[-3000:]


def test_feed_rss(sites, db):
    base = sites.base_urls["pub"]
    result = scrapy("crawl", "feed", "-a", f"url={base}/feed.rss", "-a", "name=herald", db=db)
    _assert_ok(result)
    arts = _by_path(db, base)
    assert set(arts) == {MISSILE, CHIPS, NO_DATE, KOREAN}
    missile = arts[MISSILE]
    assert missile["site"] == "herald"
    assert missile["title"] == "North Korea fires ballistic missile into East Sea, Seoul says"
    # The page says 08:30 +09:00: stored in UTC.
    assert missile["published_at"] == "2026-11-25T23:30:00+00:00"
    assert json.loads(missile["authors"]) == ["Min-ji Park"]
    assert missile["language"] == "en"
    assert missile["source_kind"] == "feed"
    assert missile["source_url"] == f"{base}/feed.rss"
    assert missile["canonical_url"] == base + MISSILE
    assert "third launch this month" in missile["text"]
    assert "Copyright 2026" not in missile["text"]
    # The page has no date of its own: the feed entry's pubDate (03:00 +09:00) fills it.
    no_date = arts[NO_DATE]
    assert no_date["published_at"] == "2026-11-21T18:00:00+00:00"
    assert json.loads(no_date["authors"]) == ["Jae-sung Choi"]
    assert set(json.loads(no_date["fallback"])) >= {"published", "authors"}
    # JSON-LD date and author.
    assert arts[CHIPS]["published_at"] == "2026-11-25T06:00:00+00:00"
    assert json.loads(arts[CHIPS]["authors"]) == ["Hyun-woo Lee"]
    run = rows(db, "SELECT * FROM runs")[0]
    assert run["status"] == "finished"
    assert run["items_stored"] == 4
    assert run["site"] == "herald"
    assert json.loads(run["stats"])["feed/entries"] == 4
    # The raw HTML is kept compressed for re-processing.
    assert rows(db, "SELECT COUNT(*) n FROM pages")[0]["n"] == 4


def test_euc_kr_page_without_charset_is_stored_as_hangul(sites, db):
    base = sites.base_urls["pub"]
    _assert_ok(scrapy("crawl", "feed", "-a", f"url={base}/feed.rss", db=db))
    korean = _by_path(db, base)[KOREAN]
    assert korean["title"] == "북한, 동해상으로 탄도미사일 발사"
    assert "합동참모본부가 밝혔다" in korean["text"]
    assert korean["language"] == "ko"
    assert korean["encoding"] == "cp949"
    assert korean["published_at"] == "2026-11-26T00:10:00+00:00"


def test_feed_atom_and_json_feed(sites, db):
    base = sites.base_urls["pub"]
    _assert_ok(scrapy("crawl", "feed", "-a", f"url={base}/atom.xml", db=db))
    # Without the incremental skip, the stored housing page is fetched again and its
    # second sighting recorded (with it, it is not fetched at all: tests/test_incremental.py).
    _assert_ok(
        scrapy(
            "crawl", "feed", "-a", f"url={base}/feed.json", "-s", "INCREMENTAL_ENABLED=False", db=db
        )
    )
    arts = _by_path(db, base)
    assert set(arts) == {COFFEE, HOUSING, NO_DATE}
    # <time datetime="...-03:00"> on the page wins over the Atom entry's date.
    assert arts[COFFEE]["published_at"] == "2026-11-24T15:00:00+00:00"
    # The JSON Feed's date fills the page that has none.
    assert arts[NO_DATE]["published_at"] == "2026-11-22T18:00:00+00:00"
    # Housing came twice (Atom, then JSON Feed): stored once, the second sighting recorded.
    dupes = rows(db, "SELECT * FROM duplicates")
    assert [d["url"] for d in dupes] == [base + HOUSING]
    assert dupes[0]["article_id"] == arts[HOUSING]["id"]


def test_malformed_feed_entries_are_salvaged(sites, db):
    base = sites.base_urls["pub"]
    result = scrapy("crawl", "feed", "-a", f"url={base}/broken.rss", db=db)
    _assert_ok(result)
    assert set(_by_path(db, base)) == {MISSILE, CHIPS, COFFEE}
    stats = json.loads(rows(db, "SELECT stats FROM runs")[0]["stats"])
    assert stats["feed/malformed"] == 1


def test_sitemap_index_gzip_news_and_recency(sites, db):
    base = sites.base_urls["pub"]
    result = scrapy(
        "crawl", "sitemap", "-a", f"url={base}/sitemap_index.xml",
        "-a", "max_pages=5", "-a", "recency_days=3650", "-a", "article_pattern=/a/",
        db=db,
    )  # fmt: skip
    _assert_ok(result)
    arts = _by_path(db, base)
    # sitemap-old.xml (lastmod 2019) is within 3650 days; the news sitemap is gzipped.
    assert set(arts) == {NO_DATE, HOUSING, COFFEE}
    # news:title and news:publication_date are read as such (the page has no date).
    assert arts[NO_DATE]["published_at"] == "2026-11-22T03:00:00+00:00"


def test_sitemap_recency_window_skips_old_sitemaps(sites, db):
    base = sites.base_urls["pub"]
    # A window reaching back to 2020 only: the 2019 child sitemap is never fetched.
    days = (datetime.now().astimezone() - datetime.fromisoformat("2020-01-01T00:00:00+00:00")).days
    result = scrapy(
        "crawl", "sitemap", "-a", f"url={base}/sitemap_index.xml", "-a", "max_pages=5",
        "-a", f"recency_days={days}", "-a", "article_pattern=/a/", db=db,
    )  # fmt: skip
    _assert_ok(result)
    assert set(_by_path(db, base)) == {NO_DATE, HOUSING}
    assert "/sitemap-old.xml" not in sites.sites["pub"].requests


def test_listing_pattern_and_pagination_limit(sites, db):
    base = sites.base_urls["pub"]
    result = scrapy(
        "crawl", "listing", "-a", f"url={base}/section.html", "-a", "article_pattern=/a/\\d{4}/",
        "-a", "next_selector=a.next", "-a", "max_pages=2", db=db,
    )  # fmt: skip
    _assert_ok(result)
    arts = _by_path(db, base)
    # Page 1: missile, chips (offsite link ignored); page 2: housing (missile again is
    # filtered as a repeat); page 3 is beyond max_pages.
    assert set(arts) == {MISSILE, CHIPS, HOUSING}
    assert "/section-3.html" not in sites.sites["pub"].requests
    assert "/about.html" not in sites.sites["pub"].requests
    assert all(a["source_kind"] == "listing" for a in arts.values())


def test_aggregator_follows_outbound_links_and_records_via(sites, db):
    agg, pub = sites.base_urls["agg"], sites.base_urls["pub"]
    result = scrapy(
        "crawl", "aggregator", "-a", f"url={agg}/", "-a", "link_selector=ol.stories",
        "-a", "name=links", db=db,
    )  # fmt: skip
    _assert_ok(result)
    arts = _by_path(db, pub)
    assert set(arts) == {CHIPS, KOREAN, COFFEE}
    assert {p: (a["via"], a["via_position"]) for p, a in arts.items()} == {
        CHIPS: (f"{agg}/", 1),
        KOREAN: (f"{agg}/", 2),
        COFFEE: (f"{agg}/", 3),
    }
    assert all(a["site"] == "links" for a in arts.values())
    assert "/login" not in sites.sites["agg"].requests


def test_configured_site_by_name_and_list(sites, db, tmp_path):
    base = sites.base_urls["pub"]
    sites_file = tmp_path / "sites.toml"
    sites_file.write_text(
        f"""
[[site]]
name = "herald-atom"
kind = "feed"
start_urls = ["{base}/atom.xml"]

[[site]]
name = "herald-off"
kind = "feed"
enabled = false
start_urls = ["{base}/feed.rss"]
""",
        encoding="utf-8",
    )
    listed = scrapy("list", "-s", f"SITES_FILE={sites_file}")
    _assert_ok(listed)
    names = listed.stdout.split()
    assert "herald-atom" in names
    assert "herald-off" not in names
    assert {"feed", "sitemap", "listing", "aggregator"} <= set(names)
    result = scrapy("crawl", "herald-atom", "-s", f"SITES_FILE={sites_file}", db=db)
    _assert_ok(result)
    assert {r["site"] for r in rows(db, "SELECT site FROM articles")} == {"herald-atom"}
    assert len(rows(db, "SELECT * FROM articles")) == 2


def test_not_an_article_is_dropped_with_reason(sites, db):
    base = sites.base_urls["pub"]
    result = scrapy(
        "crawl", "sitemap", "-a", f"url={base}/sitemap-news.xml", "-s", "LOG_LEVEL=INFO", db=db
    )
    _assert_ok(result)
    stats = json.loads(rows(db, "SELECT stats FROM runs")[0]["stats"])
    # /about.html has a line of text, no article.
    assert stats["validate/dropped/too_short"] == 1
    assert "not an article (too_short)" in result.stderr
    assert rows(db, "SELECT dropped FROM runs")[0]["dropped"] == 1


def test_export_with_standard_scrapy_output(sites, db, tmp_path):
    base = sites.base_urls["pub"]
    out = tmp_path / "out.jsonl"
    _assert_ok(scrapy("crawl", "feed", "-a", f"url={base}/atom.xml", "-O", str(out), db=db))
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 2
    assert {"url", "title", "text", "published_at"} <= set(lines[0])
    assert "html" not in lines[0]


def test_aggregator_feed_entry_linking_to_its_own_thread_uses_the_story_link(sites, db):
    agg, pub = sites.base_urls["agg"], sites.base_urls["pub"]
    result = scrapy("crawl", "aggregator", "-a", f"url={agg}/r/korea.rss", db=db)
    _assert_ok(result)
    arts = _by_path(db, pub)
    assert set(arts) == {HOUSING}
    assert arts[HOUSING]["via"] == f"{agg}/r/korea.rss"
    assert arts[HOUSING]["via_position"] == 1
    # The Atom entry's title is the fallback; the page's own title wins.
    assert arts[HOUSING]["title"].startswith("Seoul unveils plan")
    # A self post has no outside link: its thread page is the entry.
    assert "/r/korea/comments/2def/learning_korean/" in sites.sites["agg"].requests
