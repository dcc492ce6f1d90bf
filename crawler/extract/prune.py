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
# case; "fakta" and "fakten" in Nordic and German newsrooms).
_BOXES = lxml.etree.XPath(
    "//*[contains(translate(@class, 'FACTBOXINF', 'factboxinf'), 'factbox')"
    " or contains(translate(@class, 'FACTBOXINF', 'factboxinf'), 'fact-box')"
    " or contains(translate(@class, 'FACTBOXINF', 'factboxinf'), 'infobox')"
    " or contains(translate(@class, 'FACTBOXINF', 'factboxinf'), 'info-box')"
    " or contains(@class, 'faktabox') or contains(@class, 'faktenbox')]"
)


def prune(tree: HtmlElement) -> int:
    """Remove the link lists and fact boxes of ``tree`` (in place); the number removed."""
    doomed = [element for element in _LISTS(tree) if is_link_list(element)]
    doomed += [e for e in _BOXES(tree) if e.tag not in ("html", "body", "main", "article")]
    for element in doomed:
        if element.getparent() is not None:
            element.drop_tree()
    return len(doomed)
