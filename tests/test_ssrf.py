"""The SSRF guard: no link, redirect, sitemap entry or rendered page's script takes the crawler
to loopback, private, link-local ... addresses or other schemes unless the host was declared."""

from __future__ import annotations

import asyncio
import ipaddress
import shutil
import socket
from types import SimpleNamespace

import pytest
from scrapy import Request, Spider
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.http import HtmlResponse
from scrapy.utils.misc import build_from_crawler
from scrapy.utils.test import get_crawler

from crawler.address_policy import (
    HostPolicy,
    addresses_refusal,
    normalise_host,
    parse_ipv4,
    static_refusal,
)
from crawler.browser import browser_executable
from crawler.faultsite import SSRF_VECTORS as VECTORS
from crawler.faultsite import FaultServer, crawl, query, stored_paths
from crawler.middlewares import ssrf
from crawler.middlewares.ssrf import (
    DNSCache,
    GuardedResolver,
    SSRFGuardMiddleware,
    SSRFRefused,
    abort_request,
    judge_browser_url,
)
from crawler.middlewares.ssrf import registry as ssrf_registry


@pytest.mark.parametrize(("url", "reason", "kind"), VECTORS, ids=[v[0] for v in VECTORS])
def test_vector_is_refused_with_its_reason(url, reason, kind):
    refusal, to_resolve = static_refusal(url, HostPolicy())
    assert to_resolve is None
    assert refusal is not None
    assert refusal.reason == reason


@pytest.mark.parametrize(
    "url",
    [
        "http://\uff11\uff12\uff17.\uff10.\uff10.\uff11/",  # full-width digits
        "http://127\u30020\u30020\u30021/",  # ideographic full stops
        "HTTP://[::FFFF:127.0.0.1]/",
    ],
)
def test_unicode_and_case_spellings_after_scrapy_normalises_them(url):
    refusal, _ = static_refusal(Request(url).url, HostPolicy())
    assert refusal is not None
    assert refusal.reason == "loopback"


@pytest.mark.parametrize(
    "host",
    ["127.1", "0x7f.1", "2130706433", "017700000001", "0177.0.0.1", "0x7f000001", "1.2.3",
     "0300.0250.0.1", "10.1", "0", "256.1", "09.1.1.1", "1.2.3.4.5", "example.com"],
)  # fmt: skip
def test_ipv4_spellings_read_as_the_system_resolver_reads_them(host):
    try:
        expected = ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        expected = None
    assert parse_ipv4(host) == expected


@pytest.mark.parametrize(
    "url", ["http://8.8.8.8/", "https://[2606:4700:4700::1111]/", "http://93.184.216.34:8080/a"]
)
def test_public_addresses_pass(url):
    assert static_refusal(url, HostPolicy()) == (None, None)


def test_host_names_are_resolved_before_deciding():
    assert static_refusal("https://news.example.org/a", HostPolicy()) == (None, "news.example.org")
    assert addresses_refusal("a.test", [ipaddress.ip_address("93.184.216.34")]) is None
    # One private address among several is enough: the connection may use any of them.
    mixed = [ipaddress.ip_address("93.184.216.34"), ipaddress.ip_address("10.0.0.7")]
    refusal = addresses_refusal("rebind.test", mixed)
    assert refusal.reason == "private"
    assert "rebind.test resolves to private address 10.0.0.7" in refusal.detail


def test_declared_hosts_and_allowed_entries():
    policy = HostPolicy.build(["127.0.0.1", "LocalHost.", ".corp.example", "10.1.0.0/16"])
    for url in (
        "http://127.0.0.1:8000/a",
        "http://0x7f.1:8000/a",  # the same declared address in another spelling
        "http://localhost/",
        "http://intranet.corp.example/",
        "http://corp.example/",
        "http://10.1.2.3/",
    ):
        assert static_refusal(url, policy) == (None, None), url
    assert static_refusal("http://127.0.0.2/", policy)[0].reason == "loopback"
    assert static_refusal("http://10.2.0.1/", policy)[0].reason == "private"
    assert static_refusal("file:///etc/passwd", policy)[0].reason == "scheme"
    assert normalise_host("[::FFFF:127.0.0.1]") == "::ffff:7f00:1"


def test_dns_cache_reuses_answers(monkeypatch):
    calls = []

    def fake(host):
        calls.append(host)
        return (ipaddress.ip_address("10.0.0.9"),)

    monkeypatch.setattr(ssrf_registry, "_getaddrinfo", fake)
    cache = DNSCache(ttl=60)
    assert cache.cached("x.test") is None
    assert cache.lookup("x.test") == (ipaddress.ip_address("10.0.0.9"),)
    assert cache.lookup("x.test") == (ipaddress.ip_address("10.0.0.9"),)
    assert calls == ["x.test"]
    expired = DNSCache(ttl=-1)
    expired.lookup("y.test")
    expired.lookup("y.test")
    assert calls == ["x.test", "y.test", "y.test"]


# -- the middleware ----------------------------------------------------------------------------
class _Site(Spider):
    name = "site"
    declared_hosts = frozenset({"127.0.0.1", "news.example"})


@pytest.fixture
def guard(monkeypatch):
    crawler = get_crawler(_Site, settings_dict={"SSRF_ALLOWED_HOSTS": ["10.9.0.0/16"]})
    crawler.spider = _Site()
    crawler.stats.open_spider()
    mw = build_from_crawler(SSRFGuardMiddleware, crawler)
    mw.spider_opened(crawler.spider)
    fake = {"evil.test": (ipaddress.ip_address("169.254.169.254"),),
            "good.test": (ipaddress.ip_address("93.184.216.34"),)}  # fmt: skip
    monkeypatch.setattr(ssrf.REGISTRY.dns, "cached", fake.get)
    return mw, crawler


def _run(coro):
    return asyncio.run(coro)


def test_middleware_refuses_counts_and_logs(guard, caplog):
    mw, crawler = guard
    for url in ("http://127.0.0.1:8000/a", "http://news.example/a", "http://10.9.1.1/",
                "http://good.test/a"):  # fmt: skip
        assert _run(mw.process_request(Request(url))) is None, url
    refused = {
        "http://127.0.0.2/": "loopback",
        "http://evil.test/": "link_local",
        "file:///etc/passwd": "scheme",
        "http://[::1]/": "loopback",
    }
    for url, reason in refused.items():
        with pytest.raises(SSRFRefused) as info:
            _run(mw.process_request(Request(url)))
        assert isinstance(info.value, IgnoreRequest)
        assert info.value.refusal.reason == reason
    stats = crawler.stats
    assert stats.get_value("ssrf/refused") == 4
    assert stats.get_value("ssrf/refused/loopback") == 2
    assert stats.get_value("ssrf/refused/link_local") == 1
    assert "evil.test resolves to link_local address 169.254.169.254" in caplog.text


def test_redirected_request_is_checked_and_names_its_origin(guard, caplog):
    mw, _crawler = guard
    request = Request("http://127.0.0.2/x", meta={"redirect_urls": ["http://127.0.0.1/r"]})
    with pytest.raises(SSRFRefused):
        _run(mw.process_request(request))
    assert "[redirected from http://127.0.0.1/r]" in caplog.text


def test_response_from_a_private_peer_is_refused(guard):
    # DNS rebinding: the name was public when checked, the connection went elsewhere.
    mw, _crawler = guard
    request = Request("http://good.test/a")
    response = HtmlResponse(
        "http://good.test/a", body=b"<html></html>", request=request,
        ip_address=ipaddress.ip_address("127.0.0.1"),
    )  # fmt: skip
    with pytest.raises(SSRFRefused):
        mw.process_response(request, response)
    fine = HtmlResponse(
        "http://127.0.0.1/a",
        body=b"",
        request=request,
        ip_address=ipaddress.ip_address("127.0.0.1"),
    )
    assert mw.process_response(request, fine) is fine


def test_guard_can_be_switched_off():
    crawler = get_crawler(_Site, settings_dict={"SSRF_GUARD_ENABLED": False})
    with pytest.raises(NotConfigured):
        build_from_crawler(SSRFGuardMiddleware, crawler)
    ssrf.REGISTRY.enabled = True


def test_resolver_refuses_private_answers_for_undeclared_names():
    resolver = GuardedResolver.__new__(GuardedResolver)
    ssrf.REGISTRY.policy = ssrf.REGISTRY.policy | HostPolicy.build(["declared.test"])
    assert resolver._check("93.184.216.34", "public.test") == "93.184.216.34"
    assert resolver._check("127.0.0.1", "declared.test") == "127.0.0.1"
    with pytest.raises(SSRFRefused):
        resolver._check("10.0.0.1", "rebind.test")


def test_rendered_page_requests(monkeypatch):
    monkeypatch.setattr(ssrf.REGISTRY, "policy", HostPolicy.build(["127.0.0.1"]))
    monkeypatch.setattr(ssrf.REGISTRY, "enabled", True)

    def req(url, kind="fetch"):
        return SimpleNamespace(url=url, resource_type=kind)

    assert _run(abort_request(req("http://127.0.0.1:8000/page", "document"))) is False
    assert _run(abort_request(req("http://127.0.0.1:8000/pic.png", "image"))) is True
    assert _run(abort_request(req("https://securepubads.doubleclick.net/x.js", "script")))
    assert _run(abort_request(req("http://169.254.169.254/latest/meta-data")))
    assert _run(abort_request(req("http://2130706434/odd")))
    assert _run(abort_request(req("data:text/plain,x"))) is False
    assert _run(judge_browser_url("http://127.0.0.1:8000/")) == ("127.0.0.1", None)
    assert _run(judge_browser_url("https://8.8.8.8/")) == ("8.8.8.8", None)
    address, refusal = _run(judge_browser_url("https://[::ffff:10.0.0.1]:443/"))
    assert address is None
    assert refusal.reason == "private"


# -- end to end ----------------------------------------------------------------------------------
def test_aggregator_cannot_be_steered_to_undeclared_hosts(tmp_path):
    db = tmp_path / "news.db"
    with FaultServer() as publisher, FaultServer() as agg:
        # A story on another port of the declared host 127.0.0.1 is fine; a link there that
        # redirects to an undeclared address is not.
        agg.extra_links = [publisher.url("/ok/9700.html"), publisher.url("/redirect-to-canary")]
        result = crawl("crawl", "aggregator", "-a", f"url={agg.base}/agg.html", db=db)
        hits = agg.canary.hits + publisher.canary.hits
        stored = stored_paths(db, publisher.base)
        vectors = agg.ssrf_vectors()
    assert result.returncode == 0, result.stderr[-3000:]
    assert hits == []
    assert set(stored) == {"/ok/9700.html"}
    stats = result.stats
    assert stats["ssrf/refused"] == len(vectors) + 1  # + the redirect
    for reason in {r for _, r in vectors}:
        assert stats.get(f"ssrf/refused/{reason}", 0) >= 1, reason
    for url, _reason in vectors:
        assert f"SSRF guard: refused {url.split('://')[0]}" in result.stderr
    assert "[redirected from " in result.stderr


def test_sitemap_entries_cannot_reach_files_or_private_hosts(tmp_path):
    db = tmp_path / "news.db"
    with FaultServer() as server:
        result = crawl(
            "crawl", "sitemap", "-a", f"url={server.base}/ssrf-index.xml", "-a", "max_pages=10",
            db=db,
        )  # fmt: skip
        assert server.canary.hits == []
        assert set(stored_paths(db, server.base)) == {"/ok/9501.html"}
    # The refused file: and gopher: sitemaps are failed sources: the crawl exits 1, saying why.
    assert result.returncode == 1, result.stderr[-3000:]
    assert "source file:///etc/passwd failed (ssrf_scheme)" in result.stderr.splitlines()[-1]
    stats = result.stats
    assert stats["ssrf/refused/scheme"] == 2  # file:, gopher:
    assert stats["ssrf/refused/link_local"] == 1
    assert stats["ssrf/refused/loopback"] == 1
    assert stats["source/failed/sitemap/ssrf_scheme"] == 2


def test_without_the_guard_the_same_redirect_gets_through(tmp_path):
    # Proof that the guard is what stops it (tests above), not an accident of the setup.
    db = tmp_path / "news.db"
    with FaultServer() as server:
        feed = f"{server.base}/range-9800-1.rss"
        server.routes["/ok/9800.html"] = server.routes["/redirect-to-canary"]
        result = crawl(
            "crawl", "feed", "-a", f"url={feed}", "-s", "SSRF_GUARD_ENABLED=False", db=db
        )
        assert "/redirected" in server.canary.hits
    assert result.returncode == 0


@pytest.mark.skipif(
    browser_executable() is None and shutil.which("node") is None,
    reason="no Chromium on this machine (install Debian's chromium or playwright install)",
)
def test_rendered_page_scripts_cannot_reach_undeclared_hosts(tmp_path):
    db = tmp_path / "news.db"
    with FaultServer() as server:
        result = crawl(
            "crawl", "listing", "-a", f"url={server.base}/js/", "-a", "article_pattern=/js/story",
            "-a", "render_js=true", "-a", "wait_for=#sent", "-s", "PLAYWRIGHT_PAGE_LIFETIME=30",
            db=db,
        )  # fmt: skip
        hits = list(server.canary.hits)
        stored = stored_paths(db, server.base)
    assert result.returncode == 0, result.stderr[-3000:]
    assert hits == []  # fetch, iframe, WebSocket, beacon, odd spelling, redirect: none got out
    assert "/js/story.html" in stored
    stats = result.stats
    assert stats["ssrf/refused"] >= 5
    assert stats["playwright/request_count/aborted"] >= 2  # the image, the refused requests
    assert "SSRF guard: rendered page request refused" in result.stderr
    assert "Page init callback exception" not in result.stderr
    assert query(db, "SELECT COUNT(*) AS n FROM articles WHERE text LIKE '%SECRET%'")[0]["n"] == 0
