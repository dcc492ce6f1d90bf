"""What the incremental crawl remembers in the archive: the URL keys of stored stories (an
article already stored is not requested again, nor any URL that led to it), the pages dropped as
not an article, the aggregator links resolved to publishers' URLs, and the validators and
bodies of sources (feeds, sitemaps and listing pages are fetched with conditional GET)."""

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

    def record_aliases(self, article_id: int, keys: Iterable[str], seen: str | None = None) -> None:
        """Point more URL ``keys`` at stored story ``article_id`` (the URLs of a redirect
        chain, the link that led to it, a portal copy's publisher URL): none of them is
        requested again. A key that names another story already keeps it."""
        keys = list(dict.fromkeys(keys))
        if not keys:
            return
        with self.connection.writing() as db:
            record_url_keys(db, article_id, keys, seen)
            db.conn.executemany("DELETE FROM dropped_urls WHERE key = ?", [(k,) for k in keys])

    def dropped(self, key: str) -> tuple[str, str | None, str | None] | None:
        """``(reason, entry, last_seen)`` of a page dropped as not an article, else ``None``."""
        row = self.db.execute(
            "SELECT reason, entry, last_seen FROM dropped_urls WHERE key = ?", [key]
        ).fetchone()
        return (row[0], row[1], row[2]) if row else None

    def record_drop(self, keys: Iterable[str], *, url: str, reason: str, entry: str | None) -> None:
        """Remember that the page at ``url``, known by ``keys``, is not an article (``reason``),
        as linked by the feed entry with signature ``entry``. Keys of stored stories are left
        alone."""
        now = utcnow()
        rows = [(k, url, reason, entry, now, now) for k in dict.fromkeys(keys)]
        with self.connection.writing() as db:
            db.conn.executemany(
                "INSERT INTO dropped_urls (key, url, reason, entry, first_seen, last_seen) "
                "SELECT ?, ?, ?, ?, ?, ? WHERE NOT EXISTS "
                "(SELECT 1 FROM url_keys WHERE key = ?1) "
                "ON CONFLICT (key) DO UPDATE SET url = excluded.url, reason = excluded.reason, "
                "entry = excluded.entry, last_seen = excluded.last_seen",
                rows,
            )

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


class SqliteLinkTargets(SqliteStore):
    """The ``link_targets`` table: aggregator links (a Google News article id) resolved to
    the publisher's URL, so that each is decoded once; a link that could not be resolved is
    kept with its reason and the date, to be tried again later. Implements ``LinkTargets``."""

    def get(self, link: str) -> tuple[str | None, str | None, str | None] | None:
        """``(target, reason, resolved_at)`` of a link seen before, else ``None``."""
        row = self.db.execute(
            "SELECT target, reason, resolved_at FROM link_targets WHERE link = ?", [link]
        ).fetchone()
        return (row[0], row[1], row[2]) if row else None

    def put(self, link: str, target: str | None, *, reason: str | None = None) -> None:
        """Remember what ``link`` resolved to (``target``), or why it could not be."""
        with self.connection.writing() as db:
            db.execute(
                "INSERT OR REPLACE INTO link_targets (link, target, reason, resolved_at) "
                "VALUES (?, ?, ?, ?)",
                [link, target, reason, utcnow()],
            )
