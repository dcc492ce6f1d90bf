"""Stories and their sightings: the ``articles`` row of a story as first seen (its HTML in
``pages``), every later sighting in ``duplicates``, and the later texts of a revisited story in
``article_versions``. Each write also records the URL keys the story is known by."""

from __future__ import annotations

import json
import logging
import zlib
from typing import TYPE_CHECKING, Any

try:  # the standard library's from Python 3.14
    from compression import zstd
except ImportError:  # its backport before
    from backports import zstd

from crawler.items import utcnow
from crawler.storage.connection import SqliteStore, marks
from crawler.storage.incremental import record_url_keys
from crawler.storage.index import insert_bands
from crawler.urls import url_keys

if TYPE_CHECKING:
    from collections.abc import Iterable

logger = logging.getLogger(__name__)

ARTICLE_JSON_COLUMNS = ("authors", "removed", "tags", "korea_evidence", "fallback")
ARTICLE_COLUMNS = (
    "url",
    "canonical_url",
    "site",
    "domain",
    "title",
    "authors",
    "published_at",
    "published_raw",
    "fetched_at",
    "language",
    "description",
    "text",
    "text_raw",
    "removed",
    "tags",
    "is_korea",
    "korea_score",
    "korea_evidence",
    "text_hash",
    "source_kind",
    "source_url",
    "via",
    "via_position",
    "publisher",
    "publisher_url",
    "fallback",
    "content_type",
    "encoding",
    "status",
)


def _json(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(value, ensure_ascii=False, sort_keys=isinstance(value, dict))


def article_row(item: dict[str, Any]) -> dict[str, Any]:
    """The ``articles`` row for an item dict (JSON-encodes list/dict columns)."""
    row = {col: item.get(col) for col in ARTICLE_COLUMNS}
    for col in ARTICLE_JSON_COLUMNS:
        row[col] = _json(row[col] if row[col] is not None else None)
    if row["is_korea"] is not None:
        row["is_korea"] = int(bool(row["is_korea"]))
    return row


def insert_sql(table: str, columns: Iterable[str], *, ignore: bool = False) -> str:
    """INSERT statement for ``table``; table and column names come from the storage package
    only."""
    cols = list(columns)
    verb = "INSERT OR IGNORE" if ignore else "INSERT"
    return f"{verb} INTO {table} ({', '.join(cols)}) VALUES ({marks(len(cols))})"


HTML_ZSTD_LEVEL = 3
"""zstd level of the kept HTML: about a sixth of the CPU of zlib level 6 for 3 % more bytes
(``bench/bench_compress.py``)."""
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
"""How a zstd frame starts; never a zlib stream (its first two bytes are not a valid zlib
header), so each blob says which codec wrote it."""


def compress_html(html: str) -> bytes:
    """The ``pages.html`` blob of a page: its HTML as UTF-8, zstd-compressed."""
    return zstd.compress(html.encode("utf-8"), HTML_ZSTD_LEVEL)


def decompress_html(blob: bytes) -> str:
    """A page's HTML from its ``pages.html`` blob: zstd, or zlib as older versions wrote it."""
    if blob[:4] == _ZSTD_MAGIC:
        return zstd.decompress(blob).decode("utf-8")
    return zlib.decompress(blob).decode("utf-8")


class SqliteArticles(SqliteStore):
    """Writes stories and sightings; answers what the dedupe step asks about a stored story's
    versions. Implements ``ArticleStore`` and ``StoryVersions``."""

    def insert(self, item: dict[str, Any], *, html: str | None = None) -> int | None:
        """Store a first sighting; return its id, or ``None`` if the URL is already stored.
        The story's URL keys, its staged index keys (``SqliteStoryIndex.stage``) and its
        HTML go in the same savepoint."""
        row = article_row(item)
        bands = self.connection.staged_bands.pop(row["url"], None)
        with self.connection.writing() as db:
            cursor = db.execute(insert_sql("articles", row, ignore=True), list(row.values()))
            if cursor.rowcount == 0:
                return None
            article_id = cursor.lastrowid
            keys = url_keys(row["url"], row["canonical_url"], item.get("request_url"))
            record_url_keys(db, article_id, keys, row["fetched_at"])
            if bands:
                insert_bands(db, article_id, bands)
            if html is not None:
                db.execute(
                    "INSERT INTO pages (article_id, url, fetched_at, content_type, encoding, html)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        article_id,
                        row["url"],
                        row["fetched_at"],
                        row["content_type"],
                        row["encoding"],
                        compress_html(html),
                    ],
                )
        return article_id

    def insert_duplicate(self, item: dict[str, Any]) -> int:
        """Record a later sighting of stored article ``item['duplicate_of']``."""
        row = {
            "url": item["url"],
            "canonical_url": item.get("canonical_url"),
            "article_id": item["duplicate_of"],
            "kind": item["duplicate_kind"],
            "similarity": item.get("similarity"),
            "site": item.get("site"),
            "title": item.get("title"),
            "via": item.get("via"),
            "seen_at": item.get("fetched_at") or utcnow(),
        }
        keys = url_keys(row["url"], row["canonical_url"], item.get("request_url"))
        with self.connection.writing() as db:
            cursor = db.execute(insert_sql("duplicates", row), list(row.values()))
            record_url_keys(db, row["article_id"], keys, row["seen_at"])
        return cursor.lastrowid

    def id_for_url(self, url: str) -> int | None:
        """The id of the story stored with exactly this URL."""
        row = self.db.execute("SELECT id FROM articles WHERE url = ?", [url]).fetchone()
        return row[0] if row else None

    def sighting_recorded(self, url: str, seen_at: str | None) -> bool:
        """Whether the fetch of ``url`` at ``seen_at`` is already in the archive (as a story
        or as a later sighting): an item delivered again by the distributed queue."""
        if not seen_at:
            return False
        row = self.db.execute(
            "SELECT 1 FROM articles WHERE url = ? AND fetched_at = ? "
            "UNION ALL SELECT 1 FROM duplicates WHERE url = ? AND seen_at = ? LIMIT 1",
            [url, seen_at, url, seen_at],
        ).fetchone()
        return row is not None

    # -- versions of a revisited story -------------------------------------------------------
    def story_urls(self, article_id: int) -> tuple[str, str | None] | None:
        """``(url, canonical_url)`` of a stored story."""
        row = self.db.execute(
            "SELECT url, canonical_url FROM articles WHERE id = ?", [article_id]
        ).fetchone()
        return (row[0], row[1]) if row else None

    def text_hashes(self, article_id: int) -> set[str]:
        """Text hashes of a stored story: the first sighting's and every later version's."""
        rows = self.db.execute(
            "SELECT text_hash FROM articles WHERE id = ? "
            "UNION SELECT text_hash FROM article_versions WHERE article_id = ?",
            [article_id, article_id],
        ).fetchall()
        return {h for (h,) in rows if h}

    def insert_version(self, article_id: int, item: dict[str, Any]) -> int:
        """Keep a changed text of stored story ``article_id`` (``articles`` stays as first
        seen)."""
        with self.connection.writing() as db:
            cursor = db.execute(
                "INSERT INTO article_versions "
                "(article_id, url, title, text, text_hash, fetched_at) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    article_id,
                    item["url"],
                    item.get("title"),
                    item.get("text"),
                    item.get("text_hash"),
                    item.get("fetched_at") or utcnow(),
                ],
            )
        return cursor.lastrowid
