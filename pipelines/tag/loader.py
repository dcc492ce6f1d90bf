"""Read and validate a lexicon file; every error names the file, the entry and the key."""

from __future__ import annotations

import itertools
import re
import tomllib
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.tag.lexicon import (
    _BOOSTS,
    _INTEGER_RULES,
    _RULE_DEFAULTS,
    CATEGORIES,
    DEFAULT_LEXICON_FILE,
    KOREA_SIDES,
    PERSON_CATEGORIES,
    REPO_ROOT,
    ROLES,
    TAG_KOREA,
    TAG_MENTION,
    TAG_NORTH,
    TAG_SOUTH,
    Entry,
    Lexicon,
    LexiconError,
    Rules,
    Term,
    _exact_form,
    _strip_sep,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping


class LexiconBuilder:
    """Validates the TOML data and builds a ``Lexicon``; errors name the entry and the key."""

    TOP_KEYS = frozenset(
        {"version", "rules", "markers", "names", "countries", "topics", "negative", "group"}
    )
    GROUP_KEYS = frozenset(
        {"name", "source", "category", "korea", "weight", "topics", "role", "entries"}
    )
    ENTRY_KEYS = frozenset(
        {"id", "patterns", "exact", "korea", "weight", "category", "topics", "role", "surname"}
    ) | {"note", "variants"}
    NAMES_KEYS = frozenset({"weight", "surnames", "syllables", "surname_variants", "spellings"})

    def __init__(self, source: str) -> None:
        self.source = source
        self.terms: dict[str, Term] = {}
        self.prefixes: dict[str, Term] = {}
        self.owners: dict[str, str] = {}
        self.patterns: list[str] = []
        self.spelling: Spelling | None = None
        self.variants: dict[str, list[tuple[Term, str]]] = {}
        """Generated romanisations of people's names: key -> (term, spelling) candidates."""

    def fail(self, where: str, problem: str) -> LexiconError:
        return LexiconError(f"{self.source}: {where}: {problem}")

    def build(self, data: Mapping[str, Any]) -> Lexicon:
        unknown = sorted(set(data) - self.TOP_KEYS)
        if unknown:
            raise self.fail("top level", f"unknown key {unknown[0]!r}")
        rules = self._rules(data.get("rules", {}))
        names = self._table(data.get("names", {}), "[names]")
        self._keys(names, self.NAMES_KEYS, "[names]")
        name_weight = self._weight(names.get("weight", 2.0), "[names]")
        surnames = self._strings(names.get("surnames", []), "[names]", "surnames")
        syllables = [
            s.lower() for s in self._strings(names.get("syllables", []), "[names]", "syllables")
        ]
        if any(not s.isalpha() or not s.isascii() for s in syllables):
            raise self.fail("[names]", "key 'syllables': only ASCII letters are allowed")
        if any(not s.isalpha() or not s[:1].isupper() for s in surnames):
            raise self.fail("[names]", "key 'surnames': capitalised words only")
        self.spelling = self._spelling(names, surnames, syllables)
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
            term = Term("negative", label=reason)
            self._add(negative, term, where)
        entries: dict[str, Entry] = {}
        for gindex, group in enumerate(self._array(data.get("group", []), "group"), 1):
            self._group(group, gindex, topics, surnames, entries)
        self._add_variants()
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
            elif key in _INTEGER_RULES:
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
            self._add(spec, Term("topic", label=name), where, wildcards=True)
        return topics

    def _markers(self, raw: Any) -> None:
        raw = self._table(raw, "[markers]")
        self._keys(raw, {"roundup"}, "[markers]")
        if "roundup" in raw:
            self._add({"patterns": raw["roundup"]}, Term("marker", label="roundup"), "[markers]")

    def _countries(self, raw: Any) -> None:
        raw = self._table(raw, "[countries]")
        self._keys(raw, {"patterns", "exact"}, "[countries]")
        self._add(raw, Term("country", label="country"), "[countries]")

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
        source = raw.get("source")
        if not isinstance(source, str) or not source.strip():
            raise self.fail(gwhere, "key 'source': say where the names come from (a public list)")
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
            term = Term("entry", entry=entry)
            self._add(spec, term, where, required=True)
            variants = spec.get("variants", True)
            if not isinstance(variants, bool):
                raise self.fail(where, "key 'variants': true or false")
            if variants and category in PERSON_CATEGORIES and self.spelling is not None:
                for pattern in spec.get("patterns", []):
                    for variant in self.spelling.variants(pattern):
                        key = _strip_sep(variant).lower()
                        self.variants.setdefault(key, []).append((term, variant))

    def _spelling(
        self, names: Mapping[str, Any], surnames: list[str], syllables: list[str]
    ) -> Spelling:
        groups = names.get("surname_variants", [])
        if not isinstance(groups, list) or not all(
            isinstance(g, list) and all(isinstance(w, str) and w.isalpha() for w in g)
            for g in groups
        ):
            raise self.fail("[names]", "key 'surname_variants': a list of lists of surnames")
        swaps = names.get("spellings", [])
        if not isinstance(swaps, list) or not all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) and x for x in p)
            for p in swaps
        ):
            raise self.fail("[names]", "key 'spellings': a list of [spelling, spelling] pairs")
        return Spelling(surnames, syllables, groups, [tuple(p) for p in swaps])

    def _add_variants(self) -> None:
        """Other romanisations of listed people's names, unless a listed pattern has that
        spelling already or two people would share it."""
        for key, candidates in self.variants.items():
            if len({id(term) for term, _ in candidates}) > 1:
                continue
            term, spelling = candidates[0]
            if key in self.owners and self.terms.get(key) is not term:
                continue
            # a spelling that differs from a listed one only by separators ("Hyungtaik
            # Lee" for "Hyung-Taik Lee") still needs its own place in the matcher
            self.terms[key] = term
            self.patterns.append(spelling)

    # -- helpers

    def _add(
        self,
        spec: Mapping[str, Any],
        term: Term,
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
            Term(term.kind, term.entry, term.label, frozenset(_exact_form(p) for p in exact))
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


class Spelling:
    """Other romanisations of a Korean personal name ("Kim Kye-gwan": "Kim Kye-kwan",
    "Kim Gye-gwan"; "Lee Hyung-taik": "Hyung-Taik Lee", "Hyungtaik Lee", "Ri Hyung-taik").

    A name is a surname from ``[names] surnames`` and a given name of one or two syllables
    from ``[names] syllables``. Produced: the given name with the other spellings of
    ``[names] spellings`` (Revised Romanization and McCune-Reischauer: g/k, d/t, b/p, j/ch,
    eo/o...) where the result is a known syllable too; the other spellings of the surname
    (its ``surname_variants`` group: Lee, Yi, Ri); and the Western order, with the given name
    hyphenated or as one word ("Hyung-taik Lee", "Hyungtaik Lee").
    """

    MAX_VARIANTS = 48

    def __init__(
        self,
        surnames: list[str],
        syllables: list[str],
        groups: list[list[str]],
        swaps: list[tuple[str, str]],
    ) -> None:
        self.syllables = frozenset(syllables)
        self.surnames = frozenset(surnames) | {w for g in groups for w in g}
        self.family: dict[str, list[str]] = {}
        for group in groups:
            for name in group:
                self.family.setdefault(name, []).extend(w for w in group if w != name)
        self.swaps = [*swaps, *((b, a) for a, b in swaps)]

    def variants(self, pattern: str) -> list[str]:
        parsed = self._parse(pattern)
        if parsed is None:
            return []
        surname, given = parsed
        options = [self._syllable(s) for s in given]
        hyphened = "-".join(given).capitalize()
        out = [f"{surname} {'-'.join(combo).capitalize()}" for combo in itertools.product(*options)]
        out += [f"{family} {hyphened}" for family in self.family.get(surname, ())]
        out += [f"{hyphened} {surname}", f"{''.join(given).capitalize()} {surname}"]
        seen = _strip_sep(pattern).lower()
        unique = {_strip_sep(v).lower(): v for v in out if _strip_sep(v).lower() != seen}
        return list(unique.values())[: self.MAX_VARIANTS]

    def _parse(self, pattern: str) -> tuple[str, list[str]] | None:
        words = pattern.split()
        if len(words) < 2 or not pattern.isascii():
            return None
        for surname, rest in ((words[0], words[1:]), (words[-1], words[:-1])):
            if surname in self.surnames:
                given = self._given(rest)
                if given is not None:
                    return surname, given
        return None

    def _given(self, words: list[str]) -> list[str] | None:
        parts = [p.lower() for w in words for p in w.split("-") if p]
        if len(parts) == 1 and parts[0] not in self.syllables:
            word = parts[0]
            splits = [
                [word[:i], word[i:]]
                for i in range(1, len(word))
                if word[:i] in self.syllables and word[i:] in self.syllables
            ]
            parts = splits[0] if len(splits) == 1 else parts
        if 1 <= len(parts) <= 2 and all(p in self.syllables for p in parts):
            return parts
        return None

    def _syllable(self, syllable: str) -> list[str]:
        found = frontier = {syllable}
        for _ in range(2):  # up to two changes: "jeong" -> "cheong" -> "chong"
            changed = {
                form.replace(old, new, 1)
                for form in frontier
                for old, new in self.swaps
                if old in form
            }
            frontier = {form for form in changed if form in self.syllables} - found
            found = found | frontier
        return sorted(found, key=lambda s: (s != syllable, s))


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
    """Load a lexicon file (once per path); its expression compiles on first use."""
    return read_lexicon(resolve_lexicon_path(path))


def resolve_lexicon_path(path: str | Path) -> Path:
    """A relative path is looked up in the working directory, then in the repository."""
    path = Path(path)
    if path.is_absolute() or path.exists():
        return path
    return REPO_ROOT / path


def read_lexicon(path: str | Path) -> Lexicon:
    """Read and validate a lexicon file; ``LexiconError`` names what is wrong."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise LexiconError(f"{path}: cannot read the lexicon: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise LexiconError(f"{path}: not valid TOML: {exc}") from exc
    return lexicon_from_dict(data, source=str(path))


def lexicon_from_dict(data: Mapping[str, Any], *, source: str = "<lexicon>") -> Lexicon:
    """A lexicon from already-parsed data (the TOML file's tables), validated."""
    return LexiconBuilder(source).build(data)
