"""Cleaning a run's stories again when it ends: what a domain taught the clean step (its
repeated lines, its headlines) grows during a run, and the stories stored before it grew would
otherwise keep the lines it now knows. A first crawl of a site then ends as clean as a later
one. A story whose cleaned text now repeats an earlier story (two copies that leftover junk
kept apart) becomes that story's sighting. ``scrapy reprocess`` cleans older stories."""

from __future__ import annotations

import asyncio
import logging
from itertools import islice
from typing import TYPE_CHECKING, Any

from crawler.pool import offload
from pipelines.clean.core import text_keys

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from crawler.storage.protocols import CleanedStories
    from pipelines.clean.pipeline import CleanPipeline

logger = logging.getLogger(__name__)

LATER_CANDIDATES = 1_000
"""Near-duplicate candidates looked up per changed story to find the later stories that may
now repeat it."""
AT_ONCE = 50
"""Stories whose text work (cleaning, fingerprints) is handed to the worker pool at once: the
workers share it while this process reads and writes the archive."""


def _batches(rows: Iterable[dict], size: int) -> Iterator[list[dict]]:
    it = iter(rows)
    while batch := list(islice(it, size)):
        yield batch


class Recleaner:
    """Cleans stored stories again from their text as extracted (``text_raw``) with what
    ``pipeline`` knows now, and rewrites those whose cleaned text or removals changed, with
    their text hash and near-duplicate index keys; then checks those, and the later stories
    that may repeat them, against the earlier stories with the dedupe step's own rules.

    The text work runs in the worker pool (``crawler.pool.offload``; in-process without
    one), ``AT_ONCE`` stories at a time. Of a changed story only its text hash and index keys
    are kept until the check (a fingerprint's shingles are tens of kilobytes: at tens of
    thousands of stories they would not fit)."""

    def __init__(self, pipeline: CleanPipeline, stories: CleanedStories) -> None:
        # The dedupe step's text hash, index keys and verdicts follow the new text; imported
        # here: pool workers import this package and stay free of datasketch.
        from pipelines import dedupe

        self.pipeline = pipeline
        self.stories = stories
        self.dedupe = dedupe
        self.config = dedupe.DedupeConfig.from_settings(pipeline.crawler.settings)
        self.index = stories.story_index()

    async def clean_again(self, domain: str, ids: Iterable[int]) -> tuple[int, int]:
        """Clean ``domain``'s stories ``ids`` again; the number whose text or removals
        changed, and the number merged into an earlier story."""
        changed: dict[int, tuple[str | None, tuple[int, ...]]] = {}
        for rows in _batches(self.stories.stored_by_id(ids), AT_ONCE):
            done = await asyncio.gather(*(self._clean(domain, row) for row in rows))
            changed.update((row["id"], keys) for row, keys in zip(rows, done, strict=True) if keys)
        if not changed:
            return 0, 0
        # A story that did not change may now repeat one that did, so the stories checked
        # against the earlier ones are the changed ones and the later stories that share
        # index keys or the text hash with one of them (the index's own candidates).
        merged = 0
        for rows in _batches(self.stories.stored_by_id(self._to_check(changed)), AT_ONCE):
            fps = await asyncio.gather(*(self._fingerprint(row) for row in rows))
            # one at a time: a merge changes what the later stories are compared with
            merged += sum(self._merge(row, fp) for row, fp in zip(rows, fps, strict=True))
        return len(changed), merged

    async def _fingerprint(self, row: dict) -> Any:
        """The dedupe step's fingerprint of the story's text."""
        fp = await offload(
            self.dedupe.text_fingerprint, row["text"], self.config, title=row["title"]
        )
        return self.dedupe.with_band_keys(fp, self.config)

    def _to_check(self, changed: dict[int, tuple[str | None, tuple[int, ...]]]) -> set[int]:
        check = set(changed)
        for article_id, (text_hash, band_keys) in changed.items():
            if not text_hash:
                continue
            found = self.index.story_candidates(band_keys, limit=LATER_CANDIDATES)
            found += self.stories.stories_with_text_hash(text_hash)
            check.update(c for c in found if c > article_id)
        return check

    def _merge(self, row: dict, fp: Any) -> bool:
        """Merge the story into the earlier one its text now repeats, if any."""
        if not fp.text_hash:
            return False
        earlier = self.dedupe.EarlierStories(self.index, row["id"])
        verdict = self.dedupe.find_duplicate(fp, [], earlier, self.config)
        if verdict is None:
            return False
        merged = self.index.merge(
            row["id"], verdict.article_id, kind=verdict.kind, similarity=verdict.similarity
        )
        if merged:
            logger.info(
                "clean: story #%d now repeats #%d (%s): recorded as its sighting",
                row["id"],
                verdict.article_id,
                verdict.kind,
            )
        return merged

    async def _clean(self, domain: str, row: dict) -> tuple[str | None, tuple[int, ...]] | None:
        """Clean one story again; when its text or removals changed, its new text hash and
        index keys (``row`` follows), else ``None``."""
        raw = row["text_raw"]
        if not raw:
            return None
        candidates, spans = await offload(text_keys, raw)
        knowledge = self.pipeline.knowledge(domain, candidates, spans)
        title, language = row["title"], row["language"]
        result = await self.pipeline.clean_offloaded(
            raw, title=title, domain=domain, language=language, knowledge=knowledge
        )
        result, _ = self.pipeline.guard(
            raw, result, title=title, domain=domain, language=language, knowledge=knowledge
        )
        if result.text == row["text"] and result.removed == row["removed"]:
            return None
        row["text"], row["removed"] = result.text, result.removed
        fp = await self._fingerprint(row)
        self.stories.update_cleaned(
            row["id"],
            text=result.text,
            removed=result.removed,
            text_hash=fp.text_hash,
            band_keys=fp.band_keys,
        )
        logger.debug("clean: story #%d of %s cleaned again", row["id"], domain)
        return fp.text_hash, fp.band_keys
