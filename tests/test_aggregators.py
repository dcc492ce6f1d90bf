"""Aggregators as they are: Google News links decoded to the publisher before anything is
fetched (against a local stand-in for Google's endpoints), redirector links unwrapped or
followed once and remembered, an aggregator's own pages left out, and Naver-style portal
copies stored with their original publisher, as one story with the publisher's copy."""

from __future__ import annotations

import json
import re
import shutil
import tomllib
from collections import Counter

import pytest
from scrapy.http import HtmlResponse

from crawler.siteserver import SiteServers
from crawler.spiders.aggregator import first_text, route_link, strip_source_suffix
from crawler.spiders.gnews import (
    article_id,
    batch_body,
    decode_offline,
    id_payload,
    parse_batch,
    signature,
)
from crawler.urls import site_of
from tests.aggserver import AggregatorSite, new_id, old_id
from tests.conftest import FIXTURES, ROOT, rows, scrapy

CHIPS = "/a/2026/11/chip-exports.html"
COFFEE = "/a/2026/11/coffee-harvest.html"
HOUSING = "/a/2026/11/housing.html"
KOREAN = "/ko/missile.html"
SHIPPED = tomllib.loads((ROOT / "data" / "sites.toml").read_text(encoding="utf-8"))["site"]
NAVER = next(s for s in SHIPPED if s["name"] == "naver-news")


def _ok(result):
    assert result.returncode == 0, result.stderr[-3000:]


def _stats(db) -> dict:
    return json.loads(rows(db, "SELECT stats FROM runs ORDER BY id DESC LIMIT 1")[0]["stats"])


def _fresh(requests: list[str], before: int) -> list[str]:
    return list(requests[before:])


# -- Google News: the formats --------------------------------------------------------------------
def test_old_google_news_ids_carry_the_url_new_ones_need_the_endpoint():
    url = "https://www.koreaherald.com/article/10612345?utm_source=gn"
    assert decode_offline(old_id(url)) == url
    token = new_id("tok3n")
    assert decode_offline(token) is None
    assert id_payload(token).startswith(b"AU_yqL")
    # A real old-format id (the BBC's, with its AMP URL in field 26).
    bbc = (
        "CBMiLmh0dHBzOi8vd3d3LmJiYy5jb20vbmV3cy9hcnRpY2xlcy9jampqbnhkdjE4OG_SATJodHRwczovL3d3dy"
        "5iYmMuY29tL25ld3MvYXJ0aWNsZXMvY2pqam54ZHYxODhvLmFtcA"
    )
    assert decode_offline(bbc) == "https://www.bbc.com/news/articles/cjjjnxdv188o"
    for broken in ("!!!", "CBM", "AAAA", ""):
        assert decode_offline(broken) is None
    link = f"https://news.google.com/rss/articles/{token}?oc=5&hl=en-US"
    assert article_id(link) == token
    assert article_id(f"https://news.google.com/read/{token}") == token
    assert article_id(f"https://example.com/rss/articles/{token}") is None
    assert article_id("https://news.google.com/rss/search?q=korea") is None
    assert article_id(f"http://127.0.0.1:8000/rss/articles/{token}", {"127.0.0.1:8000"}) == token


def test_batchexecute_request_and_answer():
    items = [("id-a", "1764500000", "sg-a"), ("id-b", "x17", "sg-b")]
    form = batch_body(items)
    assert form.startswith("f.req=")
    envelopes = json.loads(re.sub(r"%([0-9A-F]{2})", lambda m: chr(int(m[1], 16)), form[6:]))[0]
    assert [e[0] for e in envelopes] == ["Fbv4je", "Fbv4je"]
    assert [e[3] for e in envelopes] == ["0", "1"]
    first = json.loads(envelopes[0][1])
    assert first[0] == "garturlreq"
    assert first[2:] == ["id-a", 1764500000, "sg-a"]
    assert json.loads(envelopes[1][1])[3] == "x17"  # a non-numeric timestamp stays a string
    rows_ = [
        ["wrb.fr", "Fbv4je", '["garturlres","https://pub.example/a/1",1]', None, None, None, "0"],
        ["wrb.fr", "Fbv4je", None, None, None, [3], "1"],
    ]
    body = json.dumps(rows_)
    answer = f')]}}\'\n\n{len(body)}\n{body}\n25\n[["di",31],["e",4,null]]\n'
    assert parse_batch(answer) == {"0": "https://pub.example/a/1"}
    assert parse_batch(")]}'\n\nnot json") == {}


def test_article_page_signature():
    page = '<c-wiz><div jscontroller="x" data-n-a-sg="AZ5r" data-n-a-ts="1764500000"></div></c-wiz>'
    assert signature(page) == ("AZ5r", "1764500000")
    assert signature("<html><body>Redirecting…</body></html>") is None


# -- routing a link --------------------------------------------------------------------------
def test_route_link():
    own = {site_of("https://hubbub.com/")}
    pattern = re.compile(r"/mnews/article/\d{3}/\d{10}$")

    def route(url, *, selected=False, article_re=None):
        return route_link(url, own, selected=selected, article_re=article_re)

    carried = route("https://hubbub.com/go?to=https%3A%2F%2Fpub.co.kr%2Fa%2F1%3Fid%3D2")
    assert (carried.url, carried.aliases) == (
        "https://pub.co.kr/a/1?id=2",
        ("https://hubbub.com/go?to=https%3A%2F%2Fpub.co.kr%2Fa%2F1%3Fid%3D2",),
    )
    assert route("https://www.hubbub.com/out?url=%2Fstory%2F9").url is None  # its own page
    assert route("https://pub.co.kr/a/1").url == "https://pub.co.kr/a/1"
    for own_page in ("/about", "/login", "/item?id=5", "/user/ann", "/r/korea/comments/x/y"):
        assert route(f"https://hubbub.com{own_page}").url is None, own_page
    for hop in ("/r/7", "/go/abc", "/out.php", "/hub/out", "/link/12345"):
        assert route(f"https://hubbub.com{hop}").hop, hop
    # Chosen links (a feed entry, link_selector) are the source's word; a portal's article
    # pages on its own domain are articles by their pattern.
    assert route("https://hubbub.com/story/5", selected=True).url == "https://hubbub.com/story/5"
    naver = {site_of("https://news.naver.com/section/100")}
    article = "https://n.news.naver.com/mnews/article/001/0015012345"
    assert route_link(article, naver, selected=False, article_re=pattern).url == article
    comments = "https://n.news.naver.com/mnews/article/comment/001/0015012345"
    assert route_link(comments, naver, selected=False, article_re=pattern).url is None


def test_google_news_title_suffix_and_portal_press_name():
    assert strip_source_suffix("Seoul raises rates - Reuters", "Reuters") == "Seoul raises rates"
    assert strip_source_suffix("Seoul - Busan line opens", "Yonhap") == "Seoul - Busan line opens"
    page = HtmlResponse(
        "https://n.news.naver.com/mnews/article/001/1",
        body='<a class="logo" href="/"><img alt=" 연합뉴스 "></a><span class="p"></span>'.encode(),
        encoding="utf-8",
    )
    assert first_text(page, "a.logo img::attr(alt)") == "연합뉴스"
    assert first_text(page, "a.logo") == "연합뉴스"
    assert first_text(page, "span.p") is None


# -- Google News against a local stand-in ---------------------------------------------------------
def _gnews_feed(entries: list[tuple[str, str, str]]) -> str:
    items = "".join(
        f"<item><title>{title} - Test Herald</title><link>{{{{self}}}}/rss/articles/{aid}?oc=5"
        f'</link><guid isPermaLink="false">{aid}</guid><pubDate>Wed, 26 Nov 2026 0{n}:00:00 '
        f'GMT</pubDate><description>{title}</description><source url="{{{{pub}}}}">Test Herald'
        "</source></item>"
        for n, (aid, title, _) in enumerate(entries)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>"Korea" - '
        f"Google News</title><link>https://news.google.com/</link>{items}</channel></rss>"
    )


@pytest.fixture
def google(sites):
    """A Google News stand-in whose feed links three publisher pages of ``pub``: one by an
    old id, two by new ids (one of them twice), plus a new id whose article page is an
    interstitial and one the endpoint does not resolve."""
    pub = sites.base_urls["pub"]
    with AggregatorSite(bases={"pub": pub}, google=True) as fake:
        ids = {
            "chips": old_id(pub + CHIPS),
            "coffee": new_id("coffee"),
            "housing": new_id("housing"),
            "coffee-again": new_id("coffee-again"),
            "gone": new_id("gone"),
            "unknown": new_id("unknown"),
        }
        fake.targets = {
            ids["coffee"]: "{{pub}}" + COFFEE,
            ids["housing"]: "{{pub}}" + HOUSING,
            ids["coffee-again"]: "{{pub}}" + COFFEE + "?utm_source=google",
        }
        fake.interstitial = {ids["gone"]}
        fake.feed = _gnews_feed(
            [
                (ids["chips"], "Chip exports lift trade balance", CHIPS),
                (ids["coffee"], "Drought cuts coffee harvest", COFFEE),
                (ids["gone"], "A story behind an interstitial", ""),
                (ids["housing"], "Seoul unveils housing plan", HOUSING),
                (ids["unknown"], "A story Google will not resolve", ""),
                (ids["coffee-again"], "Coffee growers get drought credit", COFFEE),
            ]
        )
        fake.ids = ids
        yield fake


def _gnews_crawl(google, db):
    return scrapy(
        "crawl", "aggregator", "-a", f"url={google.base_url}/rss/search?q=korea", "-a",
        "name=gnews-test", "-s", f"GNEWS_BASE_URL={google.base_url}", "-s",
        "GNEWS_DECODE_DELAY=0.05", db=db,
    )  # fmt: skip


def test_google_news_links_resolve_to_publisher_pages_stored_once_with_via(sites, google, db):
    pub, ids = sites.base_urls["pub"], google.ids
    _ok(_gnews_crawl(google, db))
    stored = {r["url"].removeprefix(pub): r for r in rows(db, "SELECT * FROM articles")}
    assert set(stored) == {CHIPS, COFFEE, HOUSING}
    link = google.base_url + "/rss/articles/{}?oc=5"
    assert stored[CHIPS]["via"] == link.format(ids["chips"])
    assert stored[HOUSING]["via"] == link.format(ids["housing"])
    assert {r["via_position"] for r in stored.values()} <= {1, 2, 3, 4, 5, 6}
    for row in stored.values():
        assert row["publisher"] == "Test Herald"
        assert row["source_url"] == f"{google.base_url}/rss/search?q=korea"
        assert json.loads(row["fallback"])["publisher"] == "Test Herald"
    assert not rows(db, "SELECT url FROM duplicates")
    # Nothing was fetched from the publisher twice, nothing stored from Google's host.
    served = Counter(sites.sites["pub"].requests)
    assert (served[COFFEE], served[CHIPS], served[HOUSING]) == (1, 1, 1)
    # Google: one article page per new id (the old one needs none), one batched POST.
    pages = [p for p in google.paths() if p.startswith("/rss/articles/")]
    assert sorted(pages) == sorted(
        f"/rss/articles/{ids[k]}" for k in ("coffee", "housing", "coffee-again", "gone", "unknown")
    )
    assert google.paths("POST") == ["/_/DotsSplashUi/data/batchexecute"]
    stats = _stats(db)
    assert stats["aggregator/gnews/offline"] == 1
    assert stats["aggregator/gnews/decoded"] == 3
    assert stats["aggregator/unresolved"] == 2
    assert stats["aggregator/unresolved/no_signature"] == 1
    assert stats["aggregator/unresolved/not_decoded"] == 1
    assert stats["incremental/claimed"] == 1  # the second link to the coffee story
    cached = {r["link"]: r for r in rows(db, "SELECT * FROM link_targets")}
    assert cached[f"gnews:{ids['unknown']}"]["target"] is None
    assert f"gnews:{ids['gone']}" not in cached  # an interstitial is asked again next run

    # The unchanged feed again: no id decoded twice, no publisher page fetched again.
    google_before, pub_before = len(google.requests), len(sites.sites["pub"].requests)
    _ok(_gnews_crawl(google, db))
    again = [path for method, path in google.requests[google_before:]]
    assert [p.split("?")[0] for p in again if p.startswith("/rss/articles/")] == [
        f"/rss/articles/{ids['gone']}"
    ]
    assert google.paths("POST") == ["/_/DotsSplashUi/data/batchexecute"]
    assert _fresh(sites.sites["pub"].requests, pub_before) == []
    stats = _stats(db)
    assert stats["aggregator/gnews/cached"] == 4
    assert stats["incremental/skipped"] == 4
    assert len(rows(db, "SELECT id FROM articles")) == 3


def test_a_google_news_feed_with_nothing_resolvable_shows_as_failed_in_the_report(sites, db):
    with AggregatorSite(bases={"pub": sites.base_urls["pub"]}, google=True) as fake:
        ids = [new_id("first"), new_id("second")]
        fake.interstitial = set(ids)
        fake.feed = _gnews_feed([(i, f"Story {n}", "") for n, i in enumerate(ids)])
        result = _gnews_crawl(fake, db)
    assert "none of its 2 Google News links could be resolved" in result.stderr
    assert not rows(db, "SELECT id FROM articles")
    assert rows(db, "SELECT errors FROM runs")[0]["errors"] >= 1
    report = scrapy("report", db=db)
    assert "gnews-test" in report.stdout
    assert "Google News links could be resolved" in report.stdout, report.stdout


# -- a redirector aggregator ----------------------------------------------------------------------
def test_redirector_links_followed_once_and_remembered_own_pages_left_out(sites, db):
    pub = sites.base_urls["pub"]
    with AggregatorSite(
        FIXTURES / "aggregators" / "redirector",
        bases={"pub": pub},
        redirects={
            "/r/7": "{{pub}}" + HOUSING,
            "/r/8": "{{self}}/about.html",
            "/go/9": "{{pub}}" + CHIPS + "?fbclid=IwAR0share",
        },
    ) as hub:

        def crawl():
            return scrapy(
                "crawl", "aggregator", "-a", f"url={hub.base_url}/", "-a", "name=hubbub", db=db
            )

        _ok(crawl())
        stored = {
            r["url"].removeprefix(pub).split("?")[0]: r for r in rows(db, "SELECT * FROM articles")
        }
        assert set(stored) == {CHIPS, COFFEE, HOUSING}
        assert {r["via"] for r in stored.values()} == {f"{hub.base_url}/"}
        assert stored[HOUSING]["url"] == pub + HOUSING
        served = Counter(sites.sites["pub"].requests)
        assert (served[CHIPS], served[COFFEE], served[HOUSING]) == (1, 1, 1)
        # The carried-URL redirector is never asked; the opaque ones once each; the hub's
        # own pages (about, login, comments) never as links.
        asked = Counter(hub.paths())
        assert asked["/out"] == 0
        assert (asked["/r/7"], asked["/r/8"], asked["/go/9"]) == (1, 1, 1)
        assert asked["/about.html"] == 1  # where /r/8 led: the hub's own page, not stored
        for own in ("/login", "/submit", "/privacy", "/item/5", "/item/6", "/item/7"):
            assert asked[own] == 0, own
        stats = _stats(db)
        assert stats["aggregator/not_article/own_page"] == 1
        assert stats["aggregator/own_links"] >= 8
        assert stats["incremental/claimed"] >= 2  # coffee's second link, /go/9's target
        dropped = rows(db, "SELECT * FROM dropped_urls")
        assert {d["reason"] for d in dropped} == {"own_page"}

        # The unchanged page again: nothing but robots.txt and the page itself.
        before, pub_before = len(hub.requests), len(sites.sites["pub"].requests)
        _ok(crawl())
        assert sorted(p for _, p in hub.requests[before:]) == ["/", "/robots.txt"]
        assert _fresh(sites.sites["pub"].requests, pub_before) == []
        stats = _stats(db)
        assert stats["incremental/skipped"] >= 4  # chips (twice), coffee (twice), housing
        assert stats["incremental/skipped_dropped"] == 1  # /r/8
    keys = {r["key"] for r in rows(db, "SELECT key FROM url_keys")}
    hub_key = hub.base_url.removeprefix("http://")
    assert {f"{hub_key}/r/7", f"{hub_key}/go/9"} <= keys


# -- a Naver-style portal -------------------------------------------------------------------------
def _portal_crawl(servers, db, *extra):
    return scrapy(
        "crawl", "aggregator", "-a", f"url={servers.base_urls['portal']}/section/100.html",
        "-a", "name=portal", "-a", "language=ko", "-a", "timezone=Asia/Seoul",
        "-a", r"article_pattern=/mnews/article/\d{3}/\d{10}$",
        "-a", f"publisher_selector={NAVER['publisher_selector']}",
        "-a", f"publisher_link_selector={NAVER['publisher_link_selector']}", *extra, db=db,
    )  # fmt: skip


def test_portal_copies_credit_the_publisher_and_are_one_story_with_its_page(sites, db):
    portal, pub = sites.base_urls["portal"], sites.base_urls["pub"]
    _ok(_portal_crawl(sites, db))
    stored = {r["url"].removeprefix(portal): r for r in rows(db, "SELECT * FROM articles")}
    copy, own = "/mnews/article/077/0000012345", "/mnews/article/001/0000054321"
    assert set(stored) == {copy, own}
    assert stored[copy]["publisher"] == "테스트뉴스"
    assert stored[copy]["publisher_url"] == pub + KOREAN
    assert stored[copy]["title"] == "북한, 동해상으로 탄도미사일 발사"
    assert stored[copy]["language"] == "ko"
    assert stored[own]["publisher"] == "한빛통신"
    assert stored[own]["publisher_url"] is None  # no link to the publisher's page
    asked = set(sites.sites["portal"].requests)
    assert not {p for p in asked if "/comment/" in p}
    assert not asked & {"/about.html", "/login.html", "/section/101.html", "/policy.html"}

    # The publisher's own copy is the same story: its feed does not fetch it again.
    before = len(sites.sites["pub"].requests)
    _ok(scrapy("crawl", "feed", "-a", f"url={pub}/feed.rss", "-a", "name=herald", db=db))
    assert KOREAN not in _fresh(sites.sites["pub"].requests, before)
    assert _stats(db)["incremental/skipped"] == 1
    assert pub + KOREAN not in {r["url"] for r in rows(db, "SELECT url FROM articles")}

    before = len(sites.sites["portal"].requests)
    _ok(_portal_crawl(sites, db))
    assert sorted(_fresh(sites.sites["portal"].requests, before)) == [
        "/robots.txt",
        "/section/100.html",
    ]


def test_a_portal_copy_seen_after_the_publisher_joins_its_story(sites, db):
    portal, pub = sites.base_urls["portal"], sites.base_urls["pub"]
    _ok(scrapy("crawl", "feed", "-a", f"url={pub}/feed.rss", "-a", "name=herald", db=db))
    _ok(_portal_crawl(sites, db))
    original = rows(db, "SELECT id FROM articles WHERE url = ?", (pub + KOREAN,))[0]["id"]
    copy = rows(db, "SELECT * FROM duplicates WHERE url LIKE ?", (portal + "%",))
    assert [(d["article_id"], d["kind"]) for d in copy] in (
        [(original, "exact")],
        [(original, "near")],
    )


def test_a_portal_whose_robots_txt_disallows_crawlers_is_not_fetched(tmp_path, db):
    root = tmp_path / "sites"
    shutil.copytree(FIXTURES / "sites" / "portal", root / "portal")
    shutil.copytree(FIXTURES / "sites" / "pub", root / "pub")
    (root / "portal" / "robots.txt").write_text("User-agent: *\nDisallow: /\n", encoding="utf-8")
    with SiteServers(root) as servers:
        result = _portal_crawl(servers, db)
        assert servers.sites["portal"].requests == ["/robots.txt"]
    # The run fails, and says why.
    assert result.returncode == 1
    assert "failed (robots): Forbidden by robots.txt" in result.stderr
    assert not rows(db, "SELECT id FROM articles")
    assert _stats(db)["source/failed/aggregator/robots"] == 1


# -- the shipped sites ----------------------------------------------------------------------------
def test_shipped_aggregator_sites():
    gnews = [s for s in SHIPPED if s["start_urls"][0].startswith("https://news.google.com/rss/")]
    assert {s["name"] for s in gnews} >= {"gnews-korea", "gnews-reuters-korea", "gnews-ap-korea"}
    assert all(s["kind"] == "aggregator" and s.get("enabled", True) for s in gnews)
    assert NAVER["kind"] == "aggregator"
    assert re.search(
        NAVER["article_pattern"], "https://n.news.naver.com/mnews/article/001/0015012345"
    )
    if not NAVER.get("enabled", True):
        assert "robots.txt" in NAVER["notes"]


def test_google_news_ids_beyond_the_article_budget_are_left_for_a_later_run(sites, google, db):
    result = scrapy(
        "crawl", "aggregator", "-a", f"url={google.base_url}/rss/search?q=korea",
        "-a", "max_articles=2", "-s", f"GNEWS_BASE_URL={google.base_url}",
        "-s", "GNEWS_DECODE_DELAY=0", db=db,
    )  # fmt: skip
    _ok(result)
    ids = google.ids
    # The old id costs nothing; of the five new ones, the first two are decoded.
    pages = [p.removeprefix("/rss/articles/") for p in google.paths() if "/articles/" in p]
    assert pages == [ids["coffee"], ids["gone"]]
    stats = _stats(db)
    assert stats["aggregator/gnews/deferred"] == 3
    assert "none of its" not in result.stderr
    assert len(rows(db, "SELECT id FROM articles")) == 2


def test_two_google_news_feeds_of_one_crawlall_decode_each_id_once(sites, google, db, tmp_path):
    sites_file = tmp_path / "sites.toml"
    sites_file.write_text(
        "".join(
            f'[[site]]\nname = "gnews-{q}"\nkind = "aggregator"\n'
            f'start_urls = ["{google.base_url}/rss/search?q={q}"]\n\n'
            for q in ("korea", "seoul")
        ),
        encoding="utf-8",
    )
    result = scrapy(
        "crawlall", "--sites", str(sites_file), "-s", f"GNEWS_BASE_URL={google.base_url}",
        "-s", "GNEWS_DECODE_DELAY=0.05", db=db,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    asked = Counter(p.removeprefix("/rss/articles/") for p in google.paths() if "/articles/" in p)
    for name in ("coffee", "housing", "coffee-again", "unknown"):
        assert asked[google.ids[name]] == 1, name
    served = Counter(sites.sites["pub"].requests)
    assert (served[CHIPS], served[COFFEE], served[HOUSING]) == (1, 1, 1)
    assert len(rows(db, "SELECT id FROM articles")) == 3
