"""The ambiguity rules: what a found Korea term means where it stands.

Each rule takes the hits of one text (headline or story text), changes their ``factor``
(weight for the score) or ``side_factor`` (weight for the north/south decision), flags them,
and adds its name to ``applied`` so the evidence says which rules fired.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING

from pipelines.tag.lexicon import LIST_CATEGORIES, PERSON_CATEGORIES, PLACE_CATEGORIES, Hit

if TYPE_CHECKING:
    from pipelines.tag.lexicon import Rules

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
_HONORIFICS = frozenset(
    {"Mr", "Mrs", "Ms", "Miss", "Dr", "President", "Chairman", "Leader", "Minister", "General"}
)
_PREV_WORD_RE = re.compile(r"([A-Z][a-z]+)\.?\s+$")
_NEXT_WORD_RE = re.compile(r"\s+[A-Z][a-z]")
_VENUE_DEMOTED = PLACE_CATEGORIES | {"country"}


def attribution(rules: Rules, source: str, hits: list[Hit], applied: set[str]) -> None:
    """ "South Korean officials said", "according to Yonhap": quoted, not acting."""
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


def country_lists(rules: Rules, source: str, hits: list[Hit], applied: set[str]) -> None:
    """Korea inside a run of many countries ("Japan, South Korea, Taiwan and India")."""
    members = [
        h
        for h in hits
        if h.kind == "country"
        or (h.kind == "entry" and h.entry is not None and h.entry.category in LIST_CATEGORIES)
    ]
    run: list[Hit] = []
    for hit in [*members, None]:
        if hit is not None and run and rules.list_separator.match(source[run[-1].end : hit.start]):
            run.append(hit)
            continue
        if len(run) >= rules.list_min_members:
            for member in run:
                if member.kind == "entry":
                    member.factor *= rules.list_factor
                    member.flags.add("list")
                    applied.add("list")
        run = [hit] if hit is not None else []


def dateline(rules: Rules, text: str, hits: list[Hit], applied: set[str]) -> int:
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
            hit.factor *= rules.dateline_factor
            hit.side_factor = 0.0
            hit.flags.add("dateline")
            applied.add("dateline")
        first = False
    return match.end()


def lead_subject(rules: Rules, text: str, hits: list[Hit], start: int, applied: set[str]) -> None:
    """The lead's first words name what the story is about ("Hynix Semiconductor Inc.,
    the world's third-largest..."), unless they name it with others ("X and Y ...").
    People are left out: one of several players often opens a sports report."""
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


def sports_venue(rules: Rules, hits: list[Hit], applied: set[str]) -> None:
    """A sports event held in Korea (the Korea Open): its places are where, not who."""
    if any(h.entry is not None and h.entry.category == "venue" for h in hits):
        for hit in hits:
            if hit.entry is not None and hit.entry.category in _VENUE_DEMOTED:
                hit.factor *= rules.venue_factor
                hit.flags.add("venue")
                applied.add("venue")


def several(rules: Rules, title: str, text: str, hits: list[Hit], applied: set[str]) -> None:
    """ "Kane and Son score": a person named together with others in the headline or the lead
    is one of several (a mention)."""
    for hit in hits:
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
            hit.factor *= rules.several_factor
            hit.flags.add("several")
            applied.add("several")


def surnames(
    source: str, own: list[Hit], zone: str, hits: list[Hit], end_of_lead: int
) -> list[Hit]:
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
            found.append(Hit(start, end, surname, "entry", entry, zone=where, flags={"surname"}))
    return found


def elliptical(hits: list[Hit], applied: set[str]) -> list[Hit]:
    """ "the North" / "the South" only count in a story that names a Korea explicitly."""
    explicit_side = any(
        h.entry is not None and h.label != "elliptical" and h.entry.korea in ("north", "south")
        for h in hits
    )
    kept = [
        h
        for h in hits
        if h.label != "elliptical" or (explicit_side and (h.zone == "title" or h.text[:1] in "Tt"))
    ]
    if any(h.label == "elliptical" for h in kept):
        applied.add("elliptical")
    return kept


@lru_cache(maxsize=8)
def _words_re(count: int) -> re.Pattern[str]:
    return re.compile(rf"(?:\S+(?:\s+|$)){{1,{count}}}")


@lru_cache(maxsize=64)
def _surname_re(surname: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w\-]){re.escape(surname)}(?![\w\-])")
