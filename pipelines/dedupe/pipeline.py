"""The dedupe pipeline step: fingerprints each item (``core``), asks the archive for the story
it repeats, and marks the item so the store step records a duplicate; keeps the index in step."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from itemadapter import ItemAdapter
from scrapy.exceptions import NotConfigured

from crawler.config import get_bool
from crawler.pool import offload, pool_warm
from crawler.storage.articles import SqliteArticles
from crawler.storage.index import SqliteStoryIndex
from crawler.urls import url_keys
from pipelines.dedupe.core import (
    EXACT,
    NEAR,
    URL,
    DedupeConfig,
    Fingerprint,
    find_duplicate,
    fingerprint,
    load_minhash,
    text_fingerprint,
    text_hash,
    with_band_keys,
)

if TYPE_CHECKING:
    from typing import Self

    from scrapy.crawler import Crawler

    from crawler.storage.protocols import DedupeIndex, StoryIndex, StoryVersions

logger = logging.getLogger(__name__)


class EarlierStories:
    """The archive as ``find_duplicate`` queries it (``StoryIndex``), limited to stories
    stored before ``article_id`` and without URL keys: a stored story checked again (its
    text cleaned again, or re-processed) is never its own duplicate, and the first sighting
    stays the story."""

    def __init__(self, index: StoryIndex, article_id: int) -> None:
        self.index = index
        self.article_id = article_id

    def story_for_keys(self, keys: Any) -> int | None:
        return None

    def story_for_text_hash(self, text_hash: str) -> int | None:
        found = self.index.story_for_text_hash(text_hash)  # the oldest with that hash
        return found if found is not None and found < self.article_id else None

    def story_candidates(self, band_keys: Any, *, limit: int) -> list[int]:
        found = self.index.story_candidates(band_keys, limit=limit + 1)
        return [c for c in found if c < self.article_id][:limit]

    def story_text(self, article_id: int) -> str | None:
        return self.index.story_text(article_id)

    def story_title(self, article_id: int) -> str | None:
        return self.index.story_title(article_id)


def rebuild_index(index: DedupeIndex, config: DedupeConfig) -> int:
    """(Re)build the near-duplicate index of every stored story for ``config``'s parameters
    (and fill missing text hashes); returns the number of stories indexed."""
    index.reset(config.index_params)
    count = 0
    for article_id, text, stored_hash in index.stories():
        fp = fingerprint(text, config)
        if stored_hash != fp.text_hash and fp.text_hash:
            index.set_text_hash(article_id, fp.text_hash)
        if fp.band_keys:
            index.add(article_id, list(fp.band_keys))
        count += 1
        if count % 10_000 == 0:
            index.flush()
            logger.info("dedupe: indexed %d stored stories", count)
    index.flush()
    return count


# -- stories in flight ---------------------------------------------------------------------------
IN_FLIGHT_WAIT = 60.0
"""Seconds an item waits at most for a story in flight (a step that hangs does not hold the
others for ever: the item is then judged against what is stored)."""


def in_flight_keys(url_keys: list[str], fp: Fingerprint) -> frozenset[str]:
    """What makes two items possibly one story before either is stored: a URL key, the text
    hash, an index band."""
    keys = {f"u:{k}" for k in url_keys}
    if fp.text_hash:
        keys.add(f"h:{fp.text_hash}")
    keys.update(f"b:{k}" for k in fp.band_keys)
    return frozenset(keys)


_IN_FLIGHT: dict[str, InFlight] = {}


class InFlight:
    """The new stories between the dedupe step and the end of the item pipeline, by their
    ``in_flight_keys``."""

    def __init__(self) -> None:
        self.stories: dict[str, tuple[frozenset[str], asyncio.Future[None] | None]] = {}

    def take_off(self, url: str, keys: frozenset[str]) -> None:
        self.stories[url] = (keys, None)

    def blocking(self, keys: frozenset[str]) -> str | None:
        """The URL of a story in flight sharing one of ``keys``."""
        return next((url for url, (own, _) in self.stories.items() if own & keys), None)

    async def wait(self, keys: frozenset[str]) -> bool:
        """Wait until no story in flight shares one of ``keys``; whether it had to."""
        waited = False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + IN_FLIGHT_WAIT
        while (url := self.blocking(keys)) is not None:
            own, landed = self.stories[url]
            if landed is None:
                landed = loop.create_future()
                self.stories[url] = (own, landed)
            waited = True
            try:
                await asyncio.wait_for(asyncio.shield(landed), deadline - loop.time())
            except TimeoutError:
                logger.warning("dedupe: %s still in flight after %.0f s", url, IN_FLIGHT_WAIT)
                self.stories.pop(url, None)
        return waited

    def land(self, url: str) -> None:
        entry = self.stories.pop(url, None)
        if entry is not None and entry[1] is not None and not entry[1].done():
            entry[1].set_result(None)


# -- the pipeline -------------------------------------------------------------------------------
class DedupePipeline:
    """Sets ``text_hash`` on every item and, on a later sighting of a stored story,
    ``duplicate_of`` / ``duplicate_kind`` / ``similarity`` (the store step then writes a
    ``duplicates`` row instead of an article). Nothing is dropped.

    A stored URL whose text changed (a revisit) is kept as a new ``article_versions`` row.
    Lookups go through the process-wide connection to ``DB_PATH``, so spiders running in
    one process see each other's stories before they are committed.

    A story found new stays *in flight* until the item pipeline is done with it (stored or
    dropped): a later item sharing its URL key, text hash or an index band waits for it before
    it is judged, so two copies of one story in flight at once (while a later step waits on
    the worker pool) are still one story.

    Stats: ``dedupe/new``, ``dedupe/url``, ``dedupe/exact``, ``dedupe/near``,
    ``dedupe/version``, ``dedupe/waited`` (items that waited for a story in flight).
    """

    def __init__(self, crawler: Crawler, config: DedupeConfig) -> None:
        self.crawler = crawler
        self.config = config
        self.index: DedupeIndex | None = None
        self.versions: StoryVersions | None = None
        self.in_flight = InFlight()
        self.taken_off: set[str] = set()
        """URLs of this crawl's stories in flight."""

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        from scrapy import signals

        if not get_bool(crawler.settings, "DEDUPE_ENABLED"):
            raise NotConfigured("DEDUPE_ENABLED is off")
        pipeline = cls(crawler, DedupeConfig.from_settings(crawler.settings))
        for signal in (signals.item_scraped, signals.item_dropped, signals.item_error):
            crawler.signals.connect(pipeline.item_done, signal=signal)
        return pipeline

    def open_spider(self) -> None:
        load_minhash(self.config)
        self.index, self.versions = self.open_stores()
        # the crawls of one process writing one archive share it: their items are copies too
        self.in_flight = _IN_FLIGHT.setdefault(str(Path(self.config.db_path).resolve()), InFlight())
        stored = self.index.params()
        if stored != self.config.index_params:
            if stored is not None:
                logger.warning(
                    "dedupe: index parameters changed (%s -> %s): rebuilding the index",
                    stored,
                    self.config.index_params,
                )
            rebuilt = rebuild_index(self.index, self.config)
            if rebuilt:
                logger.info("dedupe: indexed %d stored stories", rebuilt)

    def open_stores(self) -> tuple[DedupeIndex, StoryVersions]:
        """The index and the stories of ``DB_PATH`` (the connection every component of the
        process shares)."""
        settings, path = self.crawler.settings, self.config.db_path
        index = SqliteStoryIndex.for_settings(settings, path)
        return index, SqliteArticles.for_settings(settings, path)

    def close_spider(self) -> None:
        for url in self.taken_off:  # items the crawl never finished hold no other crawl up
            self.in_flight.land(url)
        self.taken_off.clear()
        index, versions, self.index, self.versions = self.index, self.versions, None, None
        try:
            if index is not None:
                index.release()
        finally:
            if versions is not None:
                versions.release()
        stats = self.crawler.stats
        logger.info(
            "dedupe: %d new, %d same URL, %d same text, %d near-duplicates",
            *(stats.get_value(f"dedupe/{k}", 0) for k in ("new", URL, EXACT, NEAR)),
        )

    def process_item(self, item: Any) -> Any:
        adapter = ItemAdapter(item)
        text = adapter.get("text") or ""
        if text and pool_warm():
            return self._process_offloaded(item, adapter, text)
        fp = fingerprint(text, self.config, title=adapter.get("title"))
        keys = self._keys(adapter)
        if self.in_flight.blocking(in_flight_keys(keys, fp)) is not None:
            return self._judge_when_landed(item, adapter, text, fp, keys)
        return self._judge(item, adapter, text, fp, keys)

    async def _process_offloaded(self, item: Any, adapter: ItemAdapter, text: str) -> Any:
        """``process_item`` with the text's fingerprint taken in the worker pool (all but its
        MinHash band keys, which need datasketch)."""
        fp = await offload(text_fingerprint, text, self.config, title=adapter.get("title"))
        fp = with_band_keys(fp, self.config)
        return await self._judge_when_landed(item, adapter, text, fp, self._keys(adapter))

    async def _judge_when_landed(
        self, item: Any, adapter: ItemAdapter, text: str, fp: Fingerprint, keys: list[str]
    ) -> Any:
        """``_judge`` once no story in flight shares a key with the item."""
        if await self.in_flight.wait(in_flight_keys(keys, fp)):
            self.crawler.stats.inc_value("dedupe/waited")
        return self._judge(item, adapter, text, fp, keys)

    def _keys(self, adapter: ItemAdapter) -> list[str]:
        return url_keys(adapter["url"], adapter.get("canonical_url"), adapter.get("request_url"))

    def item_done(self, item: Any) -> None:
        """The item left the item pipeline (stored, dropped or failed)."""
        url = ItemAdapter(item).get("url") or ""
        self.taken_off.discard(url)
        self.in_flight.land(url)

    def _judge(
        self, item: Any, adapter: ItemAdapter, text: str, fp: Fingerprint, keys: list[str]
    ) -> Any:
        url = adapter["url"]
        if fp.text_hash:
            adapter["text_hash"] = fp.text_hash
        verdict = find_duplicate(fp, keys, self.index, self.config)
        stats = self.crawler.stats
        if verdict is None:
            stats.inc_value("dedupe/new")
            if fp.band_keys:
                self.index.stage(url, list(fp.band_keys))
            self.in_flight.take_off(url, in_flight_keys(keys, fp))
            self.taken_off.add(url)
            return item
        adapter["duplicate_of"] = verdict.article_id
        adapter["duplicate_kind"] = verdict.kind
        adapter["similarity"] = verdict.similarity
        stats.inc_value(f"dedupe/{verdict.kind}")
        raw = adapter.get("text_raw")
        if (
            verdict.kind == URL
            and fp.text_hash
            and self._changed(verdict.article_id, keys, fp, raw)
        ):
            self.versions.insert_version(verdict.article_id, adapter)
            stats.inc_value("dedupe/version")
            logger.info("dedupe: %s changed since stored as #%d", url, verdict.article_id)
        logger.debug(
            "dedupe: %s is a %s duplicate of #%d (similarity %.3f)",
            url,
            verdict.kind,
            verdict.article_id,
            verdict.similarity,
        )
        return item

    def _changed(
        self, article_id: int, keys: list[str], fp: Fingerprint, raw: str | None = None
    ) -> bool:
        """Whether a page at the stored story's own URL now has a text not seen before (a
        URL that is only a later sighting of the story had no text of its own stored). The
        page as extracted (``raw``) the same as when stored is no change, even when it is
        cleaned differently now (the clean step learned more of its site since)."""
        urls = self.versions.story_urls(article_id)
        if urls is None or not set(keys) & set(url_keys(*urls)):
            return False
        stored_raw = self.index.story_raw_text(article_id) if raw else None
        if stored_raw and text_hash(stored_raw) == text_hash(raw):
            return False
        return fp.text_hash not in self.versions.text_hashes(article_id)
