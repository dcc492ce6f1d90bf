"""Read-only queries behind ``scrapy report``, the Datasette chart and the demo's summary. They
take any ``sqlite_utils.Database`` on an archive (``connect``, or Datasette's own connection).
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from crawler.storage.articles import ARTICLE_COLUMNS, ARTICLE_JSON_COLUMNS

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    import sqlite_utils

logger = logging.getLogger(__name__)

_SITE_ACTIVITY_SQL = """
WITH active AS (
    SELECT site FROM runs WHERE started_at >= :since AND site IS NOT NULL
    UNION SELECT site FROM articles WHERE fetched_at >= :since AND site IS NOT NULL
)
SELECT a.site,
    l.status AS last_status, l.started_at AS last_started_at,
    l.finished_at AS last_finished_at, COALESCE(l.problems, '[]') AS last_problems,
    (SELECT COUNT(*) FROM runs WHERE site = a.site AND started_at >= :since) AS runs,
    (SELECT COUNT(*) FROM runs WHERE site = a.site AND started_at >= :since
        AND (status != 'finished' OR COALESCE(problems, '[]') != '[]')) AS failed_runs,
    (SELECT COALESCE(SUM(errors), 0) FROM runs
        WHERE site = a.site AND started_at >= :since) AS errors,
    (SELECT COUNT(*) FROM articles WHERE site = a.site AND fetched_at >= :since) AS stored,
    (SELECT COUNT(*) FROM duplicates WHERE site = a.site AND seen_at >= :since) AS duplicates,
    (SELECT COUNT(*) FROM articles
        WHERE site = a.site AND fetched_at >= :since AND is_korea = 1) AS korea
FROM active a
LEFT JOIN runs l ON l.id = (SELECT MAX(id) FROM runs WHERE site = a.site)
ORDER BY a.site
"""


def site_activity(db: sqlite_utils.Database, since: str) -> list[dict[str, Any]]:
    """Per site active since ``since`` (ISO 8601 UTC): its last run (status, times,
    ``last_problems`` decoded) and, since then, runs, failed runs, errors, articles stored,
    duplicates seen and Korea stories stored."""
    rows = list(db.query(_SITE_ACTIVITY_SQL, {"since": since}))
    for row in rows:
        row["last_problems"] = json.loads(row["last_problems"] or "[]")
    return rows


def latest_korea_stories(
    db: sqlite_utils.Database, since: str, *, limit: int = 10
) -> list[dict[str, Any]]:
    """The newest Korea stories (``is_korea = 1``) stored since ``since``, ``tags`` decoded."""
    rows = list(
        db.query(
            "SELECT id, site, title, url, published_at, fetched_at, language, tags, korea_score "
            "FROM articles WHERE is_korea = 1 AND fetched_at >= ? "
            "ORDER BY COALESCE(published_at, fetched_at) DESC, id DESC LIMIT ?",
            [since, limit],
        )
    )
    for row in rows:
        row["tags"] = json.loads(row["tags"] or "[]")
    return rows


def korea_stories_per_day(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """``{"day", "site", "stories"}`` for every day (of publication, else of fetching) and
    site with Korea stories, oldest day first."""
    return list(
        db.query(
            "SELECT substr(COALESCE(published_at, fetched_at), 1, 10) AS day, site, "
            "COUNT(*) AS stories FROM articles WHERE is_korea = 1 "
            "GROUP BY day, site ORDER BY day, site"
        )
    )


def newest_articles(db: sqlite_utils.Database, *, limit: int = 20) -> list[dict[str, Any]]:
    """The newest stored articles (site, title, published_at, language, tags as stored)."""
    return list(
        db.query(
            "SELECT site, title, published_at, language, tags FROM articles "
            "ORDER BY id DESC LIMIT ?",
            [limit],
        )
    )


def stored_sites(db: sqlite_utils.Database) -> list[str]:
    """The sites that have stored articles, by name."""
    return [s for (s,) in db.execute("SELECT DISTINCT site FROM articles ORDER BY site") if s]


def iter_articles(
    db: sqlite_utils.Database,
    columns: Iterable[str],
    *,
    site: str | None = None,
    since: str | None = None,
    korea: bool = False,
    batch: int = 500,
) -> Iterator[dict[str, Any]]:
    """Stored articles, oldest first, with ``columns`` (those of ``articles``; JSON columns
    decoded): only ``site``'s, fetched at or after ``since``, Korea stories, when given."""
    names = [c for c in columns if c in ("id", *ARTICLE_COLUMNS)]
    where, params = ["1"], []
    if site:
        where.append("site = ?")
        params.append(site)
    if since:
        where.append("fetched_at >= ?")
        params.append(since)
    if korea:
        where.append("is_korea = 1")
    sql = (
        f"SELECT {', '.join(names)} FROM articles WHERE {' AND '.join(where)} "  # noqa: S608
        "ORDER BY id"
    )
    cursor = db.execute(sql, params)
    while rows := cursor.fetchmany(batch):
        for values in rows:
            row = dict(zip(names, values, strict=True))
            for col in ARTICLE_JSON_COLUMNS:
                if isinstance(row.get(col), str):
                    row[col] = json.loads(row[col])
            if row.get("is_korea") is not None:
                row["is_korea"] = bool(row["is_korea"])
            yield row
