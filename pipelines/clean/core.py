"""``clean_text``: the pure core of the clean step. Whole lines are judged, never words; each
removed line is recorded with the rule that removed it."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pipelines.clean.lines import (
    _BULLET_RE,
    _CJK_RE,
    _CLOSERS,
    _LINK_BULLET_RE,
    _SENTENCE_END_RE,
    _TEASER_RE,
    _is_list_like,
    _Line,
    _split_lines,
    candidates_of,
    key_form,
    key_hash,
    line_key,
    tidy_spacing,
)
from pipelines.clean.rules import (
    DOMAIN_RULES,
    HEADLINE,
    LEARNED,
    OTHER_HEADLINE,
    REPEATED,
    ZONES,
    Family,
    Rules,
    default_rules,
)

if TYPE_CHECKING:
    from collections.abc import Collection, Iterator, Sequence

REPEAT_MIN_WORDS = 12
"""A paragraph repeated verbatim is dropped (first copy kept) when it is prose: a sentence
of at least this many words (for Hangul, kana and Han: characters / 2). Short lines and
lists are left alone: recipes and tables repeat them on purpose."""
HEADLINE_MIN_OVERLAP = 0.75
"""A line is the headline when its words and the title's overlap this much (Jaccard)."""
HEAD_MAX_LINES = 6
"""Head rules look at most at this many lines at the top, before the first real sentence."""
HEADLINE_MAX_LINES = 3
HEADLINE_MAX_WORDS = 20
"""A title longer than this reads as a sentence (a lede used as the headline, perhaps cut
short without its full stop), not as a headline."""
"""The headline is looked for among the first lines that are left after the head rules."""
BLOCK_MAX_LINES = 15
"""A block header (Related, Tags) takes at most this many list lines with it."""
_PROSE_END_RE = re.compile("[.\u3002]$")
TEASER_MIN_TITLE_WORDS = 4
"""A line names another story when it holds that story's headline of at least this many
words ..."""
TEASER_MAX_LABEL_WORDS = 4
"""... with at most this many words before it ("READ ALSO", "Trending now:") ...
"""
TEASER_MAX_TAIL_WORDS = 4
"""... and after it ("(click to read)", "(VIDEO)") ..."""
TEASER_MAX_LINE_WORDS = 40
"""... in a line of at most this many words."""
TEASER_HEADING_MAX_WORDS = 8
"""A bare heading right above a run of other stories' headlines ("Most read") goes with it."""
OWN_MIN_SHARED = 2
"""The guard keeps a line that what the domain taught would remove when it shares this many
content words with the headline or with the story's lines kept so far (``own_lines``)."""
OWN_STEM_CHARS = 5
"""Content words are compared by their first characters ("Korea's" and "Korea" match); ..."""
OWN_CJK_STEM_CHARS = 2
"""... a Hangul, kana or Han word by its first two (a Korean word without its particle)."""
_OWN_STOPWORD_RE = re.compile(
    "the|and|for|from|with|that|this|these|those|their|there|they|them|then|than|are|was|were|"
    "been|has|have|had|its|his|her|our|your|you|not|but|all|any|can|will|would|could|should|"
    "may|might|must|shall|who|whom|whose|which|what|when|where|why|how|into|onto|over|under|"
    "about|after|before|since|until|while|also|just|more|most|other|some|such|only|very|said|"
    "says|say|new|one|two|out|off|per|via"
)
"""Words that say nothing of a story's subject (``own_lines`` does not count them)."""


@dataclass
class CleanResult:
    """The cleaned text and every removed line with the rule that removed it."""

    text: str
    removed: list[dict[str, str]] = field(default_factory=list)

    def rule_counts(self) -> Counter[str]:
        return Counter(piece["rule"] for piece in self.removed)


class _Matcher:
    """The pattern groups of ``families`` that apply in each zone, in family order: the
    first that matches a line names the family that removes it."""

    def __init__(self, families: Sequence[Family]) -> None:
        self.zones = {
            zone: [(f, g) for f in families for g in f.groups if zone in g.where] for zone in ZONES
        }

    def first(self, line: _Line, zone: str) -> Family | None:
        words = line.words
        for family, group in self.zones[zone]:
            if words > group.max_words:
                continue
            subject = line.key if group.form == "key" else line.cmp
            if (
                len(subject) <= group.max_words * 20
                and group.may_match(subject)
                and group.regex.fullmatch(subject)
            ):
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


def _trim_head(lines: list[_Line], rule: list[str | None], matcher: _Matcher) -> None:
    seen = 0
    for i, line in enumerate(lines):
        if rule[i] is not None:
            continue
        seen += 1
        if seen > HEAD_MAX_LINES:
            return
        family = matcher.first(line, "head")
        if family is not None:
            rule[i] = family.name
        elif not line.nav:
            return


def _headline_spans(line: _Line) -> Iterator[tuple[int, int, str]]:
    """``(start, end, hash)`` of the word spans of ``line`` that could be another story's
    headline with a short label around it ("READ ALSO: X", "X (click to read)"); none for
    a sentence (prose: a lede that another copy of the story used as its headline)."""
    words = line.key.split()
    n = len(words)
    if n < TEASER_MIN_TITLE_WORDS or n > TEASER_MAX_LINE_WORDS:
        return
    if _PROSE_END_RE.search(line.text.rstrip(_CLOSERS)):
        return
    for start in range(min(TEASER_MAX_LABEL_WORDS, n - TEASER_MIN_TITLE_WORDS) + 1):
        stop = max(start + TEASER_MIN_TITLE_WORDS, n - TEASER_MAX_TAIL_WORDS)
        for end in range(n, stop - 1, -1):
            if start == 0 and end == n and not line.nav:
                continue  # a whole line must look like a headline
            yield start, end, key_hash(" ".join(words[start:end]))


def headline_spans(text: str) -> set[str]:
    """Hashes of every word span of ``text``'s lines that ``clean_text`` would remove as
    another story's headline if ``titles`` held it (the crawl intersects them with the
    domain's headlines, so only a few hashes travel to ``clean_text``)."""
    return {h for line in _split_lines(tidy_spacing(text)) for _, _, h in _headline_spans(line)}


def text_keys(text: str) -> tuple[dict[str, str], set[str]]:
    """The learned-boilerplate candidates of ``text`` (``boilerplate_candidates``) and the
    hashes of its spans that could name another story (``headline_spans``), the text split
    once: what the pipeline looks up before cleaning."""
    lines = _split_lines(tidy_spacing(text))
    return candidates_of(lines), {h for line in lines for _, _, h in _headline_spans(line)}


def _names_other_story(line: _Line, titles: Collection[str], own: str) -> bool:
    """Whether the line is another story's headline (``titles``: ``line_key`` of the
    domain's headlines), alone or with a short label around it."""
    return any(h in titles and h != own for _, _, h in _headline_spans(line))


def _drop_other_headlines(
    lines: list[_Line],
    rule: list[str | None],
    titles: Collection[str],
    title: str | None,
    keep: Collection[str] = (),
) -> None:
    """Lines naming another story of the domain by its headline go (teasers, "more from"
    lists), and a bare heading right above a run of them; not the lines in ``keep``."""
    own = line_key(title or "")
    for i, line in enumerate(lines):
        if keep and key_hash(line.key) in keep:
            continue
        if rule[i] is None and _names_other_story(line, titles, own):
            rule[i] = OTHER_HEADLINE
    for i in range(1, len(lines)):
        if rule[i] != OTHER_HEADLINE or rule[i - 1] is not None:
            continue
        above = lines[i - 1]
        if (
            above.nav
            and above.words <= TEASER_HEADING_MAX_WORDS
            and not _TEASER_RE.search(above.cmp)
        ):
            rule[i - 1] = OTHER_HEADLINE


def _drop_headline(lines: list[_Line], rule: list[str | None], title: str) -> None:
    """The headline repeated as one of the first lines goes, once. A title that reads as a
    sentence (sentence-final punctuation, or longer than ``HEADLINE_MAX_WORDS``) and is also
    the lede is kept unless the lede is repeated (then one copy goes)."""
    title_key = key_form(title)
    sentence_title = bool(_SENTENCE_END_RE.search(title.rstrip(_CLOSERS)))
    sentence_title = sentence_title or len(title_key.split()) > HEADLINE_MAX_WORDS
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
    lines: list[_Line],
    rule: list[str | None],
    matcher: _Matcher,
    anchors: set[str],
    title: str | None = None,
) -> None:
    """Walk up from the end while lines are spam or navigation; stop at the first real
    sentence. Once a footer line (an anchor) is found, the navigation lines below it go with
    it, and so do the bulleted link lines right above it (a related list without a heading).
    Other short lines above the footer stay: they may be the article's own last lines. In a
    text without a real sentence (a one-line brief without its full stop between spam lines,
    a calendar or a results table), the lines no rule matched stay when one of them shares
    content words with the headline: they are the story, not a footer."""
    anchor = None
    sentence = False
    for i in range(len(lines) - 1, -1, -1):
        if rule[i] is None:
            family = matcher.first(lines[i], "tail")
            if family is not None:
                rule[i] = family.name
        if rule[i] is not None:
            if rule[i] in anchors:
                anchor = i
        elif not lines[i].nav:
            sentence = True
            break
    if anchor is None:
        return
    start = anchor
    while start > 0 and rule[start - 1] is None and lines[start - 1].nav:
        if not _LINK_BULLET_RE.match(lines[start - 1].text):
            break
        start -= 1
    if not sentence and title:
        headline = _content_words(key_form(title))
        if any(
            rule[j] is None and len(_content_words(lines[j].key) & headline) >= OWN_MIN_SHARED
            for j in range(start, len(lines))
        ):
            return
    current = rule[anchor]
    for j in range(start, len(lines)):
        if rule[j] is None:
            rule[j] = current
        else:
            current = rule[j]


def _content_words(key: str) -> set[str]:
    """The content words of a ``key_form`` line, shortened to their stems (``own_lines``)."""
    words = set()
    for word in key.split():
        if _CJK_RE.match(word):
            if len(word) >= OWN_CJK_STEM_CHARS:
                words.add(word[:OWN_CJK_STEM_CHARS])
        elif len(word) >= 3 and not _OWN_STOPWORD_RE.fullmatch(word):
            words.add(word[:OWN_STEM_CHARS])
    return words


def own_lines(removed: Sequence[dict[str, str]], title: str | None) -> set[str]:
    """``line_key`` of the lines in ``removed`` that what the domain taught removed
    (``DOMAIN_RULES``) but that carry the story itself: a line sharing ``OWN_MIN_SHARED``
    content words with the headline (the lede of a brief whose copies were stored apart and
    taught the domain its sentence), then, one after the other, lines sharing as many with
    the headline and the lines found so far (the brief's next sentences). A promo, a channel
    invite or a tip line shares no such words with a story's headline and stays removed."""
    vocabulary = _content_words(key_form(title or ""))
    taught = [
        (line_key(piece["text"]), _content_words(key_form(piece["text"])))
        for piece in removed
        if piece["rule"] in DOMAIN_RULES
    ]
    own: set[str] = set()
    grown = True
    while grown:
        grown = False
        for key, words in taught:
            if key not in own and len(words & vocabulary) >= OWN_MIN_SHARED:
                own.add(key)
                vocabulary |= words
                grown = True
    return own


def about_title(text: str, title: str | None) -> bool:
    """Whether ``text`` shares ``OWN_MIN_SHARED`` content words with the headline ``title``:
    what is left of a story after cleaning still tells it."""
    headline = _content_words(key_form(title or ""))
    return len(headline) >= OWN_MIN_SHARED and (
        len(_content_words(key_form(text)) & headline) >= OWN_MIN_SHARED
    )


def clean_text(
    text: str | None,
    *,
    title: str | None = None,
    domain: str | None = None,
    language: str | None = None,
    boilerplate: Collection[str] | None = None,
    titles: Collection[str] | None = None,
    rules: Rules | None = None,
    keep: Collection[str] = (),
) -> CleanResult:
    """Remove spam, promo and boilerplate lines from an article body.

    Whole lines are judged, never words. Order: rule families that apply anywhere, learned
    boilerplate (``boilerplate``: ``line_key`` values known to recur on this ``domain``),
    other stories' headlines (``titles``: ``line_key`` of the headlines of the domain's
    stories; this one's own ``title`` never counts), lists under block headers, head rules (datelines,
    bylines before the first sentence), the repeated headline (``title``), repeated
    paragraphs (first kept), then the footer is trimmed from the end. Apart from whitespace and invisible characters the kept text is
    unchanged; ``removed`` lists every removed line in document order. ``keep``: ``line_key``
    of lines that learned boilerplate and other stories' headlines do not remove (the
    story's own lines, ``own_lines``).
    """
    rules = rules if rules is not None else default_rules()
    lines = _split_lines(tidy_spacing(text or ""))
    families = rules.for_item(domain=domain, language=language)
    matcher = _Matcher(families)
    rule: list[str | None] = [None] * len(lines)
    for i, line in enumerate(lines):
        family = matcher.first(line, "anywhere")
        if family is not None:
            rule[i] = family.name
        elif (
            boilerplate
            and line.candidate
            and any(key in boilerplate for key in line.learned_keys())
            and not (keep and key_hash(line.key) in keep)
        ):
            rule[i] = LEARNED
    if titles:
        _drop_other_headlines(lines, rule, titles, title, keep)
    _extend_blocks(lines, rule, {f.name for f in families if f.block})
    _trim_head(lines, rule, matcher)
    if title:
        _drop_headline(lines, rule, title)
    _drop_repeats(lines, rule)
    _trim_tail(
        lines,
        rule,
        matcher,
        {f.name for f in families if f.footer} | {LEARNED, OTHER_HEADLINE},
        title,
    )

    paragraphs: dict[int, list[str]] = {}
    removed: list[dict[str, str]] = []
    for line, name in zip(lines, rule, strict=True):
        if name is None:
            paragraphs.setdefault(line.para, []).append(line.text)
        else:
            removed.append({"text": line.text, "rule": name})
    cleaned = "\n\n".join("\n".join(p) for p in paragraphs.values())
    return CleanResult(text=cleaned, removed=removed)
