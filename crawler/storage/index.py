"""The near-duplicate index of the dedupe step (``pipelines/dedupe/``): the LSH band keys of
every stored story (``lsh_bands``), the parameters they were computed with (``dedupe_index``),
and the lookups that find a stored story by URL key, by text hash and by shared bands."""

from __future__ import annotations

import logging
import sqlite3
from typing import TYPE_CHECKING

from crawler.storage.connection import SqliteStore, marks
from crawler.storage.incremental import SqliteUrlMemory

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    import sqlite_utils

    from crawler.storage.connection import Connection

logger = logging.getLogger(__name__)

_CANDIDATES_SQL = (
    "SELECT article_id, COUNT(*) AS hits FROM lsh_bands WHERE band_key IN ({marks}) "
    "GROUP BY article_id ORDER BY hits DESC, article_id LIMIT ?"
)


def insert_bands(db: sqlite_utils.Database, article_id: int, band_keys: Iterable[int]) -> None:
    """Add a story's band keys to the index, inside the caller's savepoint."""
    db.conn.executemany(
        "INSERT OR IGNORE INTO lsh_bands (band_key, article_id) VALUES (?, ?)",
        [(key, article_id) for key in dict.fromkeys(band_keys)],
    )


def _references(db: sqlite_utils.Database) -> list[tuple[str, str]]:
    """``(table, column)`` of every foreign key to ``articles(id)`` but the kept HTML's."""
    found = []
    tables = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    for (table,) in tables:
        if table in ("articles", "pages"):
            continue
        for fk in db.execute(f"PRAGMA foreign_key_list({table})").fetchall():
            if fk[2] == "articles" and fk[4] in (None, "id"):
                found.append((table, fk[3]))
    return found


def replace_bands(db: sqlite_utils.Database, article_id: int, band_keys: Iterable[int]) -> None:
    """Replace a story's band keys (its text changed), inside the caller's savepoint."""
    db.execute("DELETE FROM lsh_bands WHERE article_id = ?", [article_id])
    insert_bands(db, article_id, band_keys)


class SqliteStoryIndex(SqliteStore):
    """The stored stories as the dedupe step looks them up and keeps them indexed.
    Implements ``StoryIndex`` and ``DedupeIndex``.

    A new story's band keys are staged (``stage``) when the dedupe step finds it new and
    written with its row, in the same savepoint, when the store step inserts it
    (``SqliteArticles.insert``): an index row never names a story that is not stored.
    """

    def __init__(self, connection: Connection) -> None:
        super().__init__(connection)
        self.urls = SqliteUrlMemory(connection)

    # -- lookups (find_duplicate) ------------------------------------------------------------
    def story_for_keys(self, keys: Iterable[str]) -> int | None:
        """The stored story any of the URL ``keys`` names (first key that is known)."""
        return self.urls.story_for_keys(keys)

    def story_for_text_hash(self, text_hash: str) -> int | None:
        """The first stored story whose normalised text has this hash."""
        row = self.db.execute(
            "SELECT id FROM articles WHERE text_hash = ? ORDER BY id LIMIT 1", [text_hash]
        ).fetchone()
        return row[0] if row else None

    def story_candidates(self, band_keys: Iterable[int], *, limit: int) -> list[int]:
        """Stored stories sharing at least one LSH band with ``band_keys``, most shared bands
        first (then oldest first), at most ``limit``."""
        keys = list(dict.fromkeys(band_keys))
        if not keys:
            return []
        sql = _CANDIDATES_SQL.format(marks=marks(len(keys)))
        return [aid for aid, _ in self.db.execute(sql, [*keys, limit]).fetchall()]

    def story_text(self, article_id: int) -> str | None:
        row = self.db.execute("SELECT text FROM articles WHERE id = ?", [article_id]).fetchone()
        return row[0] if row else None

    def story_title(self, article_id: int) -> str | None:
        row = self.db.execute("SELECT title FROM articles WHERE id = ?", [article_id]).fetchone()
        return row[0] if row else None

    def story_raw_text(self, article_id: int) -> str | None:
        """The stored story's text as extracted, before cleaning."""
        row = self.db.execute("SELECT text_raw FROM articles WHERE id = ?", [article_id]).fetchone()
        return row[0] if row else None

    def merge(self, later: int, into: int, *, kind: str, similarity: float) -> bool:
        """Make stored story ``later`` a sighting of the earlier story ``into`` (its text,
        cleaned again, turned out to repeat it): its row becomes a ``duplicates`` row, and
        whatever pointed at it (sightings, URL keys, versions, learned-boilerplate sightings)
        points at ``into``. Its kept HTML and index keys go. ``False`` if ``later`` is gone."""
        with self.connection.writing() as db:
            row = db.execute(
                "SELECT url, canonical_url, site, title, via, fetched_at FROM articles WHERE id = ?",
                [later],
            ).fetchone()
            if row is None:
                return False
            db.execute("DELETE FROM pages WHERE article_id = ?", [later])
            db.execute("DELETE FROM lsh_bands WHERE article_id = ?", [later])
            for table, column in _references(db):
                db.execute(
                    f"UPDATE OR IGNORE {table} SET {column} = ? WHERE {column} = ?",  # noqa: S608
                    [into, later],
                )
                db.execute(f"DELETE FROM {table} WHERE {column} = ?", [later])  # noqa: S608
            # Learned boilerplate counts a line once per story: the two are one story now.
            db.execute(
                "UPDATE OR IGNORE boilerplate_sightings SET article_key = ? WHERE article_key = ?",
                [str(into), str(later)],
            )
            db.execute("DELETE FROM boilerplate_sightings WHERE article_key = ?", [str(later)])
            url, canonical, site, title, via, seen = row
            db.execute(
                "INSERT INTO duplicates (url, canonical_url, article_id, kind, similarity, site, "
                "title, via, seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [url, canonical, into, kind, similarity, site, title, via, seen],
            )
            db.execute("DELETE FROM articles WHERE id = ?", [later])
        return True

    # -- upkeep ------------------------------------------------------------------------------
    def stage(self, url: str, band_keys: list[int], *, cap: int = 10_000) -> None:
        """Hold the band keys of a new story until the store step inserts it (``url``).
        Stories that never reach the store (dropped later) fall out after ``cap`` newer
        ones."""
        staged = self.connection.staged_bands
        staged[url] = band_keys
        while len(staged) > cap:
            staged.popitem(last=False)

    def add(self, article_id: int, band_keys: list[int]) -> None:
        """Add a stored story to the near-duplicate index."""
        with self.connection.writing() as db:
            insert_bands(db, article_id, band_keys)

    def params(self) -> str | None:
        """The parameters (JSON) the near-duplicate index was built with, if any."""
        row = self.db.execute("SELECT value FROM dedupe_index WHERE name = 'params'").fetchone()
        return row[0] if row else None

    def reset(self, params: str) -> None:
        """Empty the near-duplicate index and record the ``params`` it is rebuilt with."""
        with self.connection.writing() as db:
            db.execute("DELETE FROM lsh_bands")
            db.execute(
                "INSERT OR REPLACE INTO dedupe_index (name, value) VALUES ('params', ?)",
                [params],
            )
        self.flush()

    def stories(self, *, batch: int = 1000) -> Iterator[tuple[int, str, str | None]]:
        """``(id, text, text_hash)`` of every stored story, in id order, read in batches."""
        last = 0
        while True:
            rows = self.db.execute(
                "SELECT id, COALESCE(text, ''), text_hash FROM articles WHERE id > ? "
                "ORDER BY id LIMIT ?",
                [last, batch],
            ).fetchall()
            if not rows:
                return
            yield from rows
            last = rows[-1][0]

    def set_text_hash(self, article_id: int, text_hash: str) -> None:
        with self.connection.writing() as db:
            db.execute("UPDATE articles SET text_hash = ? WHERE id = ?", [text_hash, article_id])

    def size(self) -> int:
        """Rows of the index (one per band key of every stored story)."""
        return self.db.execute("SELECT COUNT(*) FROM lsh_bands").fetchone()[0]

    def disk_bytes(self) -> int | None:
        """Bytes the index takes in the file; ``None`` when SQLite lacks its optional
        ``dbstat`` table."""
        try:
            row = self.db.execute(
                "SELECT SUM(pgsize) FROM dbstat WHERE name = 'lsh_bands'"
            ).fetchone()
        except sqlite3.Error:
            return None
        return row[0]
