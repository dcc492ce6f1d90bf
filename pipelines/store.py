"""Store step: write articles and duplicate sightings into the SQLite archive."""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from itemadapter import ItemAdapter
from scrapy.exceptions import CloseSpider, DropItem, NotConfigured
from scrapy.utils.defer import deferred_from_coro
from twisted.internet import task

from crawler.config import get_bool, read_config, setting
from crawler.storage.articles import SqliteArticles
from crawler.storage.errors import ArchiveError, is_fatal, note_failure

if TYPE_CHECKING:
    from typing import Self

    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings

    from crawler.storage.protocols import ArticleStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoreConfig:
    """The store step's settings, read once."""

    db_path: str = setting("DB_PATH")
    keep_html: bool = setting("STORE_KEEP_HTML")
    batch_size: int = setting("STORE_BATCH_SIZE")
    flush_interval: float = setting("STORE_FLUSH_INTERVAL")
    busy_timeout: float = setting("DB_BUSY_TIMEOUT")

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> StoreConfig:
        config = read_config(cls, settings)
        if config.batch_size < 1 or config.flush_interval <= 0 or config.busy_timeout <= 0:
            raise ValueError(
                "STORE_BATCH_SIZE must be >= 1, STORE_FLUSH_INTERVAL and DB_BUSY_TIMEOUT > 0"
            )
        return config


class StorePipeline:
    """Inserts first sightings into ``articles`` (raw HTML into ``pages``) and later
    sightings (items the dedupe step marked, or a URL already stored) into ``duplicates``.

    Stats: ``store/inserted``, ``store/duplicates``, ``store/duplicates/<kind>``,
    ``store/errors``.
    """

    def __init__(self, crawler: Crawler, config: StoreConfig) -> None:
        self.crawler = crawler
        self.config = config
        self.articles: ArticleStore | None = None
        self._flusher: task.LoopingCall | None = None
        self.failed: str | None = None
        """The database error that stopped the store step (then nothing more is written)."""

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        if not get_bool(crawler.settings, "STORE_ENABLED"):
            raise NotConfigured("STORE_ENABLED is off")
        return cls(crawler, StoreConfig.from_settings(crawler.settings))

    def open_spider(self) -> None:
        try:
            self.articles = self.open_store()
        except ArchiveError as exc:
            # Read-only file, full disk, locked past DB_BUSY_TIMEOUT: fetch nothing that
            # cannot be kept. The crawl command exits non-zero (database_failures).
            message = note_failure(self.config.db_path, exc, busy_timeout=self.config.busy_timeout)
            self.failed = message
            self.crawler.stats.set_value("store/fatal_error", message)
            logger.error("%s; crawl stopped", message)
            raise CloseSpider("database_error") from None
        self._flusher = task.LoopingCall(self._flush)
        self._flusher.start(self.config.flush_interval, now=False)

    def open_store(self) -> ArticleStore:
        """The archive of ``DB_PATH`` (the connection every component of the process shares)."""
        return SqliteArticles.for_settings(self.crawler.settings, self.config.db_path)

    def _flush(self) -> None:
        try:
            self.articles.maybe_flush()
        except sqlite3.Error as exc:
            self._fail(exc)

    def close_spider(self) -> None:
        if self._flusher is not None and self._flusher.running:
            self._flusher.stop()
        if self.articles is not None:
            try:
                self.articles.release()
            except sqlite3.Error as exc:
                self._fail(exc)
            finally:
                self.articles = None
        stats = self.crawler.stats
        logger.info(
            "store: %d articles stored, %d duplicates recorded in %s",
            stats.get_value("store/inserted", 0),
            stats.get_value("store/duplicates", 0),
            self.config.db_path,
        )

    def process_item(self, item: Any) -> Any:
        adapter = ItemAdapter(item)
        if self.failed:
            self.crawler.stats.inc_value("store/not_stored")
            raise DropItem(f"not stored ({self.failed}): {adapter.get('url')}", log_level="DEBUG")
        try:
            self._store(adapter)
        except (sqlite3.Error, ArchiveError) as exc:
            self._fail(exc)
            raise DropItem(f"database write failed for {adapter.get('url')}: {exc}") from exc
        return item

    def _store(self, adapter: ItemAdapter) -> None:
        stats = self.crawler.stats
        if adapter.get("duplicate_kind"):
            self._duplicate(adapter)
            return
        html = adapter.get("html") if self.config.keep_html else None
        article_id = self.articles.insert(adapter, html=html)
        if article_id is not None:
            stats.inc_value("store/inserted")
            logger.debug("stored #%d %s", article_id, adapter.get("url"))
            return
        # The URL is already in the archive (a run that overlapped, or no dedupe step):
        # it is a sighting, recorded as such rather than lost.
        adapter["duplicate_of"] = self.articles.id_for_url(adapter["url"])
        adapter["duplicate_kind"] = "url"
        adapter["similarity"] = 1.0
        self._duplicate(adapter)

    def _duplicate(self, adapter: ItemAdapter) -> None:
        self.articles.insert_duplicate(adapter)
        self.crawler.stats.inc_value("store/duplicates")
        self.crawler.stats.inc_value(f"store/duplicates/{adapter['duplicate_kind']}")
        logger.debug(
            "duplicate (%s) of #%s: %s",
            adapter["duplicate_kind"],
            adapter["duplicate_of"],
            adapter.get("url"),
        )

    def _fail(self, exc: Exception) -> None:
        """A write failed (disk full, read-only file, lock wait timed out): stop the crawl
        rather than fetch pages that cannot be kept. Nothing committed is lost or damaged:
        the failed batch is rolled back whole, and its pages are fetched again next run."""
        self.crawler.stats.inc_value("store/errors")
        if not is_fatal(exc):
            logger.error("database %s: write failed: %s", self.config.db_path, exc)
            return
        message = note_failure(self.config.db_path, exc, busy_timeout=self.config.busy_timeout)
        unsaved = self.articles.unsaved if self.articles is not None else 0
        if unsaved:
            self.crawler.stats.set_value("store/unsaved_writes", unsaved)
            message += f" ({unsaved} writes of the last batch rolled back: fetched again next run)"
        if self.failed is None:
            logger.error("%s; crawl stopped", message)
        self.failed = message
        engine = self.crawler.engine
        if engine is not None and engine.running:
            self.crawler.stats.set_value("store/fatal_error", message)
            deferred_from_coro(engine.close_spider_async(reason="database_error"))
