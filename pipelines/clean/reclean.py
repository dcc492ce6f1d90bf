"""Cleaning a run's stories again when the spider closes: what a domain taught the clean step
(its repeated lines, its headlines) grows during a run, and the stories stored before it grew
would otherwise keep the lines it now knows. A first crawl of a site then ends as clean as a
later one. ``scrapy reprocess`` does the same for older stories."""

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
    their text hash and near-duplicate index keys."""

    def __init__(self, pipeline: CleanPipeline, stories: CleanedStories) -> None:
        # The dedupe step's text hash and index keys follow the new text; imported here:
        # pool workers import this package and stay free of datasketch.
        from pipelines.dedupe import DedupeConfig, fingerprint

        self.pipeline = pipeline
        self.stories = stories
        self.dedupe = DedupeConfig.from_settings(pipeline.crawler.settings)
        self.fingerprint = fingerprint

    def domain(self, domain: str, *, since: str) -> int:
        """Clean ``domain``'s stories fetched at or after ``since`` again; the number whose
        text or removals changed."""
        changed = 0
        for row in list(self.stories.stored_since(domain, since)):
            raw = row["text_raw"]
            if not raw:
                continue
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
                raw, result, title=title, domain=domain, language=language
            )
            if result.text == row["text"] and result.removed == row["removed"]:
                continue
            fp = self.fingerprint(result.text, self.dedupe, title=title)
            self.stories.update_cleaned(
                row["id"],
                text=result.text,
                removed=result.removed,
                text_hash=fp.text_hash,
                band_keys=fp.band_keys,
            )
            changed += 1
            logger.debug("clean: story #%d of %s cleaned again", row["id"], domain)
        return changed
