"""The ambiguity rules: what a found Korea term means where it stands.

Each rule takes the hits of one text (headline or story text), changes their ``factor``
(weight for the score) or ``side_factor`` (weight for the north/south decision), flags them,
and adds its name to ``applied`` so the evidence says which rules fired.
"""

from __future__ import annotations

import bisect
import itertools
import re
from functools import lru_cache
from typing import TYPE_CHECKING

from pipelines.tag.lexicon import LIST_CATEGORIES, PERSON_CATEGORIES, PLACE_CATEGORIES, Hit

if TYPE_CHECKING:
    from pipelines.tag.lexicon import Rules

RULE_NAMES = (
    "negative",
    "list",
    "example",
    "personal",
    "venue",
    "dateline",
    "subject",
    "tournament",
    "context",
    "surname",
    "several",
    "attached",
    "elliptical",
    "aside",
    "source",
    "roundup",
)
"""Every name ``evidence["rules"]`` may hold (docs/tagging.md explains each)."""

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
_JOINED_BEFORE_RE = re.compile(r"[A-Z][\w'\u2019.-]*\s*(?:,|\band\b|&)\s*$")
_JOINED_AFTER_RE = re.compile(r"(?:'s|\u2019s)?\s*(?:,|\band\b|&)\s*[A-Z]")
_HONORIFICS = frozenset(
    {"Mr", "Mrs", "Ms", "Miss", "Dr", "President", "Chairman", "Leader", "Minister", "General"}
)
_PREV_WORD_RE = re.compile(r"([A-Z][a-z]+)\.?\s+$")
_NEXT_WORD_RE = re.compile(r"\s+[A-Z][a-z]")
_TOURNAMENT_DEMOTED = PLACE_CATEGORIES | {"country"}
_SENTENCE_END_RE = re.compile(r"[.!?\u3002](?=\s|$)|\n")
_LINE_BREAK_RE = re.compile(r"\n+")
SENTENCES_PER_PARAGRAPH = 3
"""A text without line breaks is cut into paragraphs of this many sentences."""
_WORD_RE = re.compile(r"[\w'\u2019.&\-]+")
_CLAUSE_END_RE = re.compile(r"[!?;:\n\u3002]|[\u2013\u2014]|\s-\s")
_ABBREVIATION_RE = re.compile(
    r"(?:[A-Z]\.)+|(?:[A-Z]\.?)*[A-Z]\.|(?:Inc|Corp|Co|Ltd|Bros|Mr|Mrs|Ms|Dr|St|No|Gen|Lt|Col|"
    r"Sgt|Sen|Rep|Gov|Jan|Feb|Mar|Apr|Aug|Sept?|Oct|Nov|Dec|vs)\.",
)
_APPOSITION_WORDS = frozenset({"the", "a", "an", "its", "one", "both"})
_NOT_VERB_BEFORE = frozenset({"the", "a", "an", "its", "their", "his", "her", "our", "newly"})
# A capitalised name of up to five words ("Matsushita Electric Industrial", "LG Electronics")
_NAME = (
    r"(?<![\w\-])[a-z]?[A-Z][\w&'\u2019.\-]*"
    r"(?:\s+(?:[a-z]?[A-Z0-9][\w&'\u2019.\-]*|&|of|de)){0,4}"
)
_NAME_SEP = r"(?:\s*,\s*(?:and\s+|or\s+)?|\s+(?:and|or|&)\s+)(?:the\s+)?"
_NAME_BEFORE_RE = re.compile(rf"({_NAME}){_NAME_SEP}$")
_NAME_AFTER_RE = re.compile(
    rf"(?:\s+[A-Z][\w&'\u2019.\-]*){{0,3}}(?:'s|\u2019s)?{_NAME_SEP}({_NAME})"
)
_ATTACH_GAP_RE = re.compile(
    r"(?:'s|\u2019s)?(?:\s+(?!(?:and|or|but|in|at|on|of|to|for|with|from|by|as|than)\b)"
    r"[\w\-]+){0,4}\s+"
)
_APPOSITION_RE = re.compile(r",\s+(?:the\s+|a\s+|an\s+)?")
_POSSESSIVE_RE = re.compile(r"'s|\u2019s")
_COMPOUND_AFTER_RE = re.compile(r"(?:\s+[\w.'-]+){0,2}?\s+(?:and|or|&)\s+(?:an?\s+|the\s+)?(\S+)")
_MODIFIERS = frozenset({"demonym"})
_POSSESSORS = PLACE_CATEGORIES | {"country"}  # "South Korea's Hynix", "Seoul's Kospi"
_NOT_ATTACHED = frozenset({"country", "demonym", "diaspora", "venue"}) | PLACE_CATEGORIES
_NO_SUBJECT = frozenset({"venue", "diaspora", "media"})
_NO_SUBJECT_FLAGS = frozenset(
    {"list", "example", "source", "dateline", "venue", "personal", "several"}
)


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


def subject_span(rules: Rules, text: str, start: int) -> tuple[int, int]:
    """Where the first sentence's subject stands: from ``start`` (after any dateline, and
    after an opening phrase such as "On Monday,") to its verb, at most ``subject_words`` words.

    The subject ends at a word of ``subject_end`` (verbs, and "amid", "despite"...), at a
    past-tense "-ed" word that no article or possessive precedes ("South Korea admitted",
    not "the embattled Hynix"), at a lower-case "-s" word right after a capitalised one
    ("Tokyo fears", "Japan boosts"), at a comma before a lower-case word other than an article
    ("Japan's defence ministry, citing North Korea's tests,"), or at the sentence's end
    ("U.S." and "Inc." do not end it).
    """
    intro = rules.subject_intro.match(text, start)
    if intro is not None:
        start = intro.end()
    previous = ""
    last_end = start
    for count, word in enumerate(_WORD_RE.finditer(text, start, start + 400)):
        token = word.group()
        gap = text[last_end : word.start()]
        if (
            count >= rules.subject_words
            or _CLAUSE_END_RE.search(gap)
            or (previous.endswith(".") and not _ABBREVIATION_RE.fullmatch(previous))
            or ("," in gap and token.islower() and token not in _APPOSITION_WORDS)
        ):
            return start, last_end
        if (
            count
            and (
                rules.subject_end.fullmatch(token)
                or (
                    token.islower()
                    and token.endswith("ed")
                    and len(token) > 4
                    and "-" not in token
                    and previous.lower() not in _NOT_VERB_BEFORE
                    and not _POSSESSIVE_RE.search(previous)
                )
                or (  # "Tokyo fears", "Japan boosts": a present-tense verb after a name
                    token.islower()
                    and token.endswith("s")
                    and not token.endswith("ss")
                    and len(token) > 3
                    and previous[:1].isupper()
                    and previous.lower() not in _NOT_VERB_BEFORE
                    and not _POSSESSIVE_RE.search(previous)
                )
            )
        ):
            return start, word.start()
        previous = token
        last_end = word.end()
    return start, last_end


def lead_subject(
    rules: Rules, title: str, text: str, hits: list[Hit], start: int, applied: set[str]
) -> None:
    """Korea as the subject of the lead's first sentence is what the story is about.

    "A South Korean carmaker said...", "Hynix Semiconductor, the world's third-largest
    chipmaker, reported...", "Workers at Hyundai Motor will strike": every Korea term in the
    subject weighs ``subject_factor`` more. Not when it is named with others ("Sony and
    Samsung said", "A Korean Air jet and a BA plane"), quoted ("South Korean officials
    said"), a venue, a list member, or a person under a headline about several people
    ("Four players share lead"); an unlisted romanised name needs a nationality word.
    """
    span_start, span_end = subject_span(rules, text, start)
    people_ok = not rules.several_headline.match(title)
    for hit in hits:
        if hit.start >= span_end:
            return
        entry = hit.entry
        if hit.start < span_start or hit.kind != "entry" or entry is None:
            continue
        if (
            entry.category in _NO_SUBJECT
            or entry.role == "source"
            or hit.flags & _NO_SUBJECT_FLAGS
            or hit.label == "name"
            or (entry.category in PERSON_CATEGORIES and not people_ok)
            or _compound(rules, text, hit, hits, span_start, span_end)
        ):
            continue
        hit.factor *= rules.subject_factor
        hit.side_factor /= rules.subject_factor  # which Korea: the evidence, not its place
        hit.flags.add("subject")
        applied.add("subject")


def _compound(rules: Rules, text: str, hit: Hit, hits: list[Hit], start: int, end: int) -> bool:
    """Whether the subject gives the Korea term as an example, or names it together with
    something not Korean."""
    if rules.example_before.search(text, start, hit.start):
        return True  # "Chipmakers such as Hynix will...": an example of the subject
    members = _name_run(text, hit, start, end)
    if any(not _covered(span, hits) for span in members):
        return True
    after = _COMPOUND_AFTER_RE.match(text, hit.end, end)
    if after is None:
        return False
    return not _covered(after.span(1), hits)


def headline_context(rules: Rules, title: str, hits: list[Hit], applied: set[str]) -> None:
    """ "Japan expands missile shield amid North Korea threat": a headline's adverbial clause
    is the background of what its subject does, not the subject."""
    for hit in hits:
        if (
            hit.kind == "entry"
            and hit.entry is not None
            and rules.context_before.search(title, 0, hit.start)
        ):
            hit.factor *= rules.context_factor
            hit.flags.add("context")
            applied.add("context")


def tournament(rules: Rules, hits: list[Hit], applied: set[str]) -> None:
    """A sports event held in Korea (the Korea Open): its places are where, not who."""
    if any(h.entry is not None and h.entry.category == "venue" for h in hits):
        for hit in hits:
            if hit.entry is not None and hit.entry.category in _TOURNAMENT_DEMOTED:
                hit.factor *= rules.tournament_factor
                hit.flags.add("tournament")
                applied.add("tournament")


def venue(rules: Rules, source: str, hits: list[Hit], applied: set[str]) -> None:
    """ "Talks in Seoul", "held in Pyongyang": a place where something happens.

    Counts for the score (an event in Korea), but for the north/south decision only when
    no Korea acts in the story: envoys meeting in Seoul about the North make it
    ``north_korea``; a crush in Seoul is still ``south_korea``.
    """
    for hit in hits:
        entry = hit.entry
        if (
            hit.kind == "entry"
            and entry is not None
            and entry.category in PLACE_CATEGORIES | {"country"}
            and not _POSSESSIVE_RE.match(source, hit.end)
            and rules.venue_before.search(source, max(0, hit.start - 40), hit.start)
        ):
            hit.flags.add("venue")
            applied.add("venue")


def personal(rules: Rules, source: str, hits: list[Hit], applied: set[str]) -> None:
    """ "Born in Seoul", "his Korean wife": a person's background, not the story's subject."""
    for hit in hits:
        entry = hit.entry
        if hit.kind != "entry" or entry is None or entry.category in PERSON_CATEGORIES:
            continue
        if rules.personal_before.search(
            source, max(0, hit.start - 50), hit.start
        ) or rules.personal_after.match(source, hit.end):
            hit.factor *= rules.personal_factor
            hit.side_factor = 0.0
            hit.flags.add("personal")
            applied.add("personal")


def attached(rules: Rules, source: str, hits: list[Hit], applied: set[str]) -> None:
    """A nationality word and the name it qualifies are one piece of evidence.

    "Korean player Lee Hyung-taik", "South Korea's Hynix", "Seoul's Kospi", "Pantech, a
    Korean phone maker":
    the weaker of the two counts ``attached_factor``, so one Korean referent named with its
    nationality is not two Korea terms.
    """
    entries = [h for h in hits if h.kind == "entry" and h.entry is not None]
    for first, second in itertools.pairwise(entries):
        pair = _modifier_pair(source, first, second)
        if pair is None:
            continue
        modifier, named = pair
        weaker = min((modifier, named), key=lambda h: h.entry.weight * h.factor if h.entry else 0.0)
        weaker.factor *= rules.attached_factor
        weaker.flags.add("attached")
        applied.add("attached")


def _modifier_pair(source: str, first: Hit, second: Hit) -> tuple[Hit, Hit] | None:
    a, b = first.entry, second.entry
    if a is None or b is None:
        return None
    modifier_first = a.category in _MODIFIERS or (
        a.category in _POSSESSORS and _POSSESSIVE_RE.match(source, first.end)
    )
    if modifier_first and b.category not in _NOT_ATTACHED:
        gap = _ATTACH_GAP_RE.fullmatch(source, first.end, second.start)
        if gap is not None or source[first.end : second.start] in (" ", "'s ", "\u2019s "):
            return first, second
    modifier_second = b.category in _MODIFIERS or (
        b.category in _POSSESSORS and _POSSESSIVE_RE.match(source, second.end)
    )
    if modifier_second and a.category not in _NOT_ATTACHED:
        between = source[first.end : second.start]
        if _APPOSITION_RE.fullmatch(between):
            return second, first
    return None


def examples(rules: Rules, source: str, hits: list[Hit], applied: set[str]) -> None:
    """ "Players such as the Samsung Yepp", "markets including South Korea": an example."""
    for hit in hits:
        if (
            hit.kind == "entry"
            and hit.entry is not None
            and not hit.flags & {"list", "several"}
            and rules.example_before.search(source, max(0, hit.start - 120), hit.start)
        ):
            hit.factor *= rules.example_factor
            hit.flags.add("example")
            applied.add("example")


def name_lists(rules: Rules, source: str, hits: list[Hit], applied: set[str]) -> None:
    """A Korean firm or person in a run of names with others ("Sony, Philips, Matsushita
    and Samsung"; "Roddick, Agassi and Lee"): one of several co-equal members."""
    for hit in hits:
        entry = hit.entry
        if (
            hit.kind != "entry"
            or entry is None
            or entry.category in LIST_CATEGORIES
            or hit.flags & {"list", "several"}
        ):
            continue
        members = _name_run(source, hit, 0, len(source))
        others = sum(1 for span in members if not _covered(span, hits))
        if len(members) + 1 >= 3 and others >= rules.name_list_min_others:
            hit.factor *= rules.list_factor
            hit.flags.add("list")
            applied.add("list")


def _name_run(source: str, hit: Hit, start: int, end: int) -> list[tuple[int, int]]:
    """The other names joined to ``hit`` by commas, "and", "or" or "&", within start-end."""
    members = []
    pos = hit.start
    while len(members) < 12:
        match = _NAME_BEFORE_RE.search(source, max(start, pos - 80), pos)
        if match is None:
            break
        members.append(match.span(1))
        pos = match.start(1)
    pos = hit.end
    while len(members) < 24:
        match = _NAME_AFTER_RE.match(source, pos, end)
        if match is None:
            break
        members.append(match.span(1))
        pos = match.end(1)
    return members


def _covered(span: tuple[int, int], hits: list[Hit]) -> bool:
    """Whether a Korea term lies inside ``span``."""
    start, end = span
    return any(
        h.kind == "entry" and h.entry is not None and h.start < end and start < h.end for h in hits
    )


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


def aside(rules: Rules, text: str, hits: list[Hit], applied: set[str]) -> None:
    """All the Korea evidence in one paragraph of the body, none in the headline or lead:
    an aside that could be cut. Only its strongest term counts in full."""
    evidence = [h for h in hits if h.kind == "entry" and h.entry is not None and h.factor > 0]
    if not evidence or any(h.zone != "body" for h in evidence):
        return
    bounds = paragraph_starts(text)
    if len({bisect.bisect_right(bounds, h.start) for h in evidence}) > 1:
        return
    strongest = max(evidence, key=lambda h: h.entry.weight * h.factor if h.entry else 0.0)
    for hit in evidence:
        if hit is not strongest:
            hit.factor *= rules.aside_factor
            hit.flags.add("aside")
            applied.add("aside")


def paragraph_starts(text: str) -> list[int]:
    """Where paragraphs start: at line breaks, or every few sentences in a text without any."""
    if "\n" in text.strip():
        return [m.end() for m in _LINE_BREAK_RE.finditer(text)]
    ends = [m.end() for m in _SENTENCE_END_RE.finditer(text)]
    return ends[SENTENCES_PER_PARAGRAPH - 1 :: SENTENCES_PER_PARAGRAPH]


@lru_cache(maxsize=64)
def _surname_re(surname: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w\-]){re.escape(surname)}(?![\w\-])")
