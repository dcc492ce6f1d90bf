"""The archive's tables: the migrations that create them, in order, and the schema version they
reach (kept in ``PRAGMA user_version``). A database made by any earlier version is brought up
to date when it is opened; a migration, once released, never changes."""

from __future__ import annotations

import logging

import sqlite_utils
from sqlite_utils.migrations import Migrations

from crawler.items import utcnow
from crawler.urls import url_keys

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 6
"""Number of migrations below; stored in ``PRAGMA user_version`` after they ran."""

migrations = Migrations("newscrawler")


@migrations(name="0001_initial")
def _m0001_initial(db: sqlite_utils.Database) -> None:
    db["articles"].create(
        {
            "id": int,
            "url": str,
            "canonical_url": str,
            "site": str,
            "domain": str,
            "title": str,
            "authors": str,  # JSON array
            "published_at": str,
            "published_raw": str,
            "fetched_at": str,
            "language": str,
            "description": str,
            "text": str,
            "text_raw": str,
            "removed": str,  # JSON [{"text", "rule"}]
            "tags": str,  # JSON array
            "is_korea": int,
            "korea_score": float,
            "korea_evidence": str,  # JSON object
            "text_hash": str,
            "source_kind": str,
            "source_url": str,
            "via": str,
            "via_position": int,
            "fallback": str,  # JSON object
            "content_type": str,
            "encoding": str,
            "status": int,
        },
        pk="id",
        not_null={"url"},
        defaults={"tags": "[]", "removed": "[]", "authors": "[]", "is_korea": 0},
    )
    db["articles"].create_index(["url"], unique=True)
    for col in ("canonical_url", "site", "published_at", "fetched_at", "text_hash", "is_korea"):
        db["articles"].create_index([col])
    db["pages"].create(
        {
            "article_id": int,
            "url": str,
            "fetched_at": str,
            "content_type": str,
            "encoding": str,
            "html": bytes,  # UTF-8, zstd-compressed (zlib in rows of older versions)
        },
        pk="article_id",
        foreign_keys=[("article_id", "articles", "id")],
    )
    db["duplicates"].create(
        {
            "id": int,
            "url": str,
            "canonical_url": str,
            "article_id": int,
            "kind": str,
            "similarity": float,
            "site": str,
            "title": str,
            "via": str,
            "seen_at": str,
        },
        pk="id",
        not_null={"url", "article_id", "kind"},
        foreign_keys=[("article_id", "articles", "id")],
    )
    db["duplicates"].create_index(["article_id"])
    db["duplicates"].create_index(["url"])
    db["runs"].create(
        {
            "id": int,
            "spider": str,
            "site": str,
            "started_at": str,
            "finished_at": str,
            "status": str,
            "pid": int,
            "host": str,
            "pages": int,
            "items_stored": int,
            "duplicates": int,
            "dropped": int,
            "errors": int,
            "stats": str,  # JSON object: Scrapy's final stats
        },
        pk="id",
    )
    db["runs"].create_index(["site", "started_at"])
    db["articles"].enable_fts(
        ["title", "text"], fts_version="FTS5", create_triggers=True, tokenize="unicode61"
    )
    db["boilerplate_sightings"].create(
        {"domain": str, "line_hash": str, "article_key": str, "line": str, "seen_at": str},
        pk=("domain", "line_hash", "article_key"),
    )


@migrations(name="0002_runs_problems")
def _m0002_runs_problems(db: sqlite_utils.Database) -> None:
    # Why a run failed (JSON array of sentences; [] when healthy): crawler/anomaly.py.
    db["runs"].add_column("problems", str)


@migrations(name="0003_dedupe_incremental")
def _m0003_dedupe_incremental(db: sqlite_utils.Database) -> None:
    # Every canonical URL key (crawler/urls.py) a stored story is known by: its URL, its
    # same-site rel=canonical, the URL requested before a redirect, and the URLs of its later
    # sightings. The incremental crawl looks article requests up here before downloading;
    # last_seen dates the revisit (INCREMENTAL_REVISIT_DAYS).
    db.execute(
        "CREATE TABLE url_keys (key TEXT PRIMARY KEY, "
        "article_id INTEGER NOT NULL REFERENCES articles(id), first_seen TEXT, last_seen TEXT)"
        " WITHOUT ROWID"
    )
    db.execute("CREATE INDEX idx_url_keys_article_id ON url_keys (article_id)")
    # The near-duplicate index (pipelines/dedupe/): one row per MinHash LSH band of every
    # stored story; band_key is a 47-bit hash of the band's values and its number.
    db.execute(
        "CREATE TABLE lsh_bands (band_key INTEGER NOT NULL, article_id INTEGER NOT NULL, "
        "PRIMARY KEY (band_key, article_id)) WITHOUT ROWID"
    )
    # The parameters lsh_bands was built with (shingle size, permutations, bands, seed).
    db["dedupe_index"].create({"name": str, "value": str}, pk="name")
    # Later texts of a stored story (a revisited page whose text changed): never overwritten.
    db["article_versions"].create(
        {
            "id": int,
            "article_id": int,
            "url": str,
            "title": str,
            "text": str,
            "text_hash": str,
            "fetched_at": str,
        },
        pk="id",
        not_null={"article_id", "url"},
        foreign_keys=[("article_id", "articles", "id")],
    )
    db["article_versions"].create_index(["article_id"])
    # Conditional GET of feeds, sitemaps and listing pages: validators and the body to replay
    # when the server answers 304 Not Modified.
    db["http_cache"].create(
        {
            "url": str,
            "etag": str,
            "last_modified": str,
            "content_type": str,
            "body": bytes,  # zlib-compressed
            "fetched_at": str,
            "checked_at": str,
        },
        pk="url",
    )
    # The keys of the stories stored before this migration (the statement is the one
    # crawler/storage/incremental.py runs, frozen here with the migration).
    rows = db.execute(
        "SELECT id, url, canonical_url, NULL, fetched_at FROM articles "
        "UNION ALL SELECT article_id, url, canonical_url, NULL, seen_at FROM duplicates"
    ).fetchall()
    for article_id, url, canonical, request_url, seen in rows:
        seen = seen or utcnow()
        db.conn.executemany(
            "INSERT INTO url_keys (key, article_id, first_seen, last_seen) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET "
            "last_seen = MAX(COALESCE(last_seen, ''), excluded.last_seen)",
            [(key, article_id, seen, seen) for key in url_keys(url, canonical, request_url)],
        )


@migrations(name="0004_aggregators")
def _m0004_aggregators(db: sqlite_utils.Database) -> None:
    # The original publisher of a story stored from an aggregator: the press name a portal
    # (or a Google News entry) credits, and the publisher's own URL of a portal's copy.
    db["articles"].add_column("publisher", str)
    db["articles"].add_column("publisher_url", str)
    # Pages dropped as not an article (validate step, an aggregator's own page), by URL key
    # (crawler/urls.py), with the signature of the feed entry that linked them: not fetched
    # again until that entry changes or INCREMENTAL_DROPPED_RETRY_DAYS pass.
    db.execute(
        "CREATE TABLE dropped_urls (key TEXT PRIMARY KEY, url TEXT, reason TEXT NOT NULL, "
        "entry TEXT, first_seen TEXT, last_seen TEXT) WITHOUT ROWID"
    )
    # Aggregator links resolved to the publisher's URL (a Google News article id): each is
    # decoded once. target NULL: it could not be resolved (reason), tried again later.
    db.execute(
        "CREATE TABLE link_targets (link TEXT PRIMARY KEY, target TEXT, reason TEXT, "
        "resolved_at TEXT) WITHOUT ROWID"
    )


@migrations(name="0005_boilerplate_by_story")
def _m0005_boilerplate_by_story(db: sqlite_utils.Database) -> None:
    # Learned boilerplate counts a line once per story, not per page (pipelines/clean/): a
    # sighting's article_key becomes the id of the story the page was stored as (its own
    # articles row, or the row its duplicates row points to). Sightings of pages that were
    # never stored keep their URL. Copies of one story collapse into one sighting.
    db.execute(
        "CREATE TABLE boilerplate_sightings_new (domain TEXT, line_hash TEXT, "
        "article_key TEXT, line TEXT, seen_at TEXT, PRIMARY KEY (domain, line_hash, article_key))"
    )
    db.execute(
        "INSERT OR IGNORE INTO boilerplate_sightings_new "
        "SELECT s.domain, s.line_hash, COALESCE("
        "(SELECT CAST(a.id AS TEXT) FROM articles a WHERE a.url = s.article_key), "
        "(SELECT CAST(MIN(d.article_id) AS TEXT) FROM duplicates d WHERE d.url = s.article_key), "
        "s.article_key), s.line, s.seen_at FROM boilerplate_sightings s ORDER BY s.seen_at"
    )
    db.execute("DROP TABLE boilerplate_sightings")
    db.execute("ALTER TABLE boilerplate_sightings_new RENAME TO boilerplate_sightings")
    # The clean step reads the headlines of a domain's stories (lines naming another story).
    db["articles"].create_index(["domain"], if_not_exists=True)


@migrations(name="0006_band_keys_by_story")
def _m0006_band_keys_by_story(db: sqlite_utils.Database) -> None:
    # A story's band keys are replaced when its text is cleaned again and deleted when it is
    # merged into another: found through this index, not by reading the whole band index
    # (which grows with every story stored).
    db.execute("CREATE INDEX IF NOT EXISTS idx_lsh_bands_article_id ON lsh_bands (article_id)")


def schema_version(db: sqlite_utils.Database) -> int:
    return db.execute("PRAGMA user_version").fetchone()[0] or 0


def migrate(db: sqlite_utils.Database) -> None:
    """Apply pending migrations under the write lock, so that two crawls opening a new
    file at the same moment do not both create its tables."""
    db.execute("BEGIN IMMEDIATE")
    try:
        if schema_version(db) < SCHEMA_VERSION:
            migrations.apply(db)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.commit()
    except BaseException:
        db.rollback()
        raise
