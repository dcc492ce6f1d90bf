"""What the incremental crawl remembers in the archive: the URL keys of stored stories (an
article already stored is not requested again) and the validators and bodies of sources
(feeds, sitemaps and listing pages are fetched with conditional GET)."""

from __future__ import annotations

import logging
import zlib
from typing import TYPE_CHECKING, Any

from crawler.items import utcnow
from crawler.storage.connection import SqliteStore

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    import sqlite_utils

logger = logging.getLogger(__name__)

_URL_KEY_SQL = (
    "INSERT INTO url_keys (key, article_id, first_seen, last_seen) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (key) DO UPDATE SET last_seen = MAX(COALESCE(last_seen, ''), excluded.last_seen)"
)


def record_url_keys(
    db: sqlite_utils.Database, article_id: int, keys: Iterable[str], seen: str | None
) -> None:
    """Point ``keys`` at ``article_id`` (the first story a key named keeps it) and date
    their latest sighting. Runs inside the caller's savepoint (``Connection.writing``)."""
    seen = seen or utcnow()
    db.conn.executemany(_URL_KEY_SQL, [(key, article_id, seen, seen) for key in keys])


class SqliteUrlMemory(SqliteStore):
    """The ``url_keys`` table: every canonical URL key (``crawler.urls.url_keys``) a stored
    story is known by, with the date of its latest sighting. The store writes it with each
    story and sighting (``SqliteArticles``); this class reads it. Implements ``UrlMemory``."""

    def seen(self, key: str) -> tuple[int, str | None] | None:
        """``(article_id, last_seen)`` of a known URL key, else ``None``."""
        row = self.db.execute(
            "SELECT article_id, last_seen FROM url_keys WHERE key = ?", [key]
        ).fetchone()
        return (row[0], row[1]) if row else None

    def story_for_keys(self, keys: Iterable[str]) -> int | None:
        """The stored story any of the URL ``keys`` names (first key that is known)."""
        for key in keys:
            row = self.db.execute("SELECT article_id FROM url_keys WHERE key = ?", [key]).fetchone()
            if row:
                return row[0]
        return None

    def all_keys(self, *, batch: int = 5000) -> Iterator[list[tuple[str, int, str | None]]]:
        """Every URL key as ``(key, article_id, last_seen)``, in batches (key order): the
        distributed writer publishes them for the workers' incremental skip."""
        last = ""
        while True:
            rows = self.db.execute(
                "SELECT key, article_id, last_seen FROM url_keys WHERE key > ? ORDER BY key "
                "LIMIT ?",
                [last, batch],
            ).fetchall()
            if not rows:
                return
            yield rows
            last = rows[-1][0]


class SqliteHttpCache(SqliteStore):
    """The ``http_cache`` table: the validators (ETag, Last-Modified) and the body of the last
    200 of each source URL, replayed when the server answers 304. Implements ``HttpCache``."""

    def get(self, url: str) -> dict[str, Any] | None:
        """Validators and body (decompressed) last stored for source ``url``."""
        row = self.db.execute(
            "SELECT etag, last_modified, content_type, body, fetched_at FROM http_cache "
            "WHERE url = ?",
            [url],
        ).fetchone()
        if row is None:
            return None
        etag, last_modified, content_type, body, fetched_at = row
        return {
            "etag": etag,
            "last_modified": last_modified,
            "content_type": content_type,
            "body": zlib.decompress(body) if body is not None else None,
            "fetched_at": fetched_at,
        }

    def put(
        self,
        url: str,
        *,
        etag: str | None,
        last_modified: str | None,
        content_type: str | None,
        body: bytes,
    ) -> None:
        """Remember a source response's validators and body (replaces the previous one)."""
        now = utcnow()
        with self.connection.writing() as db:
            db.execute(
                "INSERT OR REPLACE INTO http_cache "
                "(url, etag, last_modified, content_type, body, fetched_at, checked_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [url, etag, last_modified, content_type, zlib.compress(body, 6), now, now],
            )

    def checked(self, url: str) -> None:
        """Date a 304 answer: the stored copy is still current."""
        with self.connection.writing() as db:
            db.execute("UPDATE http_cache SET checked_at = ? WHERE url = ?", [utcnow(), url])

    def forget(self, url: str) -> None:
        with self.connection.writing() as db:
            db.execute("DELETE FROM http_cache WHERE url = ?", [url])
