"""Dedupe step: mark later sightings of a stored story (same URL, same text, or the same text
with small edits or junk around it) so the store step records them as duplicates.

``core`` holds the pure parts (fingerprints, similarity, ``find_duplicate``); ``pipeline`` the
Scrapy step around them (``DedupePipeline``) and the index's rebuild."""

from __future__ import annotations

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
    text_hash,
    tokens,
)
from pipelines.dedupe.pipeline import DedupePipeline, EarlierStories, rebuild_index

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
    "text_hash",
    "tokens",
]
