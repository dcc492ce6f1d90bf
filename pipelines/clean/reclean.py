"""Cleaning a run's stories again when it ends: what a domain taught the clean step (its
repeated lines, its headlines) grows during a run, and the stories stored before it grew would
otherwise keep the lines it now knows. A first crawl of a site then ends as clean as a later
one. A story whose cleaned text now repeats an earlier story (two copies that leftover junk
kept apart) becomes that story's sighting. ``scrapy reprocess`` cleans older stories."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pipelines.clean.core import clean_text, headline_spans
from pipelines.clean.lines import boilerplate_candidates

if TYPE_CHECKING:
    from crawler.storage.protocols import CleanedStories
    from pipelines.clean.pipeline import CleanPipeline

logger = logging.getLogger(__name__)


class Recleaner:
    """Cleans stored stories again from their text as extracted (``text_raw``) with what
    ``pipeline`` knows now, and rewrites those whose cleaned text or removals changed, with
    their text hash and near-duplicate index keys; then checks each against the earlier
    stories with the dedupe step's own rules."""

    def __init__(self, pipeline: CleanPipeline, stories: CleanedStories) -> None:
        # The dedupe step's text hash, index keys and verdicts follow the new text; imported
        # here: pool workers import this package and stay free of datasketch.
        from pipelines import dedupe

        self.pipeline = pipeline
        self.stories = stories
        self.dedupe = dedupe
        self.config = dedupe.DedupeConfig.from_settings(pipeline.crawler.settings)
        self.index = stories.story_index()

    def domain(self, domain: str, *, since: str) -> tuple[int, int]:
        """Clean ``domain``'s stories fetched at or after ``since`` again; the number whose
        text or removals changed, and the number merged into an earlier story."""
        # Two passes over the stories as stored (read a batch at a time, never all at once):
        # every story cleaned first, then each checked against the earlier ones, which a
        # story that did not change may now repeat.
        changed = sum(self._clean(domain, row) for row in self.stories.stored_since(domain, since))
        merged = 0
        if changed:
            merged = sum(self._merge(row) for row in self.stories.stored_since(domain, since))
        return changed, merged

    def _merge(self, row: dict) -> bool:
        """Merge the story into the earlier one its text now repeats, if any."""
        fp = self.dedupe.fingerprint(row["text"], self.config, title=row["title"])
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

    def _clean(self, domain: str, row: dict) -> bool:
        """Clean one story again; whether its text or removals changed (``row`` follows)."""
        raw = row["text_raw"]
        if not raw:
            return False
        candidates, spans = boilerplate_candidates(raw), headline_spans(raw)
        knowledge = self.pipeline.knowledge(domain, candidates, spans)
        title, language = row["title"], row["language"]
        result = clean_text(
            raw,
            title=title,
            domain=domain,
            language=language,
            rules=self.pipeline.rules,
            **knowledge,
        )
        result, _ = self.pipeline.guard(
            raw, result, title=title, domain=domain, language=language, knowledge=knowledge
        )
        if result.text == row["text"] and result.removed == row["removed"]:
            return False
        fp = self.dedupe.fingerprint(result.text, self.config, title=title)
        self.stories.update_cleaned(
            row["id"],
            text=result.text,
            removed=result.removed,
            text_hash=fp.text_hash,
            band_keys=fp.band_keys,
        )
        row["text"], row["removed"] = result.text, result.removed
        logger.debug("clean: story #%d of %s cleaned again", row["id"], domain)
        return True
