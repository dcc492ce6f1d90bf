"""JavaScript pages are rendered by a real Chromium through scrapy-playwright."""

from __future__ import annotations

import shutil

import pytest

from crawler.browser import browser_executable
from tests.conftest import rows, scrapy

pytestmark = pytest.mark.skipif(
    browser_executable() is None and shutil.which("node") is None,
    reason="no Chromium on this machine (install Debian's chromium or playwright install)",
)


def test_js_inserted_text_is_extracted(sites, db):
    base = sites.base_urls["jsnews"]
    result = scrapy(
        "crawl", "listing", "-a", f"url={base}/", "-a", "article_pattern=/story/",
        "-a", "render_js=true", "-a", "wait_for=#rendered", db=db,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    (article,) = rows(db, "SELECT * FROM articles")
    assert article["url"] == f"{base}/story/merger.html"
    assert article["title"] == "Regulators clear Korean Air's takeover of Asiana"
    assert "fourteen jurisdictions" in article["text"]
    assert "take two years" in article["text"]
    assert "Loading" not in article["text"]
    assert article["published_at"] == "2026-11-20T05:00:00+00:00"
    stats = rows(db, "SELECT stats FROM runs")[0]["stats"]
    assert '"playwright/page_count' in stats


def test_without_rendering_the_js_page_has_no_article(sites, db):
    base = sites.base_urls["jsnews"]
    # The listing's links are inserted by JS too: a plain crawl finds nothing to fetch.
    result = scrapy(
        "crawl", "listing", "-a", f"url={base}/", "-a", "article_pattern=/story/", db=db
    )
    assert result.returncode == 0
    assert rows(db, "SELECT COUNT(*) n FROM articles")[0]["n"] == 0
    assert "playwright" not in rows(db, "SELECT stats FROM runs")[0]["stats"]
