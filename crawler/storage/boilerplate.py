"""Learned boilerplate (``pipelines/clean/``): which lines of a domain's stories appear on
several distinct stories (``boilerplate_sightings``, one sighting per line and story), the
headlines of the domain's stories, and the rows of a run that the clean step cleans again
when what it learned grew during the run."""

from __future__ import annotations

import json
import logging
import sqlite3
from typing import TYPE_CHECKING, Any

from crawler.items import utcnow
from crawler.storage.connection import SqliteStore, marks
from crawler.storage.errors import is_fatal
from crawler.storage.index import SqliteStoryIndex, replace_bands

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

logger = logging.getLogger(__name__)

_FREQUENT_SQL = (
    "SELECT line_hash FROM boilerplate_sightings WHERE domain = ? AND line_hash IN ({marks})"
    " GROUP BY line_hash HAVING COUNT(*) >= ?"
)
_STORIES_BY_ID_SQL = (
    "SELECT id, title, language, text_raw, text, removed FROM articles WHERE id IN ({marks})"
    " ORDER BY id"
)
RECLEANED_COLUMNS = ("text", "removed", "text_hash")
"""The ``articles`` columns a re-clean rewrites."""


class SqliteBoilerplate(SqliteStore):
    """Sightings of lines per domain and story. Implements ``BoilerplateStore``."""

    def record(self, domain: str, article_key: str, lines: dict[str, str], *, cap: int) -> None:
        """Record that story ``article_key`` of ``domain`` contains ``lines`` (hash -> text).

        A story is counted once per line however many copies of it carry the line. Sightings
        of a line stop being recorded once ``cap`` distinct stories carry it: the table stays
        bounded by lines x cap.
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
        """The hashes among ``line_hashes`` seen on at least ``min_articles`` stories."""
        hashes = list(dict.fromkeys(line_hashes))
        found: set[str] = set()
        for i in range(0, len(hashes), 500):
            chunk = hashes[i : i + 500]
            sql = _FREQUENT_SQL.format(marks=marks(len(chunk)))
            rows = self.db.execute(sql, [domain, *chunk, min_articles]).fetchall()
            found.update(h for (h,) in rows)
        return found

    # -- the domain's stories ------------------------------------------------------------------
    def titles(self, domain: str, *, limit: int) -> list[str]:
        """Headlines of the ``limit`` latest stories of ``domain`` and of their sightings
        (a copy's headline may be the one other pages name)."""
        rows = self.db.execute(
            "WITH latest AS (SELECT id, title FROM articles WHERE domain = ? "
            "ORDER BY id DESC LIMIT ?) "
            "SELECT title FROM latest WHERE title IS NOT NULL "
            "UNION SELECT d.title FROM duplicates d JOIN latest ON d.article_id = latest.id "
            "WHERE d.title IS NOT NULL",
            [domain, limit],
        ).fetchall()
        return [t for (t,) in rows]

    def story_for_url(self, url: str) -> int | None:
        """The id of the story stored with exactly this URL."""
        row = self.db.execute("SELECT id FROM articles WHERE url = ?", [url]).fetchone()
        return row[0] if row else None

    def stored_by_id(self, ids: Iterable[int], *, batch: int = 200) -> Iterator[dict[str, Any]]:
        """``id, title, language, text_raw, text, removed`` (``removed`` decoded) of the
        stories ``ids`` that are still stored, in id order. Read ``batch`` rows at a time: a
        run of tens of thousands of stories is never in memory at once, and the caller may
        update or merge the rows it was given."""
        wanted = sorted(set(ids))
        for i in range(0, len(wanted), batch):
            chunk = wanted[i : i + batch]
            sql = _STORIES_BY_ID_SQL.format(marks=marks(len(chunk)))
            cursor = self.db.execute(sql, chunk)
            names = [c[0] for c in cursor.description]
            for values in cursor.fetchall():
                row = dict(zip(names, values, strict=True))
                row["removed"] = json.loads(row["removed"] or "[]")
                yield row

    def stories_with_text_hash(self, text_hash: str) -> list[int]:
        """Every stored story whose normalised text has this hash, oldest first."""
        rows = self.db.execute(
            "SELECT id FROM articles WHERE text_hash = ? ORDER BY id", [text_hash]
        ).fetchall()
        return [i for (i,) in rows]

    def story_index(self) -> SqliteStoryIndex:
        """The stored stories as the dedupe step looks them up (and merges them)."""
        return SqliteStoryIndex(self.connection)

    def update_cleaned(
        self,
        article_id: int,
        *,
        text: str,
        removed: list[dict[str, str]],
        text_hash: str | None,
        band_keys: Iterable[int] | None,
    ) -> None:
        """Rewrite a story's cleaned text, what cleaning removed and its text hash, and its
        near-duplicate index keys (``band_keys``; ``None`` leaves the index alone)."""
        with self.connection.writing() as db:
            db.execute(
                "UPDATE articles SET text = ?, removed = ?, text_hash = ? WHERE id = ?",
                [text, json.dumps(removed, ensure_ascii=False), text_hash, article_id],
            )
            if band_keys is not None:
                replace_bands(db, article_id, band_keys)
