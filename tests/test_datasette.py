"""Datasette on a known archive: metadata, canned queries and the Korea chart, looked at in a
real headless Chromium; the screenshots are kept under tests/artifacts/."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from crawler.browser import browser_executable
from crawler.commands.datasette import ROOT, datasette_argv, metadata_for
from tests.conftest import rows, scrapy
from tests.opsdata import ARTICLES, BODY, KOREA_TITLES, SEOUL_CAUSE, build_known_db

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"

pytest.importorskip("datasette")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode("utf-8")


@contextmanager
def serve(db: Path, tmp_path: Path) -> Iterator[str]:
    """Datasette started the way ``scrapy datasette`` starts it, on a free port."""
    metadata = tmp_path / "metadata.json"
    metadata.write_text(json.dumps(metadata_for(db)), encoding="utf-8")
    port = _free_port()
    proc = subprocess.Popen(
        datasette_argv(db, metadata, host="127.0.0.1", port=port),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                _get(base + "/-/versions.json")
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"datasette did not start: {proc.stderr.read()}")
                time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stderr.close()


@pytest.fixture
def datasette(tmp_path):
    with serve(build_known_db(tmp_path / "news.db"), tmp_path) as base:
        yield base


def test_metadata_is_renamed_for_another_database_file():
    metadata = metadata_for("/tmp/archive.db")
    assert set(metadata["databases"]) == {"archive"}
    assert 'href="/archive/korea_stories"' in metadata["description_html"]
    queries = metadata["databases"]["archive"]["queries"]
    assert {"stories", "korea_stories", "story_clusters", "failing_sites"} <= set(queries)
    assert 'href="/archive/stories"' in metadata["description_html"]


def test_canned_queries_and_facets(datasette):
    stories = json.loads(_get(datasette + "/news/korea_stories.json?_shape=array"))
    assert [s["title"] for s in stories] == KOREA_TITLES
    assert stories[0]["tags"] == "korea, north_korea, missile"
    clusters = json.loads(_get(datasette + "/news/story_clusters.json?_shape=array"))
    assert clusters[0]["first_url"] == "https://herald.example/a/icbm.html"
    assert clusters[0]["other_urls"] == "near 0.82 https://blog.example/2026/11/icbm-repost.html"
    failing = json.loads(_get(datasette + "/news/failing_sites.json?_shape=array"))
    assert [f["site"] for f in failing] == ["seoul-daily"]
    # Why, with the cause, and the count the problem gives is the run's errors column.
    assert failing[0]["problems"] == (
        f"closed: site time limit reached (CRAWLALL_SITE_TIMEOUT)\n1 error logged: {SEOUL_CAUSE}"
    )
    assert failing[0]["errors"] == 1
    per_day = json.loads(_get(datasette + "/news/stories_per_day.json?_shape=array"))
    assert per_day[0] == {"day": "2026-11-27", "site": "herald", "stories": 1, "korea_stories": 1}
    table = json.loads(_get(datasette + "/news/articles.json?_size=0"))
    assert {"site", "language", "tags", "is_korea"} <= set(table["facet_results"])


def test_korea_stories_and_chart_in_a_browser(datasette, capsys):
    sync_api = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_executable(), headless=True)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(datasette + "/news/korea_stories")
            table_text = page.locator("table.rows-and-columns").inner_text()
            for title in KOREA_TITLES:
                assert title in table_text
            assert "korea, south_korea, economy" in table_text
            stories_png = ARTIFACTS / "datasette-korea-stories.png"
            page.screenshot(path=str(stories_png), full_page=True)

            page.get_by_role("link", name="chart per day and site").click()
            page.wait_for_url("**/-/korea-chart")
            chart = page.locator("svg.korea-chart")
            assert chart.is_visible()
            assert chart.locator("rect").count() >= 3
            legend = chart.text_content()
            assert "herald (1)" in legend
            assert "seoul-daily (2)" in legend
            chart_png = ARTIFACTS / "datasette-korea-chart.png"
            page.screenshot(path=str(chart_png), full_page=True)
        finally:
            browser.close()
    assert chart_png.stat().st_size > 5000
    with capsys.disabled():
        print(f"\nscreenshots: {stories_png} {chart_png}")  # noqa: T201 - the artifact paths


def test_demo_korea_stories_in_a_browser(tmp_path, capsys):
    """The real demo database: every Korea story the demo stored is on the page."""
    sync_api = pytest.importorskip("playwright.sync_api")
    db = tmp_path / "demo.db"
    demo = scrapy("demo", "--port", "0", db=db)
    assert demo.returncode == 0, demo.stderr[-2000:]
    korea = [r["title"] for r in rows(db, "SELECT title FROM articles WHERE is_korea = 1")]
    sites = {r["site"] for r in rows(db, "SELECT site FROM articles WHERE is_korea = 1")}
    assert len(korea) >= 7
    ARTIFACTS.mkdir(exist_ok=True)
    png = ARTIFACTS / "datasette-demo-korea-stories.png"
    with serve(db, tmp_path) as base, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_executable(), headless=True)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(f"{base}/demo/korea_stories")
            table_text = page.locator("table.rows-and-columns").inner_text()
            for title in korea:
                assert title in table_text
            page.screenshot(path=str(png), full_page=True)
            page.goto(f"{base}/-/korea-chart?days=365")
            legend = page.locator("svg.korea-chart").text_content()
            for site in sites:
                assert re.search(rf"{re.escape(site)} \(\d+\)", legend), site
        finally:
            browser.close()
    with capsys.disabled():
        print(f"\nscreenshot: {png}")  # noqa: T201 - the artifact path


_GLYPHS_JS = """([font, chars]) => chars.map((ch) => {
    const canvas = document.createElement("canvas");
    canvas.width = 64;
    canvas.height = 64;
    const ctx = canvas.getContext("2d");
    ctx.font = font;
    ctx.fillText(ch, 8, 48);
    return Array.from(ctx.getImageData(0, 0, 64, 64).data).join(",");
})"""


def test_compact_stories_and_articles_with_korean_in_a_browser(datasette, capsys):
    """The default browse is one line per story (date, site, title, tags, link), Korean
    titles are drawn with real glyphs (a font with Hangul is installed where screenshots are
    taken), and the full row is one click away."""
    sync_api = pytest.importorskip("playwright.sync_api")
    fonts = subprocess.run(
        ["fc-list", ":lang=ko", "family"], capture_output=True, text=True, check=False
    )
    assert fonts.stdout.strip(), "no font with Hangul: install fonts-nanum or fonts-noto-cjk"
    korean = next(a["title"] for a in ARTICLES if a["language"] == "ko")
    ARTIFACTS.mkdir(exist_ok=True)
    stories_png = ARTIFACTS / "datasette-stories.png"
    articles_png = ARTIFACTS / "datasette-articles.png"
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_executable(), headless=True)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(datasette + "/news")
            page.get_by_role("link", name="Stories, one line each").click()
            page.wait_for_url("**/news/stories")
            table = page.locator("table.rows-and-columns")
            headers = table.locator("thead th").all_inner_texts()
            assert [h.strip() for h in headers] == [
                "story",
                "date",
                "site",
                "title",
                "tags",
                "link",
            ]
            text = table.inner_text()
            for article in ARTICLES:
                assert article["title"] in text
            assert "korea, north_korea, missile" in text
            heights = [r.bounding_box()["height"] for r in table.locator("tbody tr").all()]
            assert len(heights) == len(ARTICLES)
            assert max(heights) < 60, heights  # one line per story
            # Hangul drawn with glyphs, not as the same empty box for every character.
            cell = table.locator("td.col-title", has_text=korean)
            font = cell.evaluate("(td) => getComputedStyle(td).font")
            first, second, missing = page.evaluate(_GLYPHS_JS, [font, ["북", "한", "\U0010fffd"]])
            assert first != second
            assert first != missing
            page.screenshot(path=str(stories_png), full_page=True)

            cell.get_by_role("link").click()
            page.wait_for_url("**/news/articles/*")
            assert BODY in page.locator("td.col-text").inner_text()  # the full row

            page.goto(datasette + "/news/articles")
            rows_ = page.locator("table.rows-and-columns tbody tr")
            heights = [r.bounding_box()["height"] for r in rows_.all()]
            assert len(heights) == len(ARTICLES)
            assert max(heights) < 60, heights  # text, text_raw, evidence: one line each
            assert korean in page.locator("table.rows-and-columns").inner_text()
            page.screenshot(path=str(articles_png), full_page=True)
        finally:
            browser.close()
    assert stories_png.stat().st_size > 5000
    with capsys.disabled():
        print(f"\nscreenshots: {stories_png} {articles_png}")  # noqa: T201 - the artifact paths
