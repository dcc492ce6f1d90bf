"""``TagPipeline``: fills the Korea fields of each item from ``tag_story``'s result, and the job
a pool worker runs for it (``tag_in_worker``)."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crawler.config import default, get_bool, get_float, get_str
from pipelines.tag.lexicon import TAG_KOREA, TAG_MENTION
from pipelines.tag.loader import load_lexicon, resolve_lexicon_path
from pipelines.tag.tagger import KOREA_THRESHOLD, MENTION_THRESHOLD, Tagger, TagResult

# ItemAdapter and Scrapy are imported where the pipeline uses them: pool workers import this
# module for ``tag_in_worker`` and stay free of Scrapy and Twisted.

if TYPE_CHECKING:
    from itemadapter import ItemAdapter
    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class TagConfig:
    """The ``TAG_*`` settings, parsed and checked once."""

    lexicon_file: Path
    korea_threshold: float = KOREA_THRESHOLD
    mention_threshold: float = MENTION_THRESHOLD

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> TagConfig:
        korea = get_float(settings, "TAG_KOREA_THRESHOLD")
        mention = get_float(settings, "TAG_MENTION_THRESHOLD")
        if korea <= 0:
            raise ValueError(f"TAG_KOREA_THRESHOLD must be > 0 (got {korea})")
        if mention < 0:
            raise ValueError(f"TAG_MENTION_THRESHOLD must be >= 0 (got {mention})")
        if mention > korea:
            logger.warning(
                "TAG_MENTION_THRESHOLD (%s) is above TAG_KOREA_THRESHOLD (%s): no story will "
                "be tagged korea_mention",
                mention,
                korea,
            )
        lexicon = get_str(settings, "TAG_LEXICON_FILE")
        return cls(
            lexicon_file=resolve_lexicon_path(lexicon),
            korea_threshold=korea,
            mention_threshold=mention,
        )


@lru_cache(maxsize=4)
def tagger_for(config: TagConfig) -> Tagger:
    """The ``Tagger`` of ``config``, its lexicon loaded once per process."""
    return Tagger(
        load_lexicon(config.lexicon_file),
        korea_threshold=config.korea_threshold,
        mention_threshold=config.mention_threshold,
    )


def warm_up() -> None:
    """Load and compile the default lexicon, as a pool worker starts: the first stories it
    tags do not wait half a second for it (another ``TAG_LEXICON_FILE`` loads on its first
    job)."""
    load_lexicon(resolve_lexicon_path(default("TAG_LEXICON_FILE"))).regex  # noqa: B018


def tag_in_worker(
    config: TagConfig, title: str | None, text: str | None, language: str | None
) -> TagResult:
    """``Tagger.tag`` with the tagger of ``config``: the job a pool worker runs (the compiled
    lexicon is not sent along)."""
    return tagger_for(config).tag(title, text, language=language)


class TagPipeline:
    """Fills ``tags``, ``is_korea``, ``korea_score`` and ``korea_evidence``; skips duplicates.
    The scan runs in the worker pool once it is warm (``crawler/pool.py``)."""

    def __init__(self, crawler: Crawler, config: TagConfig) -> None:
        self.crawler = crawler
        self.config = config
        self.tagger = tagger_for(config)
        self.counts: Counter[str] = Counter()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> TagPipeline:
        from scrapy.exceptions import NotConfigured

        if not get_bool(crawler.settings, "TAG_ENABLED"):
            raise NotConfigured("TAG_ENABLED is False")
        return cls(crawler, TagConfig.from_settings(crawler.settings))

    def process_item(self, item: Any) -> Any:
        from itemadapter import ItemAdapter

        from crawler.pool import pool_warm

        adapter = ItemAdapter(item)
        if adapter.get("duplicate_kind"):
            self.counts["duplicate"] += 1
            return item
        title = adapter.get("title")
        text = adapter.get("text") or adapter.get("description")
        language = adapter.get("language")
        if pool_warm():
            return self._process_offloaded(item, adapter, title, text, language)
        return self._apply(item, adapter, self.tagger.tag(title, text, language=language))

    async def _process_offloaded(
        self,
        item: Any,
        adapter: ItemAdapter,
        title: str | None,
        text: str | None,
        language: str | None,
    ) -> Any:
        from crawler.pool import offload

        result = await offload(tag_in_worker, self.config, title, text, language)
        return self._apply(item, adapter, result)

    def _apply(self, item: Any, adapter: ItemAdapter, result: TagResult) -> Any:
        adapter["tags"] = list(dict.fromkeys([*(adapter.get("tags") or []), *result.tags]))
        adapter["is_korea"] = result.is_korea
        adapter["korea_score"] = result.score
        adapter["korea_evidence"] = result.evidence
        if self.crawler.stats is not None:
            for tag in result.tags:
                self.crawler.stats.inc_value(f"tag/{tag}")
        self.counts["tagged"] += 1
        self.counts[TAG_KOREA if result.is_korea else TAG_MENTION if result.tags else "none"] += 1
        logger.debug(
            "Tagged %s: %s (score %.2f)", adapter.get("url"), result.tags or "-", result.score
        )
        return item

    def close_spider(self) -> None:
        logger.info(
            "Korea tagging: %d stories tagged (%d korea, %d korea_mention), %d duplicates skipped",
            self.counts["tagged"],
            self.counts[TAG_KOREA],
            self.counts[TAG_MENTION],
            self.counts["duplicate"],
        )
