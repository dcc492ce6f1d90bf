"""Re-run extraction and the item pipeline steps on the stored HTML, without crawling, and
report what changed (after the clean rules, the lexicon or the extractor changed)."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from itemadapter import ItemAdapter
from scrapy import Spider
from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem
from scrapy.pipelines import ItemPipelineManager
from scrapy.utils.misc import load_object

from crawler.extract import extract_article
from crawler.items import utcnow
from crawler.storage.articles import SqliteArticles, article_row
from crawler.storage.index import SqliteStoryIndex
from crawler.storage.pages import SqliteStoredPages

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

    from crawler.sites import Site
    from crawler.storage.connection import Connection

logger = logging.getLogger(__name__)

SKIPPED_STEPS = ("pipelines.dedupe.DedupePipeline", "pipelines.store.StorePipeline")
"""Steps that only make sense for a new sighting: on a stored article, dedupe would find the
article itself and store would record it again. Reprocess checks for duplicates itself (with
the dedupe module's functions) and updates the stored row."""

COMPARED = (
    "title",
    "authors",
    "published_at",
    "published_raw",
    "language",
    "description",
    "canonical_url",
    "fallback",
    "text",
    "text_raw",
    "removed",
    "text_hash",
    "tags",
    "is_korea",
    "korea_score",
    "korea_evidence",
)
"""The ``articles`` columns reprocessing may rewrite; the rest (URL, site, fetch time, how it
was found) describe the sighting and stay."""


class _ReprocessSpider(Spider):
    name = "reprocess"


@dataclass
class Steps:
    """The item pipeline steps of ``ITEM_PIPELINES`` (minus ``SKIPPED_STEPS``), built by
    Scrapy from a crawler that never crawls."""

    crawler: Crawler
    pipelines: list[Any]

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> Steps:
        settings = settings.copy()
        configured = dict(settings.getdict("ITEM_PIPELINES"))
        configured.update(dict.fromkeys(SKIPPED_STEPS))  # None disables a component
        settings.set("ITEM_PIPELINES", configured, priority="cmdline")
        crawler = Crawler(_ReprocessSpider, settings)
        crawler.stats = load_object(settings["STATS_CLASS"])(crawler)
        manager = ItemPipelineManager.from_crawler(crawler)
        return cls(crawler, list(manager.middlewares))

    @property
    def names(self) -> list[str]:
        return [type(p).__name__.removesuffix("Pipeline").lower() for p in self.pipelines]

    def open(self) -> None:
        for pipeline in self.pipelines:
            if hasattr(pipeline, "open_spider"):
                pipeline.open_spider()

    def close(self) -> None:
        for pipeline in reversed(self.pipelines):
            if hasattr(pipeline, "close_spider"):
                closing = pipeline.close_spider()
                if inspect.iscoroutine(closing):
                    # the clean step's end-of-run work; no worker pool here, it runs in-process
                    asyncio.run(closing)

    def run(self, item: Any) -> Any:
        """The item after every step; ``DropItem`` propagates."""
        for pipeline in self.pipelines:
            item = pipeline.process_item(item)
            if inspect.isawaitable(item) or hasattr(item, "addCallback"):
                raise TypeError(
                    f"{type(pipeline).__name__}.process_item is asynchronous: "
                    "scrapy reprocess runs synchronous steps only"
                )
        return item


class DuplicateCheck:
    """Finds an *earlier* stored story that an article's (new) text repeats, with the dedupe
    module's own functions; inactive when ``pipelines.dedupe`` is not there."""

    def __init__(self, connection: Connection, settings: BaseSettings) -> None:
        self.index = SqliteStoryIndex(connection)
        try:
            from pipelines import dedupe  # optional step: absent in a checkout without it
        except ImportError:
            self.dedupe = None
            return
        self.dedupe = dedupe
        self.config = dedupe.DedupeConfig.from_settings(settings)

    @property
    def active(self) -> bool:
        return self.dedupe is not None

    def text_hash(self, text: str) -> str | None:
        return self.dedupe.fingerprint(text, self.config).text_hash if text else None

    def earlier_duplicate(self, article_id: int, text: str, title: str | None = None) -> Any:
        """The dedupe ``Verdict`` naming an earlier story, or ``None``."""
        fp = self.dedupe.fingerprint(text, self.config, title=title)
        return self.dedupe.find_duplicate(
            fp, [], self.dedupe.EarlierStories(self.index, article_id), self.config
        )

    def reindex(self, article_id: int, text: str) -> None:
        fp = self.dedupe.fingerprint(text, self.config)
        if fp.band_keys:
            self.index.add(article_id, list(fp.band_keys))


@dataclass
class Outcome:
    """What reprocessing did to the stored articles."""

    steps: list[str] = field(default_factory=list)
    dedupe: bool = False
    dry_run: bool = False
    processed: int = 0
    unchanged: int = 0
    fields_changed: Counter[str] = field(default_factory=Counter)
    tags_gained: Counter[str] = field(default_factory=Counter)
    tags_lost: Counter[str] = field(default_factory=Counter)
    changes: list[dict[str, Any]] = field(default_factory=list)
    """Per changed article: id, url, site, title, fields, tags gained/lost."""
    new_duplicates: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    """Articles a step now drops (kept as stored), with the reason."""
    elapsed: float = 0.0

    @property
    def texts_changed(self) -> int:
        return self.fields_changed["text"]

    def as_dict(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "dedupe": self.dedupe,
            "dry_run": self.dry_run,
            "processed": self.processed,
            "unchanged": self.unchanged,
            "texts_changed": self.texts_changed,
            "fields_changed": dict(self.fields_changed),
            "tags_gained": dict(self.tags_gained),
            "tags_lost": dict(self.tags_lost),
            "changes": self.changes,
            "new_duplicates": self.new_duplicates,
            "rejected": self.rejected,
        }


def _tags(encoded: str | None) -> set[str]:
    return set(json.loads(encoded or "[]"))


def _item_from_row(row: dict[str, Any], html: str, site: Site | None) -> Any:
    fallback = json.loads(row["fallback"] or "{}")
    item = extract_article(
        html,
        row["url"],
        fallback=fallback,
        content_type=row["content_type"],
        language=(site.language if site else None) or row["language"],
        timezone=site.timezone if site else None,
    )
    for key in ("site", "fetched_at", "status", "content_type", "encoding", "source_kind"):
        setattr(item, key, row[key])
    for key in ("source_url", "via", "via_position"):
        setattr(item, key, row[key])
    item.html = html
    return item


def reprocess(
    connection: Connection,
    steps: Steps,
    dupes: DuplicateCheck,
    *,
    site: str | None = None,
    since: str | None = None,
    sites: dict[str, Site] | None = None,
    dry_run: bool = False,
) -> Outcome:
    """Re-extract, re-run ``steps`` and re-check duplicates for the stored articles (of
    ``site``, fetched since ``since``), updating the rows that changed unless ``dry_run``.
    Running it twice changes nothing the second time."""
    started = time.monotonic()
    outcome = Outcome(steps=steps.names, dedupe=dupes.active, dry_run=dry_run)
    stored = _Stored(SqliteStoredPages(connection), SqliteArticles(connection))
    steps.open()
    try:
        for article_id in stored.pages.ids(site=site, since=since):
            row = stored.pages.article(article_id)
            html = stored.pages.html(article_id)
            if row is None or html is None:
                continue
            outcome.processed += 1
            _one(stored, steps, dupes, row, html, (sites or {}).get(row["site"]), outcome)
            if not dry_run:
                connection.maybe_flush()
    finally:
        steps.close()
        if not dry_run:
            connection.flush()
    outcome.elapsed = time.monotonic() - started
    return outcome


@dataclass(frozen=True)
class _Stored:
    pages: SqliteStoredPages
    articles: SqliteArticles


def _one(
    stored: _Stored,
    steps: Steps,
    dupes: DuplicateCheck,
    row: dict[str, Any],
    html: str,
    site: Site | None,
    outcome: Outcome,
) -> None:
    article_id = row["id"]
    try:
        item = steps.run(_item_from_row(row, html, site))
    except DropItem as exc:
        outcome.rejected.append({"id": article_id, "url": row["url"], "reason": str(exc)})
        outcome.unchanged += 1
        return
    adapter = ItemAdapter(item)
    text = adapter.get("text") or ""
    if dupes.active:
        adapter["text_hash"] = dupes.text_hash(text)
    else:
        adapter["text_hash"] = row["text_hash"]
    new = article_row(adapter)
    changed = {col: new[col] for col in COMPARED if new[col] != row[col]}
    if changed:
        gained = _tags(new["tags"]) - _tags(row["tags"])
        lost = _tags(row["tags"]) - _tags(new["tags"])
        outcome.fields_changed.update(changed.keys())
        outcome.tags_gained.update(gained)
        outcome.tags_lost.update(lost)
        outcome.changes.append(
            {
                "id": article_id,
                "url": row["url"],
                "site": row["site"],
                "title": new["title"],
                "fields": sorted(changed),
                "tags_gained": sorted(gained),
                "tags_lost": sorted(lost),
            }
        )
        if not outcome.dry_run:
            stored.pages.update(article_id, changed)
            if "text" in changed and dupes.active and text:
                dupes.reindex(article_id, text)
    else:
        outcome.unchanged += 1
    if not (dupes.active and text):
        return
    verdict = dupes.earlier_duplicate(article_id, text, new["title"])
    if verdict is None or stored.pages.duplicate_recorded(row["url"], verdict.article_id):
        return
    outcome.new_duplicates.append(
        {
            "id": article_id,
            "url": row["url"],
            "duplicate_of": verdict.article_id,
            "kind": verdict.kind,
            "similarity": verdict.similarity,
        }
    )
    if not outcome.dry_run:
        stored.articles.insert_duplicate(
            {
                "url": row["url"],
                "canonical_url": row["canonical_url"],
                "duplicate_of": verdict.article_id,
                "duplicate_kind": verdict.kind,
                "similarity": verdict.similarity,
                "site": row["site"],
                "title": new["title"],
                "via": "reprocess",
                "fetched_at": utcnow(),
            }
        )


def format_outcome(outcome: Outcome, *, limit: int = 20) -> str:
    """The plain-text account of a reprocess run."""
    lines = [
        f"Reprocessed {outcome.processed} stored articles in {outcome.elapsed:.1f} s "
        f"(steps: {', '.join(outcome.steps) or 'none'}; duplicate check: "
        f"{'on' if outcome.dedupe else 'off, no pipelines/dedupe/'})"
        + (" -- dry run, nothing written" if outcome.dry_run else ""),
        f"  unchanged:        {outcome.unchanged}",
        f"  texts changed:    {outcome.texts_changed}",
    ]
    others = {k: n for k, n in outcome.fields_changed.items() if k != "text"}
    if others:
        lines.append(
            "  fields changed:   " + ", ".join(f"{k} {n}" for k, n in sorted(others.items()))
        )
    gained = ", ".join(f"{t} +{n}" for t, n in sorted(outcome.tags_gained.items())) or "-"
    lost = ", ".join(f"{t} -{n}" for t, n in sorted(outcome.tags_lost.items())) or "-"
    lines += [f"  tags gained:      {gained}", f"  tags lost:        {lost}"]
    lines.append(f"  new duplicates:   {len(outcome.new_duplicates)}")
    for d in outcome.new_duplicates[:limit]:
        lines.append(
            f"    #{d['id']} {d['url']}: {d['kind']} duplicate of #{d['duplicate_of']} "
            f"(similarity {d['similarity']:.2f})"
        )
    if outcome.rejected:
        lines.append(f"  now rejected (kept as stored): {len(outcome.rejected)}")
        lines += [f"    #{r['id']} {r['reason']}" for r in outcome.rejected[:limit]]
    if outcome.changes:
        lines.append("Changed articles:")
        for c in outcome.changes[:limit]:
            tags = " ".join(
                [*(f"+{t}" for t in c["tags_gained"]), *(f"-{t}" for t in c["tags_lost"])]
            )
            lines.append(
                f"  #{c['id']} [{c['site']}] {c['title']}: {', '.join(c['fields'])}"
                + (f" ({tags})" if tags else "")
            )
        if len(outcome.changes) > limit:
            lines.append(f"  ... and {len(outcome.changes) - limit} more")
    return "\n".join(lines)
