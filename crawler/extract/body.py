"""HTML -> article body text: trafilatura (favor_precision, fast) on the prepared page; for an
empty, short or doubtful body, trafilatura's own fallbacks, the page's data, readability-lxml
and the article's blocks joined (``extract_body``; docs/extraction.md)."""

from __future__ import annotations

import logging
import re
import unicodedata
from copy import deepcopy
from typing import TYPE_CHECKING

import lxml.etree
import lxml.html
import trafilatura
from lxml.html import HtmlElement
from readability import Document
from readability.readability import Unparseable
from trafilatura.settings import MANUALLY_CLEANED
from trafilatura.utils import INVALID_XML_CHARS, load_html

from crawler.extract.coverage import Coverage, blocks, coverage, signature
from crawler.extract.prune import prune
from crawler.extract.structured import PageData, page_headlines

if TYPE_CHECKING:
    from collections.abc import Collection

logger = logging.getLogger(__name__)
_WS_RE = re.compile(r"\s+")
_SENTENCE_END_RE = re.compile("[.\u2026\u3002][\"'\u201d\u2019\u00bb)]*$")
HEADING_MAX_WORDS = 20
"""A page's ``<h1>`` longer than this reads as a sentence (a lede used as the headline)."""
# readability logs a page it cannot parse at ERROR with a traceback before it raises; the
# page is then handled (counted and logged at DEBUG here), not a crawl error.
logging.getLogger("readability.readability").setLevel(logging.CRITICAL)

# Measured with bench/bench_clean.py: favor_precision beats the default on extraction-bench
# (F1 0.973 vs 0.966) and gives the project's best scores on both sets with the clean step
# (pipelines/clean/), which strips what is left of the spam.
_OPTIONS = {
    "favor_precision": True,
    "include_comments": False,
    "include_tables": True,
    "include_images": False,
    "include_links": False,
    "deduplicate": False,
}

SHORT_BODY_CHARS = 500
"""A body shorter than this may be a teaser or what is left of a page whose article is
only in its data: the page's data is asked for a longer one."""
SUPERSET_MIN_GROWTH = 1.25
"""A fallback's body replaces the first when it is at least this much longer ..."""
SUPERSET_MIN_CONTAINED = 0.9
"""... and holds at least this share of its 4-word shingles (it is a superset: trafilatura
stopped at an ad row or a widget that split the article in two)."""

_WORD_RE = re.compile(r"\w+")
_CAPTIONS = lxml.etree.XPath(
    "//figcaption | //*[contains(translate(@class, 'CAPTION', 'caption'), 'caption')]"
)
# Inline wrappers inside paragraphs: favor_precision prunes some of them by their class
# name ("link", "share" ...) and so drops words from the middle of a sentence; and it drops a
# paragraph that opens with an empty bold or italic element.
_INLINE_SPANS = lxml.etree.XPath(
    "//p//span | //li//span | //blockquote//span"
    " | //p//*[self::b or self::strong or self::i or self::em or self::u or self::font]"
    "[not(node())]"
)

# A container holding block elements and text of its own beside them (a blog post written
# as "text<br><br>text" with a boxed paragraph below): favor_precision may drop the
# container's own text, so each run of it (text and inline elements up to a <br> or a block)
# becomes a paragraph.
_BLOCK_TAGS = frozenset(
    "address article aside blockquote dd details div dl dt fieldset figure footer form h1 h2 "  # noqa: SIM905
    "h3 h4 h5 h6 header hr li main nav ol p pre section table ul".split()
)
_MIXED_CONTAINERS = lxml.etree.XPath(
    "//div[p or div or blockquote or ul or ol or table or h2 or h3 or h4]"
    "[normalize-space(text()) != '']"
)

# Elements whose text never reaches trafilatura's output: its tree cleaning deletes them
# (MANUALLY_CLEANED) on every extraction path, except a <form> holding the main content and
# a <figure> holding a table (both kept as containers) and <math> (its LaTeX is kept).
_TEXTLESS_TAGS = tuple(sorted(set(MANUALLY_CLEANED) - {"form", "figure", "math"}))
_LISTS = ("ul", "ol", "dl", "menu")
_COUNT_ELEMENTS = lxml.etree.XPath("count(descendant-or-self::*)")
_COUNT_ITEMS = lxml.etree.XPath("count(.//li | .//dt | .//dd)")
_COUNT_CELLS = lxml.etree.XPath("count(.//td | .//th)")
_COUNT_ROWS = lxml.etree.XPath("count(.//tr | .//caption)")
# Characters trafilatura's plain-text output may add around one element of the page (line
# breaks and spaces between blocks, which readability may also wrap into a new <p>), around
# a list item ("- ", and two spaces of indent per nesting level), around a table cell
# ("| ", " | " and the "---|" of a header row) and a table row (line breaks, "|").
_PER_ELEMENT = 4
_PER_ITEM = 3
_PER_NESTING = 2
_PER_CELL = 7
_PER_ROW = 6
_MAX_SPAN = 100  # trafilatura's cap on colspan


def _span(cell: HtmlElement) -> int:
    """The columns a table cell spans, read as trafilatura reads them."""
    value = cell.get("colspan", "1")
    return min(int(value), _MAX_SPAN) if value.isdecimal() else 1


def max_text_length(tree: HtmlElement) -> float:
    """An upper bound on the length of the text trafilatura (``_OPTIONS``, plain text) can
    take from ``tree`` or from any document built of parts of it: readability's summary is
    made of whole elements of the page (it renames ``<div>`` to ``<p>`` and wraps loose text
    in new ``<p>``, and adds no text).

    That text is made of the words of the page outside the elements trafilatura deletes
    (white space collapsed, kept as is in ``<pre>`` and ``<code>``), plus the separators and
    the list and table markers it writes. ``inf`` when the page has ``<math>``, whose
    formulas trafilatura takes from attributes. Used to skip readability when its body
    cannot be long enough to replace trafilatura's (``SUPERSET_MIN_GROWTH``).
    """
    root = tree.find("body")
    if root is None:
        root = tree
    if root.find(".//math") is not None:
        return float("inf")
    root = deepcopy(root)
    try:
        lxml.etree.strip_elements(root, *_TEXTLESS_TAGS, with_tail=False)
    except ValueError:  # lxml refuses to move text holding a control character
        return float("inf")
    # trafilatura's text is NFC: that may split a character in two (composition exclusions)
    words = unicodedata.normalize("NFC", root.text_content()).split()
    length = sum(map(len, words)) + len(words) + 1  # each word, one space after it
    length += _PER_ELEMENT * int(_COUNT_ELEMENTS(root))
    length += _PER_ITEM * int(_COUNT_ITEMS(root))
    length += _PER_NESTING * sum(int(_COUNT_ITEMS(lst)) for lst in root.iter(*_LISTS))
    length += _PER_CELL * int(_COUNT_CELLS(root))
    for table in root.iter("table"):
        # trafilatura pads every row (and caption) to the widest row, spans included; no
        # row is wider than all the table's cells side by side
        width = sum(_span(cell) for cell in table.iter("td", "th"))
        length += (int(_COUNT_ROWS(table)) + 1) * (_PER_CELL * width + _PER_ROW)
    length += sum(len(element.text_content()) for element in root.iter("pre", "code"))
    return length


def _html_parser() -> lxml.html.HTMLParser:
    """lxml.html's parser, with every element an ``HtmlElement`` chosen in C: lxml.html's own
    parser calls a Python method for each element the code touches to pick its class (forms,
    inputs and labels get their own, which extraction never uses), about a tenth of the
    extraction's time."""
    parser = lxml.html.HTMLParser()
    parser.set_element_class_lookup(
        lxml.etree.ElementDefaultClassLookup(
            element=lxml.html.HtmlElement,
            comment=lxml.html.HtmlComment,
            pi=lxml.html.HtmlProcessingInstruction,
            entity=lxml.html.HtmlEntity,
        )
    )
    return parser


_PARSER = _html_parser()


def parse_html(html: str) -> HtmlElement | None:
    """``html`` as the tree ``extract_body`` (and the page metadata) read; ``None`` when
    lxml cannot parse it."""
    try:
        return lxml.html.document_fromstring(html, parser=_PARSER)
    except (lxml.etree.ParserError, ValueError):
        return None


def _prepare(html: str, tree: HtmlElement | None, *, consume: bool = False) -> str | HtmlElement:
    """The input for trafilatura and readability: a private copy of ``tree`` with inline
    ``<span>`` wrappers inside paragraphs and empty inline elements unwrapped (text kept),
    without comments and processing instructions (the tree trafilatura would parse from it
    serialized: its parser drops them, readability's cleaner too), and with the loose text
    of containers that also hold blocks in paragraphs (``wrap_loose_text``; lxml refuses
    control characters in new text, so not on a page that has them).

    That copy serialized when the page has control characters (trafilatura deletes them from
    a page it parses); ``html`` itself when there is no tree. ``tree`` is not modified, unless
    ``consume``: then it is the copy.
    """
    if tree is None:
        return html
    prepared = tree if consume else deepcopy(tree)
    prune(prepared)
    try:
        for span in _INLINE_SPANS(prepared):
            span.drop_tag()
    except ValueError:  # lxml refuses to move text holding a control character
        logger.debug("control characters in a paragraph: spans kept")
        return html
    lxml.etree.strip_tags(prepared, lxml.etree.Comment, lxml.etree.ProcessingInstruction)
    if INVALID_XML_CHARS.search(html):
        return lxml.html.tostring(prepared, encoding="unicode")
    for container in _MIXED_CONTAINERS(prepared):
        wrap_loose_text(container)
    return prepared


def wrap_loose_text(container: HtmlElement) -> None:
    """Wrap each run of ``container``'s own text (with the inline elements in it, up to a
    ``<br>`` or a block element) in a ``<p>``, in place; blocks and line breaks stay."""
    nodes: list[str | HtmlElement] = [container.text or ""]
    for child in container:
        nodes += [child, child.tail or ""]
        child.tail = None
    container.text = None
    for child in list(container):
        container.remove(child)
    run: HtmlElement | None = None
    last: HtmlElement | None = None  # the element the next text follows
    for node in nodes:
        if isinstance(node, str):
            if not node.strip():
                if last is None:
                    container.text = (container.text or "") + node
                else:
                    last.tail = (last.tail or "") + node
                continue
            if run is None:
                run = lxml.html.Element("p")
                container.append(run)
                last = None
            if len(run):
                run[-1].tail = (run[-1].tail or "") + node
            else:
                run.text = (run.text or "") + node
            continue
        tag = node.tag if isinstance(node.tag, str) else ""
        if tag == "br" or tag in _BLOCK_TAGS or not tag:
            run = None
            container.append(node)
            last = node
        else:
            if run is None:
                run = lxml.html.Element("p")
                container.append(run)
            run.append(node)
            last = run


def _trafilatura(page: str | HtmlElement, url: str | None, *, fast: bool = True) -> str | None:
    """trafilatura's text (``fast``: without its own fallback extractors); it works on a copy
    of a tree it is given."""
    return trafilatura.extract(page, url=url, output_format="txt", fast=fast, **_OPTIONS) or None


def _readability(page: str | HtmlElement, url: str | None, text: str | None) -> str | None:
    """The body readability-lxml chooses, turned into text by trafilatura; ``None`` as soon
    as it is sure that body cannot replace ``text`` (too short, see ``is_superset``).

    A tree ``page`` is modified (readability drops hidden elements from its input).
    """
    try:
        # No url: readability would make every link absolute first (a fifth of its time),
        # and links do not reach the text.
        summary = Document(page).summary(html_partial=False)
    except (Unparseable, lxml.etree.LxmlError, ValueError, TypeError) as exc:
        logger.debug("%s: readability failed: %s", url, exc)
        return None
    tree = load_html(summary)  # what trafilatura.extract(summary) parses
    if tree is None:
        return None
    if text and max_text_length(tree) < SUPERSET_MIN_GROWTH * len(text):
        return None
    return _trafilatura(tree, url)


def _shingles(text: str) -> set[tuple[str, ...]]:
    tokens = _WORD_RE.findall(text)
    return {tuple(tokens[i : i + 4]) for i in range(max(1, len(tokens) - 3))}


def is_superset(longer: str, shorter: str, *, besides: Collection[str] = ()) -> bool:
    """True when ``longer`` keeps (almost) all of ``shorter`` and adds a substantial part.

    Lines of ``shorter`` in ``besides`` (keys of the page's captions, ``caption_keys``) do
    not count: one extractor keeps an image's caption, the other does not.
    """
    if besides:
        shorter = "\n".join(line for line in shorter.split("\n") if _line_key(line) not in besides)
    if len(longer) < SUPERSET_MIN_GROWTH * len(shorter):
        return False
    inner = _shingles(shorter)
    if not inner:
        return True
    return len(inner & _shingles(longer)) / len(inner) >= SUPERSET_MIN_CONTAINED


def _line_key(text: str) -> str:
    return " ".join(_WORD_RE.findall(text.casefold()))


def caption_keys(tree: HtmlElement) -> frozenset[str]:
    """The captions of the page's images and videos (``<figcaption>``, elements of a
    caption class), compared as lower-case words."""
    keys = {_line_key(element.text_content()) for element in _CAPTIONS(tree)}
    keys.discard("")
    return frozenset(keys)


def _blocks_text(tree: HtmlElement, found: Coverage, url: str | None) -> str | None:
    """trafilatura's text of the page blocks holding the body's paragraphs and the missed
    ones marked up like them, side by side in page order: the article when ads, embeds or
    a sidebar split it into several blocks. ``None`` when they all sit in one block."""
    missed = {signature(p) for p in found.missed}
    containers = blocks(tree, [p for p in found.kept if signature(p) in missed] + found.missed)
    if len(containers) < 2:
        return None
    # one article element holding the blocks' content: trafilatura would otherwise pick the
    # first block again by its class name
    root = lxml.html.Element("html")
    article = lxml.etree.SubElement(lxml.etree.SubElement(root, "body"), "article")
    for container in containers:
        part = deepcopy(container)
        part.tail = None
        part.tag = "div"
        for name in list(part.attrib):
            del part.attrib[name]
        article.append(part)
    return _trafilatura(root, url)


def extract_body(
    html: str | bytes,
    url: str | None = None,
    *,
    tree: HtmlElement | None = None,
    every_fallback: bool = False,
    consume: bool = False,
) -> str | None:
    """Return the main text of ``html`` as plain text (paragraphs split by blank lines);
    ``None`` when the page has no recognisable main text.

    What runs, in order (docs/extraction.md):

    1. the page, parsed once, without its lists of links (``prune``) and with inline
       wrappers inside paragraphs unwrapped (``_prepare``);
    2. trafilatura (favor_precision, without its own fallback extractors): the body;
    3. an empty or short body (< ``SHORT_BODY_CHARS``): trafilatura with its fallbacks, then
       a body the page's data holds for its headline (``PageData.owned_body``);
    4. an empty body, or a doubtful one (``Coverage.doubtful``: prose paragraphs marked up
       like the body's own are missing): readability-lxml's article container, a body of
       the page's data, or the blocks holding the missed paragraphs joined; the first of
       these that holds (almost) all of the body and adds a substantial part replaces it
       (``is_superset``, image captions aside);
    5. last, a first line that is the page's one ``<h1>`` goes: the headline above the body,
       which the title holds (``_without_heading``; not a heading that reads as a sentence).

    ``tree`` is ``parse_html(html)`` when the caller has it already; it is not modified,
    unless ``consume`` (the caller no longer needs it: one copy of the page less).
    ``every_fallback`` runs steps 3 and 4 on every page (trafilatura with its fallbacks
    first), to measure what the doubt test saves.
    """
    if isinstance(html, bytes):
        html = html.decode("utf-8", "replace")
    html = html.replace("\x00", "")
    if not html.strip():
        return None
    if tree is None:
        tree = parse_html(html)
    headings = _h1_texts(tree) if tree is not None else set()
    return _paragraphs(
        _without_heading(_main_text(html, url, tree, every_fallback, consume), headings)
    )


def _h1_texts(tree: HtmlElement) -> set[str]:
    """The page's headline when it has one ``<h1>`` (a page with several uses them for
    widget titles too)."""
    found = [h1 for h1, _ in zip(tree.iter("h1"), range(2), strict=False)]
    if len(found) != 1:
        return set()
    heading = _WS_RE.sub(" ", found[0].text_content()).strip()
    if _SENTENCE_END_RE.search(heading) or len(heading.split()) > HEADING_MAX_WORDS:
        return set()  # reads as a sentence: perhaps the lede, used as the headline
    return {heading}


def _without_heading(text: str | None, headings: set[str]) -> str | None:
    """``text`` without a first line that is one of the page's ``<h1>`` headings: the
    headline shown above the body, which the title already holds."""
    if not text or not headings:
        return text
    first, _, rest = text.partition("\n")
    if rest.strip() and _WS_RE.sub(" ", first).strip() in headings:
        return rest
    return text


def _main_text(
    html: str, url: str | None, tree: HtmlElement | None, every_fallback: bool, consume: bool
) -> str | None:
    """Steps 1 to 4 of ``extract_body``: the body as trafilatura's lines."""
    page = _prepare(html, tree, consume=consume)
    text = _trafilatura(page, url, fast=not every_fallback)
    source = page if isinstance(page, HtmlElement) else tree
    if source is None:
        return text
    found = coverage(source, text or "")
    doubtful = found.doubtful or every_fallback
    if text and len(text) >= SHORT_BODY_CHARS and not doubtful:
        return text

    # no body or a short one: trafilatura with its own fallbacks, then the page's data
    if (not text or len(text) < SHORT_BODY_CHARS) and not every_fallback:
        full = _trafilatura(page, url, fast=False)
        if full and len(full) > len(text or ""):
            logger.debug("%s: trafilatura's fallbacks give %d chars", url, len(full))
            text = full
            found = coverage(source, text)
            doubtful = found.doubtful
    data = PageData(tree, lambda article: _trafilatura(article, url))
    if not text or len(text) < SHORT_BODY_CHARS:
        owned = data.owned_body(page_headlines(tree))
        if owned and len(owned) > len(text or ""):
            logger.debug("%s: body from the page's data (%d chars)", url, len(owned))
            return owned
    if text and not doubtful:
        return text

    # no body or a doubtful one: a fallback replaces it when it holds (almost) all of it and
    # adds a substantial part
    merged = _blocks_text(source, found, url) if text else None
    captions = caption_keys(source)

    def holds(longer: str, shorter: str) -> bool:
        return is_superset(longer, shorter, besides=captions)

    data.candidates  # noqa: B018 -- read the page's data before readability changes the tree
    # readability last: it modifies the tree it is given
    alternative = _readability(page, url, text)
    if alternative and (not text or holds(alternative, text)):
        logger.debug(
            "%s: readability body used (%d vs %d chars)", url, len(alternative), len(text or "")
        )
        text = alternative
    elif text and (completed := data.containing(text, holds)):
        logger.debug("%s: body from the page's data (%d vs %d)", url, len(completed), len(text))
        text = completed
    elif merged and text and holds(merged, text):
        logger.debug("%s: body from several blocks (%d vs %d chars)", url, len(merged), len(text))
        text = merged
    return text


def _paragraphs(text: str | None) -> str | None:
    """trafilatura's lines as paragraphs separated by a blank line."""
    return text.replace("\n", "\n\n") if text else None
