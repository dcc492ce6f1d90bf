"""``CleanPipeline``: the clean step in a crawl (settings, what it learns of each domain from
the archive, the guard, stats), and the jobs a pool worker runs (``clean_with_rules_file``,
and ``text_keys`` from the core)."""

from __future__ import annotations

import hashlib
import logging
from array import array
from collections import Counter, OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from crawler.config import get_bool, get_int, read_config, setting
from pipelines.clean.core import (
    CleanResult,
    about_title,
    clean_text,
    own_lines,
    text_keys,
)
from pipelines.clean.lines import (
    is_long_line,
    is_template_key,
    line_key,
)
from pipelines.clean.rules import DOMAIN_RULES, Rules, load_rules

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

LONG_EXTRA_STORIES = 1
"""A candidate line longer than a template line (``is_long_line``), and a line known by its
template (``template_key``), needs this many distinct stories more than
``CLEAN_BOILERPLATE_MIN_ARTICLES`` before it is learned."""
TITLES_PER_DOMAIN = 20_000
"""Headlines of a domain's latest stories read from the archive (lines naming another story)."""
PENDING_CAP = 10_000
"""Items between the clean step and the end of the item pipeline whose sightings wait there;
items that never reach the end (dropped later) fall out after this many newer ones."""


@dataclass(frozen=True)
class CleanConfig:
    """The clean step's settings, parsed once."""

    rules_file: str | None = setting("CLEAN_RULES_FILE")
    min_articles: int = setting("CLEAN_BOILERPLATE_MIN_ARTICLES")
    """A line seen on this many distinct stories of one domain is that domain's boilerplate."""
    learn: bool = setting("CLEAN_LEARN")
    db_path: str = setting("DB_PATH")
    min_length: int = 0
    """``VALIDATE_MIN_CHARS`` when the validate step is on: cleaning never takes a text below
    it (the guard), and a text below it after cleaning is dropped."""

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> Self:
        min_articles = get_int(settings, "CLEAN_BOILERPLATE_MIN_ARTICLES")
        if min_articles < 2:
            raise ValueError(
                f"CLEAN_BOILERPLATE_MIN_ARTICLES must be at least 2 (never learn from a "
                f"single story), not {min_articles}"
            )
        min_length = 0
        if get_bool(settings, "VALIDATE_ENABLED"):
            min_length = max(0, get_int(settings, "VALIDATE_MIN_CHARS"))
        return read_config(cls, settings, min_articles=min_articles, min_length=min_length)

    def threshold(self, line_hash: str, line: str) -> int:
        """Distinct stories of a domain that make ``line`` (known by ``line_hash``, its
        ``line_key`` or ``template_key``) boilerplate: a template line and a line longer
        than a template line need ``LONG_EXTRA_STORIES`` more."""
        loose = is_template_key(line_hash) or is_long_line(line)
        return self.min_articles + (LONG_EXTRA_STORIES if loose else 0)


@lru_cache(maxsize=8)
def _rules_from_file(path: str | None) -> Rules:
    return load_rules(path)


def clean_with_rules_file(
    text: str | None, *, rules_file: str | None, **kwargs: Any
) -> CleanResult:
    """``clean_text`` with the rules of ``rules_file`` (default rules for ``None``), loaded
    once per process: the job a pool worker runs (compiled rules are not sent along)."""
    return clean_text(text, rules=_rules_from_file(rules_file), **kwargs)


def story_key_from_text(text: str) -> str:
    """A story key when no stored story is known (no store step in this process): a hash of
    the cleaned text's first line of eight words or more, else of the whole text. Copies of
    a story share it when their junk was cleaned off the top."""
    lines = [ln for ln in text.split("\n") if ln.strip()]
    lede = next((ln for ln in lines if len(ln.split()) >= 8), text)
    digest = hashlib.blake2b(lede.strip().casefold().encode("utf-8"), digest_size=8)
    return "t:" + digest.hexdigest()


def _domain(url: str) -> str:
    return (urlsplit(url).hostname or "").lower().removeprefix("www.")


def _short_hash(key: str) -> int:
    """A 32-bit stand-in for a line or span hash, to remember a run's stories compactly (a
    collision only costs a story cleaned again for nothing)."""
    return hash(key) & 0xFFFFFFFF


class _Run:
    """What the clean steps of the crawls of one process writing one archive learned during
    the run, and when: the last of them to close cleans again the run's stories cleaned
    before something they contain was learned, once every crawl's items are stored (a story
    merged into another then cannot be one an item still in flight points at).

    Time is a counter of the clean step's events: each item's cleaning (when it read what
    its domain taught) and each line or headline learned."""

    _open: ClassVar[dict[str, _Run]] = {}

    def __init__(self) -> None:
        self.users = 0
        self.clock = 0
        self.titles: dict[str, set[str]] = {}
        """``line_key`` of the headlines of each domain's stories."""
        self.learned_at: dict[str, dict[int, int]] = {}
        """Per domain, the lines and headlines learned during the run (``_short_hash``) and
        when."""
        self.stories: dict[int, tuple[str, int, array[int]]] = {}
        """Per story stored in the run: its domain, when it was cleaned, and the
        ``_short_hash`` of its candidate lines and headline spans."""

    @classmethod
    def join(cls, path: str) -> _Run:
        run = cls._open.setdefault(path, cls())
        run.users += 1
        return run

    def tick(self) -> int:
        self.clock += 1
        return self.clock

    def learned(self, domain: str, key: str) -> None:
        self.learned_at.setdefault(domain, {}).setdefault(_short_hash(key), self.tick())

    def to_clean_again(self) -> dict[str, list[int]]:
        """Per domain, the run's stories that contain something learned after they were
        cleaned."""
        found: dict[str, list[int]] = {}
        for story, (domain, cleaned, keys) in self.stories.items():
            learned = self.learned_at.get(domain)
            if learned and any(learned.get(k, 0) > cleaned for k in keys):
                found.setdefault(domain, []).append(story)
        return found

    def leave(self, path: str) -> bool:
        """``True`` for the last crawl of the run to close."""
        self.users -= 1
        if self.users > 0:
            return False
        self._open.pop(path, None)
        return True


@dataclass
class _Learning:
    """What the cleaning of one item read of its domain, and when."""

    candidates: dict[str, str]
    spans: set[str]
    knowledge: dict[str, set[str]]
    """What ``clean_text`` took from the domain (``CleanPipeline.knowledge``)."""
    cleaned: int

    def pending(self, domain: str, title_key: str | None) -> _Pending:
        keys = array("I", sorted({_short_hash(k) for k in (*self.candidates, *self.spans)}))
        if title_key is not None:  # its own headline never names another story
            keys = array("I", (k for k in keys if k != _short_hash(title_key)))
        learned = self.knowledge["boilerplate"]
        return _Pending(domain, self.candidates, learned, self.cleaned, keys)


@dataclass
class _Pending:
    """What an item's sightings need once the later steps have said which story it is."""

    domain: str
    candidates: dict[str, str]
    learned: set[str]
    cleaned: int
    """When the item was cleaned (``_Run.clock``)."""
    keys: array[int]
    """``_short_hash`` of its candidate lines and of its spans that could name a story."""


class CleanPipeline:
    """Replaces ``text`` by the cleaned body, keeps the original in ``text_raw`` and what
    went in ``removed``.

    Learned boilerplate: a line counts once per *story* of a domain. The sightings of an
    item are recorded when it leaves the item pipeline (``item_scraped``), under the id of
    the story the dedupe and store steps found it to be, so copies of one story never make
    its own lines boilerplate. When the last crawl of the process closes, the run's stories
    that hold a line or headline learned after they were cleaned (``_Run``) are cleaned again
    (``pipelines.clean.reclean``), and a story that then repeats an earlier one becomes its
    sighting.

    Stats: ``clean/removed/<rule>``, ``clean/items_changed``, ``clean/guarded`` (learned
    removals taken back, the story's own lines or all of them: they would have left less
    than the minimum length, or nothing of the headline's story),
    ``clean/dropped/too_short``, ``clean/emptied``, ``clean/recleaned``,
    ``clean/recleaned/merged``.
    """

    def __init__(self, crawler: Crawler, *, config: CleanConfig, rules: Rules) -> None:
        self.crawler = crawler
        self.config = config
        self.rules = rules
        self.boilerplate: BoilerplateStore | None = None
        self.counts: Counter[str] = Counter()
        self.pending: OrderedDict[str, _Pending] = OrderedDict()
        self.run = _Run()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        from scrapy import signals
        from scrapy.exceptions import NotConfigured

        if not get_bool(crawler.settings, "CLEAN_ENABLED"):
            raise NotConfigured("CLEAN_ENABLED is off")
        config = CleanConfig.from_settings(crawler.settings)
        pipeline = cls(crawler, config=config, rules=load_rules(config.rules_file))
        crawler.signals.connect(pipeline.item_scraped, signal=signals.item_scraped)
        crawler.signals.connect(pipeline.item_dropped, signal=signals.item_dropped)
        return pipeline

    def open_spider(self) -> None:
        if self.config.learn:
            self.boilerplate = self.open_store()
            self.run = _Run.join(self.boilerplate_path())

    def boilerplate_path(self) -> str:
        return str(Path(self.config.db_path).resolve())

    def open_store(self) -> BoilerplateStore:
        """The learned boilerplate of ``DB_PATH`` (the connection every component of the
        process shares)."""
        from crawler.storage.boilerplate import SqliteBoilerplate

        return SqliteBoilerplate.for_settings(self.crawler.settings, self.config.db_path)

    async def close_spider(self) -> None:
        store = self.boilerplate
        if store is not None:
            try:
                if self.run.leave(self.boilerplate_path()):
                    await self._reclean(store)
            finally:
                self.boilerplate = None
                store.release()
        logger.info(
            "clean: %d items, %d changed, %d guarded, %d lines removed %s",
            self.counts["items"],
            self.counts["changed"],
            self.counts["guarded"],
            sum(n for k, n in self.counts.items() if k.startswith("rule:")),
            {k[5:]: n for k, n in self.counts.items() if k.startswith("rule:")},
        )

    async def _reclean(self, store: BoilerplateStore) -> None:
        """Clean the run's stories of the domains that taught something new again, and
        merge those that now repeat an earlier story."""
        from crawler.storage.protocols import CleanedStories
        from pipelines.clean.reclean import Recleaner

        if not isinstance(store, CleanedStories):
            return  # a distributed worker has no stories to clean again: its writer does
        to_clean = self.run.to_clean_again()
        logger.info(
            "clean: %d of the run's %d stories hold a line or headline learned after they "
            "were cleaned",
            sum(map(len, to_clean.values())),
            len(self.run.stories),
        )
        if not to_clean:
            return
        recleaner = Recleaner(self, store)
        stats = self.crawler.stats
        for domain, stories in sorted(to_clean.items()):
            changed, merged = await recleaner.clean_again(domain, stories)
            if changed:
                stats.inc_value("clean/recleaned", changed)
            if merged:
                stats.inc_value("clean/recleaned/merged", merged)
            if changed or merged:
                logger.info(
                    "clean: %d stories of %s cleaned again, %d of them merged into an earlier "
                    "story they now repeat",
                    changed,
                    domain,
                    merged,
                )

    # -- per item --------------------------------------------------------------------------
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
        candidates, spans = text_keys(text) if self._learning(url, domain) else ({}, set())
        knowledge = self.knowledge(domain, candidates, spans)
        cleaned = self.run.tick()
        result = clean_text(
            text,
            title=adapter.get("title"),
            domain=domain,
            language=adapter.get("language"),
            rules=self.rules,
            **knowledge,
        )
        learning = _Learning(candidates, spans, knowledge, cleaned)
        return self._apply(item, adapter, text, result, url, domain, learning)

    async def _process_offloaded(self, item: Any, adapter: ItemAdapter, text: str) -> Any:
        """``process_item`` with the text work in the worker pool (``crawler/pool.py``)."""
        from crawler.pool import offload

        url, domain = self._where(adapter)
        candidates, spans = (
            await offload(text_keys, text) if self._learning(url, domain) else ({}, set())
        )
        knowledge = self.knowledge(domain, candidates, spans)
        cleaned = self.run.tick()
        result = await self.clean_offloaded(
            text,
            title=adapter.get("title"),
            domain=domain,
            language=adapter.get("language"),
            knowledge=knowledge,
        )
        learning = _Learning(candidates, spans, knowledge, cleaned)
        return self._apply(item, adapter, text, result, url, domain, learning)

    async def clean_offloaded(
        self,
        text: str,
        *,
        title: str | None,
        domain: str,
        language: str | None,
        knowledge: dict[str, set[str]],
    ) -> CleanResult:
        """``clean_text`` with the step's rules and ``knowledge``, in the worker pool (in
        this process without one)."""
        from crawler.pool import offload

        return await offload(
            clean_with_rules_file,
            text,
            rules_file=self.config.rules_file,
            title=title,
            domain=domain,
            language=language,
            **knowledge,
        )

    def _where(self, adapter: ItemAdapter) -> tuple[str, str]:
        url = adapter.get("url") or ""
        return url, adapter.get("domain") or _domain(url)

    def _learning(self, url: str, domain: str) -> bool:
        return self.boilerplate is not None and bool(domain) and bool(url)

    def knowledge(
        self, domain: str, candidates: dict[str, str], spans: set[str]
    ) -> dict[str, set[str]]:
        """What ``clean_text`` takes from the domain's other stories for one text: the
        ``boilerplate`` among its ``candidates`` and the ``titles`` among its ``spans``."""
        return {
            "boilerplate": self.learned(domain, candidates),
            "titles": spans & self.domain_titles(domain) if spans else set(),
        }

    def learned(self, domain: str, candidates: dict[str, str]) -> set[str]:
        """The ``candidates`` seen on enough distinct stories of ``domain``."""
        if not candidates or self.boilerplate is None:
            return set()
        minimum = self.config.min_articles
        found = self.boilerplate.frequent(domain, candidates, min_articles=minimum)
        loose = {h for h in found if self.config.threshold(h, candidates[h]) > minimum}
        if loose:
            found -= loose - self.boilerplate.frequent(
                domain, loose, min_articles=minimum + LONG_EXTRA_STORIES
            )
        return found

    def domain_titles(self, domain: str) -> set[str]:
        titles = self.run.titles.get(domain)
        if titles is None:
            found = self.boilerplate.titles(domain, limit=TITLES_PER_DOMAIN)
            titles = self.run.titles[domain] = {line_key(t) for t in found}
        return titles

    def _apply(
        self,
        item: Any,
        adapter: ItemAdapter,
        text: str,
        result: CleanResult,
        url: str,
        domain: str,
        learning: _Learning,
    ) -> Any:
        stats = self.crawler.stats
        result = self._guard(adapter, text, result, domain, learning.knowledge)
        if adapter.get("text_raw") is None:
            adapter["text_raw"] = text
        adapter["text"] = result.text
        adapter["removed"] = result.removed
        self.counts["items"] += 1
        for piece in result.removed:
            stats.inc_value(f"clean/removed/{piece['rule']}")
            self.counts[f"rule:{piece['rule']}"] += 1
        if result.text != text:
            stats.inc_value("clean/items_changed")
            self.counts["changed"] += 1
        if self._learning(url, domain):
            title = adapter.get("title")
            own = line_key(title) if title else None
            self.pending[url] = learning.pending(domain, own)
            while len(self.pending) > PENDING_CAP:
                self.pending.popitem(last=False)
            titles = self.domain_titles(domain)
            if own is not None and own not in titles:
                titles.add(own)
                self.run.learned(domain, own)
        if not result.text:
            stats.inc_value("clean/emptied")
            logger.warning("clean: nothing left of the text of %s after cleaning", url)
        self._check_length(adapter, result.text)
        logger.debug("clean: %s: %d lines removed", url, len(result.removed))
        return item

    def _guard(
        self,
        adapter: ItemAdapter,
        text: str,
        result: CleanResult,
        domain: str,
        knowledge: dict[str, set[str]],
    ) -> CleanResult:
        result, guarded = self.guard(
            text,
            result,
            title=adapter.get("title"),
            domain=domain,
            language=adapter.get("language"),
            knowledge=knowledge,
        )
        if guarded:
            self.crawler.stats.inc_value("clean/guarded")
            self.counts["guarded"] += 1
            logger.info(
                "clean: kept learned lines of %s: without them, less than %d letters or "
                "nothing of its headline's subject",
                adapter.get("url"),
                self.config.min_length,
            )
        return result

    def guard(
        self,
        text: str,
        result: CleanResult,
        *,
        title: str | None,
        domain: str,
        language: str | None,
        knowledge: dict[str, set[str]] | None = None,
    ) -> tuple[CleanResult, bool]:
        """Never empty a story. When what the domain taught (``DOMAIN_RULES``) would leave
        less than the minimum length, or took lines that share words with the headline
        (``own_lines``) and left none that do (``about_title``): ``True`` and the text
        cleaned again keeping those lines, if that reaches the minimum; else (too short even
        so) the text cleaned without what the domain taught, the rules file's removals
        only."""
        from pipelines.validate import long_enough

        minimum = self.config.min_length
        if not minimum or not any(piece["rule"] in DOMAIN_RULES for piece in result.removed):
            return result, False
        short = not long_enough(result.text, minimum)
        own = own_lines(result.removed, title)
        if not short and not (own and not about_title(result.text, title)):
            return result, False
        if own and knowledge is not None:
            kept = clean_text(
                text,
                title=title,
                domain=domain,
                language=language,
                rules=self.rules,
                keep=own,
                **knowledge,
            )
            if long_enough(kept.text, minimum):
                return kept, True
        if not short:
            return result, False
        plain = clean_text(text, title=title, domain=domain, language=language, rules=self.rules)
        return plain, True

    def _check_length(self, adapter: ItemAdapter, text: str) -> None:
        """The validate step's length check, after cleaning: spam around a too-short text
        does not make it an article."""
        from scrapy.exceptions import DropItem

        from pipelines.validate import long_enough

        if long_enough(text, self.config.min_length):
            return
        self.crawler.stats.inc_value("clean/dropped/too_short")
        raise DropItem(
            f"not an article (too_short after cleaning): {adapter.get('url')}", log_level="INFO"
        )

    # -- after the item pipeline -------------------------------------------------------------
    def item_scraped(self, item: Any) -> None:
        """Record the item's lines as sightings of the story it turned out to be."""
        from itemadapter import ItemAdapter

        adapter = ItemAdapter(item)
        pending = self.pending.pop(adapter.get("url") or "", None)
        if pending is None or self.boilerplate is None:
            return
        # The story the item is: the one it repeats, or its own row; without a store step in
        # this process, a key from its cleaned text.
        story = adapter.get("duplicate_of")
        own_row = None if story is not None else self.boilerplate.story_for_url(adapter["url"])
        story = own_row if story is None else story
        key = str(story) if story is not None else story_key_from_text(adapter.get("text") or "")
        cap = self.config.min_articles + LONG_EXTRA_STORIES
        self.boilerplate.record(pending.domain, key, pending.candidates, cap=cap)
        for line in self.learned(pending.domain, pending.candidates) - pending.learned:
            self.run.learned(pending.domain, line)
        if own_row is not None:
            self.run.stories[own_row] = (pending.domain, pending.cleaned, pending.keys)

    def item_dropped(self, item: Any) -> None:
        from itemadapter import ItemAdapter

        self.pending.pop(ItemAdapter(item).get("url") or "", None)
