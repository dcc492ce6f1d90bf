"""HTML -> article body text: trafilatura (favor_precision), completed by readability-lxml."""

from __future__ import annotations

import logging
import re

import lxml.etree
import lxml.html
import trafilatura
from readability import Document
from readability.readability import Unparseable

logger = logging.getLogger(__name__)

# Measured on ../shared/extraction-bench (bench/bench_clean.py): favor_precision beats the
# default there (F1 0.973 vs 0.966); pipelines/clean.py strips what is left of the spam.
_OPTIONS = {
    "favor_precision": True,
    "include_comments": False,
    "include_tables": True,
    "include_images": False,
    "include_links": False,
    "deduplicate": False,
}

SUPERSET_MIN_GROWTH = 1.25
"""readability's body replaces trafilatura's when it is at least this much longer ..."""
SUPERSET_MIN_CONTAINED = 0.9
"""... and holds at least this share of trafilatura's 4-word shingles (it is a superset:
trafilatura stopped at an ad row or a widget that split the article in two)."""

_WORD_RE = re.compile(r"\w+")
# Inline wrappers inside paragraphs: favor_precision prunes some of them by their class
# name ("link", "share" ...) and so drops words from the middle of a sentence.
_INLINE_SPANS = "//p//span | //li//span | //blockquote//span"


def _prepare(html: str) -> str:
    """``html`` with inline ``<span>`` wrappers inside paragraphs unwrapped (text kept)."""
    try:
        tree = lxml.html.document_fromstring(html)
    except (lxml.etree.ParserError, ValueError):
        return html
    spans = tree.xpath(_INLINE_SPANS)
    if not spans:
        return html
    for span in spans:
        span.drop_tag()
    return lxml.html.tostring(tree, encoding="unicode")


def _trafilatura(html: str, url: str | None) -> str | None:
    return trafilatura.extract(html, url=url, output_format="txt", **_OPTIONS) or None


def _readability(html: str, url: str | None) -> str | None:
    """The body readability-lxml chooses, turned into text by trafilatura."""
    try:
        # No url: readability would make every link absolute first (a fifth of its time),
        # and links do not reach the text.
        summary = Document(html).summary(html_partial=False)
    except (Unparseable, lxml.etree.LxmlError, ValueError, TypeError) as exc:
        logger.debug("%s: readability failed: %s", url, exc)
        return None
    return _trafilatura(summary, url)


def _shingles(text: str) -> set[tuple[str, ...]]:
    tokens = _WORD_RE.findall(text)
    return {tuple(tokens[i : i + 4]) for i in range(max(1, len(tokens) - 3))}


def is_superset(longer: str, shorter: str) -> bool:
    """True when ``longer`` keeps (almost) all of ``shorter`` and adds a substantial part."""
    if len(longer) < SUPERSET_MIN_GROWTH * len(shorter):
        return False
    inner = _shingles(shorter)
    if not inner:
        return True
    return len(inner & _shingles(longer)) / len(inner) >= SUPERSET_MIN_CONTAINED


def extract_body(html: str, url: str | None = None) -> str | None:
    """Return the main text of ``html`` as plain text (paragraphs split by blank lines).

    trafilatura (favor_precision) gives the body; when readability-lxml's choice of the
    article container yields a clear superset of it (trafilatura kept only the part before
    an ad row), that text is used instead. ``None`` when the page has no recognisable
    main text.
    """
    if isinstance(html, bytes):
        html = html.decode("utf-8", "replace")
    html = html.replace("\x00", "")
    if not html.strip():
        return None
    prepared = _prepare(html)
    text = _trafilatura(prepared, url)
    alternative = _readability(prepared, url)
    if alternative and (not text or is_superset(alternative, text)):
        logger.debug(
            "%s: readability body used (%d vs %d chars)", url, len(alternative), len(text or "")
        )
        text = alternative
    if not text:
        return None
    return text.replace("\n", "\n\n")
