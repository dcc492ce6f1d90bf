"""Clean step: strip spam, promo and boilerplate lines from article text, recording each one.
Rules are data (``data/clean_rules.toml``); ``clean_text`` is the pure core."""

from __future__ import annotations

import hashlib
import logging
import re
import tomllib
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from crawler.config import get_bool, get_int, read_config, setting

# ItemAdapter (it imports Scrapy), the archive and the pool are imported where the pipeline
# uses them: worker processes import this module for its pure core (``clean_with_rules_file``)
# and stay free of Scrapy, Twisted and sqlite-utils.

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping, Sequence
    from typing import Self

    from itemadapter import ItemAdapter
    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings

    from crawler.storage.protocols import BoilerplateStore

logger = logging.getLogger(__name__)

DEFAULT_RULES_FILE = Path(__file__).resolve().parent.parent / "data" / "clean_rules.toml"

HEADLINE = "headline"
REPEATED = "repeated_paragraph"
LEARNED = "learned_boilerplate"
BUILTIN_RULES = frozenset({HEADLINE, REPEATED, LEARNED})
"""Rule names produced by code, not by the rules file (reserved there)."""
ZONES = ("anywhere", "head", "tail")
FORMS = ("key", "text")

CANDIDATE_MAX_WORDS = 20
"""Learned boilerplate only considers lines of at most this many words ..."""
CANDIDATE_MAX_CHARS = 160
"""... and characters: template lines (follow us, tip lines, promos), never article paragraphs."""
REPEAT_MIN_WORDS = 12
"""A paragraph repeated verbatim is dropped (first copy kept) when it is prose: a sentence
of at least this many words (for Hangul, kana and Han: characters / 2). Short lines and
lists are left alone: recipes and tables repeat them on purpose."""
HEADLINE_MIN_OVERLAP = 0.75
"""A line is the headline when its words and the title's overlap this much (Jaccard)."""
NAV_MAX_WORDS = 15
"""A line without sentence-final punctuation and at most this long reads as navigation."""
HEAD_MAX_LINES = 6
"""Head rules look at most at this many lines at the top, before the first real sentence."""
HEADLINE_MAX_LINES = 3
"""The headline is looked for among the first lines that are left after the head rules."""
BLOCK_MAX_LINES = 15
"""A block header (Related, Tags) takes at most this many list lines with it."""

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
_CJK_RE = re.compile(r"[\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u4e00-\u9fff\uac00-\ud7a3]")
_RULE_NAME_RE = re.compile(r"[a-z][a-z0-9_]*")


def tidy_spacing(text: str) -> str:
    """Whitespace and invisible characters only: NBSP and other spaces -> space, zero-width
    characters and soft hyphens dropped, spaces collapsed, lines trimmed, runs of blank lines
    -> one blank line. Nothing else of the text changes (ZWJ inside emoji is kept)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").translate(_TRANSLATE)
    lines = [_MULTI_SPACE_RE.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_RUN_RE.sub("\n\n", "\n".join(lines)).strip()


def text_form(line: str) -> str:
    """The comparison form rules with ``form = "text"`` see: NFKC, lower case, no emoji,
    no zero-width or no-break spaces, single spaces; punctuation kept."""
    folded = unicodedata.normalize("NFKC", line.translate(_CIRCLED_C)).casefold()
    return " ".join(_EMOJI_FORMAT_RE.sub("", folded).split())


def key_form(line: str) -> str:
    """The comparison form ``form = "key"`` rules see: ``text_form`` with apostrophes dropped
    and every other punctuation mark or symbol turned into a single space."""
    return " ".join(_NON_WORD_RE.sub(" ", _APOSTROPHE_RE.sub("", text_form(line))).split())


def line_key(line: str) -> str:
    """Hash of a line's ``key_form``: the same line modulo case, punctuation, emoji and
    invisible characters gets the same key (used for learned boilerplate)."""
    return hashlib.blake2b(key_form(line).encode("utf-8"), digest_size=8).hexdigest()


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
        key = " ".join(_NON_WORD_RE.sub(" ", _APOSTROPHE_RE.sub("", cmp)).split())
        words = len(text.split())
        return cls(para, text, cmp, key, words, _is_nav(text, words))

    @property
    def candidate(self) -> bool:
        """Short enough to be a template line that learned boilerplate may count."""
        return (
            bool(self.key)
            and self.words <= CANDIDATE_MAX_WORDS
            and (len(self.text) <= CANDIDATE_MAX_CHARS)
        )


def _split_lines(text: str) -> list[_Line]:
    lines: list[_Line] = []
    for para, block in enumerate(text.split("\n\n")):
        lines.extend(_Line.make(para, line) for line in block.split("\n") if line)
    return lines


def boilerplate_candidates(text: str) -> dict[str, str]:
    """``{line_key: line}`` for the lines of ``text`` that learned boilerplate considers."""
    return {line_key(ln.text): ln.text for ln in _split_lines(tidy_spacing(text)) if ln.candidate}


# -- rules -----------------------------------------------------------------------------------
class RulesError(ValueError):
    """The rules file is invalid; the message names the file, the family and the key."""


@dataclass(frozen=True)
class PatternGroup:
    """Patterns of one family sharing form, length limit and zones, compiled as one regex."""

    form: str
    max_words: int
    where: frozenset[str]
    regex: re.Pattern[str]

    def matches(self, line: _Line) -> bool:
        subject = line.key if self.form == "key" else line.cmp
        return (
            line.words <= self.max_words
            and len(subject) <= self.max_words * 20
            and self.regex.fullmatch(subject) is not None
        )


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
        groups.append(PatternGroup(form, limit, zones, regex))
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


# -- the pure core ---------------------------------------------------------------------------
@dataclass
class CleanResult:
    """The cleaned text and every removed line with the rule that removed it."""

    text: str
    removed: list[dict[str, str]] = field(default_factory=list)

    def rule_counts(self) -> Counter[str]:
        return Counter(piece["rule"] for piece in self.removed)


def _first_match(families: Sequence[Family], line: _Line, zone: str) -> Family | None:
    for family in families:
        if family.matches(line, zone):
            return family
    return None


def _same_headline(line: str, title: str) -> bool:
    """Same headline modulo punctuation, a site name added or cut, or a word changed."""
    if not line or not title:
        return False
    if line == title:
        return True
    short, long = sorted((line, title), key=len)
    if (
        len(short) >= 10
        and len(short) >= 0.6 * len(long)
        and (long.startswith(short) or long.endswith(short))
    ):
        return True
    a, b = set(line.split()), set(title.split())
    return min(len(a), len(b)) >= 4 and len(a & b) / len(a | b) >= HEADLINE_MIN_OVERLAP


def _extend_blocks(lines: list[_Line], rule: list[str | None], blocks: set[str]) -> None:
    """A block header takes the list under it: any navigation-like lines after a bare
    heading ("Related", "Tags"); only bulleted ones after a teaser ("Read more: X")."""
    continued: set[int] = set()
    for i, line in enumerate(lines):
        if rule[i] not in blocks or i in continued:
            continue
        bare = line.words <= 8 and not _TEASER_RE.search(line.cmp)
        taken = 0
        for j in range(i + 1, len(lines)):
            if taken >= BLOCK_MAX_LINES:
                break
            if rule[j] is not None:
                continue
            nxt = lines[j]
            if not nxt.nav or not (bare or _BULLET_RE.match(nxt.text)):
                break
            rule[j] = rule[i]
            continued.add(j)
            taken += 1


def _trim_head(lines: list[_Line], rule: list[str | None], families: Sequence[Family]) -> None:
    seen = 0
    for i, line in enumerate(lines):
        if rule[i] is not None:
            continue
        seen += 1
        if seen > HEAD_MAX_LINES:
            return
        family = _first_match(families, line, "head")
        if family is not None:
            rule[i] = family.name
        elif not line.nav:
            return


def _drop_headline(lines: list[_Line], rule: list[str | None], title: str) -> None:
    """The headline repeated as one of the first lines goes, once. A title that reads as a
    sentence and is also the lede is kept unless the lede is repeated (then one copy goes)."""
    title_key = key_form(title)
    sentence_title = bool(_SENTENCE_END_RE.search(title.rstrip(_CLOSERS)))
    seen = 0
    for i, line in enumerate(lines):
        if rule[i] is not None:
            continue
        seen += 1
        if seen > HEADLINE_MAX_LINES:
            return
        if _same_headline(line.key, title_key):
            repeated = any(o.key == line.key for o in lines[i + 1 :])
            if not sentence_title or repeated:
                rule[i] = HEADLINE
            return


def _drop_repeats(lines: list[_Line], rule: list[str | None]) -> None:
    """A repeated prose paragraph goes, the first copy stays (the repeated lede of re-post
    blogs). Short or list lines are left alone: recipes and tables repeat them on purpose."""
    seen: set[str] = set()
    for i, line in enumerate(lines):
        if rule[i] is not None:
            continue
        prose = (
            bool(_SENTENCE_END_RE.search(line.text.rstrip(_CLOSERS)))
            and max(line.words, len(_CJK_RE.findall(line.text)) // 2) >= REPEAT_MIN_WORDS
            and not _is_list_like(line.text)
        )
        if not prose:
            continue
        if line.key in seen:
            rule[i] = REPEATED
        else:
            seen.add(line.key)


def _trim_tail(
    lines: list[_Line], rule: list[str | None], families: Sequence[Family], anchors: set[str]
) -> None:
    """Walk up from the end while lines are spam or navigation; stop at the first real
    sentence. Once a footer line (an anchor) is found, the navigation lines below it go with
    it, and so do the bulleted link lines right above it (a related list without a heading).
    Other short lines above the footer stay: they may be the article's own last lines."""
    anchor = None
    for i in range(len(lines) - 1, -1, -1):
        if rule[i] is None:
            family = _first_match(families, lines[i], "tail")
            if family is not None:
                rule[i] = family.name
        if rule[i] is not None:
            if rule[i] in anchors:
                anchor = i
        elif not lines[i].nav:
            break
    if anchor is None:
        return
    start = anchor
    while start > 0 and rule[start - 1] is None and lines[start - 1].nav:
        if not _LINK_BULLET_RE.match(lines[start - 1].text):
            break
        start -= 1
    current = rule[anchor]
    for j in range(start, len(lines)):
        if rule[j] is None:
            rule[j] = current
        else:
            current = rule[j]


def clean_text(
    text: str | None,
    *,
    title: str | None = None,
    domain: str | None = None,
    language: str | None = None,
    boilerplate: Collection[str] | None = None,
    rules: Rules | None = None,
) -> CleanResult:
    """Remove spam, promo and boilerplate lines from an article body.

    Whole lines are judged, never words. Order: rule families that apply anywhere, learned
    boilerplate (``boilerplate``: ``line_key`` values known to recur on this ``domain``),
    lists under block headers, head rules (datelines, bylines before the first sentence),
    the repeated headline (``title``), repeated paragraphs (first kept), then the footer is
    trimmed from the end. Apart from whitespace and invisible characters the kept text is
    unchanged; ``removed`` lists every removed line in document order.
    """
    rules = rules if rules is not None else default_rules()
    lines = _split_lines(tidy_spacing(text or ""))
    families = rules.for_item(domain=domain, language=language)
    rule: list[str | None] = [None] * len(lines)
    for i, line in enumerate(lines):
        family = _first_match(families, line, "anywhere")
        if family is not None:
            rule[i] = family.name
        elif boilerplate and line.candidate and line_key(line.text) in boilerplate:
            rule[i] = LEARNED
    _extend_blocks(lines, rule, {f.name for f in families if f.block})
    _trim_head(lines, rule, families)
    if title:
        _drop_headline(lines, rule, title)
    _drop_repeats(lines, rule)
    _trim_tail(lines, rule, families, {f.name for f in families if f.footer} | {LEARNED})

    paragraphs: dict[int, list[str]] = {}
    removed: list[dict[str, str]] = []
    for line, name in zip(lines, rule, strict=True):
        if name is None:
            paragraphs.setdefault(line.para, []).append(line.text)
        else:
            removed.append({"text": line.text, "rule": name})
    cleaned = "\n\n".join("\n".join(p) for p in paragraphs.values())
    return CleanResult(text=cleaned, removed=removed)


# -- the pipeline ----------------------------------------------------------------------------
@dataclass(frozen=True)
class CleanConfig:
    """The clean step's settings, parsed once."""

    rules_file: str | None = setting("CLEAN_RULES_FILE")
    min_articles: int = setting("CLEAN_BOILERPLATE_MIN_ARTICLES")
    """A line seen on this many distinct articles of one domain is that domain's boilerplate."""
    learn: bool = setting("CLEAN_LEARN")
    db_path: str = setting("DB_PATH")

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> Self:
        min_articles = get_int(settings, "CLEAN_BOILERPLATE_MIN_ARTICLES")
        if min_articles < 2:
            raise ValueError(
                f"CLEAN_BOILERPLATE_MIN_ARTICLES must be at least 2 (never learn from a "
                f"single page), not {min_articles}"
            )
        return read_config(cls, settings, min_articles=min_articles)


@lru_cache(maxsize=8)
def _rules_from_file(path: str | None) -> Rules:
    return load_rules(path)


def clean_with_rules_file(
    text: str | None, *, rules_file: str | None, **kwargs: Any
) -> CleanResult:
    """``clean_text`` with the rules of ``rules_file`` (default rules for ``None``), loaded
    once per process: the job a pool worker runs (compiled rules are not sent along)."""
    return clean_text(text, rules=_rules_from_file(rules_file), **kwargs)


def _domain(url: str) -> str:
    return (urlsplit(url).hostname or "").lower().removeprefix("www.")


class CleanPipeline:
    """Replaces ``text`` by the cleaned body, keeps the original in ``text_raw`` and what
    went in ``removed``; counts ``clean/removed/<rule>`` and ``clean/items_changed``."""

    def __init__(self, crawler: Crawler, *, config: CleanConfig, rules: Rules) -> None:
        self.crawler = crawler
        self.config = config
        self.rules = rules
        self.boilerplate: BoilerplateStore | None = None
        self.counts: Counter[str] = Counter()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        from scrapy.exceptions import NotConfigured

        if not get_bool(crawler.settings, "CLEAN_ENABLED"):
            raise NotConfigured("CLEAN_ENABLED is off")
        config = CleanConfig.from_settings(crawler.settings)
        return cls(crawler, config=config, rules=load_rules(config.rules_file))

    def open_spider(self) -> None:
        if self.config.learn:
            self.boilerplate = self.open_store()

    def open_store(self) -> BoilerplateStore:
        """The learned boilerplate of ``DB_PATH`` (the connection every component of the
        process shares)."""
        from crawler.storage.boilerplate import SqliteBoilerplate

        return SqliteBoilerplate.for_settings(self.crawler.settings, self.config.db_path)

    def close_spider(self) -> None:
        if self.boilerplate is not None:
            self.boilerplate.release()
            self.boilerplate = None
        logger.info(
            "clean: %d items, %d changed, %d lines removed %s",
            self.counts["items"],
            self.counts["changed"],
            sum(n for k, n in self.counts.items() if k.startswith("rule:")),
            {k[5:]: n for k, n in self.counts.items() if k.startswith("rule:")},
        )

    def process_item(self, item: Any) -> Any:
        from itemadapter import ItemAdapter

        adapter = ItemAdapter(item)
        text = adapter.get("text")
        if not text:
            return item
        from crawler.pool import pool_warm

        if pool_warm():
            return self._process_offloaded(item, adapter, text)
        url, domain = self._where(adapter)
        candidates = boilerplate_candidates(text) if self._learning(url, domain) else {}
        result = clean_text(
            text,
            title=adapter.get("title"),
            domain=domain,
            language=adapter.get("language"),
            boilerplate=self._frequent(domain, candidates),
            rules=self.rules,
        )
        return self._apply(item, adapter, text, result, url, domain, candidates)

    async def _process_offloaded(self, item: Any, adapter: ItemAdapter, text: str) -> Any:
        """``process_item`` with the text work in the worker pool (``crawler/pool.py``)."""
        from crawler.pool import offload

        url, domain = self._where(adapter)
        candidates = (
            await offload(boilerplate_candidates, text) if self._learning(url, domain) else {}
        )
        result = await offload(
            clean_with_rules_file,
            text,
            rules_file=self.config.rules_file,
            title=adapter.get("title"),
            domain=domain,
            language=adapter.get("language"),
            boilerplate=self._frequent(domain, candidates),
        )
        return self._apply(item, adapter, text, result, url, domain, candidates)

    def _where(self, adapter: ItemAdapter) -> tuple[str, str]:
        url = adapter.get("url") or ""
        return url, adapter.get("domain") or _domain(url)

    def _learning(self, url: str, domain: str) -> bool:
        return self.boilerplate is not None and bool(domain) and bool(url)

    def _frequent(self, domain: str, candidates: dict[str, str]) -> set[str]:
        if not candidates or self.boilerplate is None:
            return set()
        return self.boilerplate.frequent(domain, candidates, min_articles=self.config.min_articles)

    def _apply(
        self,
        item: Any,
        adapter: ItemAdapter,
        text: str,
        result: CleanResult,
        url: str,
        domain: str,
        candidates: dict[str, str],
    ) -> Any:
        if candidates and self.boilerplate is not None:
            self.boilerplate.record(domain, url, candidates, cap=self.config.min_articles)
        if adapter.get("text_raw") is None:
            adapter["text_raw"] = text
        adapter["text"] = result.text
        adapter["removed"] = result.removed
        self.counts["items"] += 1
        stats = self.crawler.stats
        for piece in result.removed:
            stats.inc_value(f"clean/removed/{piece['rule']}")
            self.counts[f"rule:{piece['rule']}"] += 1
        if result.text != text:
            stats.inc_value("clean/items_changed")
            self.counts["changed"] += 1
        if not result.text:
            stats.inc_value("clean/emptied")
            logger.warning("clean: nothing left of the text of %s after cleaning", url)
        logger.debug("clean: %s: %d lines removed", url, len(result.removed))
        return item
