"""Dedupe benchmark: pairwise precision/recall/F1 of "same story" links on a corpus of stories
re-posted across URLs and sites, and the speed and memory of the persisted LSH index.

Run: .venv/bin/python bench/bench_dedupe.py [--sweep] [--stories 100000]
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from crawler.storage.articles import SqliteArticles
from crawler.storage.connection import Connection
from crawler.storage.index import SqliteStoryIndex
from crawler.urls import url_keys
from pipelines.dedupe import (
    DedupeConfig,
    find_duplicate,
    fingerprint,
    shingles,
    similarity,
    tokens,
)

FIXTURE = ROOT / "tests" / "fixtures" / "dedupe" / "stories.json"
SHARED = ROOT.parent / "shared" / "extraction-bench" / "ground-truth"
SEED = 20261126

_SENTENCE_RE = re.compile(r"(?<=[.!?다])\s+(?=\S)")

# -- junk that re-post sites glue on (shapes seen on real re-post blogs) ----------------------
FOOTERS_EN = [
    [
        "Post a Comment",
        "Comment in the comment section if any Download link Is not working",
        "Previous Post Next Post",
        (
            "Join Us On Telegram To Get Live Updates has pop ads which means a new tab opens "
            "once you click just click close the new tab and continue browsing."
        ),
    ],
    [
        "Share this:",
        "Facebook Twitter WhatsApp Telegram Email",
        "Related Posts",
        "You may also like",
        "Copyright © 2026 Daily World Blog. All rights reserved.",
    ],
    [
        (
            "Disclaimer: This story is auto-generated from a syndicated feed and has not been "
            "edited by our staff."
        ),
        "Follow us on Google News for the latest updates.",
    ],
    [
        "ADVERTISEMENT",
        "Subscribe to our newsletter to get the top stories of the day in your inbox.",
        "Click here to read more stories like this one.",
    ],
]
FOOTERS_KO = [
    ["무단전재 및 재배포 금지", "기자 구독하기", "네이버 메인에서 채널 구독하기"],
    ["ⓒ 뉴스블로그 무단 전재 및 재배포 금지", "이 기사를 추천합니다", "관련 기사 더 보기"],
]
INTROS_EN = [
    "Here is what we know so far about the story everyone is talking about today.",
    "In case you missed it, this report was published earlier and is shared here for readers.",
]
INTROS_KO = [
    "오늘 가장 많이 읽힌 기사를 소개합니다.",
    "아래 기사는 독자 여러분의 요청으로 공유합니다.",
]
OTHER_TITLES = [
    "Ten gadgets you need this winter",
    "Why housing prices keep rising in the capital",
    "The best street food in Busan, ranked",
    "Celebrity couple announces surprise wedding",
]
HEADERS = ["Home » World » Asia", "Breaking News", "LATEST UPDATES", "속보", "Trending now"]
EDITS = {
    "said": "stated",
    "told": "informed",
    "about": "around",
    "percent": "per cent",
    "government": "administration",
    "launched": "fired",
    "United States": "U.S.",
    "밝혔다": "전했다",
    "발사했다": "쐈다",
    "증가했다": "늘었다",
}


@dataclass(frozen=True)
class Story:
    id: str
    family: str
    language: str
    title: str
    paragraphs: tuple[str, ...]


@dataclass(frozen=True)
class Doc:
    story: str
    variant: str
    url: str
    canonical: str | None
    text: str
    title: str | None = None
    """The headline the page shows (a re-post's is often changed)."""


def load_stories(*, shared: bool = True) -> list[Story]:
    data = json.loads(FIXTURE.read_text(encoding="utf-8"))
    stories = [
        Story(s["id"], s["family"], s["language"], s["title"], tuple(s["paragraphs"]))
        for s in data["stories"]
    ]
    if shared and SHARED.is_dir():
        for path in sorted(SHARED.glob("*.json")):
            body = json.loads(path.read_text(encoding="utf-8"))["articleBody"]
            paras = tuple(p.strip() for p in re.split(r"\n\s*\n|\n", body) if p.strip())
            if len(" ".join(paras).split()) < 60:
                continue  # too short to re-post as an article
            title = " ".join(paras[0].split()[:10])
            stories.append(Story(f"xb-{path.stem[:10]}", f"xb-{path.stem[:10]}", "", title, paras))
    return stories


def _slug(story: Story) -> str:
    return re.sub(r"[^a-z0-9]+", "-", story.id.lower()).strip("-")


def _sentences(paragraph: str) -> list[str]:
    return _SENTENCE_RE.split(paragraph)


def _small_edits(paras: list[str], rng: random.Random) -> list[str]:
    """A few words changed and one sentence cut: a copy editor's pass."""
    out = list(paras)
    done = 0
    for word, other in rng.sample(sorted(EDITS.items()), len(EDITS)):
        for i, p in enumerate(out):
            if word in p and done < 3:
                out[i] = p.replace(word, other, 1)
                done += 1
                break
    candidates = [i for i, p in enumerate(out) if len(_sentences(p)) > 1]
    if candidates:
        i = rng.choice(candidates)
        sents = _sentences(out[i])
        del sents[rng.randrange(len(sents))]
        out[i] = " ".join(sents)
    return out


def _retype(text: str) -> str:
    """Typographic noise: straight quotes, no-break spaces, doubled spaces."""
    text = text.replace("\u201c", '"').replace("\u201d", '"').replace("\u2019", "'")
    return text.replace(". ", ".\u00a0 ", 2)


def variants(story: Story, rng: random.Random) -> list[Doc]:
    """The original and several sightings of one story (each kind is drawn with a
    probability, so stories differ in how often and how they are re-posted)."""
    ko = story.language == "ko"
    site = rng.choice(["herald", "times", "daily", "post", "tribune"]) + "news"
    path = f"/{rng.choice(['world', 'nation', 'economy', 'asia'])}/2026/11/{_slug(story)}"
    url = f"https://www.{site}.com{path}"
    paras = list(story.paragraphs)
    text = "\n\n".join(paras)
    docs = [Doc(story.id, "original", url, url, text, story.title)]
    footers = FOOTERS_KO if ko else FOOTERS_EN
    words = story.title.split()
    headlines = {  # how re-posts show the headline
        "repost:title+footer": story.title.upper(),
        "repost:repeated-lede": "BREAKING: " + story.title,
        "repost:truncated": " ".join(words[: max(3, len(words) * 2 // 3)]) + " ...",
        "repost:reflowed": story.title + " (VIDEO)",
        "repost:edits+2-footers": story.title.lower(),
        "repost:intro+heavy-edits": "You will not believe what happened next",
        "repost:ads-between": "[UPDATED] " + story.title,
    }

    def add(variant: str, doc_url: str, body: list[str] | str, canonical: str | None = None):
        joined = body if isinstance(body, str) else "\n\n".join(body)
        title = headlines.get(variant, story.title)
        docs.append(Doc(story.id, variant, doc_url, canonical, joined, title))

    if rng.random() < 0.6:
        tracking = f"?utm_source=twitter&utm_medium=social&fbclid=Iw{rng.randrange(10**8)}"
        add("url:tracking", url + tracking, text, url)
    if rng.random() < 0.5:
        add("url:amp", f"https://amp.{site}.com{path}/amp/", _retype(text), url)
    if rng.random() < 0.4:
        add("url:www-slash-http", f"http://{site}.com{path}/", text, None)
    blog = rng.randrange(100)
    if rng.random() < 0.8:
        title = story.title.upper() if rng.random() < 0.5 else story.title.title()
        body = [title, *paras, *rng.choice(footers)]
        add("repost:title+footer", f"https://blog{blog}.example.net/{_slug(story)}.html", body)
    if rng.random() < 0.6:
        body = [rng.choice(HEADERS), paras[0], *paras, *rng.choice(footers)]
        add(
            "repost:repeated-lede",
            f"https://news-{blog}.example.org/p/{rng.randrange(10**6)}",
            body,
        )
    if rng.random() < 0.6:
        body = [*_small_edits(paras, rng), "Source: " + site]
        add("repost:small-edits", f"https://wire{blog}.example.com/s/{rng.randrange(10**6)}", body)
    if rng.random() < 0.4 and len(paras) >= 5:
        keep = max(3, round(len(paras) * 0.6))
        body = [*paras[:keep], "Read the full story at the source."]
        add("repost:truncated", f"https://digest{blog}.example.com/{_slug(story)}", body)
    if rng.random() < 0.4:
        extra = (
            "이 기사는 오후 3시 추가 정보를 반영해 업데이트됐다."
            if ko
            else "This story has been updated with additional details and comment."
        )
        body = [*paras, extra]
        add("update:added-paragraph", f"{url}-update", body, f"{url}-update")
    if rng.random() < 0.4:
        sents = [s for p in paras for s in _sentences(p)]
        body = [" ".join(sents[i : i + 3]) for i in range(0, len(sents), 3)]
        add("repost:reflowed", f"https://mirror{blog}.example.info/a/{_slug(story)}", body)
    if rng.random() < 0.3:
        body = [*_small_edits(paras, rng), *rng.choice(footers), *rng.choice(footers)]
        add("repost:edits+2-footers", f"https://aggr{blog}.example.biz/{_slug(story)}", body)
    if rng.random() < 0.3 and len(paras) >= 4:
        keep = max(2, round(len(paras) * 0.45))
        add("repost:first-half", f"https://brief{blog}.example.com/{_slug(story)}", paras[:keep])
    if rng.random() < 0.3:
        intro = INTROS_KO if ko else INTROS_EN
        body = [rng.choice(intro), *_small_edits(_small_edits(paras, rng), rng)]
        add("repost:intro+heavy-edits", f"https://views{blog}.example.net/{_slug(story)}", body)
    if rng.random() < 0.3:
        body = []
        for i, para in enumerate(paras):
            body.append(para)
            if i % 2 == 1:
                body.append(rng.choice(["ADVERTISEMENT", "Read also: " + rng.choice(OTHER_TITLES)]))
        add("repost:ads-between", f"https://feed{blog}.example.org/{_slug(story)}", body)
    return docs


def build_corpus(stories: list[Story], seed: int = SEED) -> list[Doc]:
    rng = random.Random(seed)
    docs = [d for s in stories for d in variants(s, random.Random(f"{seed}:{s.id}"))]
    rng.shuffle(docs)  # a re-post may well be seen before the original
    return docs


# -- running the dedupe over a corpus ------------------------------------------------------------
class MemoryIndex:
    """The ``StoryIndex`` protocol over dicts (for the parameter sweep only)."""

    def __init__(self) -> None:
        self.keys: dict[str, int] = {}
        self.hashes: dict[str, int] = {}
        self.bands: dict[int, list[int]] = defaultdict(list)
        self.texts: dict[int, str] = {}
        self.titles: dict[int, str | None] = {}

    def story_for_keys(self, keys):
        return next((self.keys[k] for k in keys if k in self.keys), None)

    def story_for_text_hash(self, text_hash):
        return self.hashes.get(text_hash)

    def story_candidates(self, band_keys, *, limit):
        hits = Counter(a for k in set(band_keys) for a in self.bands.get(k, ()))
        return [a for a, _ in sorted(hits.items(), key=lambda t: (-t[1], t[0]))[:limit]]

    def story_text(self, article_id):
        return self.texts.get(article_id)

    def story_title(self, article_id):
        return self.titles.get(article_id)

    def add(self, fp, keys, text, doc=None) -> int:
        aid = len(self.texts) + 1
        self.texts[aid] = text
        self.titles[aid] = doc.title if doc is not None else None
        self.hashes.setdefault(fp.text_hash, aid)
        for k in fp.band_keys:
            self.bands[k].append(aid)
        self.link(keys, aid)
        return aid

    def link(self, keys, aid) -> None:
        for k in keys:
            self.keys.setdefault(k, aid)


class ArchiveIndex:
    """Runs the corpus through the SQLite archive, as the pipeline and store steps do."""

    def __init__(self, connection: Connection) -> None:
        self.index = SqliteStoryIndex(connection)
        self.articles = SqliteArticles(connection)

    def __getattr__(self, name):
        return getattr(self.index, name)

    def add(self, fp, keys, text, doc: Doc) -> int:
        self.index.stage(doc.url, list(fp.band_keys))
        return self.articles.insert(
            {
                "url": doc.url,
                "canonical_url": doc.canonical,
                "title": doc.title,
                "text": text,
                "text_hash": fp.text_hash,
            }
        )

    def link(self, doc: Doc, verdict) -> None:
        self.articles.insert_duplicate(
            {
                "url": doc.url,
                "canonical_url": doc.canonical,
                "duplicate_of": verdict.article_id,
                "duplicate_kind": verdict.kind,
                "similarity": verdict.similarity,
            }
        )


def run(
    docs: list[Doc], config: DedupeConfig, index, memo=None, verdicts=None
) -> list[tuple[int, str]]:
    """``(root article id, kind)`` of every doc in order (``new`` for first sightings);
    ``memo`` keeps fingerprints between runs with the same index parameters; ``verdicts``
    collects every verdict."""
    out = []
    for i, doc in enumerate(docs):
        if memo is None:
            fp = fingerprint(doc.text, config, title=doc.title)
        elif (fp := memo.get(i)) is None:
            fp = memo[i] = fingerprint(doc.text, config, title=doc.title)
        keys = url_keys(doc.url, doc.canonical)
        verdict = find_duplicate(fp, keys, index, config)
        if verdicts is not None:
            verdicts.append(verdict)
        if verdict is None:
            aid = index.add(fp, keys, doc.text, doc)
            out.append((aid, "new"))
        else:
            if isinstance(index, ArchiveIndex):
                index.link(doc, verdict)
            else:
                index.link(keys, verdict.article_id)
            out.append((verdict.article_id, verdict.kind))
    return out


@dataclass
class Score:
    tp: int
    fp: int
    fn: int
    merged_stories: int
    """Distinct story pairs with at least one doc linked across them."""

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def score(docs: list[Doc], roots: list[tuple[int, str]]) -> Score:
    tp = fp = fn = 0
    merged: set[tuple[str, str]] = set()
    for (i, a), (j, b) in itertools.combinations(enumerate(docs), 2):
        same_true = a.story == b.story
        same_pred = roots[i][0] == roots[j][0]
        if same_true and same_pred:
            tp += 1
        elif same_pred:
            fp += 1
            merged.add(tuple(sorted((a.story, b.story))))
        elif same_true:
            fn += 1
    return Score(tp, fp, fn, len(merged))


def hard_pairs(stories: list[Story], config: DedupeConfig, top: int = 12) -> list[tuple]:
    """Distinct story pairs that share the most: the same family (fixture) or the highest
    shingle overlap (shared corpus), with their Jaccard and containment."""
    sets = {s.id: shingles(tokens("\n\n".join(s.paragraphs)), config.shingle_size) for s in stories}
    family = {s.id: s.family for s in stories}
    pairs = []
    for a, b in itertools.combinations(sets, 2):
        sim = similarity(sets[a], sets[b])
        pairs.append((sim.jaccard, sim.containment, a, b, family[a] == family[b]))
    pairs.sort(reverse=True)
    same_family = [p for p in pairs if p[4]]
    return sorted(set(pairs[:top]) | set(same_family), reverse=True)


# -- reports ------------------------------------------------------------------------------------
def report_quality(stories: list[Story], docs: list[Doc], config: DedupeConfig) -> Score:
    with tempfile.TemporaryDirectory() as tmp:
        connection = Connection.acquire(Path(tmp) / "bench.db")
        index = ArchiveIndex(connection)
        index.reset(config.index_params)
        started = time.perf_counter()
        verdicts: list = []
        roots = run(docs, config, index, verdicts=verdicts)
        elapsed = time.perf_counter() - started
        connection.release()
    result = score(docs, roots)
    n_ko = sum(1 for s in stories if s.language == "ko")
    print(f"corpus: {len(stories)} stories ({n_ko} Korean), {len(docs)} pages; ", end="")
    print(f"{len(docs) - len(stories)} later sightings")
    print(
        f"config: shingle_size={config.shingle_size} num_perm={config.num_perm} "
        f"bands={config.bands} (rows {config.rows}) near_threshold={config.near_threshold} "
        f"containment={config.containment_threshold} (min {config.containment_min_shingles} "
        f"shingles) max_candidates={config.max_candidates} seed={config.seed}"
    )
    print(f"dedupe of {len(docs)} pages through SQLite: {elapsed:.2f} s")
    print()
    print("same-story links (pairwise over all pages):")
    print(f"  TP {result.tp}  FP {result.fp}  FN {result.fn}")
    print(f"  precision {result.precision:.4f}  recall {result.recall:.4f}  F1 {result.f1:.4f}")
    print(f"  distinct stories merged: {result.merged_stories}")
    weakest = [
        (v.similarity, v.containment) for v in verdicts if v is not None and v.kind == "near"
    ]
    if weakest:
        print(
            f"  weakest near-duplicate links found: Jaccard {min(w[0] for w in weakest):.3f}, "
            f"containment {min(w[1] for w in weakest):.3f}"
        )
    print()
    first = {}
    by_variant: dict[str, Counter] = defaultdict(Counter)
    story_of_root = {}
    for doc, (root, kind) in zip(docs, roots, strict=True):
        if kind == "new":
            story_of_root[root] = doc.story
    for doc, (root, kind) in zip(docs, roots, strict=True):
        c = by_variant[doc.variant]
        c["n"] += 1
        if kind == "new":
            ok = doc.story not in first
            first.setdefault(doc.story, root)
        else:
            ok = story_of_root.get(root) == doc.story
        c["ok" if ok else "wrong"] += 1
        c[kind] += 1
    print(f"  {'variant':<26} {'pages':>5} {'right':>6}  verdicts")
    for variant in sorted(by_variant):
        c = by_variant[variant]
        kinds = ", ".join(f"{k} {c[k]}" for k in ("new", "url", "exact", "near") if c[k])
        print(f"  {variant:<26} {c['n']:>5} {c['ok']:>6}  {kinds}")
    print()
    by_story = {s.id: s for s in stories}
    root_story = {}
    for doc, (root, _) in zip(docs, roots, strict=True):
        root_story.setdefault(root, set()).add(doc.story)
    print("hardest distinct pairs (same topic or most shared shingles): kept apart?")
    for jac, cont, a, b, fam in hard_pairs(stories, config):
        together = any({a, b} <= members for members in root_story.values())
        label = by_story[a].family if fam else "-"
        print(
            f"  {'MERGED' if together else 'apart ':<6} J={jac:.3f} C={cont:.3f} {a} / {b}"
            f"{'  [' + label + ']' if fam else ''}"
        )
    return result


def sweep(docs: list[Doc], base: DedupeConfig) -> None:
    """F1 and merged story pairs over a grid of parameters (in-memory index)."""
    print("parameter sweep (in-memory index; F1/distinct story pairs merged):")
    grid_lsh = [(4, 128, 16), (4, 128, 32), (4, 128, 64), (3, 120, 40), (4, 120, 40), (5, 120, 40)]
    thresholds = [0.3, 0.4, 0.5, 0.6]
    containments = [0.6, 0.7, 0.8, None]
    print(f"  {'':<44}" + "".join(f"C>={c if c else 'off':<4} " for c in containments))
    for (k, perm, bands), anchors in itertools.product(grid_lsh, (0, 3)):
        fps: dict[int, object] = {}
        for near in thresholds:
            cells = []
            for cont in containments:
                config = replace(
                    base,
                    shingle_size=k,
                    num_perm=perm,
                    bands=bands,
                    anchors=anchors,
                    near_threshold=near,
                    containment_threshold=cont or 1.0,
                    containment_min_shingles=base.containment_min_shingles if cont else 10**9,
                )
                result = score(docs, run(docs, config, MemoryIndex(), fps))
                cells.append(f"{result.f1:.4f}/{result.merged_stories}")
            label = f"k={k} perm={perm} bands={bands} anchors={anchors} J>={near}"
            print(f"  {label:<44}" + " ".join(cells))


# -- memory and speed of the persisted index ---------------------------------------------------
def synthetic_text(rng: random.Random, vocab: list[str], weights: list[float], n: int) -> str:
    words = rng.choices(vocab, weights=weights, k=n)
    sentences = [" ".join(words[i : i + 15]).capitalize() + "." for i in range(0, n, 15)]
    return " ".join(sentences)


def report_memory(n_stories: int, config: DedupeConfig, queries: int = 1000) -> None:
    rss_start = peak_rss_mb()  # the interpreter with Scrapy, numpy and datasketch loaded
    rng = random.Random(SEED)
    syllables = ["ka", "ri", "mo", "tan", "sel", "vu", "pe", "lon", "dri", "ak", "zo", "nem"]
    vocab = sorted({"".join(rng.choices(syllables, k=rng.randint(1, 4))) for _ in range(60_000)})
    weights = [1 / (i + 1) for i in range(len(vocab))]  # Zipf-like word frequencies
    with tempfile.TemporaryDirectory() as tmp:
        db_path = Path(tmp) / "memory.db"
        connection = Connection.acquire(db_path, batch_size=2000, flush_interval=30.0)
        index = ArchiveIndex(connection)
        index.reset(config.index_params)
        started = time.perf_counter()
        dupes_found = 0
        stored_texts: list[str] = []
        for i in range(n_stories):
            text = synthetic_text(rng, vocab, weights, rng.randint(120, 260))
            fp = fingerprint(text, config)
            doc = Doc(f"s{i}", "synthetic", f"https://site{i % 97}.example/{i}", None, text)
            if find_duplicate(fp, [], index.index, config) is not None:
                dupes_found += 1
                continue
            index.add(fp, [], text, doc)
            if i % 100 == 0:
                stored_texts.append(text)
        connection.flush()
        load_time = time.perf_counter() - started
        rss_after_load = peak_rss_mb()
        # Lookups: half near-duplicates of stored stories (edited, with junk), half new.
        lookups = []
        for q in range(queries):
            if q % 2 == 0:
                base = rng.choice(stored_texts)
                words = base.split()
                for _ in range(5):
                    words[rng.randrange(len(words))] = rng.choice(vocab)
                text = " ".join(words) + " " + " ".join(FOOTERS_EN[q % len(FOOTERS_EN)])
                lookups.append((True, text))
            else:
                lookups.append((False, synthetic_text(rng, vocab, weights, 200)))
        timings = []
        found = wrong = 0
        for expect, text in lookups:
            t0 = time.perf_counter()
            verdict = find_duplicate(fingerprint(text, config), [], index.index, config)
            timings.append(time.perf_counter() - t0)
            if expect and verdict is not None:
                found += 1
            if not expect and verdict is not None:
                wrong += 1
        size = db_path.stat().st_size + sum(p.stat().st_size for p in Path(tmp).glob("memory.db-*"))
        band_rows = index.size()
        band_bytes = index.disk_bytes()
        connection.release()
    timings.sort()
    stored = n_stories - dupes_found
    print(f"persisted LSH index: {stored} synthetic stories stored in {load_time:.1f} s ")
    print(f"  ({load_time / n_stories * 1000:.2f} ms per story: fingerprint + lookup + insert)")
    print(f"  lsh_bands rows: {band_rows} ({band_rows / max(stored, 1):.0f} per story)", end="")
    if band_bytes:
        print(f", {band_bytes / 2**20:.1f} MB ({band_bytes / max(stored, 1):.0f} B per story)")
    else:
        print()
    print(f"  database file: {size / 2**20:.1f} MB (texts included)")
    print(
        f"  {queries} lookups: mean {sum(timings) / len(timings) * 1000:.2f} ms, "
        f"p95 {timings[int(len(timings) * 0.95)] * 1000:.2f} ms, "
        f"max {timings[-1] * 1000:.2f} ms"
    )
    print(
        f"  near-duplicates found {found}/{queries // 2}, "
        f"new stories wrongly matched {wrong}/{queries - queries // 2}"
    )
    rss = peak_rss_mb()
    print(
        f"  peak RSS {rss:.0f} MB (imports alone {rss_start:.0f} MB, after loading "
        f"{rss_after_load:.0f} MB)"
    )
    per_story = (band_bytes or 0) / max(stored, 1)
    if per_story:
        print(
            f"  at 1 million stories the index would take about "
            f"{per_story * 1e6 / 2**30:.2f} GB on disk; memory does not grow with it"
        )


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MB: VmHWM on Linux (``ru_maxrss`` would
    include the parent's memory at fork time), else ``ru_maxrss``."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sweep", action="store_true", help="also sweep the parameters")
    parser.add_argument("--stories", type=int, default=100_000, help="synthetic stories")
    parser.add_argument("--no-shared", action="store_true", help="fixture stories only")
    parser.add_argument("--memory-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    config = DedupeConfig()
    if args.memory_only:
        report_memory(args.stories, config)
        return
    stories = load_stories(shared=not args.no_shared)
    docs = build_corpus(stories)
    report_quality(stories, docs, config)
    if args.sweep:
        print()
        sweep(docs, config)
    print()
    sys.stdout.flush()
    # A fresh process, so that its peak RSS is the index's alone.
    subprocess.run(
        [sys.executable, __file__, "--memory-only", "--stories", str(args.stories)], check=True
    )


if __name__ == "__main__":
    main()
