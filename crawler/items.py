"""The item every spider yields and every pipeline reads: one article page."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def utcnow() -> str:
    """Current time as ISO 8601 UTC with seconds (``2026-11-27T19:43:34+00:00``): the form of
    every timestamp the crawler records (``fetched_at``, run times, sightings)."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()


@dataclass(kw_only=True)
class ArticleItem:
    """An article as extracted from one page, filled in further by each pipeline.

    Spiders and ``crawler.extract`` fill the first block; ``pipelines/*`` fill the rest.
    Field names match the columns of the ``articles`` table (``crawler/storage``).
    """

    url: str
    """The URL the page was fetched from (after redirects)."""
    request_url: str | None = None
    """The URL that was requested, when a redirect changed it."""
    canonical_url: str | None = None
    """The page's declared canonical URL (``rel=canonical`` / ``og:url``), absolute."""
    site: str | None = None
    """Name of the configured site (``data/sites.toml``) or ad-hoc spider that found it."""
    domain: str | None = None
    """Host of ``url``, lower case, without a leading ``www.``."""
    title: str | None = None
    """Headline, trimmed, single line."""
    authors: list[str] = field(default_factory=list)
    """Author names, in page order, without "By"."""
    published_at: str | None = None
    """Publication time, ISO 8601 in UTC (``2022-06-27T03:15:00+00:00``); date only when the
    page gives no time (``2022-06-27``)."""
    published_raw: str | None = None
    """The publication date exactly as the page or feed gave it, before normalisation."""
    language: str | None = None
    """ISO 639-1 code (``en``, ``ko``) from the page's declaration or detection."""
    description: str | None = None
    """Summary / standfirst from the page's metadata or the feed entry."""
    text: str | None = None
    """Article body as plain text, paragraphs separated by one blank line."""
    text_raw: str | None = None
    """The body as extracted, before the ``clean`` step changed it."""
    fetched_at: str | None = None
    """When the page was downloaded, ISO 8601 UTC."""
    html: str | None = None
    """The decoded HTML of the page (kept for re-processing; not exported by default)."""
    content_type: str | None = None
    """The response's Content-Type header (``text/html; charset=...``)."""
    encoding: str | None = None
    """The character encoding the page was decoded with."""
    status: int | None = None
    """HTTP status of the article response."""
    source_kind: str | None = None
    """How the article was found: ``feed``, ``sitemap``, ``listing`` or ``aggregator``."""
    source_url: str | None = None
    """The feed, sitemap or listing page that linked to the article."""
    via: str | None = None
    """For aggregators: the aggregator page or feed that led to the article."""
    via_position: int | None = None
    """For aggregators: 1-based position of the link on the ``via`` page."""
    publisher: str | None = None
    """For aggregators: the original publisher the aggregator credits (a portal's press
    name, a Google News entry's source)."""
    publisher_url: str | None = None
    """For a portal's copy of an article: the publisher's own URL of the story."""
    fallback: dict[str, Any] = field(default_factory=dict)
    """Metadata from the feed entry / sitemap entry (title, published, author, summary)
    that filled gaps in what the page itself declared; keys name the fields filled."""

    # -- clean (pipelines/clean)
    removed: list[dict[str, str]] = field(default_factory=list)
    """What cleaning removed: ``[{"text": ..., "rule": ...}]`` in document order."""

    # -- dedupe (pipelines/dedupe/)
    text_hash: str | None = None
    """SHA-1 of the normalised cleaned text (exact-duplicate key)."""
    duplicate_of: int | None = None
    """``articles.id`` of the story this item repeats, when it is a duplicate."""
    duplicate_kind: str | None = None
    """``url``, ``exact`` or ``near`` when the item is a duplicate."""
    similarity: float | None = None
    """Estimated Jaccard similarity to ``duplicate_of`` (1.0 for url/exact)."""

    # -- tag (pipelines/tag)
    tags: list[str] = field(default_factory=list)
    """Tags such as ``korea``, ``north_korea``, ``south_korea``, ``korea_mention``, topics."""
    is_korea: bool | None = None
    """True when the story is substantially about Korea."""
    korea_score: float | None = None
    """The tagger's score; ``is_korea`` is ``korea_score >= TAG_KOREA_THRESHOLD``."""
    korea_evidence: dict[str, Any] | None = None
    """Which lexicon terms matched where, with counts (JSON in the ``articles`` table)."""
