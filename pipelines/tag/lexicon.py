"""The Korea lexicon in memory: entries, rules and the one compiled regular expression.

``data/korea_lexicon.toml`` is read and validated by ``loader``; this module holds what it
builds and the matcher that finds every lexicon term in a text in one pass.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crawler.config import default

if TYPE_CHECKING:
    from collections.abc import Iterable

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_LEXICON_FILE: str = default("TAG_LEXICON_FILE")
"""Default of ``TAG_LEXICON_FILE``; a relative path is tried in the working directory, then
in the repository."""

KOREA_SIDES = ("north", "south", "both", "none")
ROLES = ("actor", "source")
PERSON_CATEGORIES = frozenset(
    {"leader", "politician", "official", "person", "athlete", "celebrity"}
)
PLACE_CATEGORIES = frozenset({"capital", "city", "place"})
LIST_CATEGORIES = frozenset({"country", "demonym"})
CATEGORIES = frozenset(
    {
        *PERSON_CATEGORIES,
        *PLACE_CATEGORIES,
        *LIST_CATEGORIES,
        "site",
        "institution",
        "party",
        "media",
        "talks",
        "programme",
        "company",
        "culture",
        "event",
        "history",
        "generic",
        "diaspora",
        "venue",
    }
)
TAG_KOREA = "korea"
TAG_NORTH = "north_korea"
TAG_SOUTH = "south_korea"
TAG_MENTION = "korea_mention"

# Separators inside a pattern (space, hyphens, dot, apostrophes) match any run of separators.
_SEP_CLASS = "\\s\\-\u2010-\u2015.'\u2019"
_SEP_RE = f"[{_SEP_CLASS}]+"
_SEP_STRIP_RE = re.compile(f"[{_SEP_CLASS}]+")
_EXACT_STRIP_RE = re.compile(r"[\s.]+")
_HANGUL_START_RE = re.compile("[\u1100-\u11ff\u3130-\u318f\uac00-\ud7a3]")
_LATIN_EDGE = "A-Za-z0-9\u00c0-\u024f"
_SEP_SYM = "\x00sep"
_WILD_SYM = "\x00wild"
_END_SYM = "\x00end"

_ELLIPTICAL_NEXT_RE = re.compile(r"(?:'s|\u2019s)?(?:\s+[A-Z]|-[A-Za-z])")

_RULE_DEFAULTS: dict[str, Any] = {
    "list_min_members": 4,
    "list_factor": 0.2,
    "name_list_min_others": 2,
    "tournament_factor": 0.25,
    "roundup_factor": 0.35,
    "source_factor": 1.0,
    "dateline_factor": 0.15,
    "elliptical_weight": 1.5,
    "both_ratio": 0.3,
    "subject_factor": 2.0,
    "subject_words": 10,
    "several_factor": 0.4,
    "attached_factor": 0.3,
    "personal_factor": 0.3,
    "aside_factor": 0.3,
    "example_factor": 0.4,
    "context_factor": 0.5,
    "source_after": r"(?:'s)?\s+(?:officials?|media)\b[^.;]{0,40}?\b(?:said|says|reported)\b",
    "source_before": r"(?:according\s+to)\s+(?:the\s+)?$",
    "list_separator": r"^[\s,;/&]*(?:(?:and|or|the)\s*[,\s]*)*$",
    "subject_end": r"\b(?:said|says|say|is|are|was|were|will|would|has|have|had)\b",
    "subject_intro": r"(?:In|On|At|After|Before|Despite|Amid|As|With|For|Following)\b[^,.;]{1,60},\s*",
    "venue_before": r"\b(?:in|at)\s+(?:the\s+)?$",
    "personal_before": r"\b(?:born|grew\s+up|raised)\s+in\s+$",
    "personal_after": r"\s+(?:wife|husband|mother|father|parents)\b",
    "example_before": r"\b(?:such\s+as|including)\s[^.;:!?]{0,100}$",
    "context_before": r"\b(?:amid|despite)\b",
    "several_headline": r"(?:two|three|four|five|six|seven|eight|nine|ten|\d+)\s",
}
_INTEGER_RULES = frozenset({"list_min_members", "name_list_min_others", "subject_words"})
_BOOSTS = frozenset({"elliptical_weight", "subject_factor"})
"""Rules that may exceed 1 (the other factors and ratios are shares from 0 to 1)."""


class LexiconError(ValueError):
    """A lexicon file that cannot be used; the message names the file, the entry and the key."""


# --------------------------------------------------------------------------------------------
# The lexicon


@dataclass(frozen=True, slots=True)
class Entry:
    """One thing that is evidence for Korea: a place, person, company, programme..."""

    id: str
    korea: str
    """``north``, ``south``, ``both`` or ``none`` (Korea, but neither side in particular)."""
    category: str
    weight: float
    topics: tuple[str, ...] = ()
    role: str = "actor"
    """``source``: a South Korean outlet or agency quoted as a source (no side evidence)."""
    surname: str | None = None
    """For people: the name the story may use alone later ("Han" for Hee-Won Han)."""


@dataclass(frozen=True, slots=True)
class Term:
    kind: str  # entry | negative | country | topic | marker
    entry: Entry | None = None
    label: str = ""  # topic name, negative reason or marker
    exact: frozenset[str] = frozenset()  # case-sensitive forms (see _exact_form)


@dataclass(frozen=True, slots=True)
class Rules:
    """The ``[rules]`` table: ambiguity rules as data."""

    list_min_members: int
    list_factor: float
    name_list_min_others: int
    tournament_factor: float
    roundup_factor: float
    source_factor: float
    dateline_factor: float
    elliptical_weight: float
    both_ratio: float
    subject_factor: float
    subject_words: int
    several_factor: float
    attached_factor: float
    personal_factor: float
    aside_factor: float
    example_factor: float
    context_factor: float
    source_after: re.Pattern[str]
    source_before: re.Pattern[str]
    list_separator: re.Pattern[str]
    subject_end: re.Pattern[str]
    subject_intro: re.Pattern[str]
    venue_before: re.Pattern[str]
    personal_before: re.Pattern[str]
    personal_after: re.Pattern[str]
    several_headline: re.Pattern[str]
    example_before: re.Pattern[str]
    context_before: re.Pattern[str]


@dataclass(slots=True)
class Hit:
    start: int
    end: int
    text: str
    kind: str  # entry | negative | country | topic | marker
    entry: Entry | None = None
    label: str = ""
    zone: str = ""
    factor: float = 1.0
    side_factor: float = 1.0
    flags: set[str] = field(default_factory=set)


def _strip_sep(text: str) -> str:
    return _SEP_STRIP_RE.sub("", text)


def _exact_form(text: str) -> str:
    """How case-sensitive forms compare: spaces and dots optional, hyphens not ("R-OK")."""
    return _EXACT_STRIP_RE.sub("", text)


def _tokens(pattern: str) -> list[str]:
    """Trie symbols of a pattern: lower-case characters, separator runs, a final wildcard."""
    wild = pattern.endswith("*")
    out: list[str] = []
    for char in pattern.rstrip("*"):
        if not _SEP_STRIP_RE.fullmatch(char):
            out.extend(char.lower())
        elif out and out[-1] != _SEP_SYM:
            out.append(_SEP_SYM)
    if out and out[-1] == _SEP_SYM:
        out.pop()
    if wild:
        out.append(_WILD_SYM)
    return out


def _trie_regex(patterns: Iterable[list[str]], buckets: int = 16) -> str:
    """One regex for many literal patterns: a prefix tree, so matching does not loop.

    The first characters are split into ``buckets`` ranges, each behind a one-character
    look-ahead, so a position is rejected after a few tests instead of one per first letter.
    """
    root: dict[str, Any] = {}
    for tokens in patterns:
        node = root
        for token in tokens:
            node = node.setdefault(token, {})
        node[_END_SYM] = {}
    firsts = sorted(root)
    if not firsts:
        return "(?!)"
    size = max(1, -(-len(firsts) // buckets))
    groups = []
    for index in range(0, len(firsts), size):
        chunk = firsts[index : index + size]
        guard = "".join(re.escape(c) for c in chunk)
        body = _node_regex({c: root[c] for c in chunk})
        groups.append(f"(?=[{guard}]){body}")
    return "(?:" + "|".join(groups) + ")"


def _node_regex(node: dict[str, Any]) -> str:
    alternatives = []
    for token in sorted(node, key=lambda t: (t != _SEP_SYM, t)):
        if token in (_END_SYM, _WILD_SYM):
            continue
        piece = _SEP_RE if token == _SEP_SYM else re.escape(token)
        alternatives.append(piece + _node_regex(node[token]))
    if _WILD_SYM in node:
        alternatives.append(r"[^\W\d_]*")
        return "(?:" + "|".join(alternatives) + ")"
    if not alternatives:
        return ""
    body = alternatives[0] if len(alternatives) == 1 else "(?:" + "|".join(alternatives) + ")"
    if _END_SYM in node:
        return f"(?:{body})?"
    return body


class Lexicon:
    """The compiled lexicon: entries, rules and the one regular expression that finds them."""

    def __init__(
        self,
        *,
        source: str,
        terms: dict[str, Term],
        prefixes: dict[str, Term],
        rules: Rules,
        topics: dict[str, str],
        name_weight: float,
        surnames: frozenset[str],
        syllables: list[str],
        patterns: list[str],
    ) -> None:
        self.source = source
        self.terms = terms
        self.prefixes = prefixes
        self.rules = rules
        self.topics = topics
        """Topic tag -> its description, in lexicon order."""
        self.name_weight = name_weight
        self.surnames = surnames
        self.entries = {t.entry.id: t.entry for t in terms.values() if t.entry is not None}
        self._elliptical = {
            side: Entry(
                id=f"the_{side}",
                korea=side,
                category="generic",
                weight=rules.elliptical_weight,
            )
            for side in ("north", "south")
        }
        self._sources = (patterns, syllables)

    @cached_property
    def regex(self) -> re.Pattern[str]:
        """The one expression that finds every term, compiled on first use (half a second):
        a process that reads the lexicon to check it but leaves tagging to its pool workers
        never compiles it."""
        return self._compile(*self._sources)

    # -- construction

    def _compile(self, patterns: list[str], syllables: list[str]) -> re.Pattern[str]:
        latin, hangul = [], []
        for pattern in patterns:
            (hangul if _HANGUL_START_RE.match(pattern) else latin).append(_tokens(pattern))
        by_length = sorted(syllables, key=len, reverse=True)
        cap = "|".join(s.capitalize() for s in by_length)
        anycase = "|".join(f"[{s[0].upper()}{s[0]}]{s[1:]}" for s in by_length)
        surnames = "|".join(sorted(self.surnames, key=len, reverse=True))
        given = rf"(?:{cap})(?:-(?:{anycase})|[ ](?:{cap}))"
        name = (
            rf"(?-i:(?<![\w\-])(?:(?P<fam1>{surnames})[ ]{given}(?![\w\-])"
            rf"|{given}[ ](?P<fam2>{surnames})(?![\w\-])))"
        )
        edge = _LATIN_EDGE
        # Speed, same matches: a name starts with one of these letters in this case, the
        # elliptical form with T, t, N or S (look-aheads without IGNORECASE), and the three
        # Latin-script branches only where a word starts (each checks that itself too), so
        # most positions are turned away before any alternative is tried. A Hangul term
        # starts where none of them can, so its branch may come last.
        starts = {s[:1] for s in self.surnames} | {s.capitalize()[:1] for s in by_length}
        name_start = (
            f"(?-i:(?=[{re.escape(''.join(sorted(starts)))}]))"
            if starts and "" not in starts
            else ""
        )
        regex = (
            rf"(?=[{edge}\uac00-\ud7a3])(?:(?<![{edge}])(?:"
            rf"(?P<lat>(?<![{edge}]){_trie_regex(latin)}(?![{edge}]))"
            rf"|(?P<name>{name_start}(?=[A-Z]){name})"
            r"|(?P<ell>(?-i:(?=[TtNS]))(?-i:(?<![\w])(?:[Tt]he\s+)?(?:North|South)(?![\w]))))"
            rf"|(?P<han>(?=[\uac00-\ud7a3])(?<![\uac00-\ud7a3]){_trie_regex(hangul)}))"
        )
        return re.compile(regex, re.IGNORECASE)

    # -- matching

    def scan(self, text: str) -> list[Hit]:
        """Every lexicon term in ``text``, longest first, left to right."""
        hits: list[Hit] = []
        pos = 0
        search = self.regex.search
        while True:
            match = search(text, pos)
            if match is None:
                return hits
            hit = self._resolve(match, text)
            if hit is None:
                pos = match.start() + 1
                continue
            hits.append(hit)
            pos = match.end()

    def _resolve(self, match: re.Match[str], text: str) -> Hit | None:
        found = match.group()
        start, end = match.span()
        group = match.lastgroup
        if group == "ell":
            if _ELLIPTICAL_NEXT_RE.match(text, end):
                return None
            side = "north" if found.endswith("North") else "south"
            return Hit(start, end, found, "entry", self._elliptical[side], label="elliptical")
        stripped = _strip_sep(found)
        key = stripped.lower()
        term = self.terms.get(key)
        if group == "name":
            if term is None:
                surname = match.group("fam1") or match.group("fam2")
                entry = Entry(
                    id=f"name:{key}",
                    korea="none",
                    category="person",
                    weight=self.name_weight,
                    surname=surname,
                )
                return Hit(start, end, found, "entry", entry, label="name")
        elif term is None:
            for cut in range(len(key) - 1, 0, -1):
                term = self.prefixes.get(key[:cut])
                if term is not None:
                    break
        if term is None or (term.exact and _exact_form(found) not in term.exact):
            return None
        return Hit(start, end, found, term.kind, term.entry, label=term.label)
