"""Lines of an article body as the clean rules see them: whitespace normalisation, the
comparison forms (``text``, ``key``), navigation-like lines, learned-boilerplate keys."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass

CANDIDATE_MAX_WORDS = 20
"""Learned boilerplate counts lines of at most this many words ..."""
CANDIDATE_MAX_CHARS = 160
"""... and characters (template lines: follow us, tip lines, promos) on the domain's stories
(``CLEAN_BOILERPLATE_MIN_ARTICLES``) ..."""
LONG_CANDIDATE_MAX_WORDS = 80
"""... and longer lines up to this many words ..."""
LONG_CANDIDATE_MAX_CHARS = 600
"""... and characters (disclaimers, appeals, pop-up notices written as a paragraph) on one
story more (``LONG_EXTRA_STORIES``): a paragraph shared verbatim by that many different
stories is a template, not news."""
TEMPLATE_MIN_WORDS = 8
"""A line of at least this many words is also counted by its template: its first and last
``TEMPLATE_EDGE_WORDS`` words, so a template line whose middle changes from story to story
(a name, a headline, a count: "About the author: X has covered Y for a decade") is learned
too, from one story more than a line (articles' own paragraphs practically never share both
ends on three different stories)."""
TEMPLATE_EDGE_WORDS = 3
NAV_MAX_WORDS = 15
"""A line without sentence-final punctuation and at most this long reads as navigation."""

# -- character normalisation -----------------------------------------------------------------
_SPACE_CHARS = "\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
_SPACE_CHARS += "\u202f\u205f\u3000\t\f\v"
_INVISIBLE_CHARS = "\u200b\u2060\ufeff\u00ad\u180e"
_TRANSLATE = {
    **dict.fromkeys(map(ord, _SPACE_CHARS), " "),
    **dict.fromkeys(map(ord, _INVISIBLE_CHARS), None),
    ord("\u2028"): "\n",
    ord("\u2029"): "\n\n",
}
_TRANSLATED_RE = re.compile("[" + re.escape(_SPACE_CHARS + _INVISIBLE_CHARS) + "\u2028\u2029]")
_MULTI_SPACE_RE = re.compile(r" {2,}")
_BLANK_RUN_RE = re.compile(r"\n{3,}")
_CIRCLED_C = str.maketrans({"ⓒ": "©", "Ⓒ": "©"})
# Emoji, variation selectors, tag characters, and format characters (ZWJ, bidi marks).
_EMOJI_FORMAT_RE = re.compile(
    "[\U0001f000-\U0001faff\ufe00-\ufe0f\U000e0000-\U000e007f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u2064\u00ad\ufeff]"
)
_APOSTROPHE_RE = re.compile("['`\u2019\u2018\u02bc\u00b4]")
_NON_WORD_RE = re.compile(r"[\W_]+")
_SENTENCE_END_RE = re.compile("[.!?\u2026\u3002\uff01\uff1f]$")
_CLOSERS = "\"'\u201d\u2019\u00bb)]}*|:;,-\u2013\u2014 "
_LIST_SPLIT_RE = re.compile(r"[,|·•/;]")
_BULLET_RE = re.compile("[-\u2013\u2022\u00b7*\u25aa\u25e6\u25ba\u25b6\u25b7\u261e]\\s")
# Link-list bullets: not "*", which starts footnotes.
_LINK_BULLET_RE = re.compile("[-\u2013\u2022\u00b7\u25aa\u25e6\u25ba\u25b6\u25b7\u261e]\\s")
_TEASER_RE = re.compile(r"[:>»|]\s*\S")
_SEPARATORS = "|\u00bb\u203a>\u2192"  # bar, guillemets, greater-than, arrow
_DASHES = "\\-\u2013\u2014"  # hyphen, en dash, em dash
_LABEL_CHAR = f"[^\\s:.!?,;{_SEPARATORS}{_DASHES}]"
_LABEL_RE = re.compile(
    rf"(?P<label>[^\W\d_]{_LABEL_CHAR}*(?: {_LABEL_CHAR}+){{0,3}})"
    rf"(?: ?(?:[{_SEPARATORS}]+|::?)| [{_DASHES}]+) (?P<rest>\S.*)"
)
"""A label of one to four words before a separator: "Source - X", "TOPICS | X", "Photo > X"
(any dash, bar, guillemet or arrow)."""
_CJK_RE = re.compile(r"[\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u4e00-\u9fff\uac00-\ud7a3]")
_RULE_NAME_RE = re.compile(r"[a-z][a-z0-9_]*")


def tidy_spacing(text: str) -> str:
    """Whitespace and invisible characters only: NBSP and other spaces -> space, zero-width
    characters and soft hyphens dropped, spaces collapsed, lines trimmed, runs of blank lines
    -> one blank line. Nothing else of the text changes (ZWJ inside emoji is kept)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if _TRANSLATED_RE.search(text):  # most texts have none: translate() is slow
        text = text.translate(_TRANSLATE)
    lines = [
        (_MULTI_SPACE_RE.sub(" ", line) if "  " in line else line).strip()
        for line in text.split("\n")
    ]
    return _BLANK_RUN_RE.sub("\n\n", "\n".join(lines)).strip()


def label_form(cmp: str) -> str:
    """``cmp`` (a ``text_form``) with the separator after a short label written as a colon:
    sites write "Source | X", "SOURCE - X" or "Source" and a dash, guillemet or arrow for
    "Source: X"."""
    match = _LABEL_RE.fullmatch(cmp)
    if match is None:
        return cmp
    return f"{match['label']}: {match['rest']}"


def text_form(line: str) -> str:
    """The comparison form rules with ``form = "text"`` see: NFKC, lower case, no emoji,
    no zero-width or no-break spaces, single spaces; punctuation kept."""
    if line.isascii():  # nothing to normalise or strip but case and spaces
        return " ".join(line.lower().split())
    if "ⓒ" in line or "Ⓒ" in line:
        line = line.translate(_CIRCLED_C)
    folded = unicodedata.normalize("NFKC", line).casefold()
    return " ".join(_EMOJI_FORMAT_RE.sub("", folded).split())


# key_form of ASCII text in one pass: apostrophes dropped, every other character that is not
# a letter or digit a space (what the two expressions below do, without their cost per line)
_ASCII_KEY = {
    **{c: " " for c in range(128) if not chr(c).isalnum()},
    **dict.fromkeys(map(ord, "'`"), None),
}


def _key_of(cmp: str) -> str:
    if cmp.isascii():
        return " ".join(cmp.translate(_ASCII_KEY).split())
    return " ".join(_NON_WORD_RE.sub(" ", _APOSTROPHE_RE.sub("", cmp)).split())


def key_form(line: str) -> str:
    """The comparison form ``form = "key"`` rules see: ``text_form`` with apostrophes dropped
    and every other punctuation mark or symbol turned into a single space."""
    return _key_of(text_form(line))


def key_hash(key: str) -> str:
    """Hash of a ``key_form`` string (64 bits, hex)."""
    return hashlib.blake2b(key.encode("utf-8"), digest_size=8).hexdigest()


def line_key(line: str) -> str:
    """Hash of a line's ``key_form``: the same line modulo case, punctuation, emoji and
    invisible characters gets the same key (used for learned boilerplate and headlines)."""
    return key_hash(key_form(line))


def template_key(key: str) -> str | None:
    """The template hash of a line's ``key_form`` (first and last ``TEMPLATE_EDGE_WORDS``
    words), marked with a leading ``t``; ``None`` for a line shorter than
    ``TEMPLATE_MIN_WORDS``."""
    words = key.split()
    if len(words) < TEMPLATE_MIN_WORDS:
        return None
    edges = " ".join(words[:TEMPLATE_EDGE_WORDS]) + " ~ " + " ".join(words[-TEMPLATE_EDGE_WORDS:])
    return "t" + key_hash(edges)[1:]


def is_template_key(line_hash: str) -> bool:
    return line_hash.startswith("t")


def _is_list_like(text: str) -> bool:
    items = [item for item in _LIST_SPLIT_RE.split(text) if item.strip()]
    return len(items) >= 3 and sum(len(item.split()) for item in items) / len(items) <= 4


def _is_nav(text: str, words: int) -> bool:
    """Navigation-like: no sentence-final punctuation and short (or a comma list of names)."""
    if _SENTENCE_END_RE.search(text.rstrip(_CLOSERS)):
        return False
    return words <= NAV_MAX_WORDS or _is_list_like(text)


@dataclass(slots=True)
class _Line:
    para: int
    text: str
    cmp: str
    key: str
    words: int
    nav: bool

    @classmethod
    def make(cls, para: int, text: str) -> _Line:
        cmp = text_form(text)
        key = _key_of(cmp)
        words = len(text.split())
        return cls(para, text, label_form(cmp), key, words, _is_nav(text, words))

    def learned_keys(self) -> list[str]:
        """The hashes learned boilerplate knows the line by: its ``line_key`` and, for a
        line of ``TEMPLATE_MIN_WORDS`` or more, its ``template_key``."""
        keys = [key_hash(self.key)]
        template = template_key(self.key)
        if template is not None:
            keys.append(template)
        return keys

    @property
    def candidate(self) -> bool:
        """Short enough to be a template line that learned boilerplate may count."""
        return (
            bool(self.key)
            and self.words <= LONG_CANDIDATE_MAX_WORDS
            and len(self.text) <= LONG_CANDIDATE_MAX_CHARS
        )


def _split_lines(text: str) -> list[_Line]:
    lines: list[_Line] = []
    for para, block in enumerate(text.split("\n\n")):
        lines.extend(_Line.make(para, line) for line in block.split("\n") if line)
    return lines


def is_long_line(line: str) -> bool:
    """A candidate longer than a template line: learned from one story more."""
    return len(line.split()) > CANDIDATE_MAX_WORDS or len(line) > CANDIDATE_MAX_CHARS


def boilerplate_candidates(text: str) -> dict[str, str]:
    """``{hash: line}`` for the lines of ``text`` that learned boilerplate considers, by
    their ``line_key`` and (longer lines) their ``template_key``."""
    return candidates_of(_split_lines(tidy_spacing(text)))


def candidates_of(lines: list[_Line]) -> dict[str, str]:
    """``boilerplate_candidates`` of lines already split."""
    return {key: ln.text for ln in lines if ln.candidate for key in ln.learned_keys()}
