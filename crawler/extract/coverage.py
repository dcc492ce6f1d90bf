"""How much of a page's article text an extracted body holds: the prose paragraphs of the page
it left out that look like the ones it kept (same markup), which is what makes a body doubtful
and sends the page to the fallbacks, and the page blocks those paragraphs sit in."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

    from lxml.html import HtmlElement

PROSE_MIN_CHARS = 100
"""A paragraph of the page this long (and not mostly link text) is prose an article holds ..."""
PROSE_MAX_LINK_SHARE = 0.3
"""... when at most this share of its characters are link text (teasers are links)."""
KEPT_MIN_CHARS = 30
"""Paragraphs shorter than this are not used to learn what the article's paragraphs look like."""
PRESENT_MIN_SHARE = 0.5
"""A paragraph is in the body when this share of its word trigrams is."""
DOUBT_MIN_SHARE = 0.2
"""A body is doubtful when the prose it left out, in paragraphs marked up like the ones it
kept, is at least this share of its own length."""

_WORD_RE = re.compile(r"\w+")
# Paragraph-like blocks outside the article flow: their paragraphs teach nothing.
_OUTSIDE = frozenset({"nav", "footer", "header", "aside", "form", "noscript", "template"})


def _trigrams(text: str) -> set[tuple[str, ...]]:
    words = _WORD_RE.findall(text.casefold())
    if len(words) < 3:
        return {tuple(words)} if words else set()
    return set(zip(words, words[1:], words[2:], strict=False))


def signature(paragraph: HtmlElement) -> tuple[str | None, str | None, str | None]:
    """What a paragraph's markup says about its role: its class, its parent's tag and class."""
    parent = paragraph.getparent()
    if parent is None:
        return paragraph.get("class"), None, None
    return paragraph.get("class"), str(parent.tag), parent.get("class")


def _outside_article(element: HtmlElement) -> bool:
    return any(ancestor.tag in _OUTSIDE for ancestor in element.iterancestors())


@dataclass
class Coverage:
    """The page's paragraphs as seen from one extracted body."""

    kept: list[HtmlElement] = field(default_factory=list)
    """Paragraphs the body holds (at least ``KEPT_MIN_CHARS`` long)."""
    missed: list[HtmlElement] = field(default_factory=list)
    """Prose paragraphs the body lacks, marked up like a paragraph it holds."""
    missed_chars: int = 0
    body_chars: int = 0

    @property
    def doubtful(self) -> bool:
        """The body probably stops early or skips blocks of the article."""
        return self.missed_chars >= DOUBT_MIN_SHARE * max(self.body_chars, 1)


def coverage(tree: HtmlElement, text: str) -> Coverage:
    """The paragraphs (``<p>``) of ``tree`` that ``text`` holds, and the prose paragraphs it
    lacks that share the markup (``signature``) of one it holds."""
    present = _trigrams(text)
    result = Coverage(body_chars=len(text))
    candidates: list[tuple[HtmlElement, int]] = []
    kept_signatures = set()
    for paragraph in tree.iter("p"):
        content = paragraph.text_content()
        length = len(content.strip())
        if length < KEPT_MIN_CHARS:
            continue
        grams = _trigrams(content)
        if grams and len(grams & present) >= PRESENT_MIN_SHARE * len(grams):
            result.kept.append(paragraph)
            kept_signatures.add(signature(paragraph))
        elif length >= PROSE_MIN_CHARS:
            links = sum(len(a.text_content()) for a in paragraph.iter("a"))
            if links <= PROSE_MAX_LINK_SHARE * length:
                candidates.append((paragraph, length))
    for paragraph, length in candidates:
        if signature(paragraph) in kept_signatures and not _outside_article(paragraph):
            result.missed.append(paragraph)
            result.missed_chars += length
    return result


def blocks(tree: HtmlElement, paragraphs: Iterable[HtmlElement]) -> list[HtmlElement]:
    """The distinct blocks (parent elements) holding ``paragraphs``, in page order, none
    inside another."""
    parents = {id(p.getparent()): p.getparent() for p in paragraphs if p.getparent() is not None}
    if not parents:
        return []
    # keyed by the elements themselves: an id() of an element no longer referenced is reused
    order = {element: i for i, element in enumerate(tree.iter())}
    chosen = sorted(parents.values(), key=lambda element: order.get(element, 0))
    ids = {id(element) for element in chosen}
    return [
        element
        for element in chosen
        if not any(id(ancestor) in ids for ancestor in element.iterancestors())
    ]
