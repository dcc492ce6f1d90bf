"""trafilatura's author search in the page's markup (``trafilatura.metadata.extract_author``),
in one pass over the tree instead of its regular-expression XPaths on a pruned copy.

trafilatura copies the page, deletes the parts where a name is not the author's (comment
lists, sidebars, quotes, dates, figures ...), then tries three XPath expressions in turn
and takes the first element whose text is a plausible name. Those expressions test class
and id attributes with EXSLT regular expressions, which lxml evaluates by calling back into
Python for every element: about 15 ms on a news page. Here the same tests run on each
element's attributes directly and the deleted parts are skipped, not deleted: same result
(``tests/test_extract_body.py`` compares it with trafilatura on every fixture page).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING

import lxml.etree
from trafilatura.metadata import normalize_authors
from trafilatura.utils import trim

if TYPE_CHECKING:
    from lxml.html import HtmlElement

AUTHOR_MAX_CHARS = 120
"""trafilatura's limit: a longer text is not a name (``len_limit``)."""

# trafilatura.xpaths.AUTHOR_DISCARD_XPATHS
_DISCARD_TAGS = frozenset({"a", "div", "section", "span"})
_DISCARD_ID_RE = re.compile(r"^comments|comment-?list|ProductReviews")
_DISCARD_CLASS_RE = re.compile(
    r"^[Cc]omments|commentlist|comments-list|sidebar|is-hidden|quote|embedly-instagram|"
    r"article-(?:share|support)|print|category|meta-date|meta-reviewer"
)
_ALWAYS_DISCARDED = frozenset({"time", "figure"})
# trafilatura.xpaths.AUTHOR_XPATHS, in its order
_FIRST_TAGS = frozenset({"a", "address", "div", "link", "p", "span", "strong"})
_FIRST_CLASS_RE = re.compile(r"author-?name|AuthorName|authorName")
_SECOND_TAGS = frozenset({"a", "div", "h3", "h4", "p", "span"})
_SECOND_CLASSES = frozenset({"byline", "username", "byl", "BBL"})
_SECOND_ID_RE = re.compile(r"author|zuozhe|bianji|xiaobian")
_SECOND_CLASS_RE = re.compile(
    r"author|channel-name|zuozhe|bianji|xiaobian|submitted-by|posted-by|journalist-name"
)
_THIRD_ID_RE = re.compile(r"[Aa]uthor")
_THIRD_CLASS_RE = re.compile(r"[Aa]uthor|screenname|writer|[Bb]yline")
# What any of the tests looks for in a class or an id (exact values included as substrings).
_ANY_CLASS_RE = re.compile(
    "|".join(
        r.pattern for r in (_DISCARD_CLASS_RE, _FIRST_CLASS_RE, _SECOND_CLASS_RE, _THIRD_CLASS_RE)
    )
    + "|comments|title|date|author|byline|username|byl|BBL"
)
_ANY_ID_RE = re.compile(
    "|".join(r.pattern for r in (_DISCARD_ID_RE, _SECOND_ID_RE, _THIRD_ID_RE)) + "|comments"
)
_SPECIAL_TAGS = frozenset({"author", "time", "figure"})
# Elements with an attribute a test reads other than class and id (few on a page), or a
# <rel> child ("rel='me'" in the first test).
_OTHER = lxml.etree.XPath("//*[@rel or @itemprop or @data-testid or @data-component] | //rel/..")
# Every element one of the tests may pick, in page order (none holds for an element without
# any of these attributes or a <rel> child, except for <author>, <time> and <figure>).
_CANDIDATES = lxml.etree.XPath(
    "//*[@class or @id or @rel or @itemprop or @data-testid or @data-component or rel]"
    " | //author | //time | //figure"
)


def _maybe(element: HtmlElement, tag: str, others: set[HtmlElement]) -> bool:
    """Whether any test may hold for ``element``: a quick look first, since most elements
    have a class or an id that no test cares about."""
    if tag in _SPECIAL_TAGS or element in others:
        return True
    cls = element.get("class")
    if cls is not None and _class_may_matter(cls):
        return True
    element_id = element.get("id")
    return element_id is not None and _ANY_ID_RE.search(element_id) is not None


@lru_cache(maxsize=4096)
def _class_may_matter(cls: str) -> bool:
    """Whether a test looks for anything in this class attribute: the pages of one site
    share most of theirs, and the search through every pattern is what costs."""
    return _ANY_CLASS_RE.search(cls) is not None


def _discarded(element: HtmlElement, tag: str) -> bool:
    if tag in _ALWAYS_DISCARDED:
        return True
    if tag not in _DISCARD_TAGS:
        return False
    element_id = element.get("id")
    cls = element.get("class")
    return (
        element_id == "comments"
        or cls in ("comments", "title", "date")
        or (element_id is not None and _DISCARD_ID_RE.search(element_id) is not None)
        or (cls is not None and _DISCARD_CLASS_RE.search(cls) is not None)
        or "Figure" in (element.get("data-component") or "")
    )


def _first(element: HtmlElement, tag: str) -> bool:
    if tag == "author":
        return True
    if tag not in _FIRST_TAGS:
        return False
    cls = element.get("class")
    return (
        element.get("rel") == "author"
        or element.get("id") == "author"
        or cls == "author"
        or element.get("itemprop") == "author name"
        or any(
            child.tag == "rel" and child.text_content() == "me"
            for child in element.iterchildren("rel")
        )
        or element.get("data-testid") in ("AuthorCard", "AuthorURL")
        or (cls is not None and _FIRST_CLASS_RE.search(cls) is not None)
    )


def _second(element: HtmlElement, tag: str) -> bool:
    if tag not in _SECOND_TAGS:
        return False
    cls = element.get("class")
    element_id = element.get("id")
    return (
        cls in _SECOND_CLASSES
        or "author" in (element.get("itemprop") or "")
        or (element_id is not None and _SECOND_ID_RE.search(element_id) is not None)
        or (cls is not None and _SECOND_CLASS_RE.search(cls) is not None)
    )


def _third(element: HtmlElement) -> bool:
    cls = element.get("class")
    element_id = element.get("id")
    return (
        "Byline" in (element.get("data-component") or "")
        or "author" in (element.get("itemprop") or "")
        or (element_id is not None and _THIRD_ID_RE.search(element_id) is not None)
        or (cls is not None and _THIRD_CLASS_RE.search(cls) is not None)
    )


def _text(element: HtmlElement, gone: set[HtmlElement]) -> str:
    """``" ".join(element.itertext())`` as it reads once the discarded parts are deleted:
    a deleted element's text goes, its tail joins the text before it (trafilatura's
    ``delete_element``)."""
    pieces: list[str] = []

    def walk(node: HtmlElement) -> None:
        current = (node.text or "") if isinstance(node.tag, str) else ""
        for child in node:
            if child in gone:
                current += child.tail or ""
                continue
            if current:
                pieces.append(current)
            walk(child)
            current = child.tail or ""
        if current:
            pieces.append(current)

    walk(element)
    return " ".join(pieces)


def find_author(tree: HtmlElement) -> str | None:
    """The author ``trafilatura.metadata.extract_author(tree)`` finds, normalised as it
    normalises it; ``None`` when the markup names none."""
    # the set holds the elements themselves: lxml keeps one Python object per element only
    # while it is referenced, so an id() could be reused
    gone: set[HtmlElement] = set()
    matches: tuple[list[HtmlElement], ...] = ([], [], [])
    others = set(_OTHER(tree))
    for element in _CANDIDATES(tree):
        tag = element.tag
        if not _maybe(element, tag, others):
            continue
        if element is not tree and _discarded(element, tag):
            gone.add(element)
            continue
        for found, matched in zip(
            matches, (_first(element, tag), _second(element, tag), _third(element)), strict=True
        ):
            if matched:
                found.append(element)
    for found in matches:
        for element in found:
            if any(ancestor in gone for ancestor in element.iterancestors()):
                continue
            content = trim(_text(element, gone))
            if content and 2 < len(content) < AUTHOR_MAX_CHARS:
                return normalize_authors(None, content)
    return None
