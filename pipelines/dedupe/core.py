"""The dedupe step's pure core: a story's fingerprint (normalised words, shingles, MinHash
LSH band keys, sentence anchors, its headline and opening), how alike two stories are, and
``find_duplicate``, the verdict on a page against the archive's ``StoryIndex``."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from crawler.config import read_config, setting

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

    from crawler.storage.protocols import StoryIndex

URL, EXACT, NEAR = "url", "exact", "near"
INDEX_FORMAT = 2
"""Version of the shingle and band-key scheme below; part of the parameters the index is
built with (2: shingles hashed from per-word hashes, vectorised; 1: one BLAKE2 per shingle)."""
MINHASH_SCHEME = "affine32"
"""datasketch's permutation scheme (its default since 2.0); stored with the index."""
BAND_KEY_MASK = (1 << 47) - 1
"""Band keys are 47-bit: SQLite stores them in 6 bytes, and collisions stay negligible."""

_WORD_RE = re.compile(r"[^\W_]+")
_SENTENCE_END_RE = re.compile(r"(?<=[.!?\u3002\uff01\uff1f])[\"'\u201d\u2019)\]]*\s+|\n+")
ANCHOR_MIN_WORDS = 8
"""A sentence shorter than this is too common ("He said no.") to anchor a story."""
TITLE_MIN_WORDS = 3
"""Headlines agree when the shorter one has at least this many distinct words ..."""
TITLE_AGREEMENT = 0.8
"""... and this share of them is in the other ("UPDATE: X", "X (VIDEO)", "X ..." and X), or
when one headline of at least ``TITLE_AS_LEDE_MIN_WORDS`` words is, to this share, the other
text's opening (a re-post that used the lede as its headline)."""
TITLE_AS_LEDE_MIN_WORDS = 6
HEAD_WORDS = 80
"""Words of a text's opening compared with the other story's headline."""
SHORT_CONTAINMENT = 0.8
"""With the headline or the lede as evidence, a text of which this share is in the other is
the same story, however short (a brief re-posted with leftover blocks around it) ..."""
EVIDENCE_AGAINST_JACCARD = 0.9
"""... and when both headlines are known and neither they nor the ledes agree, a short text
(under ``EVIDENCE_AGAINST_MAX_SHINGLES``) is the same story only this close (Jaccard): junk
as long as two briefs does not make them one. Longer texts are judged by their words."""
EVIDENCE_AGAINST_MAX_SHINGLES = 100
EDITED_CONTAINMENT = 0.3
"""Headlines and ledes disagreeing count only when the lines in which the two texts differ
share less than this (containment) of their shingles: an edited copy under a new headline
differs in lines that still overlap, two stories padded with the same blocks in lines that
do not (``edited``)."""
_NO_SPACE_SCRIPT_RE = re.compile(r"([\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff])")
"""Kana and Han ideographs: scripts written without spaces, shingled per character. Hangul is
written with spaces between words (eojeol) and is shingled per word like Latin script."""


# -- configuration ------------------------------------------------------------------------------
@dataclass(frozen=True)
class DedupeConfig:
    """The dedupe step's settings, read once and checked (defaults in ``crawler/config.py``,
    chosen with ``bench/bench_dedupe.py``)."""

    near_threshold: float = setting("DEDUPE_NEAR_THRESHOLD")
    """A story whose word shingles overlap a stored one's this much (Jaccard) is the same."""
    containment_threshold: float = setting("DEDUPE_CONTAINMENT_THRESHOLD")
    """... or when this share of the shorter text's shingles is in the other (a re-post that
    wraps the same text in junk) ..."""
    containment_min_shingles: int = setting("DEDUPE_CONTAINMENT_MIN_SHINGLES")
    """... provided the shorter text has at least this many shingles (not a one-line brief)."""
    shingle_size: int = setting("DEDUPE_SHINGLE_SIZE")
    """Words (or CJK characters) per shingle."""
    num_perm: int = setting("DEDUPE_NUM_PERM")
    """MinHash permutations."""
    bands: int = setting("DEDUPE_BANDS")
    """LSH bands (``num_perm / bands`` rows each): more bands find lower overlaps."""
    seed: int = setting("DEDUPE_SEED")
    """MinHash seed: fixed, so signatures and the stored index are the same across runs."""
    max_candidates: int = setting("DEDUPE_MAX_CANDIDATES")
    """Stored stories sharing the most index keys that are compared word for word."""
    anchors: int = setting("DEDUPE_ANCHORS")
    """Opening sentences indexed word for word (finds partial copies); 0 for none."""
    db_path: str = setting("DB_PATH")

    def __post_init__(self) -> None:
        if not 0 < self.near_threshold <= 1 or not 0 < self.containment_threshold <= 1:
            raise ValueError("DEDUPE_NEAR_THRESHOLD and DEDUPE_CONTAINMENT_THRESHOLD: 0 < x <= 1")
        if self.anchors < 0:
            raise ValueError("DEDUPE_ANCHORS must be >= 0")
        if self.shingle_size < 1 or self.max_candidates < 1 or self.containment_min_shingles < 1:
            raise ValueError(
                "DEDUPE_SHINGLE_SIZE, DEDUPE_MAX_CANDIDATES, DEDUPE_CONTAINMENT_MIN_SHINGLES >= 1"
            )
        if self.bands < 1 or self.num_perm < self.bands or self.num_perm % self.bands:
            raise ValueError(
                f"DEDUPE_NUM_PERM ({self.num_perm}) must be a multiple of DEDUPE_BANDS "
                f"({self.bands})"
            )

    @property
    def rows(self) -> int:
        return self.num_perm // self.bands

    @property
    def index_params(self) -> str:
        """What the stored index depends on (JSON); a change rebuilds the index."""
        keys = ("shingle_size", "num_perm", "bands", "seed", "anchors")
        params = {k: getattr(self, k) for k in keys}
        return json.dumps(
            {"format": INDEX_FORMAT, "scheme": MINHASH_SCHEME, **params}, sort_keys=True
        )

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> DedupeConfig:
        return read_config(cls, settings)


# -- the pure core ------------------------------------------------------------------------------
def tokens(text: str) -> list[str]:
    """Words of ``text`` after NFKC and case folding, punctuation dropped; Han and kana split
    into single characters."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    words = _WORD_RE.findall(folded)
    if not _NO_SPACE_SCRIPT_RE.search(folded):
        return words
    out: list[str] = []
    for word in words:
        if _NO_SPACE_SCRIPT_RE.search(word):
            out.extend(p for p in _NO_SPACE_SCRIPT_RE.split(word) if p)
        else:
            out.append(word)
    return out


def comparison_text(text: str) -> str:
    """The text as compared: its words, in order, single-spaced (quotes, punctuation, case,
    spacing and Unicode variants no longer count)."""
    return " ".join(tokens(text))


def text_hash(text: str) -> str:
    """SHA-1 (hex) of the normalised text: the exact-duplicate key."""
    return hashlib.sha1(comparison_text(text).encode("utf-8")).hexdigest()  # noqa: S324 - a key


_MASK64 = (1 << 64) - 1
_CHAR_MULTIPLIER = 0x100000001B3
"""FNV's 64-bit prime: a word's hash is the polynomial of its code points (mod 2**64)."""
_SHINGLE_MULTIPLIER = 0x9E3779B97F4A7C15
"""Odd, so each word's position in a shingle changes the shingle's hash."""
_VECTOR_WORD_CHARS = 32
"""Words up to this long are hashed column by column in numpy; longer ones (rare) in Python."""


def _fmix64(values: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finaliser: spreads every input bit over the output."""
    values = values ^ (values >> np.uint64(33))
    values = values * np.uint64(0xFF51AFD7ED558CCD)
    values = values ^ (values >> np.uint64(33))
    values = values * np.uint64(0xC4CEB9FE1A85EC53)
    return values ^ (values >> np.uint64(33))


def _code_point_polynomial(word: str) -> int:
    value = 0
    for char in word:
        value = ((value + ord(char)) * _CHAR_MULTIPLIER) & _MASK64
    return value


def _word_hashes(words: list[str]) -> np.ndarray:
    """A stable 64-bit hash of each word (the same in every process and on every run), all
    words at once: numpy walks the code points column by column; the rare word longer than
    ``_VECTOR_WORD_CHARS`` gets the same polynomial in Python."""
    lengths = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
    long_words = np.flatnonzero(lengths > _VECTOR_WORD_CHARS)
    short = words
    if long_words.size:
        short = list(words)
        for i in long_words:
            short[i] = ""
    width = int(lengths.max(initial=0)) if not long_words.size else _VECTOR_WORD_CHARS
    codes = np.array(short, dtype=f"<U{max(width, 1)}").view(np.uint32)
    codes = codes.reshape(len(words), -1).astype(np.uint64)
    multiplier = np.uint64(_CHAR_MULTIPLIER)
    acc = np.zeros(len(words), dtype=np.uint64)
    for column in range(codes.shape[1]):  # uint64 arithmetic wraps: mod 2**64
        acc = np.where(column < lengths, (acc + codes[:, column]) * multiplier, acc)
    for i in long_words:
        acc[i] = _code_point_polynomial(words[i])
    return _fmix64(acc)


def shingles(words: list[str], size: int) -> frozenset[int]:
    """32-bit hashes of every run of ``size`` consecutive words (one shingle for a shorter
    text, none for an empty one). A shingle's hash combines its words' hashes in order, all
    shingles at once: several times faster than hashing each shingle's string, which matters
    because every candidate of a lookup is re-shingled from its stored text."""
    if not words:
        return frozenset()
    hashes = _word_hashes(words)
    width = min(size, len(words))
    count = len(words) - width + 1
    multiplier = np.uint64(_SHINGLE_MULTIPLIER)
    acc = np.zeros(count, dtype=np.uint64)
    for offset in range(width):
        acc = acc * multiplier + hashes[offset : offset + count]
    return frozenset((_fmix64(acc) >> np.uint64(32)).tolist())


def _identity(value: int) -> int:
    return value


# datasketch is imported where MinHash is used: a pool worker computes the rest of a
# fingerprint (``text_fingerprint``) without loading it and the SciPy it pulls in.
@lru_cache(maxsize=8)
def _permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from datasketch import MinHash

    return MinHash(num_perm=num_perm, seed=seed, scheme=MINHASH_SCHEME).permutations


def load_minhash(config: DedupeConfig) -> None:
    """Import datasketch (half a second: it loads SciPy) and make ``config``'s permutations
    now, as a crawl opens, rather than while its first stories wait for their band keys."""
    _permutations(config.num_perm, config.seed)


def band_keys(shingle_set: frozenset[int], config: DedupeConfig) -> tuple[int, ...]:
    """The LSH band keys of a shingle set: its MinHash signature (``num_perm`` values, fixed
    seed) cut into ``bands`` bands, each hashed with its number to a 47-bit integer. Two
    texts share a band key when their signatures agree on a whole band, which is likely
    when their Jaccard similarity is high. No keys for an empty set."""
    if not shingle_set:
        return ()
    from datasketch import MinHash

    minhash = MinHash(
        num_perm=config.num_perm,
        seed=config.seed,
        hashfunc=_identity,
        permutations=_permutations(config.num_perm, config.seed),
        scheme=MINHASH_SCHEME,
    )
    minhash.update_batch(sorted(shingle_set))
    values = minhash.hashvalues.astype("<u4")
    keys = []
    for band in range(config.bands):
        chunk = values[band * config.rows : (band + 1) * config.rows].tobytes()
        digest = hashlib.blake2b(band.to_bytes(2, "big") + chunk, digest_size=8).digest()
        keys.append(int.from_bytes(digest, "big") & BAND_KEY_MASK)
    return tuple(keys)


def anchor_keys(text: str, config: DedupeConfig) -> tuple[int, ...]:
    """Keys of the first ``anchors`` sentences of at least ``ANCHOR_MIN_WORDS`` words
    (normalised), in the band-key space. A copy that keeps only part of a story (a teaser,
    the first half) overlaps it too little for MinHash bands to meet, but usually keeps its
    opening sentences word for word: they make it a candidate, verified by containment."""
    keys: list[int] = []
    if config.anchors == 0:
        return ()
    for sentence in _SENTENCE_END_RE.split(text):
        words = tokens(sentence)
        if len(words) < ANCHOR_MIN_WORDS:
            continue
        digest = hashlib.blake2b(
            " ".join(words).encode("utf-8"), digest_size=8, person=b"anchor"
        ).digest()
        keys.append(int.from_bytes(digest, "big") & BAND_KEY_MASK)
        if len(keys) >= config.anchors:
            break
    return tuple(dict.fromkeys(keys))


@dataclass(frozen=True)
class Opening:
    """A story's headline and opening, the evidence beside its words."""

    title: frozenset[str] = frozenset()
    """Distinct words of the headline (empty: no headline known)."""
    title_words: tuple[str, ...] = ()
    head: frozenset[str] = frozenset()
    """Distinct words of the text's first ``HEAD_WORDS`` words."""
    lede: str | None = None
    """The first sentence of ``ANCHOR_MIN_WORDS`` words or more, normalised."""
    lines: tuple[str, ...] = ()
    """The text's lines, normalised (``edited``)."""

    @classmethod
    def of(cls, text: str, title: str | None, words: list[str] | None = None) -> Opening:
        words = tokens(text) if words is None else words
        title_words = tuple(tokens(title)) if title else ()
        lines = tuple(filter(None, (" ".join(tokens(line)) for line in text.split("\n"))))
        head = frozenset(words[:HEAD_WORDS])
        return cls(frozenset(title_words), title_words, head, lede(text), lines)


def lede(text: str) -> str | None:
    """The text's first sentence of at least ``ANCHOR_MIN_WORDS`` words, normalised."""
    for sentence in _SENTENCE_END_RE.split(text):
        words = tokens(sentence)
        if len(words) >= ANCHOR_MIN_WORDS:
            return " ".join(words)
    return None


def _title_in(title: Opening, other: frozenset[str], minimum: int) -> bool:
    return len(title.title) >= minimum and len(title.title & other) >= TITLE_AGREEMENT * len(
        title.title
    )


def evidence(a: Opening, b: Opening) -> bool | None:
    """Whether two stories' headlines or ledes say they are one story: ``None`` when a
    headline is missing (the words alone decide), else ``True`` when the headlines agree
    (the shorter one's words in the other), one headline is the other's opening, or the
    ledes are the same sentence; ``False`` when none of these holds."""
    if not a.title or not b.title:
        return None
    short, long = sorted((a, b), key=lambda o: len(o.title))
    if _title_in(short, long.title, TITLE_MIN_WORDS):
        return True
    if _title_in(a, b.head, TITLE_AS_LEDE_MIN_WORDS) or _title_in(
        b, a.head, TITLE_AS_LEDE_MIN_WORDS
    ):
        return True
    return a.lede is not None and a.lede == b.lede


def edited(a: Opening, b: Opening, config: DedupeConfig) -> bool:
    """Whether the lines in which two texts differ still overlap: copies of one story edited
    (a word changed, a sentence reworded), or one text is the other's lines and more. Two
    stories that share only whole lines (a site's leftover template) differ in lines that
    have nothing in common."""
    shared = set(a.lines) & set(b.lines)
    own_a = [w for line in a.lines if line not in shared for w in line.split()]
    own_b = [w for line in b.lines if line not in shared for w in line.split()]
    if not own_a or not own_b:
        return True
    own = similarity(shingles(own_a, config.shingle_size), shingles(own_b, config.shingle_size))
    return own.containment >= EDITED_CONTAINMENT


@dataclass(frozen=True)
class Fingerprint:
    """What the dedupe step compares of one text."""

    text_hash: str | None
    """``None`` for a text without words: it never matches another by its text."""
    shingles: frozenset[int]
    band_keys: tuple[int, ...]
    """MinHash LSH band keys, then sentence anchor keys: the story's rows in the index."""
    opening: Opening = Opening()


def fingerprint(text: str, config: DedupeConfig, *, title: str | None = None) -> Fingerprint:
    """The text's hash, shingles and index keys, and (with ``title``) its opening."""
    return with_band_keys(text_fingerprint(text, config, title=title), config)


def text_fingerprint(text: str, config: DedupeConfig, *, title: str | None = None) -> Fingerprint:
    """``fingerprint`` without the MinHash band keys (its ``band_keys`` hold the sentence
    anchors only): the part a pool worker computes, the most of the work."""
    words = tokens(text)
    if not words:
        return Fingerprint(None, frozenset(), ())
    shingle_set = shingles(words, config.shingle_size)
    digest = hashlib.sha1(" ".join(words).encode("utf-8")).hexdigest()  # noqa: S324 - a key
    opening = Opening.of(text, title, words) if title else Opening()
    return Fingerprint(digest, shingle_set, anchor_keys(text, config), opening)


def with_band_keys(fp: Fingerprint, config: DedupeConfig) -> Fingerprint:
    """``fp`` of ``text_fingerprint`` with its MinHash band keys ahead of its anchors."""
    if not fp.shingles:
        return fp
    return replace(fp, band_keys=band_keys(fp.shingles, config) + fp.band_keys)


@dataclass(frozen=True)
class Similarity:
    jaccard: float
    """Shared shingles over all shingles of the two texts (A and B / A or B)."""
    containment: float
    """Shared shingles over the shorter text's: how much of it is in the longer one."""
    smaller: int
    """Shingles of the shorter text."""


def similarity(a: frozenset[int], b: frozenset[int]) -> Similarity:
    if not a or not b:
        return Similarity(0.0, 0.0, 0)
    common = len(a & b)
    smaller = min(len(a), len(b))
    return Similarity(common / (len(a) + len(b) - common), common / smaller, smaller)


def same_story(sim: Similarity, config: DedupeConfig, agree: bool | None = None) -> bool:
    """Near-duplicate verdict: enough overlap, or the shorter text (long enough to judge)
    almost wholly inside the other. ``agree`` is what the headlines and ledes say
    (``evidence``): when they agree, a short text wholly inside the other is enough; when
    they disagree, a short text must be nearly identical."""
    if agree is False and sim.smaller < EVIDENCE_AGAINST_MAX_SHINGLES:
        return sim.jaccard >= EVIDENCE_AGAINST_JACCARD
    if sim.jaccard >= config.near_threshold:
        return True
    if agree and sim.containment >= SHORT_CONTAINMENT:
        return True
    return (
        sim.containment >= config.containment_threshold
        and sim.smaller >= config.containment_min_shingles
    )


@dataclass(frozen=True)
class Verdict:
    """A sighting of stored story ``article_id``."""

    kind: str
    """``url``, ``exact`` or ``near``."""
    article_id: int
    similarity: float
    """1.0 for an identical text; else the Jaccard similarity of the shingle sets."""
    containment: float = 1.0


def find_duplicate(
    fp: Fingerprint, keys: list[str], index: StoryIndex, config: DedupeConfig
) -> Verdict | None:
    """The stored story ``fp`` (a page known by URL ``keys``) repeats, or ``None`` for a new
    story. Checked in order: a known URL key, the same normalised text, then near-duplicate
    candidates from the LSH index, each verified on its words; the best verified one wins
    (highest Jaccard, then the oldest story)."""
    if keys and (article_id := index.story_for_keys(keys)) is not None:
        stored = index.story_text(article_id) or ""
        if fp.text_hash and text_hash(stored) == fp.text_hash:
            return Verdict(URL, article_id, 1.0)
        sim = similarity(fp.shingles, shingles(tokens(stored), config.shingle_size))
        return Verdict(URL, article_id, round(sim.jaccard, 4), round(sim.containment, 4))
    if fp.text_hash and (article_id := index.story_for_text_hash(fp.text_hash)) is not None:
        return Verdict(EXACT, article_id, 1.0)
    best: tuple[float, int, Similarity] | None = None
    for candidate in index.story_candidates(fp.band_keys, limit=config.max_candidates):
        text = index.story_text(candidate)
        if not text:
            continue
        words = tokens(text)
        sim = similarity(fp.shingles, shingles(words, config.shingle_size))
        if not same_story(sim, config, agree=True):
            # headlines and ledes only ever widen the verdict when they agree: words this far
            # apart are another story whatever they say (and reading them is the costly part)
            continue
        agree = None
        if fp.opening.title:
            stored = Opening.of(text, index.story_title(candidate), words)
            agree = evidence(fp.opening, stored)
            if agree is False and edited(fp.opening, stored, config):
                agree = None  # an edited copy under another headline: the words decide
        if same_story(sim, config, agree) and (
            best is None or (sim.jaccard, -candidate) > best[:2]
        ):
            best = (sim.jaccard, -candidate, sim)
    if best is None:
        return None
    jaccard, neg_id, sim = best
    return Verdict(NEAR, -neg_id, round(jaccard, 4), round(sim.containment, 4))
