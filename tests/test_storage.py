"""The storage classes one by one, on real SQLite files: the schema and its migrations, the
shared connection and its batches, stories and sightings, the near-duplicate index, URL memory
and the conditional-GET cache, learned boilerplate, runs, and what reprocessing rewrites."""

from __future__ import annotations

import os
import socket
import sqlite3
import zlib
from pathlib import Path

import pytest
import sqlite_utils

from crawler.storage.articles import SqliteArticles
from crawler.storage.boilerplate import SqliteBoilerplate
from crawler.storage.connection import Connection, connect
from crawler.storage.errors import ArchiveError, database_failures
from crawler.storage.incremental import SqliteHttpCache, SqliteUrlMemory
from crawler.storage.index import SqliteStoryIndex, replace_bands
from crawler.storage.pages import SqliteStoredPages
from crawler.storage.reports import newest_articles
from crawler.storage.runs import SqliteRuns
from crawler.storage.schema import SCHEMA_VERSION, migrations
from tests.conftest import FIXTURES, rows


def schema_shape(path: Path) -> str:
    """The archive's schema as text: version, migrations, and per table its columns, indexes
    and foreign keys, and the triggers (FTS5's shadow tables left out: SQLite makes them)."""
    conn = sqlite3.connect(path)
    try:
        lines = [f"user_version {conn.execute('PRAGMA user_version').fetchone()[0]}"]
        lines += [
            f"migration {name}"
            for (name,) in conn.execute("SELECT name FROM _sqlite_migrations ORDER BY rowid")
        ]
        tables = [
            name
            for (name,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
                " AND name NOT LIKE 'articles_fts_%' ORDER BY name"
            )
        ]
        for table in tables:
            lines.append(f"table {table}")
            for _, name, kind, notnull, default, pk, hidden in conn.execute(
                f"PRAGMA table_xinfo('{table}')"
            ):
                lines.append(
                    f"  column {name} {kind or '-'} notnull={notnull} default={default} "
                    f"pk={pk} hidden={hidden}"
                )
            for _, index, unique, origin, _partial in conn.execute(f"PRAGMA index_list('{table}')"):
                cols = ",".join(str(c[2]) for c in conn.execute(f"PRAGMA index_info('{index}')"))
                name = "(auto)" if index.startswith("sqlite_autoindex") else index
                lines.append(f"  index {name} unique={unique} origin={origin} ({cols})")
            for fk in conn.execute(f"PRAGMA foreign_key_list('{table}')"):
                lines.append(f"  foreign_key {fk[3]} -> {fk[2]}({fk[4]})")
        lines += [
            f"trigger {name} on {table}"
            for name, table in conn.execute(
                "SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger' ORDER BY name"
            )
        ]
        return "\n".join(lines) + "\n"
    finally:
        conn.close()


@pytest.fixture
def connection(tmp_path):
    connection = Connection.acquire(tmp_path / "news.db")
    yield connection
    connection.release()


def _story(n: int, **fields) -> dict:
    return {
        "url": f"https://herald.example/a/{n}",
        "text": f"Story number {n}.",
        "fetched_at": f"2026-11-{n:02d}T00:00:00+00:00",
        **fields,
    }


# -- schema and migrations -----------------------------------------------------------------------
def test_a_new_archive_has_the_released_schema(tmp_path):
    Connection.acquire(tmp_path / "news.db").release()
    expected = (FIXTURES / "storage" / "schema.txt").read_text(encoding="utf-8")
    assert schema_shape(tmp_path / "news.db") == expected
    assert f"user_version {SCHEMA_VERSION}\n" in expected


def test_an_archive_from_before_the_url_keys_is_migrated_with_its_stories(tmp_path):
    path = tmp_path / "old.db"
    db = sqlite_utils.Database(path)
    migrations.apply(db, stop_before="0003_dedupe_incremental")
    db.execute(
        "INSERT INTO articles (id, url, canonical_url, fetched_at) VALUES "
        "(1, 'https://herald.example/a/1?utm_source=x', 'https://herald.example/a/1', "
        "'2026-11-01T00:00:00+00:00')"
    )
    db.execute(
        "INSERT INTO duplicates (url, article_id, kind, seen_at) VALUES "
        "('https://blog.example/copy', 1, 'near', '2026-11-03T00:00:00+00:00')"
    )
    db.conn.commit()
    db.close()
    memory = SqliteUrlMemory.acquire(path)
    try:
        assert memory.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert memory.seen("herald.example/a/1") == (1, "2026-11-01T00:00:00+00:00")
        assert memory.seen("blog.example/copy") == (1, "2026-11-03T00:00:00+00:00")
    finally:
        memory.release()
    assert schema_shape(path) == (FIXTURES / "storage" / "schema.txt").read_text(encoding="utf-8")


def test_sightings_of_copies_of_one_story_collapse_when_migrated(tmp_path):
    path = tmp_path / "old.db"
    db = sqlite_utils.Database(path)
    migrations.apply(db, stop_before="0005_boilerplate_by_story")
    db.execute("INSERT INTO articles (id, url) VALUES (7, 'https://blog.example/a')")
    db.execute(
        "INSERT INTO duplicates (url, article_id, kind) VALUES ('https://blog.example/a-2', 7, "
        "'near')"
    )
    db.conn.executemany(
        "INSERT INTO boilerplate_sightings (domain, line_hash, article_key, line, seen_at) "
        "VALUES ('blog.example', 'h1', ?, 'Join us', '2026-11-01')",
        [("https://blog.example/a",), ("https://blog.example/a-2",), ("https://blog.example/x",)],
    )
    db.execute("PRAGMA user_version = 4")
    db.conn.commit()
    db.close()
    Connection.acquire(path).release()
    keys = rows(path, "SELECT article_key FROM boilerplate_sightings ORDER BY article_key")
    # two pages of story 7 are one sighting; a page never stored keeps its URL
    assert [r["article_key"] for r in keys] == ["7", "https://blog.example/x"]
    assert schema_shape(path) == (FIXTURES / "storage" / "schema.txt").read_text(encoding="utf-8")


# -- the connection ------------------------------------------------------------------------------
def test_connection_settings(tmp_path):
    db = connect(tmp_path / "sub" / "news.db", busy_timeout=2.5)
    try:
        pragma = {p: db.execute(f"PRAGMA {p}").fetchone()[0] for p in
                  ("journal_mode", "busy_timeout", "synchronous", "foreign_keys")}  # fmt: skip
    finally:
        db.close()
    assert pragma == {"journal_mode": "wal", "busy_timeout": 2500, "synchronous": 1,
                      "foreign_keys": 1}  # fmt: skip


def test_one_connection_per_file_per_process(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = Connection.acquire("news.db")
    second = Connection.acquire(tmp_path / "news.db")
    assert second is first
    second.release()
    assert first.db.execute("SELECT 1").fetchone() == (1,)  # still open for the first user
    first.release()
    with pytest.raises(sqlite3.ProgrammingError):
        first.db.execute("SELECT 1")
    again = Connection.acquire(tmp_path / "news.db")
    assert again is not first
    again.release()


def test_writes_are_committed_by_batch(tmp_path):
    connection = Connection.acquire(tmp_path / "news.db", batch_size=3, flush_interval=3600)
    articles = SqliteArticles(connection)
    try:
        articles.insert(_story(1))
        articles.insert(_story(2))
        assert rows(tmp_path / "news.db", "SELECT COUNT(*) n FROM articles")[0]["n"] == 0
        articles.insert(_story(3))  # the third write fills the batch
        assert rows(tmp_path / "news.db", "SELECT COUNT(*) n FROM articles")[0]["n"] == 3
        articles.insert(_story(4))
        Connection.flush_all()
        assert rows(tmp_path / "news.db", "SELECT COUNT(*) n FROM articles")[0]["n"] == 4
    finally:
        connection.release()


def test_a_failed_write_undoes_only_itself(connection, tmp_path):
    articles = SqliteArticles(connection)
    articles.insert(_story(1))
    with pytest.raises(sqlite3.IntegrityError):  # no such story: the foreign key refuses it
        articles.insert_duplicate(
            {"url": "https://blog.example/x", "duplicate_of": 99, "duplicate_kind": "near"}
        )
    connection.flush()
    assert [r["url"] for r in rows(tmp_path / "news.db", "SELECT url FROM articles")] == [
        "https://herald.example/a/1"
    ]
    assert rows(tmp_path / "news.db", "SELECT COUNT(*) n FROM url_keys")[0]["n"] == 1


def test_a_file_that_is_not_an_archive_is_refused_by_name(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("Not a database, but notes about one.\n" * 200, encoding="utf-8")
    with pytest.raises(ArchiveError, match="is damaged or not an SQLite database") as exc:
        Connection(path)
    assert str(path) in str(exc.value)
    # Opening failed: whoever opened it decides whether the run failed (the store step does).
    assert not any(str(path) in message for message in database_failures())


# -- articles, sightings, versions ---------------------------------------------------------------
def test_stories_and_sightings(connection):
    articles = SqliteArticles(connection)
    memory = SqliteUrlMemory(connection)
    first = articles.insert(
        _story(1, canonical_url="https://herald.example/a/1-canon", tags=["korea"], is_korea=True,
               request_url="https://herald.example/r/1"),
        html="<p>Story</p>",
    )  # fmt: skip
    assert first == 1
    assert articles.insert(_story(1, text="Again.")) is None  # the URL is stored already
    assert articles.id_for_url("https://herald.example/a/1") == 1
    assert articles.id_for_url("https://herald.example/a/2") is None
    # The story is known by its URL, its same-site canonical and the URL before a redirect.
    for key in ("herald.example/a/1", "herald.example/a/1-canon", "herald.example/r/1"):
        assert memory.seen(key) == (1, "2026-11-01T00:00:00+00:00")
    row = SqliteStoredPages(connection).article(1)
    assert (row["tags"], row["is_korea"], row["authors"]) == ('["korea"]', 1, None)
    sighting = {"url": "https://blog.example/copy", "duplicate_of": 1, "duplicate_kind": "near",
                "similarity": 0.8, "fetched_at": "2026-11-05T00:00:00+00:00"}  # fmt: skip
    articles.insert_duplicate(sighting)
    assert memory.seen("blog.example/copy") == (1, "2026-11-05T00:00:00+00:00")
    assert articles.sighting_recorded("https://blog.example/copy", "2026-11-05T00:00:00+00:00")
    assert articles.sighting_recorded("https://herald.example/a/1", "2026-11-01T00:00:00+00:00")
    assert not articles.sighting_recorded("https://blog.example/copy", "2026-11-06T00:00:00+00:00")
    assert not articles.sighting_recorded("https://blog.example/copy", None)


def test_versions_of_a_revisited_story(connection):
    articles = SqliteArticles(connection)
    articles.insert(_story(1, canonical_url="https://herald.example/c/1", text_hash="h1"))
    assert articles.story_urls(1) == ("https://herald.example/a/1", "https://herald.example/c/1")
    assert articles.story_urls(2) is None
    assert articles.text_hashes(1) == {"h1"}
    version = articles.insert_version(
        1, {"url": "https://herald.example/a/1", "title": "Updated", "text": "New.",
            "text_hash": "h2"}
    )  # fmt: skip
    assert version == 1
    assert articles.text_hashes(1) == {"h1", "h2"}
    assert SqliteStoryIndex(connection).story_text(1) == "Story number 1."  # first text stays


# -- the near-duplicate index --------------------------------------------------------------------
def test_index_lookups_and_staging(connection):
    index, articles = SqliteStoryIndex(connection), SqliteArticles(connection)
    index.reset('{"bands": 3}')
    assert index.params() == '{"bands": 3}'
    index.stage("https://herald.example/a/1", [10, 11, 12])
    index.stage("https://herald.example/a/never-stored", [10, 99])
    articles.insert(_story(1, text_hash="same"))
    index.stage("https://herald.example/a/2", [10, 11, 20])
    articles.insert(_story(2, text_hash="same"))
    articles.insert(_story(3))  # nothing staged: not in the index
    assert index.size() == 6
    assert index.story_candidates([10, 11, 12, 10], limit=5) == [1, 2]  # most shared first
    assert index.story_candidates([10, 20], limit=5) == [2, 1]
    assert index.story_candidates([10, 20], limit=1) == [2]
    assert index.story_candidates([99], limit=5) == []  # the dropped story's keys
    assert index.story_candidates([], limit=5) == []
    assert index.story_for_text_hash("same") == 1  # the oldest
    assert index.story_for_keys(["nowhere.example/x", "herald.example/a/2"]) == 2
    assert index.story_for_keys(["nowhere.example/x"]) is None
    index.add(3, [20])
    assert index.story_candidates([20], limit=5) == [2, 3]


def test_staged_keys_are_bounded(connection):
    index = SqliteStoryIndex(connection)
    for n in range(5):
        index.stage(f"https://blog.example/{n}", [n], cap=3)
    assert list(connection.staged_bands) == [f"https://blog.example/{n}" for n in (2, 3, 4)]


def test_a_storys_keys_are_replaced_through_its_own_rows(connection):
    index, articles = SqliteStoryIndex(connection), SqliteArticles(connection)
    for n, keys in ((1, [10, 11]), (2, [10, 12])):
        index.stage(f"https://herald.example/a/{n}", keys)
        articles.insert(_story(n))
    with connection.writing() as db:
        replace_bands(db, 1, [13])
        # found by story: a text cleaned again at the end of a long run does not read every
        # row of the index (which grows with every story stored)
        plan = db.execute(
            "EXPLAIN QUERY PLAN DELETE FROM lsh_bands WHERE article_id = ?", [1]
        ).fetchall()
    assert any("idx_lsh_bands_article_id" in step[-1] for step in plan)
    assert index.story_candidates([10, 11, 12, 13], limit=5) == [2, 1]
    stored = connection.db.execute("SELECT band_key FROM lsh_bands WHERE article_id = 1")
    assert stored.fetchall() == [(13,)]


def test_index_rebuild_reads_every_story_in_batches(connection):
    index, articles = SqliteStoryIndex(connection), SqliteArticles(connection)
    for n in range(1, 6):
        index.stage(f"https://herald.example/a/{n}", [n])
        articles.insert(_story(n))
    index.reset('{"bands": 4}')
    assert index.size() == 0
    assert index.params() == '{"bands": 4}'
    assert [(i, h) for i, _, h in index.stories(batch=2)] == [(n, None) for n in range(1, 6)]
    index.set_text_hash(2, "h2")
    assert index.story_for_text_hash("h2") == 2


# -- URL memory and the conditional-GET cache ----------------------------------------------------
def test_url_keys_keep_their_first_story_and_latest_sighting(connection):
    articles, memory = SqliteArticles(connection), SqliteUrlMemory(connection)
    articles.insert(_story(1))
    articles.insert(_story(2, canonical_url="https://herald.example/a/1"))
    assert memory.seen("herald.example/a/1") == (1, "2026-11-02T00:00:00+00:00")
    articles.insert_duplicate({"url": "https://herald.example/a/1", "duplicate_of": 1,
                               "duplicate_kind": "url", "fetched_at": "2026-10-01T00:00:00+00:00"})  # fmt: skip
    assert memory.seen("herald.example/a/1") == (1, "2026-11-02T00:00:00+00:00")  # not older
    assert memory.seen("herald.example/a/3") is None
    batches = list(memory.all_keys(batch=1))
    assert [len(b) for b in batches] == [1, 1]
    assert [b[0][0] for b in batches] == ["herald.example/a/1", "herald.example/a/2"]


def test_http_cache(connection):
    cache = SqliteHttpCache(connection)
    url = "https://herald.example/feed.xml"
    assert cache.get(url) is None
    cache.put(url, etag='"v1"', last_modified=None, content_type="application/rss+xml",
              body=b"<rss>one</rss>")  # fmt: skip
    cache.put(url, etag='"v2"', last_modified="Tue, 24 Nov 2026 08:00:00 GMT",
              content_type="application/rss+xml", body=b"<rss>two</rss>")  # fmt: skip
    cached = cache.get(url)
    assert cached is not None
    assert {k: cached[k] for k in ("etag", "last_modified", "body")} == {
        "etag": '"v2"',
        "last_modified": "Tue, 24 Nov 2026 08:00:00 GMT",
        "body": b"<rss>two</rss>",
    }
    cache.db.execute("UPDATE http_cache SET checked_at = 'then'")
    cache.checked(url)
    assert cache.db.execute("SELECT checked_at FROM http_cache").fetchone()[0] != "then"
    cache.forget(url)
    assert cache.get(url) is None


# -- learned boilerplate -------------------------------------------------------------------------
def test_boilerplate_sightings_are_capped(connection):
    store = SqliteBoilerplate(connection)
    for n in range(5):
        store.record("a.example", f"https://a.example/{n}", {"nav": "Home | News"}, cap=3)
    store.record("a.example", "https://a.example/0", {"nav": "Home | News"}, cap=3)  # again
    store.record("a.example", "https://a.example/9", {"own": "One story's line"}, cap=3)
    count = "SELECT COUNT(*) FROM boilerplate_sightings WHERE line_hash = 'nav'"
    assert store.db.execute(count).fetchone()[0] == 3
    assert store.frequent("a.example", ["nav", "own"], min_articles=3) == {"nav"}
    assert store.frequent("a.example", ["nav", "own"], min_articles=1) == {"nav", "own"}
    assert store.frequent("b.example", ["nav"], min_articles=1) == set()
    many = [f"x{n}" for n in range(1200)] + ["nav"]  # more hashes than one query binds
    assert store.frequent("a.example", many, min_articles=3) == {"nav"}


# -- runs ----------------------------------------------------------------------------------------
def test_runs_are_opened_closed_and_judged_against_history(connection):
    runs = SqliteRuns(connection)
    host = socket.gethostname()
    with connection.writing() as db:  # a run left "running" by a process that died
        db.execute("INSERT INTO runs (site, status, pid, host) VALUES ('a', 'running', ?, ?)",
                   [2**22 + 12345, host])  # fmt: skip
    first = runs.start(spider="feed", site="a")
    assert runs.db.execute("SELECT status FROM runs WHERE id = 1").fetchone()[0] == "killed"
    runs.finish(first, status="finished", problems=["1 error logged"],
                stats={"response_received_count": 7, "store/inserted": 3, "log_count/ERROR": 1,
                       "downloader/exception_count": 2})  # fmt: skip
    second = runs.start(spider="feed", site="a")
    row = runs.db.execute(
        "SELECT status, pid, pages, items_stored, errors, problems FROM runs WHERE id = ?", [first]
    ).fetchone()
    assert row == ("finished", os.getpid(), 7, 3, 3, '["1 error logged"]')
    assert [r["id"] for r in runs.recent("a")] == [first]  # the running one is not closed yet
    assert runs.recent("a", before_id=first) == []
    assert runs.recent("a")[0]["stats"]["store/inserted"] == 3
    assert second > first


def test_a_workers_run_is_recorded_once(connection):
    runs = SqliteRuns(connection)
    report = {"spider": "feed", "site": "b", "started_at": "2026-11-01T00:00:00+00:00",
              "finished_at": "2026-11-01T00:05:00+00:00", "status": "finished", "pid": 42,
              "host": "worker-1", "stats": {"distributed/pushed": 4}, "problems": []}  # fmt: skip
    run_id = runs.record(report)
    assert run_id is not None
    assert runs.record(report) is None
    row = runs.db.execute("SELECT items_stored, host FROM runs WHERE id = ?", [run_id]).fetchone()
    assert row == (4, "worker-1")


# -- reprocessing and reports --------------------------------------------------------------------
def test_stored_pages_for_reprocessing(connection):
    articles, pages = SqliteArticles(connection), SqliteStoredPages(connection)
    articles.insert(_story(1, site="a", title="One"), html="<p>한국어 page</p>")
    articles.insert(_story(2, site="b", title="Two"), html="<p>two</p>")
    articles.insert(_story(3, site="a", title="Three"))  # HTML not kept: not reprocessed
    assert pages.ids() == [1, 2]
    assert pages.ids(site="a") == [1]
    assert pages.ids(since="2026-11-02T00:00:00+00:00") == [2]
    assert pages.html(1) == "<p>한국어 page</p>"
    assert pages.html(3) is None
    with connection.writing() as db:  # a page kept by a version that wrote zlib
        db.execute("UPDATE pages SET html = ? WHERE article_id = 2",
                   [zlib.compress("<p>two, 두</p>".encode(), 6)])  # fmt: skip
    assert pages.html(2) == "<p>two, 두</p>"
    blob = connection.db.execute("SELECT html FROM pages WHERE article_id = 1").fetchone()[0]
    assert blob[:4] == b"\x28\xb5\x2f\xfd"  # written as a zstd frame
    pages.update(1, {"title": "New title", "not_a_column": "x"})
    assert pages.article(1)["title"] == "New title"
    assert pages.article(9) is None
    articles.insert_duplicate({"url": "https://blog.example/c", "duplicate_of": 1,
                               "duplicate_kind": "exact"})  # fmt: skip
    assert pages.duplicate_recorded("https://blog.example/c", 1)
    assert not pages.duplicate_recorded("https://blog.example/c", 2)
    newest = newest_articles(connection.db, limit=2)
    assert [(r["site"], r["title"]) for r in newest] == [("a", "Three"), ("b", "Two")]
