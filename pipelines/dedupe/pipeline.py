"""The dedupe pipeline step: fingerprints each item (``core``), asks the archive for the story
it repeats, and marks the item so the store step records a duplicate; keeps the index in step."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from itemadapter import ItemAdapter
from scrapy.exceptions import NotConfigured

from crawler.config import get_bool
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
    text_hash,
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


# -- the pipeline -------------------------------------------------------------------------------
class DedupePipeline:
    """Sets ``text_hash`` on every item and, on a later sighting of a stored story,
    ``duplicate_of`` / ``duplicate_kind`` / ``similarity`` (the store step then writes a
    ``duplicates`` row instead of an article). Nothing is dropped.

    A stored URL whose text changed (a revisit) is kept as a new ``article_versions`` row.
    Lookups go through the process-wide connection to ``DB_PATH``, so spiders running in
    one process see each other's stories before they are committed.

    Stats: ``dedupe/new``, ``dedupe/url``, ``dedupe/exact``, ``dedupe/near``,
    ``dedupe/version``.
    """

    def __init__(self, crawler: Crawler, config: DedupeConfig) -> None:
        self.crawler = crawler
        self.config = config
        self.index: DedupeIndex | None = None
        self.versions: StoryVersions | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        if not get_bool(crawler.settings, "DEDUPE_ENABLED"):
            raise NotConfigured("DEDUPE_ENABLED is off")
        return cls(crawler, DedupeConfig.from_settings(crawler.settings))

    def open_spider(self) -> None:
        self.index, self.versions = self.open_stores()
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
        fp = fingerprint(text, self.config, title=adapter.get("title"))
        return self._judge(item, adapter, text, fp)

    def _judge(self, item: Any, adapter: ItemAdapter, text: str, fp: Fingerprint) -> Any:
        url = adapter["url"]
        if fp.text_hash:
            adapter["text_hash"] = fp.text_hash
        keys = url_keys(url, adapter.get("canonical_url"), adapter.get("request_url"))
        verdict = find_duplicate(fp, keys, self.index, self.config)
        stats = self.crawler.stats
        if verdict is None:
            stats.inc_value("dedupe/new")
            if fp.band_keys:
                self.index.stage(url, list(fp.band_keys))
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
