"""The clean rules: ``data/clean_rules.toml`` validated and compiled into families of
whole-line patterns (``RulesError`` names the file, the family and the key of a mistake)."""

from __future__ import annotations

import re
import re._constants as sre
import re._parser as sre_parse
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pipelines.clean.lines import _Line

DEFAULT_RULES_FILE = Path(__file__).resolve().parents[2] / "data" / "clean_rules.toml"
HEADLINE = "headline"
REPEATED = "repeated_paragraph"
LEARNED = "learned_boilerplate"
OTHER_HEADLINE = "other_headline"
BUILTIN_RULES = frozenset({HEADLINE, REPEATED, LEARNED, OTHER_HEADLINE})
"""Rule names produced by code, not by the rules file (reserved there)."""
DOMAIN_RULES = frozenset({LEARNED, OTHER_HEADLINE})
"""Built-in rules that use what the domain's other stories taught (their repeated lines,
their headlines): the guard takes their removals back when they would empty a story."""
ZONES = ("anywhere", "head", "tail")
FORMS = ("key", "text")
_RULE_NAME_RE = re.compile(r"[a-z][a-z0-9_]*")


class RulesError(ValueError):
    """The rules file is invalid; the message names the file, the family and the key."""


@dataclass(frozen=True)
class PatternGroup:
    """Patterns of one family sharing form, length limit and zones, compiled as one regex."""

    form: str
    max_words: int
    where: frozenset[str]
    regex: re.Pattern[str]
    needles: tuple[str, ...] | None = None
    """Strings one of which every line the regex matches contains (``required_strings``):
    a line without any of them is passed over without running the regex. ``None`` when a
    pattern of the group requires no such string."""

    def matches(self, line: _Line) -> bool:
        subject = line.key if self.form == "key" else line.cmp
        return (
            line.words <= self.max_words
            and len(subject) <= self.max_words * 20
            and self.may_match(subject)
            and self.regex.fullmatch(subject) is not None
        )

    def may_match(self, subject: str) -> bool:
        """False when ``subject`` holds none of the group's ``needles``."""
        needles = self.needles
        return needles is None or any(needle in subject for needle in needles)


NEEDLE_MIN_CHARS = 3
"""Literal runs shorter than this are not used as needles (too common to rule lines out)."""
_REPEATS = (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT)


def required_strings(pattern: str) -> frozenset[str] | None:
    """Strings one of which every string ``pattern`` matches contains, read from its syntax
    tree: a run of literal characters outside any optional part, or one such run of each
    branch of an alternation that every match goes through; the set whose shortest string is
    longest is kept. ``None`` when there is none (or the pattern ignores case)."""
    parsed = sre_parse.parse(pattern)
    if parsed.state.flags & re.IGNORECASE:
        return None
    return _required(parsed.data)


def _required(items: list[tuple[Any, Any]]) -> frozenset[str] | None:
    best: frozenset[str] | None = None
    run: list[str] = []

    def consider(found: frozenset[str] | None) -> None:
        nonlocal best
        if found and (best is None or _strength(found) > _strength(best)):
            best = found

    def end_run() -> None:
        if len(run) >= NEEDLE_MIN_CHARS:
            consider(frozenset({"".join(run)}))
        run.clear()

    for op, av in items:
        if op is sre.LITERAL:
            run.append(chr(av))
            continue
        if op is sre.AT:  # zero width: the characters on either side are adjacent
            continue
        end_run()
        if op is sre.SUBPATTERN:
            _group, add_flags, _del_flags, sub = av
            if not add_flags & re.IGNORECASE:
                consider(_required(sub.data))
        elif op is sre.ATOMIC_GROUP:
            consider(_required(av.data))
        elif op is sre.BRANCH:
            branches = [_required(list(branch)) for branch in av[1]]
            if all(branches):
                consider(frozenset().union(*branches))
        elif op in _REPEATS and av[0] >= 1:
            consider(_required(av[2].data))
    end_run()
    return best


def _strength(found: frozenset[str]) -> tuple[int, int]:
    return min(map(len, found)), -len(found)


@dataclass(frozen=True)
class Family:
    """A named group of line patterns; its name is the ``rule`` recorded for what it removes."""

    name: str
    description: str
    footer: bool
    block: bool
    languages: frozenset[str]
    domains: frozenset[str]
    groups: tuple[PatternGroup, ...]

    def matches(self, line: _Line, zone: str) -> bool:
        return any(zone in g.where and g.matches(line) for g in self.groups)

    def applies(self, *, domain: str | None, language: str | None) -> bool:
        if self.languages and language and language.lower() not in self.languages:
            return False
        if self.domains:
            host = (domain or "").lower()
            return any(host == d or host.endswith("." + d) for d in self.domains)
        return True


@dataclass(frozen=True)
class Rules:
    families: tuple[Family, ...]
    source: str

    def for_item(self, *, domain: str | None, language: str | None) -> tuple[Family, ...]:
        return tuple(f for f in self.families if f.applies(domain=domain, language=language))

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.families]


_TOP_KEYS = {"version", "include_default", "defaults", "families"}
_FAMILY_KEYS = {
    "description",
    "where",
    "footer",
    "block",
    "max_words",
    "languages",
    "domains",
    "patterns",
}
_PATTERN_KEYS = {"re", "form", "max_words", "where"}


def _positive_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RulesError(f"{where}: must be a positive integer, not {value!r}")
    return value


def _zones(value: Any, where: str) -> frozenset[str]:
    zones = [value] if isinstance(value, str) else value
    if not isinstance(zones, list) or not zones or any(z not in ZONES for z in zones):
        raise RulesError(f"{where}: must be one of {', '.join(ZONES)} or a list of them")
    return frozenset(zones)


def _strings(value: Any, where: str) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise RulesError(f"{where}: must be a list of strings")
    return frozenset(v.lower() for v in value)


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise RulesError(f"{where}: must be true or false, not {value!r}")
    return value


def _parse_family(name: str, spec: Any, *, default_max: int, source: str) -> Family:
    at = f"{source}: [families.{name}]"
    if not _RULE_NAME_RE.fullmatch(name):
        raise RulesError(f"{at}: family names are lower_case_with_underscores")
    if name in BUILTIN_RULES:
        raise RulesError(f"{at}: {name!r} is a built-in rule name")
    if not isinstance(spec, dict):
        raise RulesError(f"{at}: must be a table")
    unknown = sorted(set(spec) - _FAMILY_KEYS)
    if unknown:
        raise RulesError(
            f"{at}: unknown key {unknown[0]!r} (known: {', '.join(sorted(_FAMILY_KEYS))})"
        )
    description = spec.get("description", "")
    if not isinstance(description, str):
        raise RulesError(f"{at} key 'description': must be a string")
    where = _zones(spec.get("where", "anywhere"), f"{at} key 'where'")
    max_words = _positive_int(spec.get("max_words", default_max), f"{at} key 'max_words'")
    footer = _bool(spec.get("footer", True), f"{at} key 'footer'")
    block = _bool(spec.get("block", False), f"{at} key 'block'")
    languages = _strings(spec.get("languages", []), f"{at} key 'languages'")
    domains = _strings(spec.get("domains", []), f"{at} key 'domains'")
    patterns = spec.get("patterns")
    if not isinstance(patterns, list) or not patterns:
        raise RulesError(f"{at} key 'patterns': must be a non-empty list")
    grouped: dict[tuple[str, int, frozenset[str]], list[str]] = {}
    for k, entry in enumerate(patterns):
        here = f"{at} key 'patterns[{k}]'"
        options: dict[str, Any] = {}
        if isinstance(entry, dict):
            unknown = sorted(set(entry) - _PATTERN_KEYS)
            if unknown:
                raise RulesError(
                    f"{here}: unknown key {unknown[0]!r} (known: re, form, max_words, where)"
                )
            options = entry
            entry = entry.get("re")
        if not isinstance(entry, str) or not entry:
            raise RulesError(f"{here}: a pattern is a non-empty string or a table with 're'")
        try:
            re.compile(entry)
        except re.error as exc:
            raise RulesError(f"{here}: bad regex {entry!r}: {exc}") from None
        form = options.get("form", "key")
        if form not in FORMS:
            raise RulesError(f"{here}: form must be 'key' or 'text', not {form!r}")
        group = (
            form,
            _positive_int(options.get("max_words", max_words), f"{here} max_words"),
            _zones(options["where"], f"{here} where") if "where" in options else where,
        )
        grouped.setdefault(group, []).append(entry)
    groups = []
    for (form, limit, zones), regexes in grouped.items():
        try:
            regex = re.compile("|".join(f"(?:{r})" for r in regexes))
        except re.error as exc:  # e.g. the same group name in two patterns
            raise RulesError(f"{at} key 'patterns': patterns do not combine: {exc}") from None
        required = [required_strings(r) for r in regexes]
        needles = tuple(sorted(frozenset().union(*required))) if all(required) else None
        groups.append(PatternGroup(form, limit, zones, regex, needles))
    return Family(name, description, footer, block, languages, domains, tuple(groups))


def parse_rules(data: Mapping[str, Any], *, source: str = "<rules>") -> Rules:
    """Validate and compile a parsed rules document (the TOML of ``data/clean_rules.toml``)."""
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise RulesError(f"{source}: unknown top-level key {unknown[0]!r}")
    if data.get("version", 1) != 1:
        raise RulesError(f"{source}: key 'version': only version 1 is known")
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict) or set(defaults) - {"max_words"}:
        raise RulesError(f"{source}: [defaults]: only 'max_words' may be set there")
    default_max = _positive_int(defaults.get("max_words", 30), f"{source}: [defaults] max_words")
    families_spec = data.get("families")
    if not isinstance(families_spec, dict) or not families_spec:
        raise RulesError(f"{source}: [families]: at least one family is needed")
    families: dict[str, Family] = {}
    if _bool(data.get("include_default", False), f"{source}: key 'include_default'"):
        families = {f.name: f for f in default_rules().families}
    for name, spec in families_spec.items():
        families[name] = _parse_family(name, spec, default_max=default_max, source=source)
    return Rules(tuple(families.values()), source)


def load_rules(path: str | Path | None = None) -> Rules:
    """Load and validate a rules file (``None``: the project's ``data/clean_rules.toml``)."""
    if path is None:
        return default_rules()
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RulesError(f"{path}: cannot read rules file: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{path}: not valid TOML: {exc}") from exc
    return parse_rules(data, source=str(path))


@lru_cache(maxsize=1)
def default_rules() -> Rules:
    """The project's rules (``data/clean_rules.toml``), loaded once."""
    data = tomllib.loads(DEFAULT_RULES_FILE.read_text(encoding="utf-8"))
    return parse_rules(data, source=str(DEFAULT_RULES_FILE))
