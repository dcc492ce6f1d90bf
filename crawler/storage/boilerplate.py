"""Learned boilerplate (``pipelines/clean``): which lines of a domain's articles appear on
several distinct articles (``boilerplate_sightings``), so the clean step removes them."""

from __future__ import annotations

import logging
import sqlite3
from typing import TYPE_CHECKING

from crawler.items import utcnow
from crawler.storage.connection import SqliteStore, marks
from crawler.storage.errors import is_fatal

if TYPE_CHECKING:
    from collections.abc import Iterable

logger = logging.getLogger(__name__)

_FREQUENT_SQL = (
    "SELECT line_hash FROM boilerplate_sightings WHERE domain = ? AND line_hash IN ({marks})"
    " GROUP BY line_hash HAVING COUNT(*) >= ?"
)


class SqliteBoilerplate(SqliteStore):
    """Sightings of lines per domain and article. Implements ``BoilerplateStore``."""

    def record(self, domain: str, article_key: str, lines: dict[str, str], *, cap: int) -> None:
        """Record that ``article_key`` of ``domain`` contains ``lines`` (hash -> text).

        Sightings of a line stop being recorded once ``cap`` distinct articles carry it:
        the table stays bounded by lines x cap.
        """
        if not lines:
            return
        frequent = self.frequent(domain, lines, min_articles=cap)
        now = utcnow()
        rows = [
            (domain, h, article_key, text, now) for h, text in lines.items() if h not in frequent
        ]
        if not rows:
            return
        try:
            with self.connection.writing() as db:
                db.conn.executemany(
                    "INSERT OR IGNORE INTO boilerplate_sightings "
                    "(domain, line_hash, article_key, line, seen_at) VALUES (?, ?, ?, ?, ?)",
                    rows,
                )
        except sqlite3.Error as exc:
            # Learning statistics are best effort: a full, read-only or locked archive must
            # not cost the article itself (the store step reports the failure and stops).
            if not is_fatal(exc):
                raise
            logger.debug("%s: boilerplate sightings not recorded: %s", self.path, exc)

    def frequent(self, domain: str, line_hashes: Iterable[str], *, min_articles: int) -> set[str]:
        """The hashes among ``line_hashes`` seen on at least ``min_articles`` articles."""
        hashes = list(dict.fromkeys(line_hashes))
        found: set[str] = set()
        for i in range(0, len(hashes), 500):
            chunk = hashes[i : i + 500]
            sql = _FREQUENT_SQL.format(marks=marks(len(chunk)))
            rows = self.db.execute(sql, [domain, *chunk, min_articles]).fetchall()
            found.update(h for (h,) in rows)
        return found
