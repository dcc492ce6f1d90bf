"""A small known archive, built with the storage classes, for the report and Datasette tests."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crawler.anomaly import RunFigures, status_problems
from crawler.storage.articles import SqliteArticles
from crawler.storage.connection import Connection
from crawler.storage.runs import SqliteRuns

if TYPE_CHECKING:
    from pathlib import Path

BODY = ("Officials met on Thursday to discuss the proposal in detail. " * 6).strip()

ARTICLES: list[dict[str, Any]] = [
    {
        "url": "https://herald.example/a/icbm.html",
        "site": "herald",
        "title": "North Korea test-fires new solid-fuel ICBM",
        "published_at": "2026-11-27T01:05:00+00:00",
        "fetched_at": "2026-11-27T02:00:00+00:00",
        "tags": ["korea", "north_korea", "missile"],
        "is_korea": True,
        "korea_score": 26.5,
        "language": "en",
    },
    {
        "url": "https://herald.example/a/coffee.html",
        "site": "herald",
        "title": "Brazil offers drought credit to coffee growers",
        "published_at": "2026-11-26T12:00:00+00:00",
        "fetched_at": "2026-11-27T02:00:00+00:00",
        "tags": [],
        "is_korea": False,
        "korea_score": 0.0,
        "language": "en",
    },
    {
        "url": "https://seoul.example/news/001.html",
        "site": "seoul-daily",
        "title": "Seoul widens land permit zones",
        "published_at": "2026-11-26T03:00:00+00:00",
        "fetched_at": "2026-11-26T04:00:00+00:00",
        "tags": ["korea", "south_korea", "economy"],
        "is_korea": True,
        "korea_score": 21.5,
        "language": "en",
    },
    {
        "url": "https://seoul.example/news/002.html",
        "site": "seoul-daily",
        "title": "북한, 동해상으로 탄도미사일 발사",
        "published_at": "2026-11-25T23:55:00+00:00",
        "fetched_at": "2026-11-26T04:00:00+00:00",
        "tags": ["korea", "north_korea", "missile"],
        "is_korea": True,
        "korea_score": 44.9,
        "language": "ko",
    },
    {
        "url": "https://herald.example/a/old-korea.html",
        "site": "herald",
        "title": "An old Korea story outside the window",
        "published_at": "2026-10-01T00:00:00+00:00",
        "fetched_at": "2026-10-01T01:00:00+00:00",
        "tags": ["korea", "south_korea"],
        "is_korea": True,
        "korea_score": 12.0,
        "language": "en",
    },
]
KOREA_TITLES = [a["title"] for a in ARTICLES if a["is_korea"]]

SEOUL_CAUSE = "source https://seoul.example/rss.xml failed (http_404): Ignoring non-200 response"

# (site, close reason, stats) in run order; the problems are judged as a crawl judges them.
RUNS: list[tuple[str, str, dict[str, Any]]] = [
    ("herald", "finished", {"store/inserted": 2, "response_received_count": 5}),
    (
        "seoul-daily",
        "closespider_timeout",
        {"store/inserted": 2, "store/duplicates": 1, "response_received_count": 4,
         "log_count/ERROR": 1, "log/first_errors": [SEOUL_CAUSE]},
    ),
]  # fmt: skip


def build_known_db(path: Path) -> Path:
    """Write the articles, one duplicate sighting and two runs into a new archive."""
    connection = Connection.acquire(path)
    articles, runs = SqliteArticles(connection), SqliteRuns(connection)
    try:
        ids = {}
        for article in ARTICLES:
            ids[article["url"]] = articles.insert(
                {**article, "text": BODY, "domain": article["url"].split("/")[2]},
                html=f"<html><body><p>{BODY}</p></body></html>",
            )
        articles.insert_duplicate(
            {
                "url": "https://blog.example/2026/11/icbm-repost.html",
                "duplicate_of": ids["https://herald.example/a/icbm.html"],
                "duplicate_kind": "near",
                "similarity": 0.82,
                "site": "seoul-daily",
                "title": "North Korea test-fires new solid-fuel ICBM (re-post)",
                "fetched_at": "2026-11-26T05:00:00+00:00",
            }
        )
        for site, status, stats in RUNS:
            run_id = runs.start(spider="feed", site=site)
            problems = status_problems(RunFigures.from_stats(stats, status=status))
            runs.finish(
                run_id, status=status, stats={**stats, "finish_reason": status}, problems=problems
            )
    finally:
        connection.release()
    return path
