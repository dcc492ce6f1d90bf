"""The stored articles as ``scrapy reprocess`` reads and rewrites them: which have their HTML
kept, the row as stored, the HTML itself, the columns to overwrite, and whether a duplicate
sighting is already recorded."""

from __future__ import annotations

import logging
from typing import Any

from crawler.storage.articles import ARTICLE_COLUMNS, decompress_html
from crawler.storage.connection import SqliteStore

logger = logging.getLogger(__name__)


class SqliteStoredPages(SqliteStore):
    """Stored articles with their HTML (``pages``), for re-processing."""

    def ids(self, *, site: str | None = None, since: str | None = None) -> list[int]:
        """Ids of stored articles that have their HTML kept (``pages``), oldest first;
        only ``site``'s, and only those fetched at or after ``since``, when given."""
        rows = self.db.execute(
            "SELECT a.id FROM articles a JOIN pages p ON p.article_id = a.id "
            "WHERE (? IS NULL OR a.site = ?) AND (? IS NULL OR a.fetched_at >= ?) ORDER BY a.id",
            [site, site, since, since],
        ).fetchall()
        return [i for (i,) in rows]

    def article(self, article_id: int) -> dict[str, Any] | None:
        """One ``articles`` row as stored (JSON columns still encoded)."""
        cursor = self.db.execute("SELECT * FROM articles WHERE id = ?", [article_id])
        row = cursor.fetchone()
        if row is None:
            return None
        return dict(zip([c[0] for c in cursor.description], row, strict=True))

    def html(self, article_id: int) -> str | None:
        """The page's HTML as fetched (decompressed), if it was kept."""
        row = self.db.execute(
            "SELECT html FROM pages WHERE article_id = ?", [article_id]
        ).fetchone()
        return decompress_html(row[0]) if row else None

    def update(self, article_id: int, changes: dict[str, Any]) -> None:
        """Overwrite some columns of a stored article (values as ``article_row`` gives them)."""
        columns = [c for c in changes if c in ARTICLE_COLUMNS]
        if not columns:
            return
        assignments = ", ".join(f"{c} = ?" for c in columns)
        with self.connection.writing() as db:
            db.execute(
                f"UPDATE articles SET {assignments} WHERE id = ?",  # noqa: S608 - known columns
                [*(changes[c] for c in columns), article_id],
            )

    def duplicate_recorded(self, url: str, article_id: int) -> bool:
        """Whether ``url`` is already recorded as a sighting of story ``article_id``."""
        row = self.db.execute(
            "SELECT 1 FROM duplicates WHERE url = ? AND article_id = ? LIMIT 1", [url, article_id]
        ).fetchone()
        return row is not None
