"""Article bodies a page carries as data rather than as markup: JSON-LD ``articleBody`` and the
JSON that hydration scripts hold (Next.js ``__NEXT_DATA__`` and its streamed flight data,
state objects assigned or pushed in inline scripts). A body found there counts only when the
object holding it also names the page's own headline (a page's data also describes related
stories), or when it holds the body the page shows."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import lxml.etree
import lxml.html

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from lxml.html import HtmlElement

BODY_MIN_CHARS = 200
"""A string (or a list of text blocks) this long, once text, may be an article body."""
BLOCK_MIN_CHARS = 20
"""A list of text blocks joins those of at least this many characters ..."""
BLOCKS_MIN = 3
"""... when there are at least this many."""
OWNER_DEPTH = 3
"""The headline is looked for in the object holding a body and up to this many above it."""
HEADLINE_MIN_OVERLAP = 0.6
"""Two headlines are the same when their words overlap this much (Jaccard) ..."""
HEADLINE_WORDS_MIN_SHARE = 0.5
"""A body tells of a headline when it holds this share of the headline's words."""
MAX_JSON_CANDIDATES = 200
"""... and at most this many places of a page's inline scripts are tried as JSON."""

_WORD_RE = re.compile(r"\w+")
_HTML_HINT_RE = re.compile(r"<(?:p|br|h[1-6]|div|li|blockquote)\b", re.IGNORECASE)
# Where a JSON value may start in a script: after "=", "(" or "," ("x = {", "push({").
_JSON_START_RE = re.compile(r"[=(,]\s*(?=[\[{])")
_SENTENCE_END_RE = re.compile(
    r"[.!?\u2026\u3002\uff01\uff1f][\"'\u201d\u2019\u00bb)]?\s*(?:</\w+>\s*)*$"
)
_SENTENCE_RE = re.compile("[.!?\u3002\uff01\uff1f](?:\\s|$|<)")
_FLIGHT_PREFIX = "self.__next_f.push("
_FLIGHT_ROW_RE = re.compile(r"([0-9a-f]{1,8}):")
_FLIGHT_REF_RE = re.compile(r"\$([0-9a-f]{1,8})")
_HEADLINE_KEYS = (
    "headline",
    "headlines",
    "title",
    "name",
    "webTitle",
    "seoTitle",
    "displayTitle",
)
# Keys whose text summarises or labels an article rather than being its body.
_NOT_BODY_KEYS = frozenset(
    k.casefold()
    for k in (
        "description",
        "summary",
        "excerpt",
        "abstract",
        "dek",
        "teaser",
        "subtitle",
        "subheadline",
        "standfirst",
        "lead",
        "caption",
        "alt",
        "seoDescription",
        "metaDescription",
        "ogDescription",
    )
)


@dataclass(frozen=True)
class Candidate:
    """A body found in the page's data (text or HTML) and the headlines of its owner."""

    raw: str
    headlines: tuple[str, ...]


def _words(text: str) -> list[str]:
    return _WORD_RE.findall(text.casefold())


def same_headline(a: str, b: str) -> bool:
    """Same headline modulo punctuation, a site name added or cut, or a few words changed."""
    wa, wb = _words(a), _words(b)
    if not wa or not wb:
        return False
    short, long = sorted((" ".join(wa), " ".join(wb)), key=len)
    if len(short) >= 10 and short in long and len(short) >= 0.5 * len(long):
        return True
    sa, sb = set(wa), set(wb)
    return min(len(sa), len(sb)) >= 3 and len(sa & sb) / len(sa | sb) >= HEADLINE_MIN_OVERLAP


def page_headlines(tree: HtmlElement) -> list[str]:
    """The headlines the page shows or declares: ``og:title``, ``twitter:title``, ``<title>``
    and the first ``<h1>``."""
    found = [
        value.strip()
        for value in tree.xpath(
            '//meta[@property="og:title" or @name="twitter:title" or @name="title"]/@content'
            "|/html/head/title/text()"
        )
        if value and value.strip()
    ]
    h1 = tree.find(".//h1")
    if h1 is not None and (text := h1.text_content().strip()):
        found.append(text)
    return found


# -- JSON in the page ------------------------------------------------------------------------
def _decode_all(text: str) -> Iterator[Any]:
    """The JSON values an inline script assigns or passes ("x = {...}", "push({...})")."""
    decoder = json.JSONDecoder()
    tried = 0
    end = 0
    for match in _JSON_START_RE.finditer(text):
        start = match.end()
        if start < end:
            continue
        tried += 1
        if tried > MAX_JSON_CANDIDATES:
            return
        try:
            value, end = decoder.raw_decode(text, start)
        except (ValueError, RecursionError):
            continue
        if end - start >= BODY_MIN_CHARS:
            yield value


def _flight(chunks: list[str]) -> Iterator[Any]:
    """The rows of Next.js' streamed flight data, text rows resolved into the JSON rows that
    reference them (``"contentHtml": "$28"`` with row ``28:T<length>,<text>``)."""
    stream = "".join(chunks).encode("utf-8")
    texts: dict[str, str] = {}
    rows: list[str] = []
    pos = 0
    while pos < len(stream):
        line_end = stream.find(b"\n", pos)
        line_end = len(stream) if line_end < 0 else line_end
        head = stream[pos : min(line_end, pos + 24)].decode("utf-8", "replace")
        match = _FLIGHT_ROW_RE.match(head)
        if match and head[match.end() : match.end() + 1] == "T":
            comma = head.find(",", match.end())
            if comma > 0:
                try:
                    length = int(head[match.end() + 1 : comma], 16)
                except ValueError:
                    length = -1
                if length >= 0:
                    start = pos + len(head[: comma + 1].encode("utf-8"))
                    texts[match.group(1)] = stream[start : start + length].decode(
                        "utf-8", "replace"
                    )
                    pos = start + length
                    continue
        if match:
            rows.append(stream[pos + match.end() : line_end].decode("utf-8", "replace"))
        pos = line_end + 1
    yield from texts.values()
    for row in rows:
        if texts and '"$' in row:
            row = _FLIGHT_REF_RE.sub(
                lambda m: json.dumps(texts[m.group(1)])[1:-1] if m.group(1) in texts else m[0],
                row,
            )
        try:
            yield json.loads(row)
        except (ValueError, RecursionError):
            continue


def json_values(tree: HtmlElement) -> Iterator[Any]:
    """Every JSON value of the page's scripts: JSON-LD and other JSON scripts, values
    assigned or passed in inline scripts, and Next.js flight data."""
    flight: list[str] = []
    for script in tree.iter("script"):
        text = script.text or ""
        if len(text) < BODY_MIN_CHARS and not text.startswith(_FLIGHT_PREFIX):
            continue
        kind = (script.get("type") or "").strip().lower()
        if "json" in kind:
            try:
                yield json.loads(text)
            except (ValueError, RecursionError):
                continue
        elif kind in ("", "text/javascript", "application/javascript", "module"):
            if text.startswith(_FLIGHT_PREFIX):
                try:
                    pushed, _ = json.JSONDecoder().raw_decode(text, len(_FLIGHT_PREFIX))
                except (ValueError, RecursionError):
                    continue
                if isinstance(pushed, list) and len(pushed) > 1 and isinstance(pushed[1], str):
                    flight.append(pushed[1])
            else:
                yield from _decode_all(text)
    if flight:
        yield from _flight(flight)


# -- bodies in the JSON ----------------------------------------------------------------------
def _headlines_of(obj: dict[str, Any]) -> list[str]:
    """The headlines an object names: ``"headline": "..."``, or ``"headlines": {"basic":
    "..."}`` as some publishing systems nest them."""
    found = []
    for key in _HEADLINE_KEYS:
        value = obj.get(key)
        if isinstance(value, str) and value.strip():
            found.append(value)
        elif isinstance(value, dict):
            found.extend(v for v in value.values() if isinstance(v, str) and v.strip())
    return found


def _is_prose(text: str) -> bool:
    """Words, not a URL, an identifier, a label or a list of keywords."""
    if text.count(" ") < 3 or text.lstrip().startswith(("http", "/", "{", "[")):
        return False
    if len(text) >= BODY_MIN_CHARS and not _SENTENCE_RE.search(text):
        return False
    items = text.split(",")
    return len(items) < 5 or len(text.split()) / len(items) > 3


def _list_blocks(items: list[Any]) -> list[str]:
    """The text blocks of a list: its strings of words, or the strings of words its objects
    hold under one same key (``[{"type": "text", "content": ...}, ...]``)."""
    strings = [item for item in items if isinstance(item, str) and _is_prose(item)]
    keys = Counter(
        key
        for item in items
        if isinstance(item, dict) and "@type" not in item  # JSON-LD entities, not blocks
        for key, value in item.items()
        if isinstance(value, str) and _is_prose(value)
    )
    if keys:
        key, count = keys.most_common(1)[0]
        if count > len(strings):
            return [
                item[key]
                for item in items
                if isinstance(item, dict)
                and isinstance(item.get(key), str)
                and _is_prose(item[key])
            ]
    return strings


def _walk(value: Any) -> Iterator[tuple[str, tuple[str, ...]]]:
    """Body-sized strings and lists of text blocks in ``value`` (not under a summary-like
    key), with the headlines of the nearest object holding them that names any (at most
    ``OWNER_DEPTH`` objects up)."""
    # (value, headlines of the nearest object naming some, objects up to it, depth)
    stack: list[tuple[Any, tuple[str, ...], int, int]] = [(value, (), OWNER_DEPTH + 1, 0)]
    while stack:
        obj, owner, distance, depth = stack.pop()
        if depth > 64:
            continue
        if isinstance(obj, dict):
            if named := _headlines_of(obj):
                owner, distance = tuple(named), 0
            else:
                distance += 1
            names = owner if distance <= OWNER_DEPTH else ()
            for key, child in obj.items():
                if isinstance(key, str) and key.casefold() in _NOT_BODY_KEYS:
                    continue
                if isinstance(child, str):
                    if len(child) >= BODY_MIN_CHARS:
                        yield child, names
                else:
                    stack.append((child, owner, distance, depth + 1))
        elif isinstance(obj, list):
            names = owner if distance <= OWNER_DEPTH else ()
            blocks = [t for t in _list_blocks(obj) if len(t) >= BLOCK_MIN_CHARS]
            sentences = sum(1 for t in blocks if _SENTENCE_END_RE.search(t))
            if (
                len(blocks) >= BLOCKS_MIN
                and sum(map(len, blocks)) >= BODY_MIN_CHARS
                and sentences >= len(blocks) / 2
            ):
                yield "\n".join(_as_html_paragraph(b) for b in blocks), names
            for child in obj:
                if isinstance(child, dict | list):
                    stack.append((child, owner, distance, depth + 1))
                elif isinstance(child, str) and len(child) >= BODY_MIN_CHARS:
                    yield child, names


def _as_html_paragraph(block: str) -> str:
    return block if _HTML_HINT_RE.search(block) else f"<p>{_escape(block)}</p>"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _to_text(raw: str, to_text: Callable[[HtmlElement], str | None]) -> str | None:
    if _HTML_HINT_RE.search(raw):
        html = f"<html><body><article>{raw}</article></body></html>"
    else:
        paragraphs = [p.strip() for p in raw.split("\n") if p.strip()]
        if not paragraphs or " " not in raw.strip():
            return None
        html = "<html><body><article>" + "".join(f"<p>{_escape(p)}</p>" for p in paragraphs)
        html += "</article></body></html>"
    try:
        tree = lxml.html.document_fromstring(html)
    except (lxml.etree.ParserError, ValueError):
        return None
    return to_text(tree)


def _tells_of(text: str, headline: str) -> bool:
    """``text`` uses most of the words of ``headline`` (a story about something else, a
    cookie notice or a playlist of other stories does not)."""
    words = {w for w in _words(headline) if len(w) >= 3 or not w.isascii()}
    if not words:
        return False
    # substrings of word stems: endings change ("closes", "closed"), Korean particles and
    # compounds extend words
    folded = text.casefold()
    found = sum(1 for w in words if (w[: max(3, len(w) - 2)] if len(w) >= 5 else w) in folded)
    return found >= HEADLINE_WORDS_MIN_SHARE * len(words)


class PageData:
    """The article bodies in a page's data: found when first asked for, each turned into
    text (by ``to_text``, from an article element) only when it is a candidate."""

    def __init__(self, tree: HtmlElement, to_text: Callable[[HtmlElement], str | None]) -> None:
        self.tree = tree
        self.to_text = to_text
        self._texts: dict[str, str | None] = {}

    @cached_property
    def candidates(self) -> list[Candidate]:
        """Body-like strings of the page's JSON with their owners' headlines, longest first."""
        found: dict[str, Candidate] = {}
        for value in json_values(self.tree):
            for raw, headlines in _walk(value):
                if raw not in found and _is_prose(raw):
                    found[raw] = Candidate(raw, headlines)
        return sorted(found.values(), key=lambda c: len(c.raw), reverse=True)

    def text(self, candidate: Candidate) -> str | None:
        if candidate.raw not in self._texts:
            text = _to_text(candidate.raw, self.to_text)
            self._texts[candidate.raw] = text if text and len(text) >= BODY_MIN_CHARS else None
        return self._texts[candidate.raw]

    def owned_body(self, headlines: list[str]) -> str | None:
        """The longest body whose object (or one of the few above it) names one of the
        page's ``headlines`` and that tells of that headline."""
        for candidate in self.candidates:
            pages = [p for p in headlines if any(same_headline(h, p) for h in candidate.headlines)]
            if pages and (text := self.text(candidate)) and any(_tells_of(text, p) for p in pages):
                return text
        return None

    def containing(self, body: str, accept: Callable[[str, str], bool]) -> str | None:
        """The longest body that ``accept(candidate, body)`` (it holds ``body`` and more:
        the data confirms and completes what the page shows)."""
        for candidate in self.candidates:
            if len(candidate.raw) < len(body):
                return None  # a body's text is never longer than its source
            if (text := self.text(candidate)) and accept(text, body):
                return text
        return None
