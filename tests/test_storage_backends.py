"""Both storage backends against the protocols the steps and middlewares use: every class has
each member of its protocols with the same parameters, and the SQLite archive and a real Redis
give the same answers to the same small scenario."""

from __future__ import annotations

import inspect
from typing import Protocol

import pytest

from crawler.distributed.config import DistributedConfig
from crawler.distributed.shared import (
    RedisBoilerplate,
    RedisHttpCache,
    RedisUrlMemory,
    url_key_value,
)
from crawler.storage.articles import SqliteArticles
from crawler.storage.boilerplate import SqliteBoilerplate
from crawler.storage.connection import Connection
from crawler.storage.incremental import SqliteHttpCache, SqliteUrlMemory
from crawler.storage.index import SqliteStoryIndex
from crawler.storage.protocols import (
    ArticleStore,
    BoilerplateStore,
    DedupeIndex,
    HttpCache,
    StoryIndex,
    StoryVersions,
    UrlMemory,
)
from crawler.urls import url_key
from tests.conftest import needs_redis

IMPLEMENTATIONS = [
    (UrlMemory, SqliteUrlMemory),
    (UrlMemory, RedisUrlMemory),
    (HttpCache, SqliteHttpCache),
    (HttpCache, RedisHttpCache),
    (BoilerplateStore, SqliteBoilerplate),
    (BoilerplateStore, RedisBoilerplate),
    (StoryIndex, SqliteStoryIndex),
    (DedupeIndex, SqliteStoryIndex),
    (ArticleStore, SqliteArticles),
    (StoryVersions, SqliteArticles),
]


def protocol_members(protocol: type) -> set[str]:
    names: set[str] = set()
    for base in protocol.__mro__:
        if base is Protocol or not getattr(base, "_is_protocol", False):
            continue
        names.update(n for n in vars(base) if not n.startswith("_"))
    return names


def parameters(function: object) -> list[tuple[str, object, object]]:
    """Names, kinds and defaults of a function's parameters (annotations aside)."""
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


def mismatches(protocol: type, cls: type) -> list[str]:
    """The members of ``protocol`` that ``cls`` lacks or declares differently."""
    found = []
    for name in sorted(protocol_members(protocol)):
        wanted = inspect.getattr_static(protocol, name)
        have = inspect.getattr_static(cls, name, None)
        if have is None:
            found.append(f"{name}: missing")
        elif isinstance(wanted, property):
            if not isinstance(have, property):
                found.append(f"{name}: not a property")
        elif not callable(have) or parameters(have) != parameters(wanted):
            found.append(f"{name}: {parameters(have)} != {parameters(wanted)}")
    return found


@pytest.mark.parametrize(
    ("protocol", "cls"),
    IMPLEMENTATIONS,
    ids=[f"{c.__name__}-{p.__name__}" for p, c in IMPLEMENTATIONS],
)
def test_each_backend_class_has_its_protocols_members(protocol, cls):
    assert protocol_members(protocol)
    assert mismatches(protocol, cls) == []


def test_a_class_missing_a_member_is_caught():
    class Partial:
        def get(self, url): ...
        def put(self, url, etag, last_modified, content_type, body): ...  # not keyword-only

    assert mismatches(HttpCache, Partial) == [
        "checked: missing",
        "forget: missing",
        f"put: {parameters(Partial.put)} != {parameters(HttpCache.put)}",
        "release: missing",
    ]


# -- the same scenario on both -------------------------------------------------------------------
@pytest.fixture
def backends(tmp_path, server, redis_url):
    """``(connection, config)``: a new archive, and the key names on a new Redis server."""
    connection = Connection.acquire(tmp_path / "news.db")
    yield connection, DistributedConfig(redis_url=redis_url)
    connection.release()


@needs_redis
def test_url_memory_answers_the_same(backends, server):
    connection, config = backends
    articles = SqliteArticles(connection)
    story = articles.insert(
        {"url": "https://herald.example/a/1?utm_source=feed", "fetched_at": "2026-11-01T00:00:00+00:00",
         "canonical_url": "https://herald.example/a/1"}
    )  # fmt: skip
    articles.insert_duplicate(
        {"url": "https://blog.example/copy", "duplicate_of": story, "duplicate_kind": "near",
         "fetched_at": "2026-11-02T00:00:00+00:00"}
    )  # fmt: skip
    sqlite = SqliteUrlMemory(connection)
    # The writer publishes the archive's keys for the workers (scrapy ingest).
    for batch in sqlite.all_keys(batch=1):
        server.hset(config.url_keys_key, mapping={k: url_key_value(a, s) for k, a, s in batch})
    redis = RedisUrlMemory(server, config)
    urls = ["https://herald.example/a/1", "http://www.herald.example/a/1/",
            "https://blog.example/copy", "https://blog.example/other"]  # fmt: skip
    answers = [(sqlite.seen(url_key(u)), redis.seen(url_key(u))) for u in urls]
    assert [s for s, _ in answers] == [
        (story, "2026-11-01T00:00:00+00:00"),
        (story, "2026-11-01T00:00:00+00:00"),
        (story, "2026-11-02T00:00:00+00:00"),
        None,
    ]
    assert [r for _, r in answers] == [s for s, _ in answers]


def _cache_scenario(cache: HttpCache) -> list[object]:
    url = "https://herald.example/feed.xml"
    seen: list[object] = []

    def look(u: str = url) -> None:
        got = cache.get(u)
        seen.append(None if got is None else {k: v for k, v in got.items() if k != "fetched_at"})

    look()
    cache.put(url, etag='"v1"', last_modified=None, content_type="application/rss+xml",
              body=b"<rss>one</rss>")  # fmt: skip
    look()
    cache.put(url, etag=None, last_modified="Tue, 24 Nov 2026 08:00:00 GMT", content_type=None,
              body=b"")  # fmt: skip
    look()
    cache.checked(url)
    look()
    cache.checked("https://herald.example/never-cached.xml")
    look("https://herald.example/never-cached.xml")
    cache.forget(url)
    look()
    cache.forget(url)
    return seen


@needs_redis
def test_http_cache_answers_the_same(backends, server):
    connection, config = backends
    sqlite = _cache_scenario(SqliteHttpCache(connection))
    assert sqlite == [
        None,
        {"etag": '"v1"', "last_modified": None, "content_type": "application/rss+xml",
         "body": b"<rss>one</rss>"},
        {"etag": None, "last_modified": "Tue, 24 Nov 2026 08:00:00 GMT", "content_type": None,
         "body": b""},
        {"etag": None, "last_modified": "Tue, 24 Nov 2026 08:00:00 GMT", "content_type": None,
         "body": b""},
        None,
        None,
    ]  # fmt: skip
    assert _cache_scenario(RedisHttpCache(server, config)) == sqlite


def _boilerplate_scenario(store: BoilerplateStore) -> list[set[str]]:
    nav, own = {"nav": "Home | World | Korea"}, {"own": "A line of one story only"}
    for n in range(5):
        store.record("a.example", f"https://a.example/{n}", nav, cap=3)
    store.record("a.example", "https://a.example/1", {**nav, **own}, cap=3)  # seen again
    store.record("b.example", "https://b.example/1", nav, cap=3)
    store.record("b.example", "https://b.example/2", {}, cap=3)
    return [
        store.frequent(domain, ["nav", "own", "nav"], min_articles=k)
        for domain in ("a.example", "b.example", "c.example")
        for k in (1, 3, 4)
    ]


@needs_redis
def test_boilerplate_store_answers_the_same(backends, server):
    connection, config = backends
    sqlite = _boilerplate_scenario(SqliteBoilerplate(connection))
    assert sqlite == [{"nav", "own"}, {"nav"}, set(), {"nav"}, set(), set(), set(), set(), set()]
    assert _boilerplate_scenario(RedisBoilerplate(server, config)) == sqlite
