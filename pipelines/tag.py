"""Tag Korea stories: a lexicon-driven scorer (``tag_story``) and the ``TagPipeline`` around it.

The lexicon (``data/korea_lexicon.toml``) is compiled once into a single regular expression.
"""

from __future__ import annotations

import html
import logging
import math
import re
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from itemadapter import ItemAdapter
from scrapy.exceptions import NotConfigured

from crawler.config import default, get_bool, get_float, get_str

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_LEXICON_FILE: str = default("TAG_LEXICON_FILE")
"""Default of ``TAG_LEXICON_FILE``; a relative path is tried in the working directory, then
in the repository."""

KOREA_THRESHOLD: float = default("TAG_KOREA_THRESHOLD")
"""Default of ``TAG_KOREA_THRESHOLD``: score from which a story is ``korea``. Measured on
``dev.csv`` (``bench/bench_tag.py --sweep``): every threshold from 4.5 to 6.0 separates core from
mention there (strongest mention 4.2, weakest core 6.0, one generic "Korean" in a headline).
5.5 keeps a margin below that and keeps one term repeated twice in the lead (5.44) a mention,
while a strong term in the headline (>= 6), two distinct terms in the lead, or a term that
opens the lead with weight >= 2.5 (the lead-subject rule: 5.6) make ``korea``."""
MENTION_THRESHOLD: float = default("TAG_MENTION_THRESHOLD")
"""Default of ``TAG_MENTION_THRESHOLD``: score from which a non-Korea story is a
``korea_mention``. On ``dev.csv`` the weakest mention scores 1.97 and every ``none`` item 0;
0.5 is lower so that one "South Korea" in a 3,000-word body (0.67) still counts, while a
diaspora word ("Korean-American", weight 0.3) in the lead (0.45) does not."""

TITLE_WEIGHT = 3.0
"""A term in the headline counts this many times its weight."""
LEAD_WEIGHT = 1.5
"""A term in the lead (the first ``LEAD_CHARS`` of the text, to the end of that sentence)."""
LEAD_CHARS = 300
BODY_WINDOW_WORDS = 150
"""Body terms are divided by sqrt(body words / this): one passing word in a long article
does not make it a Korea story."""
REPEAT_GAIN = 0.3
"""A term seen n times in one zone counts (1 + REPEAT_GAIN * ln n) times."""
TOPIC_MIN = 1.5
"""A topic tag needs at least this much (one headline or lead term, or several body terms)..."""
TOPIC_RELATIVE = 0.25
"""... and at least this share of the strongest topic."""

KOREA_SIDES = ("north", "south", "both", "none")
ROLES = ("actor", "source")
PERSON_CATEGORIES = frozenset(
    {"leader", "politician", "official", "person", "athlete", "celebrity"}
)
PLACE_CATEGORIES = frozenset({"capital", "city", "place"})
LIST_CATEGORIES = frozenset({"country", "demonym"})
_VENUE_DEMOTED = PLACE_CATEGORIES | {"country"}
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

_AG_ENTITY_RE = re.compile(r"\s?#(\d{2,5});")
_BARE_ENTITY_RE = re.compile(r"(?<![&\w])(quot|amp|lt|gt|nbsp|apos);")
_TAG_RE = re.compile(r"</?[a-zA-Z][^<>]{0,40}>")
_SPACES_RE = re.compile(r"[ \t\u00a0]+")
_SENTENCE_END_RE = re.compile(r"[.!?。](?=\s|$)|\n")
_DATELINE_RE = re.compile(
    r"""^\s*(?:
        [A-Z][A-Z.'\-]+(?:[ ][A-Z][A-Z.'\-]+){0,3}        # SEOUL / SAN FRANCISCO
        (?:,\s*(?:[A-Z][\w.'\-]*\s*){1,3})?               # , South Korea
        \s*(?:\([^()]{1,40}\))?                            # (Reuters)
        \s*(?:--|\u2014|\u2013|-|:)\s                      # - / -- / :
      | [A-Z]{3,}(?:[ ][A-Z]{3,})?\s+(?=[A-Z][a-z])        # SEOUL North Korea ...
    )""",
    re.VERBOSE,
)
_CREDIT_RE = re.compile(
    r"\s*(?:\d{4}-\d\d-\d\d\s+)?(?:[A-Z][A-Za-z]*(?:\.com)?(?:\s\([^()]{1,30}\))?\s+(?:--|-|:)\s+)?"
)
_COMPOUND_SUBJECT_RE = re.compile(r"(?:\s+[\w.'-]+){0,2}?\s+(?:and|or|&)\s", re.IGNORECASE)
_JOINED_BEFORE_RE = re.compile(r"[A-Z][\w'\u2019.-]*\s*(?:,|\band\b|&)\s*$")
_JOINED_AFTER_RE = re.compile(r"(?:'s|\u2019s)?\s*(?:,|\band\b|&)\s*[A-Z]")
_ELLIPTICAL_NEXT_RE = re.compile(r"(?:'s|\u2019s)?(?:\s+[A-Z]|-[A-Za-z])")
_HONORIFICS = frozenset(
    {"Mr", "Mrs", "Ms", "Miss", "Dr", "President", "Chairman", "Leader", "Minister", "General"}
)
_PREV_WORD_RE = re.compile(r"([A-Z][a-z]+)\.?\s+$")
_NEXT_WORD_RE = re.compile(r"\s+[A-Z][a-z]")

_RULE_DEFAULTS: dict[str, Any] = {
    "list_min_members": 4,
    "list_factor": 0.2,
    "venue_factor": 0.25,
    "roundup_factor": 0.35,
    "source_factor": 1.0,
    "dateline_factor": 0.15,
    "elliptical_weight": 1.5,
    "both_ratio": 0.3,
    "lead_subject_factor": 1.5,
    "lead_subject_words": 3,
    "several_factor": 0.4,
    "source_after": r"(?:'s)?\s+(?:officials?|media)\b[^.;]{0,40}?\b(?:said|says|reported)\b",
    "source_before": r"(?:according\s+to)\s+(?:the\s+)?$",
    "list_separator": r"^[\s,;/&]*(?:(?:and|or|the)\s*[,\s]*)*$",
}
_BOOSTS = frozenset({"elliptical_weight", "lead_subject_factor"})
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
class _Term:
    kind: str  # entry | negative | country | topic | marker
    entry: Entry | None = None
    label: str = ""  # topic name, negative reason or marker
    exact: frozenset[str] = frozenset()  # case-sensitive forms (see _exact_form)


@dataclass(frozen=True, slots=True)
class Rules:
    """The ``[rules]`` table: ambiguity rules as data."""

    list_min_members: int
    list_factor: float
    venue_factor: float
    roundup_factor: float
    source_factor: float
    dateline_factor: float
    elliptical_weight: float
    both_ratio: float
    lead_subject_factor: float
    lead_subject_words: int
    several_factor: float
    source_after: re.Pattern[str]
    source_before: re.Pattern[str]
    list_separator: re.Pattern[str]


@dataclass(slots=True)
class _Hit:
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
        terms: dict[str, _Term],
        prefixes: dict[str, _Term],
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
        self.regex = self._compile(patterns, syllables)

    # -- construction

    @classmethod
    def load(cls, path: str | Path) -> Lexicon:
        """Read and validate a lexicon file; ``LexiconError`` names what is wrong."""
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise LexiconError(f"{path}: cannot read the lexicon: {exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise LexiconError(f"{path}: not valid TOML: {exc}") from exc
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "<lexicon>") -> Lexicon:
        return _LexiconBuilder(source).build(data)

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
        regex = (
            rf"(?=[{edge}\uac00-\ud7a3])(?:"
            rf"(?P<lat>(?<![{edge}]){_trie_regex(latin)}(?![{edge}]))"
            rf"|(?P<han>(?=[\uac00-\ud7a3])(?<![\uac00-\ud7a3]){_trie_regex(hangul)})"
            rf"|(?P<name>(?=[A-Z]){name})"
            r"|(?P<ell>(?=[TtNS])(?-i:(?<![\w])(?:[Tt]he\s+)?(?:North|South)(?![\w]))))"
        )
        return re.compile(regex, re.IGNORECASE)

    # -- matching

    def scan(self, text: str) -> list[_Hit]:
        """Every lexicon term in ``text``, longest first, left to right."""
        hits: list[_Hit] = []
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

    def _resolve(self, match: re.Match[str], text: str) -> _Hit | None:
        found = match.group()
        start, end = match.span()
        group = match.lastgroup
        if group == "ell":
            if _ELLIPTICAL_NEXT_RE.match(text, end):
                return None
            side = "north" if found.endswith("North") else "south"
            return _Hit(start, end, found, "entry", self._elliptical[side], label="elliptical")
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
                return _Hit(start, end, found, "entry", entry, label="name")
        elif term is None:
            for cut in range(len(key) - 1, 0, -1):
                term = self.prefixes.get(key[:cut])
                if term is not None:
                    break
        if term is None or (term.exact and _exact_form(found) not in term.exact):
            return None
        return _Hit(start, end, found, term.kind, term.entry, label=term.label)


class _LexiconBuilder:
    """Validates the TOML data and builds a ``Lexicon``; errors name the entry and the key."""

    TOP_KEYS = frozenset(
        {"version", "rules", "markers", "names", "countries", "topics", "negative", "group"}
    )
    GROUP_KEYS = frozenset({"name", "category", "korea", "weight", "topics", "role", "entries"})
    ENTRY_KEYS = frozenset(
        {"id", "patterns", "exact", "korea", "weight", "category", "topics", "role", "surname"}
    ) | {"note"}

    def __init__(self, source: str) -> None:
        self.source = source
        self.terms: dict[str, _Term] = {}
        self.prefixes: dict[str, _Term] = {}
        self.owners: dict[str, str] = {}
        self.patterns: list[str] = []

    def fail(self, where: str, problem: str) -> LexiconError:
        return LexiconError(f"{self.source}: {where}: {problem}")

    def build(self, data: Mapping[str, Any]) -> Lexicon:
        unknown = sorted(set(data) - self.TOP_KEYS)
        if unknown:
            raise self.fail("top level", f"unknown key {unknown[0]!r}")
        rules = self._rules(data.get("rules", {}))
        names = self._table(data.get("names", {}), "[names]")
        self._keys(names, {"weight", "surnames", "syllables"}, "[names]")
        name_weight = self._weight(names.get("weight", 2.0), "[names]")
        surnames = self._strings(names.get("surnames", []), "[names]", "surnames")
        syllables = [
            s.lower() for s in self._strings(names.get("syllables", []), "[names]", "syllables")
        ]
        if any(not s.isalpha() or not s.isascii() for s in syllables):
            raise self.fail("[names]", "key 'syllables': only ASCII letters are allowed")
        if any(not s.isalpha() or not s[:1].isupper() for s in surnames):
            raise self.fail("[names]", "key 'surnames': capitalised words only")
        topics = self._topics(data.get("topics", {}))
        self._markers(data.get("markers", {}))
        self._countries(data.get("countries", {}))
        for index, negative in enumerate(self._array(data.get("negative", []), "negative"), 1):
            where = f"[[negative]] #{index}"
            negative = self._table(negative, where)
            self._keys(negative, {"reason", "patterns", "exact"}, where)
            reason = negative.get("reason")
            if not isinstance(reason, str) or not reason:
                raise self.fail(where, "key 'reason': a non-empty string is required")
            term = _Term("negative", label=reason)
            self._add(negative, term, where)
        entries: dict[str, Entry] = {}
        for gindex, group in enumerate(self._array(data.get("group", []), "group"), 1):
            self._group(group, gindex, topics, surnames, entries)
        return Lexicon(
            source=self.source,
            terms=self.terms,
            prefixes=self.prefixes,
            rules=rules,
            topics=topics,
            name_weight=name_weight,
            surnames=frozenset(surnames),
            syllables=syllables,
            patterns=self.patterns,
        )

    # -- sections

    def _rules(self, raw: Any) -> Rules:
        raw = self._table(raw, "[rules]")
        self._keys(raw, set(_RULE_DEFAULTS), "[rules]")
        values = {**_RULE_DEFAULTS, **raw}
        out: dict[str, Any] = {}
        for key, value in values.items():
            default = _RULE_DEFAULTS[key]
            if isinstance(default, str):
                if not isinstance(value, str):
                    raise self.fail("[rules]", f"key {key!r}: a regular expression string")
                try:
                    out[key] = re.compile(value, re.IGNORECASE)
                except re.error as exc:
                    problem = f"key {key!r}: bad regular expression: {exc}"
                    raise self.fail("[rules]", problem) from exc
            elif key in ("list_min_members", "lead_subject_words"):
                if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                    raise self.fail("[rules]", f"key {key!r}: a positive integer")
                out[key] = value
            else:
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise self.fail("[rules]", f"key {key!r}: a number")
                if not 0 <= value <= (10 if key in _BOOSTS else 1):
                    raise self.fail("[rules]", f"key {key!r}: out of range ({value})")
                out[key] = float(value)
        return Rules(**out)

    def _topics(self, raw: Any) -> dict[str, str]:
        raw = self._table(raw, "[topics]")
        topics: dict[str, str] = {}
        for name, spec in raw.items():
            where = f"[topics.{name}]"
            if not re.fullmatch(r"[a-z][a-z0-9_]*", name) or name in (
                TAG_KOREA,
                TAG_NORTH,
                TAG_SOUTH,
                TAG_MENTION,
            ):
                raise self.fail(where, "topic names are lower-case words, not a Korea tag")
            spec = self._table(spec, where)
            self._keys(spec, {"description", "patterns", "exact"}, where)
            description = spec.get("description")
            if not isinstance(description, str) or not description:
                raise self.fail(where, "key 'description': a non-empty string is required")
            topics[name] = description
            self._add(spec, _Term("topic", label=name), where, wildcards=True)
        return topics

    def _markers(self, raw: Any) -> None:
        raw = self._table(raw, "[markers]")
        self._keys(raw, {"roundup"}, "[markers]")
        if "roundup" in raw:
            self._add({"patterns": raw["roundup"]}, _Term("marker", label="roundup"), "[markers]")

    def _countries(self, raw: Any) -> None:
        raw = self._table(raw, "[countries]")
        self._keys(raw, {"patterns", "exact"}, "[countries]")
        self._add(raw, _Term("country", label="country"), "[countries]")

    def _group(
        self,
        raw: Any,
        gindex: int,
        topics: dict[str, str],
        surnames: list[str],
        entries: dict[str, Entry],
    ) -> None:
        gwhere = f"[[group]] #{gindex}"
        raw = self._table(raw, gwhere)
        if isinstance(raw.get("name"), str):
            gwhere = f"[[group]] #{gindex} ({raw['name']})"
        self._keys(raw, self.GROUP_KEYS, gwhere)
        for eindex, spec in enumerate(self._array(raw.get("entries"), f"{gwhere} entries"), 1):
            spec = self._table(spec, f"{gwhere} entry #{eindex}")
            patterns = spec.get("patterns") or spec.get("exact") or []
            label = spec.get("id") or (
                patterns[0] if patterns and isinstance(patterns, list) else ""
            )
            where = f"{gwhere} entry {label!r}" if label else f"{gwhere} entry #{eindex}"
            self._keys(spec, self.ENTRY_KEYS, where)
            entry_id = spec.get("id") or re.sub(r"\W+", "_", str(label).lower()).strip("_")
            if not isinstance(entry_id, str) or not entry_id:
                raise self.fail(where, "key 'id': a non-empty string is required")
            if entry_id in entries:
                raise self.fail(where, f"key 'id': {entry_id!r} is used twice")
            korea = spec.get("korea", raw.get("korea"))
            if korea not in KOREA_SIDES:
                raise self.fail(
                    where, f"key 'korea': one of {', '.join(KOREA_SIDES)} (got {korea!r})"
                )
            category = spec.get("category", raw.get("category"))
            if category not in CATEGORIES:
                raise self.fail(where, f"key 'category': unknown category {category!r}")
            weight = self._weight(spec.get("weight", raw.get("weight")), where)
            entry_topics = spec.get("topics", raw.get("topics", []))
            if not isinstance(entry_topics, list) or any(t not in topics for t in entry_topics):
                raise self.fail(where, f"key 'topics': unknown topic in {entry_topics!r}")
            role = spec.get("role", raw.get("role", "actor"))
            if role not in ROLES:
                raise self.fail(where, f"key 'role': one of {', '.join(ROLES)} (got {role!r})")
            surname = spec.get("surname")
            if surname is not None and (not isinstance(surname, str) or not surname.isalpha()):
                raise self.fail(where, "key 'surname': a single word")
            if surname is None and category in PERSON_CATEGORIES:
                surname = _guess_surname(spec.get("patterns", []), surnames)
            entry = Entry(
                id=entry_id,
                korea=korea,
                category=category,
                weight=weight,
                topics=tuple(entry_topics),
                role=role,
                surname=surname,
            )
            entries[entry_id] = entry
            self._add(spec, _Term("entry", entry=entry), where, required=True)

    # -- helpers

    def _add(
        self,
        spec: Mapping[str, Any],
        term: _Term,
        where: str,
        *,
        wildcards: bool = False,
        required: bool = False,
    ) -> None:
        plain = self._strings(spec.get("patterns", []), where, "patterns")
        exact = self._strings(spec.get("exact", []), where, "exact")
        if required and not plain and not exact:
            raise self.fail(where, "key 'patterns': at least one pattern is required")
        exact_term = (
            _Term(term.kind, term.entry, term.label, frozenset(_exact_form(p) for p in exact))
            if exact
            else term
        )
        for key_name, patterns, this in (("patterns", plain, term), ("exact", exact, exact_term)):
            for pattern in patterns:
                wild = pattern.endswith("*")
                if ("*" in pattern[:-1]) or (wild and not wildcards):
                    raise self.fail(where, f"key {key_name!r}: '*' not allowed in {pattern!r}")
                key = _strip_sep(pattern.rstrip("*")).lower()
                if not key:
                    raise self.fail(where, f"key {key_name!r}: empty pattern {pattern!r}")
                table = self.prefixes if wild else self.terms
                owner_key = ("*" if wild else "") + key
                owner = self.owners.get(owner_key)
                if owner is not None and owner != where:
                    raise self.fail(
                        where, f"key {key_name!r}: pattern {pattern!r} is already used by {owner}"
                    )
                if owner is not None and table[key] is not this:
                    raise self.fail(
                        where, f"key {key_name!r}: {pattern!r} is both exact and case-insensitive"
                    )
                self.owners[owner_key] = where
                table[key] = this
                self.patterns.append(pattern)

    def _strings(self, value: Any, where: str, key: str) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise self.fail(where, f"key {key!r}: a list of non-empty strings is required")
        return [v.strip() for v in value]

    def _weight(self, value: Any, where: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 10:
            raise self.fail(where, f"key 'weight': a number from 0 to 10 (got {value!r})")
        return float(value)

    def _table(self, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, "must be a table")
        return value

    def _array(self, value: Any, where: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(where, "must be an array of tables")
        return value

    def _keys(self, table: Mapping[str, Any], allowed: Iterable[str], where: str) -> None:
        unknown = sorted(set(table) - set(allowed))
        if unknown:
            raise self.fail(where, f"unknown key {unknown[0]!r}")


def _guess_surname(patterns: Any, surnames: list[str]) -> str | None:
    """The family name of a person entry, when most of its romanised forms agree on it.

    A Korean surname first ("Kim Si-woo") or last ("Hee-Won Han"); a hyphenated word is a
    given name. An entry that lists several people gets none.
    """
    if not isinstance(patterns, list):
        return None
    known = set(surnames)
    votes: Counter[str] = Counter()
    voters = 0
    for pattern in patterns:
        words = pattern.split() if isinstance(pattern, str) else []
        if len(words) < 2 or not words[0].isascii():
            continue
        candidates = {w for w in (words[0], words[-1]) if w in known}
        if candidates:
            voters += 1
            votes.update(candidates)
    if not votes:
        return None
    surname, count = votes.most_common(1)[0]
    return surname if count >= 0.6 * voters else None


@lru_cache(maxsize=8)
def load_lexicon(path: str | Path = DEFAULT_LEXICON_FILE) -> Lexicon:
    """Load (once per path) and compile a lexicon file."""
    return Lexicon.load(resolve_lexicon_path(path))


def resolve_lexicon_path(path: str | Path) -> Path:
    """A relative path is looked up in the working directory, then in the repository."""
    path = Path(path)
    if path.is_absolute() or path.exists():
        return path
    return REPO_ROOT / path


# --------------------------------------------------------------------------------------------
# Tagging


@dataclass(frozen=True, slots=True)
class TagResult:
    """What ``tag_story`` decided, and why."""

    tags: list[str]
    """``korea``, ``north_korea``, ``south_korea``, or ``korea_mention``; then topic tags."""
    is_korea: bool
    score: float
    evidence: dict[str, Any]
    """JSON-serialisable: matched terms per entry with title/lead/body counts, category,
    side, the rules that applied, the north/south balance and the topic scores."""


def clean_input(text: str) -> str:
    """Undo the escapes news feeds leave behind (``&amp;``, AG News' bare ``#39;``, ``\\``)."""
    if "&" in text:
        text = html.unescape(text)
    if ";" in text:
        text = _AG_ENTITY_RE.sub(lambda m: chr(int(m.group(1))), text)
        text = _BARE_ENTITY_RE.sub(lambda m: html.unescape(f"&{m.group(1)};"), text)
    if "<" in text:
        text = _TAG_RE.sub(" ", text)
    if "\\" in text:
        text = text.replace("\\", " ")
    return _SPACES_RE.sub(" ", text)


def lead_end(text: str) -> int:
    """Where the lead ends: ``LEAD_CHARS`` into the text, carried on to the sentence's end."""
    if len(text) <= LEAD_CHARS:
        return len(text)
    match = _SENTENCE_END_RE.search(text, LEAD_CHARS, LEAD_CHARS + 150)
    if match is not None:
        return match.end()
    space = text.find(" ", LEAD_CHARS)
    return len(text) if space == -1 else space


@dataclass
class _Tally:
    """Evidence summed per entry and zone: score, north/south balance, topics, terms."""

    score: float = 0.0
    north: float = 0.0
    south: float = 0.0
    topics: dict[str, float] = field(default_factory=dict)
    terms: list[dict[str, Any]] = field(default_factory=list)
    negated: list[dict[str, str]] = field(default_factory=list)
    roundup: bool = False

    @classmethod
    def of(cls, hits: list[_Hit], zone_weight: dict[str, float], topics: Iterable[str]) -> _Tally:
        tally = cls(topics=dict.fromkeys(topics, 0.0))
        records: dict[str, dict[str, Any]] = {}
        topic_counts: Counter[tuple[str, str]] = Counter()
        for hit in hits:
            if hit.kind == "negative":
                tally.negated.append({"matched": hit.text, "reason": hit.label})
            elif hit.kind == "topic":
                topic_counts[hit.label, hit.zone] += 1
            elif hit.kind == "marker":
                # a round-up says so in its headline or in the lead's first words
                opening = hit.zone == "title" or (hit.zone == "lead" and hit.start < 40)
                tally.roundup = tally.roundup or opening
            elif hit.kind == "entry" and hit.entry is not None:
                entry = hit.entry
                record = records.setdefault(
                    entry.id, {"entry": entry, "zones": {}, "matched": [], "flags": set()}
                )
                # per zone: count, best weight, best weight for the north/south decision
                zone = record["zones"].setdefault(hit.zone, [0, 0.0, 0.0])
                weight = entry.weight * hit.factor
                side_factor = 0.0 if entry.role == "source" else hit.side_factor
                zone[0] += 1
                zone[1] = max(zone[1], weight)
                zone[2] = max(zone[2], weight * side_factor)
                if hit.text not in record["matched"]:
                    record["matched"].append(hit.text)
                record["flags"] |= hit.flags
        sides = dict.fromkeys(KOREA_SIDES, 0.0)
        for entry_id, record in records.items():
            entry = record["entry"]
            entry_score = side_score = 0.0
            for zone, (count, best, best_side) in record["zones"].items():
                gain = zone_weight[zone] * (1.0 + REPEAT_GAIN * math.log(count))
                entry_score += best * gain
                side_score += best_side * gain
                for topic in entry.topics:
                    tally.topics[topic] += gain
            tally.score += entry_score
            sides[entry.korea] += side_score
            zones = record["zones"]
            tally.terms.append(
                {
                    "entry": entry_id,
                    "category": entry.category,
                    "korea": entry.korea,
                    "matched": record["matched"][:5],
                    **{z: zones[z][0] if z in zones else 0 for z in ("title", "lead", "body")},
                    "score": round(entry_score, 3),
                    "flags": sorted(record["flags"]),
                }
            )
        for (topic, zone), count in topic_counts.items():
            tally.topics[topic] += zone_weight[zone] * (1.0 + REPEAT_GAIN * math.log(count))
        tally.north = sides["north"] + sides["both"]
        tally.south = sides["south"] + sides["both"]
        tally.terms.sort(key=lambda t: (-t["score"], t["entry"]))
        return tally


class Tagger:
    """Scores stories against one lexicon with given thresholds."""

    def __init__(
        self,
        lexicon: Lexicon,
        *,
        korea_threshold: float = KOREA_THRESHOLD,
        mention_threshold: float = MENTION_THRESHOLD,
    ) -> None:
        self.lexicon = lexicon
        self.korea_threshold = korea_threshold
        self.mention_threshold = mention_threshold

    def tag(self, title: str | None, text: str | None, *, language: str | None = None) -> TagResult:
        """Tag one story: headline and text (the text's first sentences are its lead)."""
        title = clean_input(title or "")
        text = clean_input(text or "")
        end_of_lead = lead_end(text)
        body_words = len(text[end_of_lead:].split())
        zone_weight = {
            "title": TITLE_WEIGHT,
            "lead": LEAD_WEIGHT,
            "body": 1.0 / math.sqrt(max(1.0, body_words / BODY_WINDOW_WORDS)),
        }
        applied: set[str] = set()
        hits = self._find(title, text, end_of_lead, applied)
        tally = _Tally.of(hits, zone_weight, self.lexicon.topics)
        if tally.negated:
            applied.add("negative")
        score = tally.score
        if tally.roundup and score:
            score *= self.lexicon.rules.roundup_factor
            applied.add("roundup")
        is_korea = score >= self.korea_threshold
        tags: list[str] = []
        if is_korea:
            tags += [TAG_KOREA, *self._sides(tally.north, tally.south)]
        elif score >= self.mention_threshold and score > 0:
            tags.append(TAG_MENTION)
        topics: dict[str, float] = {}
        if tags:
            best = max(tally.topics.values(), default=0.0)
            for topic, value in tally.topics.items():
                if value >= TOPIC_MIN and value >= TOPIC_RELATIVE * best:
                    tags.append(topic)
                    topics[topic] = round(value, 3)
        evidence: dict[str, Any] = {
            "score": round(score, 3),
            "terms": tally.terms,
            "sides": {"north": round(tally.north, 3), "south": round(tally.south, 3)},
            "topics": topics,
            "rules": sorted(applied),
            "negated": tally.negated,
            "words": {
                "title": len(title.split()),
                "lead": len(text[:end_of_lead].split()),
                "body": body_words,
            },
        }
        if language:
            evidence["language"] = language
        return TagResult(tags=tags, is_korea=is_korea, score=round(score, 3), evidence=evidence)

    def _find(self, title: str, text: str, end_of_lead: int, applied: set[str]) -> list[_Hit]:
        """Scan headline and text, then apply the ambiguity rules to what was found."""
        lexicon = self.lexicon
        title_hits = lexicon.scan(title)
        for hit in title_hits:
            hit.zone = "title"
        text_hits = lexicon.scan(text)
        for hit in text_hits:
            hit.zone = "lead" if hit.start < end_of_lead else "body"
        for source, found in ((title, title_hits), (text, text_hits)):
            self._attribution(source, found, applied)
            self._lists(source, found, applied)
        lead_start = self._dateline(text, text_hits, applied)
        self._lead_subject(text, text_hits, lead_start, applied)
        hits = title_hits + text_hits
        if any(h.entry is not None and h.entry.category == "venue" for h in hits):
            for hit in hits:
                if hit.entry is not None and hit.entry.category in _VENUE_DEMOTED:
                    hit.factor *= lexicon.rules.venue_factor
                    hit.flags.add("venue")
                    applied.add("venue")
        hits += self._surnames(title, title_hits, "title", hits, end_of_lead)
        hits += self._surnames(text, text_hits, "text", hits, end_of_lead)
        if any("surname" in h.flags for h in hits):
            applied.add("surname")
        for hit in hits:
            # "Kane and Son score": a person named together with others in the headline or
            # the lead is one of several (docs/tagging.md: a mention)
            source = title if hit.zone == "title" else text
            if (
                hit.zone != "body"
                and hit.entry is not None
                and hit.entry.category in PERSON_CATEGORIES
                and (
                    _JOINED_BEFORE_RE.search(source, max(0, hit.start - 40), hit.start)
                    or _JOINED_AFTER_RE.match(source, hit.end)
                )
            ):
                hit.factor *= lexicon.rules.several_factor
                hit.flags.add("several")
                applied.add("several")
        # "the North" / "the South" only count in a story that names a Korea explicitly
        explicit_side = any(
            h.entry is not None and h.label != "elliptical" and h.entry.korea in ("north", "south")
            for h in hits
        )
        hits = [
            h
            for h in hits
            if h.label != "elliptical"
            or (explicit_side and (h.zone == "title" or h.text[:1] in "Tt"))
        ]
        if any(h.label == "elliptical" for h in hits):
            applied.add("elliptical")
        return hits

    def _sides(self, north: float, south: float) -> list[str]:
        """North, South or both: the weaker side must reach ``both_ratio`` of the stronger."""
        if north <= 0 and south <= 0:
            return [TAG_SOUTH]  # "Korea", "Koreans" with nothing else: South Korea
        ratio = self.lexicon.rules.both_ratio
        sides = []
        if north >= south or north >= ratio * south:
            sides.append(TAG_NORTH)
        if south > north or south >= ratio * north:
            sides.append(TAG_SOUTH)
        return sides

    # -- rules

    def _attribution(self, source: str, hits: list[_Hit], applied: set[str]) -> None:
        """ "South Korean officials said", "according to Yonhap": quoted, not acting."""
        rules = self.lexicon.rules
        for hit in hits:
            entry = hit.entry
            if hit.kind != "entry" or entry is None:
                continue
            if entry.role == "source":
                hit.flags.add("source")
                applied.add("source")
            elif entry.korea in ("south", "none") and (
                rules.source_after.match(source, hit.end)
                or rules.source_before.search(source, max(0, hit.start - 40), hit.start)
            ):
                hit.factor *= rules.source_factor
                hit.side_factor = 0.0
                hit.flags.add("source")
                applied.add("source")

    def _lists(self, source: str, hits: list[_Hit], applied: set[str]) -> None:
        """Korea inside a run of many countries ("Japan, South Korea, Taiwan and India")."""
        rules = self.lexicon.rules
        members = [
            h
            for h in hits
            if h.kind == "country"
            or (h.kind == "entry" and h.entry is not None and h.entry.category in LIST_CATEGORIES)
        ]
        run: list[_Hit] = []
        for hit in [*members, None]:
            if (
                hit is not None
                and run
                and rules.list_separator.match(source[run[-1].end : hit.start])
            ):
                run.append(hit)
                continue
            if len(run) >= rules.list_min_members:
                for member in run:
                    if member.kind == "entry":
                        member.factor *= rules.list_factor
                        member.flags.add("list")
                        applied.add("list")
            run = [hit] if hit is not None else []

    def _dateline(self, text: str, hits: list[_Hit], applied: set[str]) -> int:
        """ "SEOUL (Reuters) -": where the reporter sat, not what the story is about.

        Returns where the lead's own words start (after a dateline or a credit like "AP -").
        """
        match = _DATELINE_RE.match(text)
        if match is None:
            return _CREDIT_RE.match(text).end()
        first = True
        for hit in hits:
            if hit.start >= match.end():
                break
            entry = hit.entry
            if entry is not None and (
                entry.category in PLACE_CATEGORIES or (entry.category == "country" and not first)
            ):
                hit.factor *= self.lexicon.rules.dateline_factor
                hit.side_factor = 0.0
                hit.flags.add("dateline")
                applied.add("dateline")
            first = False
        return match.end()

    def _lead_subject(self, text: str, hits: list[_Hit], start: int, applied: set[str]) -> None:
        """The lead's first words name what the story is about ("Hynix Semiconductor Inc.,
        the world's third-largest..."), unless they name it with others ("X and Y ...").
        People are left out: one of several players often opens a sports report (docs/tagging.md:
        Grace Park in "Four players shoot opening-round 66")."""
        rules = self.lexicon.rules
        words = _words_re(rules.lead_subject_words).match(text, start)
        end = words.end() if words else start
        for hit in hits:
            if hit.start >= end:
                return
            entry = hit.entry
            if hit.start < start or hit.kind != "entry" or entry is None:
                continue
            if entry.category in PERSON_CATEGORIES | {"venue", "diaspora"} or "list" in hit.flags:
                return
            if _COMPOUND_SUBJECT_RE.match(text, hit.end):
                return  # "A Korean Air jet and a British Airways plane clipped wings"
            hit.factor *= rules.lead_subject_factor
            hit.flags.add("subject")
            applied.add("subject")
            return

    def _surnames(
        self, source: str, own: list[_Hit], zone: str, hits: list[_Hit], end_of_lead: int
    ) -> list[_Hit]:
        """A person named in full may be named by surname alone elsewhere ("Han earns...")."""
        people = {}
        for hit in hits:
            entry = hit.entry
            if (
                entry is not None
                and entry.surname
                and entry.category in PERSON_CATEGORIES
                and "surname" not in hit.flags
            ):
                people.setdefault(entry.surname, entry)
        if not people:
            return []
        taken = [(h.start, h.end) for h in own]
        found = []
        for surname, entry in people.items():
            for match in _surname_re(surname).finditer(source):
                start, end = match.span()
                if any(s < end and start < e for s, e in taken):
                    continue
                previous = _PREV_WORD_RE.search(source, max(0, start - 30), start)
                if previous and previous.group(1) not in _HONORIFICS:
                    continue
                if zone == "text" and _NEXT_WORD_RE.match(source, end):
                    continue
                where = zone if zone == "title" else ("lead" if start < end_of_lead else "body")
                found.append(
                    _Hit(start, end, surname, "entry", entry, zone=where, flags={"surname"})
                )
        return found


@lru_cache(maxsize=8)
def _words_re(count: int) -> re.Pattern[str]:
    return re.compile(rf"(?:\S+(?:\s+|$)){{1,{count}}}")


@lru_cache(maxsize=64)
def _surname_re(surname: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w\-]){re.escape(surname)}(?![\w\-])")


@lru_cache(maxsize=1)
def _default_tagger() -> Tagger:
    return Tagger(load_lexicon(DEFAULT_LEXICON_FILE))


def tag_story(title: str | None, text: str | None, *, language: str | None = None) -> TagResult:
    """Tag one story with the default lexicon and thresholds (DESIGN.md contract)."""
    return _default_tagger().tag(title, text, language=language)


# --------------------------------------------------------------------------------------------
# The pipeline


@dataclass(frozen=True, kw_only=True)
class TagConfig:
    """The ``TAG_*`` settings, parsed and checked once."""

    lexicon_file: Path
    korea_threshold: float = KOREA_THRESHOLD
    mention_threshold: float = MENTION_THRESHOLD

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> TagConfig:
        korea = get_float(settings, "TAG_KOREA_THRESHOLD")
        mention = get_float(settings, "TAG_MENTION_THRESHOLD")
        if korea <= 0:
            raise ValueError(f"TAG_KOREA_THRESHOLD must be > 0 (got {korea})")
        if mention < 0:
            raise ValueError(f"TAG_MENTION_THRESHOLD must be >= 0 (got {mention})")
        if mention > korea:
            logger.warning(
                "TAG_MENTION_THRESHOLD (%s) is above TAG_KOREA_THRESHOLD (%s): no story will "
                "be tagged korea_mention",
                mention,
                korea,
            )
        lexicon = get_str(settings, "TAG_LEXICON_FILE")
        return cls(
            lexicon_file=resolve_lexicon_path(lexicon),
            korea_threshold=korea,
            mention_threshold=mention,
        )


class TagPipeline:
    """Fills ``tags``, ``is_korea``, ``korea_score`` and ``korea_evidence``; skips duplicates."""

    def __init__(self, crawler: Crawler, config: TagConfig) -> None:
        self.crawler = crawler
        self.config = config
        self.tagger = Tagger(
            load_lexicon(config.lexicon_file),
            korea_threshold=config.korea_threshold,
            mention_threshold=config.mention_threshold,
        )
        self.counts: Counter[str] = Counter()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> TagPipeline:
        if not get_bool(crawler.settings, "TAG_ENABLED"):
            raise NotConfigured("TAG_ENABLED is False")
        return cls(crawler, TagConfig.from_settings(crawler.settings))

    def process_item(self, item: Any) -> Any:
        adapter = ItemAdapter(item)
        if adapter.get("duplicate_kind"):
            self.counts["duplicate"] += 1
            return item
        result = self.tagger.tag(
            adapter.get("title"),
            adapter.get("text") or adapter.get("description"),
            language=adapter.get("language"),
        )
        adapter["tags"] = list(dict.fromkeys([*(adapter.get("tags") or []), *result.tags]))
        adapter["is_korea"] = result.is_korea
        adapter["korea_score"] = result.score
        adapter["korea_evidence"] = result.evidence
        if self.crawler.stats is not None:
            for tag in result.tags:
                self.crawler.stats.inc_value(f"tag/{tag}")
        self.counts["tagged"] += 1
        self.counts[TAG_KOREA if result.is_korea else TAG_MENTION if result.tags else "none"] += 1
        logger.debug(
            "Tagged %s: %s (score %.2f)", adapter.get("url"), result.tags or "-", result.score
        )
        return item

    def close_spider(self) -> None:
        logger.info(
            "Korea tagging: %d stories tagged (%d korea, %d korea_mention), %d duplicates skipped",
            self.counts["tagged"],
            self.counts[TAG_KOREA],
            self.counts[TAG_MENTION],
            self.counts["duplicate"],
        )
