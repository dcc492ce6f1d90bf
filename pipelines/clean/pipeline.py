"""``CleanPipeline``: the clean step in a crawl (settings, learned boilerplate from the
archive, stats), and ``clean_with_rules_file``, the job a pool worker runs."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from crawler.config import get_bool, get_int, read_config, setting
from pipelines.clean.core import CleanResult, clean_text
from pipelines.clean.lines import boilerplate_candidates
from pipelines.clean.rules import Rules, load_rules

# ItemAdapter (it imports Scrapy), the archive and the pool are imported where the pipeline
# uses them: worker processes import this package for its pure core (``clean_with_rules_file``)
# and stay free of Scrapy, Twisted and sqlite-utils.

if TYPE_CHECKING:
    from typing import Self

    from itemadapter import ItemAdapter
    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings

    from crawler.storage.protocols import BoilerplateStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CleanConfig:
    """The clean step's settings, parsed once."""

    rules_file: str | None = setting("CLEAN_RULES_FILE")
    min_articles: int = setting("CLEAN_BOILERPLATE_MIN_ARTICLES")
    """A line seen on this many distinct articles of one domain is that domain's boilerplate."""
    learn: bool = setting("CLEAN_LEARN")
    db_path: str = setting("DB_PATH")

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> Self:
        min_articles = get_int(settings, "CLEAN_BOILERPLATE_MIN_ARTICLES")
        if min_articles < 2:
            raise ValueError(
                f"CLEAN_BOILERPLATE_MIN_ARTICLES must be at least 2 (never learn from a "
                f"single page), not {min_articles}"
            )
        return read_config(cls, settings, min_articles=min_articles)


@lru_cache(maxsize=8)
def _rules_from_file(path: str | None) -> Rules:
    return load_rules(path)


def clean_with_rules_file(
    text: str | None, *, rules_file: str | None, **kwargs: Any
) -> CleanResult:
    """``clean_text`` with the rules of ``rules_file`` (default rules for ``None``), loaded
    once per process: the job a pool worker runs (compiled rules are not sent along)."""
    return clean_text(text, rules=_rules_from_file(rules_file), **kwargs)


def _domain(url: str) -> str:
    return (urlsplit(url).hostname or "").lower().removeprefix("www.")


class CleanPipeline:
    """Replaces ``text`` by the cleaned body, keeps the original in ``text_raw`` and what
    went in ``removed``; counts ``clean/removed/<rule>`` and ``clean/items_changed``."""

    def __init__(self, crawler: Crawler, *, config: CleanConfig, rules: Rules) -> None:
        self.crawler = crawler
        self.config = config
        self.rules = rules
        self.boilerplate: BoilerplateStore | None = None
        self.counts: Counter[str] = Counter()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        from scrapy.exceptions import NotConfigured

        if not get_bool(crawler.settings, "CLEAN_ENABLED"):
            raise NotConfigured("CLEAN_ENABLED is off")
        config = CleanConfig.from_settings(crawler.settings)
        return cls(crawler, config=config, rules=load_rules(config.rules_file))

    def open_spider(self) -> None:
        if self.config.learn:
            self.boilerplate = self.open_store()

    def open_store(self) -> BoilerplateStore:
        """The learned boilerplate of ``DB_PATH`` (the connection every component of the
        process shares)."""
        from crawler.storage.boilerplate import SqliteBoilerplate

        return SqliteBoilerplate.for_settings(self.crawler.settings, self.config.db_path)

    def close_spider(self) -> None:
        if self.boilerplate is not None:
            self.boilerplate.release()
            self.boilerplate = None
        logger.info(
            "clean: %d items, %d changed, %d lines removed %s",
            self.counts["items"],
            self.counts["changed"],
            sum(n for k, n in self.counts.items() if k.startswith("rule:")),
            {k[5:]: n for k, n in self.counts.items() if k.startswith("rule:")},
        )

    def process_item(self, item: Any) -> Any:
        from itemadapter import ItemAdapter

        adapter = ItemAdapter(item)
        text = adapter.get("text")
        if not text:
            return item
        from crawler.pool import pool_warm

        if pool_warm():
            return self._process_offloaded(item, adapter, text)
        url, domain = self._where(adapter)
        candidates = boilerplate_candidates(text) if self._learning(url, domain) else {}
        result = clean_text(
            text,
            title=adapter.get("title"),
            domain=domain,
            language=adapter.get("language"),
            boilerplate=self._frequent(domain, candidates),
            rules=self.rules,
        )
        return self._apply(item, adapter, text, result, url, domain, candidates)

    async def _process_offloaded(self, item: Any, adapter: ItemAdapter, text: str) -> Any:
        """``process_item`` with the text work in the worker pool (``crawler/pool.py``)."""
        from crawler.pool import offload

        url, domain = self._where(adapter)
        candidates = (
            await offload(boilerplate_candidates, text) if self._learning(url, domain) else {}
        )
        result = await offload(
            clean_with_rules_file,
            text,
            rules_file=self.config.rules_file,
            title=adapter.get("title"),
            domain=domain,
            language=adapter.get("language"),
            boilerplate=self._frequent(domain, candidates),
        )
        return self._apply(item, adapter, text, result, url, domain, candidates)

    def _where(self, adapter: ItemAdapter) -> tuple[str, str]:
        url = adapter.get("url") or ""
        return url, adapter.get("domain") or _domain(url)

    def _learning(self, url: str, domain: str) -> bool:
        return self.boilerplate is not None and bool(domain) and bool(url)

    def _frequent(self, domain: str, candidates: dict[str, str]) -> set[str]:
        if not candidates or self.boilerplate is None:
            return set()
        return self.boilerplate.frequent(domain, candidates, min_articles=self.config.min_articles)

    def _apply(
        self,
        item: Any,
        adapter: ItemAdapter,
        text: str,
        result: CleanResult,
        url: str,
        domain: str,
        candidates: dict[str, str],
    ) -> Any:
        if candidates and self.boilerplate is not None:
            self.boilerplate.record(domain, url, candidates, cap=self.config.min_articles)
        if adapter.get("text_raw") is None:
            adapter["text_raw"] = text
        adapter["text"] = result.text
        adapter["removed"] = result.removed
        self.counts["items"] += 1
        stats = self.crawler.stats
        for piece in result.removed:
            stats.inc_value(f"clean/removed/{piece['rule']}")
            self.counts[f"rule:{piece['rule']}"] += 1
        if result.text != text:
            stats.inc_value("clean/items_changed")
            self.counts["changed"] += 1
        if not result.text:
            stats.inc_value("clean/emptied")
            logger.warning("clean: nothing left of the text of %s after cleaning", url)
        logger.debug("clean: %s: %d lines removed", url, len(result.removed))
        return item
