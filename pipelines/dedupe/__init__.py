"""Dedupe step: mark later sightings of a stored story (same URL, same text, or the same text
with small edits or junk around it) so the store step records them as duplicates.

``core`` holds the pure parts (fingerprints, similarity, ``find_duplicate``); ``pipeline`` the
Scrapy step around them (``DedupePipeline``) and the index's rebuild, imported on first use:
a pool worker imports the core alone, without Scrapy."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipelines.dedupe.core import (
    EXACT,
    NEAR,
    URL,
    DedupeConfig,
    Fingerprint,
    Opening,
    Similarity,
    Verdict,
    anchor_keys,
    band_keys,
    comparison_text,
    edited,
    evidence,
    find_duplicate,
    fingerprint,
    lede,
    same_story,
    shingles,
    similarity,
    text_fingerprint,
    text_hash,
    tokens,
    with_band_keys,
)

if TYPE_CHECKING:
    from pipelines.dedupe.pipeline import DedupePipeline, EarlierStories, rebuild_index

_PIPELINE_NAMES = ("DedupePipeline", "EarlierStories", "rebuild_index")


def __getattr__(name: str) -> Any:
    if name in _PIPELINE_NAMES:
        from pipelines.dedupe import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "EXACT",
    "NEAR",
    "URL",
    "DedupeConfig",
    "DedupePipeline",
    "EarlierStories",
    "Fingerprint",
    "Opening",
    "Similarity",
    "Verdict",
    "anchor_keys",
    "band_keys",
    "comparison_text",
    "edited",
    "evidence",
    "find_duplicate",
    "fingerprint",
    "lede",
    "rebuild_index",
    "same_story",
    "shingles",
    "similarity",
    "text_fingerprint",
    "text_hash",
    "tokens",
    "with_band_keys",
]
