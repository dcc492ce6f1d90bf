"""What the pipeline steps and middlewares need from storage, as small protocols.

The SQLite archive implements every one of them (``Sqlite*`` classes of this package); the
distributed mode's Redis classes (``crawler/distributed/shared.py``) implement the ones a crawl
worker uses, which has no database: ``UrlMemory``, ``HttpCache`` and ``BoilerplateStore``.
A component opens its store when the spider opens and calls ``release`` when it closes.

This module imports nothing heavy: the clean step's pool workers import its names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, TypedDict, runtime_checkable

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator


@runtime_checkable
class UrlMemory(Protocol):
    """The URL keys of stored stories, as the incremental crawl asks before a request
    (``SkipStoredMiddleware``)."""

    def seen(self, key: str) -> tuple[int, str | None] | None:
        """``(article_id, last_seen)`` of a stored URL key (``crawler.urls.url_key``), else
        ``None``."""
        ...

    def release(self) -> None: ...


@runtime_checkable
class PageOutcomes(Protocol):
    """What the incremental crawl remembers besides the stored stories' own URLs: the other
    URLs that led to a story, and the pages dropped as not an article (``SqliteUrlMemory``).
    A distributed worker has no such memory: the writer records the keys of what it stores.
    """

    def record_aliases(self, article_id: int, keys: Iterable[str], seen: str | None = None) -> None:
        """Point more URL keys at stored story ``article_id``."""
        ...

    def dropped(self, key: str) -> tuple[str, str | None, str | None] | None:
        """``(reason, entry signature, last_seen)`` of a dropped page's URL key."""
        ...

    def record_drop(self, keys: Iterable[str], *, url: str, reason: str, entry: str | None) -> None:
        """Remember a page dropped as not an article, under every key it is known by."""
        ...


@runtime_checkable
class LinkTargets(Protocol):
    """Aggregator links resolved to publishers' URLs (the aggregator spider's Google News
    decoding), so that each link is resolved once."""

    def get(self, link: str) -> tuple[str | None, str | None, str | None] | None:
        """``(target, reason, resolved_at)``; ``target`` ``None``: unresolved (``reason``)."""
        ...

    def put(self, link: str, target: str | None, *, reason: str | None = None) -> None: ...

    def release(self) -> None: ...


class CachedSource(TypedDict):
    """What ``HttpCache.get`` gives back for a source URL."""

    etag: str | None
    last_modified: str | None
    content_type: str | None
    body: bytes | None
    """Decompressed."""
    fetched_at: str | None


@runtime_checkable
class HttpCache(Protocol):
    """Validators and bodies of source responses (feeds, sitemaps, listing pages) for
    conditional GET (``ConditionalGetMiddleware``)."""

    def get(self, url: str) -> CachedSource | None:
        """What was stored for ``url``, or ``None``."""
        ...

    def put(
        self,
        url: str,
        *,
        etag: str | None,
        last_modified: str | None,
        content_type: str | None,
        body: bytes,
    ) -> None:
        """Remember a 200 answer (replaces what was stored for ``url``)."""
        ...

    def checked(self, url: str) -> None:
        """Date a 304 answer: the stored copy is still current."""
        ...

    def forget(self, url: str) -> None: ...

    def release(self) -> None: ...


@runtime_checkable
class BoilerplateStore(Protocol):
    """Sightings of lines per domain and article, from which the clean step learns a
    domain's boilerplate (``CleanPipeline``)."""

    def frequent(self, domain: str, line_hashes: Iterable[str], *, min_articles: int) -> set[str]:
        """The hashes among ``line_hashes`` seen on at least ``min_articles`` articles."""
        ...

    def record(self, domain: str, article_key: str, lines: dict[str, str], *, cap: int) -> None:
        """Record that story ``article_key`` of ``domain`` has ``lines`` (hash -> text);
        a line seen on ``cap`` stories already is not recorded again."""
        ...

    def titles(self, domain: str, *, limit: int) -> list[str]:
        """Headlines of the latest ``limit`` stored stories of ``domain`` (none without an
        archive)."""
        ...

    def story_for_url(self, url: str) -> int | None:
        """The id of the story stored with this URL (``None`` without an archive)."""
        ...

    def release(self) -> None: ...


@runtime_checkable
class StoryIndex(Protocol):
    """The stored stories as ``pipelines.dedupe.find_duplicate`` looks them up."""

    def story_for_keys(self, keys: Iterable[str]) -> int | None:
        """The stored story any of the URL ``keys`` names."""
        ...

    def story_for_text_hash(self, text_hash: str) -> int | None:
        """The first stored story whose normalised text has this hash."""
        ...

    def story_candidates(self, band_keys: Iterable[int], *, limit: int) -> list[int]:
        """Stored stories sharing LSH bands with ``band_keys``, most shared first."""
        ...

    def story_text(self, article_id: int) -> str | None: ...

    def story_title(self, article_id: int) -> str | None: ...


@runtime_checkable
class DedupeIndex(StoryIndex, Protocol):
    """``StoryIndex`` plus its upkeep by the dedupe step (``DedupePipeline``)."""

    def stage(self, url: str, band_keys: list[int], *, cap: int = 10_000) -> None:
        """Hold a new story's band keys until the store step inserts it (by ``url``)."""
        ...

    def add(self, article_id: int, band_keys: list[int]) -> None: ...

    def params(self) -> str | None:
        """The parameters (JSON) the index was built with, if any."""
        ...

    def reset(self, params: str) -> None:
        """Empty the index and record the ``params`` it is rebuilt with."""
        ...

    def stories(self, *, batch: int = 1000) -> Iterator[tuple[int, str, str | None]]:
        """``(id, text, text_hash)`` of every stored story, in id order."""
        ...

    def set_text_hash(self, article_id: int, text_hash: str) -> None: ...

    def story_raw_text(self, article_id: int) -> str | None:
        """The stored story's text as extracted, before cleaning."""
        ...

    def flush(self) -> None: ...

    def release(self) -> None: ...


@runtime_checkable
class StoryVersions(Protocol):
    """What the dedupe step asks about a stored story revisited at its own URL, and where
    it keeps a changed text (``DedupePipeline``)."""

    def story_urls(self, article_id: int) -> tuple[str, str | None] | None:
        """``(url, canonical_url)`` of a stored story."""
        ...

    def text_hashes(self, article_id: int) -> set[str]:
        """Hashes of the story's first text and of every later version."""
        ...

    def insert_version(self, article_id: int, item: dict[str, Any]) -> int: ...

    def release(self) -> None: ...


@runtime_checkable
class ArticleStore(Protocol):
    """Where the store step writes stories and sightings (``StorePipeline``). Writes are
    batched: ``maybe_flush`` commits a full or old batch, ``release`` the rest."""

    @property
    def unsaved(self) -> int:
        """Writes lost with batches whose commit failed."""
        ...

    def insert(self, item: dict[str, Any], *, html: str | None = None) -> int | None:
        """Store a first sighting; its id, or ``None`` when its URL is stored already."""
        ...

    def insert_duplicate(self, item: dict[str, Any]) -> int:
        """Record a later sighting of stored story ``item["duplicate_of"]``."""
        ...

    def id_for_url(self, url: str) -> int | None: ...

    def maybe_flush(self) -> None: ...

    def release(self) -> None: ...


@runtime_checkable
class CleanedStories(Protocol):
    """The stories of a run as the clean step cleans them again (``pipelines.clean.reclean``)."""

    def stored_by_id(self, ids: Iterable[int]) -> Iterator[dict[str, Any]]:
        """``id, title, language, text_raw, text, removed`` of the stories ``ids`` still
        stored, in id order."""
        ...

    def stories_with_text_hash(self, text_hash: str) -> list[int]:
        """Every stored story whose normalised text has this hash, oldest first."""
        ...

    def update_cleaned(
        self,
        article_id: int,
        *,
        text: str,
        removed: list[dict[str, str]],
        text_hash: str | None,
        band_keys: Iterable[int] | None,
    ) -> None: ...

    def story_index(self) -> MergingIndex:
        """The stored stories as the dedupe step looks them up, able to merge one story
        into an earlier one."""
        ...


@runtime_checkable
class MergingIndex(StoryIndex, Protocol):
    """``StoryIndex`` plus turning a stored story into a sighting of an earlier one."""

    def merge(self, later: int, into: int, *, kind: str, similarity: float) -> bool: ...
