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
    items = [(li, n) for li in element if li.tag == "li" and (n := _text_length(li))]
    if len(items) < LINK_LIST_MIN_ITEMS:
        return False
    links = sum(1 for li, n in items if _link_length(li) >= LINK_ITEM_MIN_SHARE * n)
    return links >= LINK_LIST_MIN_SHARE * len(items)


# Elements with a class attribute: one XPath pass, then the class names are read in Python
# (cheaper than one translate() per element and word in XPath).
_CLASSED = lxml.etree.XPath("//*[@class]")
_FIGCAPTIONS = lxml.etree.XPath("//figcaption")
_CONTAINERS = frozenset(("html", "body", "main", "article"))

# Fact and info boxes: background set apart from the story (a class naming them, in any
# case; "fakta" and "fakten" in Nordic and German newsrooms).
_BOX_LOWER = str.maketrans("FACTBOXINF", "factboxinf")
_BOX_WORDS = ("factbox", "fact-box", "infobox", "info-box")
_BOX_WORDS_AS_IS = ("faktabox", "faktenbox")


def is_box(element: HtmlElement) -> bool:
    """Whether ``element``'s class names a fact or info box."""
    classes = element.get("class") or ""
    lowered = classes.translate(_BOX_LOWER)
    return any(w in lowered for w in _BOX_WORDS) or any(w in classes for w in _BOX_WORDS_AS_IS)


# Image and video captions: <figcaption>, or an element whose class names a caption
# ("caption", "wp-caption-text", "image-caption"; not "hasCaption", a container's flag).
CAPTION_MAX_CHARS = 600
"""A caption is a sentence or two: a longer element of a caption class is left alone."""
_NOT_CAPTION_PREFIXES = ("has", "with", "no")


def is_caption(element: HtmlElement) -> bool:
    """Whether ``element`` is a ``<figcaption>`` or its class names a caption, and its text
    is caption-sized."""
    if element.tag != "figcaption":
        words = (element.get("class") or "").lower().split()
        if not any("caption" in w and not w.startswith(_NOT_CAPTION_PREFIXES) for w in words):
            return False
    return _text_length(element) <= CAPTION_MAX_CHARS


# Text for screen readers only, hidden on screen by the utility classes of CSS frameworks and
# CMSs (Bootstrap "sr-only" / "visually-hidden", WordPress "screen-reader-text"): a headline
# repeated for an icon link, "opens in a new window", the labels of share buttons.
_HIDDEN_WORDS = ("sr-only", "visually-hidden", "visuallyhidden", "screen-reader", "screenreader")


def is_screen_reader_only(element: HtmlElement) -> bool:
    """Whether ``element``'s class hides it from the screen (screen readers only)."""
    classes = (element.get("class") or "").lower()
    return any(w in classes for w in _HIDDEN_WORDS)


def _boxable(element: HtmlElement) -> bool:
    """Whether ``element`` may be removed as a box: not a page's container, except an
    ``<article>`` inside another ``<article>`` (a box the story's markup sets apart)."""
    if element.tag not in _CONTAINERS:
        return True
    return element.tag == "article" and any(a.tag == "article" for a in element.iterancestors())


def prune(tree: HtmlElement) -> int:
    """Remove the link lists, fact boxes, captions and screen-reader-only text of ``tree``
    (in place); the number removed."""
    doomed = [element for element in _LISTS(tree) if is_link_list(element)]
    doomed += [e for e in _FIGCAPTIONS(tree) if is_caption(e)]
    for element in _CLASSED(tree):
        classes = element.get("class").lower()
        box = "ox" in classes and _boxable(element) and is_box(element)
        caption = "caption" in classes and element.tag != "figcaption" and is_caption(element)
        if box or caption or any(w in classes for w in _HIDDEN_WORDS):
            doomed.append(element)
    for element in doomed:
        if element.getparent() is not None:
            _drop(element)
    return len(doomed)


def _drop(element: HtmlElement) -> None:
    """Remove ``element`` but not its tail; a space takes its place when a word follows, so
    the words on either side stay apart ("Overline<span class='sr-only'>: </span><span>
    Headline</span>" -> "Overline Headline")."""
    following = element.tail
    if not following:
        after = element.getnext()
        if after is not None and isinstance(after.tag, str):
            following = next((t for t in after.itertext() if t), "")
        elif after is not None:  # a comment or processing instruction
            following = after.tail
    if following and following[0].isalnum():
        element.tail = " " + (element.tail or "")
    element.drop_tree()
