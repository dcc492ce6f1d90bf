"""Parts of an article page that sit inside the article's markup but are not the article:
lists of links to other stories, sections or tags, and fact boxes. They are removed from the
page before the extractors see it (extractors take text, not links or class names, so they
cannot tell such a list from the article's own lists)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import lxml.etree

if TYPE_CHECKING:
    from lxml.html import HtmlElement

LINK_ITEM_MIN_SHARE = 0.6
"""A list item is a link when link text makes up at least this share of its text ..."""
LINK_LIST_MIN_SHARE = 0.6
"""... and a list is a list of links when at least this share of its items are links."""
LINK_LIST_MIN_ITEMS = 2
"""A single link in a list says nothing about the list."""

_LISTS = lxml.etree.XPath("//ul[li] | //ol[li]")


def _text_length(element: HtmlElement) -> int:
    return len(element.text_content().strip())


def _link_length(element: HtmlElement) -> int:
    return sum(len(a.text_content().strip()) for a in element.iter("a"))


def is_link_list(element: HtmlElement) -> bool:
    """A ``<ul>``/``<ol>`` whose items are mostly links, each mostly link text: related
    stories ("kicker: headline" items too), section menus, tag lists."""
    items = [li for li in element if li.tag == "li" and _text_length(li)]
    if len(items) < LINK_LIST_MIN_ITEMS:
        return False
    links = sum(1 for li in items if _link_length(li) >= LINK_ITEM_MIN_SHARE * _text_length(li))
    return links >= LINK_LIST_MIN_SHARE * len(items)


# Fact and info boxes: background set apart from the story (a class naming them, in any
# case; "fakta" and "fakten" in Nordic and German newsrooms). XPath finds the elements whose
# class holds "ox" in any case, with one translate() per element; Python checks the words.
_BOX_CANDIDATES = lxml.etree.XPath("//*[contains(translate(@class, 'OX', 'ox'), 'ox')]")
_BOX_LOWER = str.maketrans("FACTBOXINF", "factboxinf")
_BOX_WORDS = ("factbox", "fact-box", "infobox", "info-box")
_BOX_WORDS_AS_IS = ("faktabox", "faktenbox")


def is_box(element: HtmlElement) -> bool:
    """Whether ``element``'s class names a fact or info box."""
    classes = element.get("class") or ""
    lowered = classes.translate(_BOX_LOWER)
    return any(w in lowered for w in _BOX_WORDS) or any(w in classes for w in _BOX_WORDS_AS_IS)


def prune(tree: HtmlElement) -> int:
    """Remove the link lists and fact boxes of ``tree`` (in place); the number removed."""
    doomed = [element for element in _LISTS(tree) if is_link_list(element)]
    doomed += [
        e
        for e in _BOX_CANDIDATES(tree)
        if e.tag not in ("html", "body", "main", "article") and is_box(e)
    ]
    for element in doomed:
        if element.getparent() is not None:
            element.drop_tree()
    return len(doomed)
