"""``scrapy report``: per-site health and the latest Korea stories on a known database."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from crawler.chart import chart_series, korea_chart_svg
from crawler.digest import build_report, format_report
from crawler.storage.connection import connect
from crawler.timespan import parse_since
from tests.conftest import rows, scrapy
from tests.opsdata import KOREA_TITLES, SEOUL_CAUSE, build_known_db

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
SINCE = datetime(2026, 11, 25, tzinfo=UTC)


@pytest.fixture
def known_db(tmp_path):
    return build_known_db(tmp_path / "news.db")


def _started(db, site):
    return rows(db, "SELECT started_at FROM runs WHERE site = ?", (site,))[0]["started_at"]


def test_parse_since():
    assert parse_since("24h", now=NOW) == datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    assert parse_since("30m", now=NOW) == datetime(2026, 11, 27, 11, 30, tzinfo=UTC)
    assert parse_since("2w", now=NOW) == datetime(2026, 11, 13, 12, 0, tzinfo=UTC)
    assert parse_since("2026-11-20") == datetime(2026, 11, 20, tzinfo=UTC)
    assert parse_since("2026-11-20T09:00+09:00") == datetime(2026, 11, 20, tzinfo=UTC)
    with pytest.raises(ValueError, match="duration"):
        parse_since("yesterday")


def test_report_text_on_known_database(known_db):
    db = connect(known_db)
    try:
        report = build_report(db, SINCE, now=NOW)
    finally:
        db.close()
    herald_at = _started(known_db, "herald")[:16].replace("T", " ")
    seoul_at = _started(known_db, "seoul-daily")[:16].replace("T", " ")
    rule = "-" * 91
    expected = f"""Since 2026-11-25 00:00 UTC in data/x.db

site          last run               at (UTC)         runs failed stored dupes korea errors
{rule}
herald        finished               {herald_at}    1      0      2     0     1      0
seoul-daily   closespider_timeout !  {seoul_at}    1      1      2     1     2      1
{rule}
total                                                    2      1      4     1     3      1

Problems of the last run:
  seoul-daily: closed: site time limit reached (CRAWLALL_SITE_TIMEOUT)
  seoul-daily: 1 error logged: {SEOUL_CAUSE}

Latest Korea stories (3 of 3):
  2026-11-27 01:05  [herald] North Korea test-fires new solid-fuel ICBM
                    tags: korea, north_korea, missile  https://herald.example/a/icbm.html
  2026-11-26 03:00  [seoul-daily] Seoul widens land permit zones
                    tags: korea, south_korea, economy  https://seoul.example/news/001.html
  2026-11-25 23:55  [seoul-daily] 북한, 동해상으로 탄도미사일 발사
                    tags: korea, north_korea, missile  https://seoul.example/news/002.html"""
    assert format_report(report, db_path="data/x.db") == expected
    assert report["failing_sites"] == ["seoul-daily"]
    assert report["totals"] == {
        "runs": 2, "failed_runs": 1, "stored": 4, "duplicates": 1, "korea": 3, "errors": 1
    }  # fmt: skip


def test_report_command_json_and_html(known_db, tmp_path):
    out = tmp_path / "report.html"
    result = scrapy(
        "report", "--since", "2026-11-25", "--json", "--limit", "2", "--html", str(out),
        db=known_db,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [s["site"] for s in data["sites"]] == ["herald", "seoul-daily"]
    seoul = data["sites"][1]
    assert seoul["last_status"] == "closespider_timeout"
    assert seoul["last_problems"][0].startswith("closed: site time limit")
    assert (seoul["stored"], seoul["duplicates"], seoul["korea"]) == (2, 1, 2)
    assert [s["title"] for s in data["korea_stories"]] == KOREA_TITLES[:2]
    assert data["korea_stories"][0]["tags"] == ["korea", "north_korea", "missile"]
    page = out.read_text(encoding="utf-8")
    assert "<svg" in page
    assert "<script" not in page  # self-contained, works offline
    assert "North Korea test-fires new solid-fuel ICBM" in page


def test_report_command_text_and_usage_errors(known_db, tmp_path):
    result = scrapy("report", "--since", "2026-11-25", db=known_db)
    assert result.returncode == 0, result.stderr
    assert "seoul-daily   closespider_timeout !" in result.stdout
    assert "Latest Korea stories (3 of 3):" in result.stdout
    bad = scrapy("report", "--since", "last tuesday", db=known_db)
    assert bad.returncode == 2
    assert "--since 'last tuesday'" in bad.stderr
    missing = scrapy("report", db=tmp_path / "none.db")
    assert missing.returncode == 2
    assert "no database yet" in missing.stderr


def test_chart_series_and_svg():
    data = [
        {"day": "2026-11-25", "site": "b", "stories": 2},
        {"day": "2026-11-27", "site": "a", "stories": 1},
        {"day": "2026-11-27", "site": "b", "stories": 3},
        {"day": "2026-10-01", "site": "c", "stories": 9},  # outside the 3-day span
    ]
    span, series = chart_series(data, days=3)
    assert span == ["2026-11-25", "2026-11-26", "2026-11-27"]
    assert series == {"a": [0, 0, 1], "b": [2, 0, 3]}
    svg = korea_chart_svg(data, days=3)
    assert svg.startswith("<svg")
    assert svg.endswith("</svg>")
    assert svg.count("<rect") == 3 + 2  # three bar segments, two legend swatches
    assert "<title>2026-11-27 b: 3</title>" in svg
    assert "No Korea stories" in korea_chart_svg([])
