"""Dedupe: the pure core (normalisation, shingles, MinHash bands, verdicts) on hand-written news
stories, and the pipeline with the archive (fields, stats, versions, index rebuild)."""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from scrapy.exceptions import NotConfigured
from scrapy.settings import Settings
from scrapy.utils.misc import build_from_crawler
from scrapy.utils.test import get_crawler

from crawler.items import ArticleItem
from crawler.storage.articles import SqliteArticles
from crawler.storage.index import SqliteStoryIndex
from crawler.urls import url_keys
from pipelines.dedupe import (
    DedupeConfig,
    DedupePipeline,
    Similarity,
    comparison_text,
    find_duplicate,
    fingerprint,
    same_story,
    shingles,
    similarity,
    text_hash,
    tokens,
)
from pipelines.store import StorePipeline
from tests.conftest import FIXTURES, ROOT, rows

STORIES = {
    s["id"]: s
    for s in json.loads((FIXTURES / "dedupe" / "stories.json").read_text(encoding="utf-8"))[
        "stories"
    ]
}
CONFIG = DedupeConfig()
SPAM = [
    "Post a Comment",
    "Comment in the comment section if any Download link Is not working",
    "Previous Post Next Post",
    "Join Us On Telegram To Get Live Updates",
]
SPAM_KO = ["무단전재 및 재배포 금지", "기자 구독하기", "네이버 메인에서 채널 구독하기"]


def text(story_id: str) -> str:
    return "\n\n".join(STORIES[story_id]["paragraphs"])


def repost(story_id: str) -> str:
    """A re-post blog's copy: title in capitals on top, the lede twice, a word changed,
    the blog's spam at the bottom."""
    story = STORIES[story_id]
    paras = list(story["paragraphs"])
    paras[2] = paras[2].replace("said", "stated", 1).replace("밝혔다", "전했다", 1)
    spam = SPAM_KO if story["language"] == "ko" else SPAM
    return "\n\n".join([story["title"].upper(), paras[0], *paras, *spam])


def sim(a: str, b: str, config: DedupeConfig = CONFIG):
    k = config.shingle_size
    return similarity(shingles(tokens(a), k), shingles(tokens(b), k))


# -- pure functions ----------------------------------------------------------------------------
def test_tokens_fold_case_width_and_punctuation():
    assert tokens("North Korea's “KN-23”\u00a0missile, \uff33\uff45\uff4f\uff55\uff4c said.") == [
        "north", "korea", "s", "kn", "23", "missile", "seoul", "said",
    ]  # fmt: skip
    # Hangul stays in words (eojeol); Han and kana are written without spaces: characters.
    assert tokens("북한이 26일 미사일을 발사했다") == ["북한이", "26일", "미사일을", "발사했다"]
    assert tokens("北朝鮮がミサイル") == ["北", "朝", "鮮", "が", "ミ", "サ", "イ", "ル"]


def test_text_hash_ignores_typography_and_line_breaks():
    original = text("nk-srbm-east-sea")
    retyped = original.replace("'", "\u2019").replace(". ", ".\u00a0\n", 3).upper()
    assert comparison_text(original) == comparison_text(retyped)
    assert text_hash(original) == text_hash(retyped)
    assert text_hash(original) != text_hash(original.replace("600", "650"))
    assert len(text_hash("x")) == 40


def test_shingles_of_short_and_empty_texts():
    assert shingles([], 4) == frozenset()
    assert len(shingles(["a", "b"], 4)) == 1
    assert len(shingles(["a", "b", "c", "d", "e"], 4)) == 2


def _scalar_shingles(words: list[str], size: int) -> frozenset[int]:
    """The shingle hashes ``shingles`` vectorises, one shingle at a time in plain Python."""
    mask = 2**64 - 1

    def fmix(v: int) -> int:
        v ^= v >> 33
        v = (v * 0xFF51AFD7ED558CCD) & mask
        v ^= v >> 33
        v = (v * 0xC4CEB9FE1A85EC53) & mask
        return v ^ (v >> 33)

    def word(w: str) -> int:
        acc = 0
        for ch in w:
            acc = ((acc + ord(ch)) * 0x100000001B3) & mask
        return fmix(acc)

    width = min(size, len(words))
    out = set()
    for start in range(len(words) - width + 1):
        acc = 0
        for w in words[start : start + width]:
            acc = (acc * 0x9E3779B97F4A7C15 + word(w)) & mask
        out.add(fmix(acc) >> 32)
    return frozenset(out)


def test_shingle_hashes_do_not_depend_on_the_other_words():
    # numpy hashes every word in one array as wide as the longest word; a word longer than
    # the vectorised width is hashed in Python: each must give the word's own hash
    long_word = "pneumonoultramicroscopicsilicovolcanoconiosis"
    words = [*tokens(text("ko-srbm-east-sea"))[:30], long_word, "a", "ab", "한국", "x" * 33]
    assert shingles(words, 4) == _scalar_shingles(words, 4)
    assert shingles(words[:3], 4) == _scalar_shingles(words[:3], 4)
    assert shingles(["a", "ab"], 4) == shingles(["a", "ab"], 2)  # a short text: one shingle
    assert len(shingles(words, 4)) == len(words) - 3


@pytest.mark.parametrize("story_id", ["nk-srbm-east-sea", "kospi-close-up", "ko-srbm-east-sea"])
def test_repost_with_spam_is_the_same_story(story_id):
    s = sim(text(story_id), repost(story_id))
    assert s.jaccard >= CONFIG.near_threshold, s
    assert same_story(s, CONFIG)


def test_partial_copy_is_the_same_story_by_containment():
    paras = STORIES["nk-cruise-yellow-sea"]["paragraphs"]
    teaser = "\n\n".join([*paras[:2], "Read the full story at the source."])
    s = sim(text("nk-cruise-yellow-sea"), teaser)
    assert s.jaccard < CONFIG.near_threshold
    assert s.containment >= CONFIG.containment_threshold
    assert same_story(s, CONFIG)


def test_a_short_brief_inside_a_long_story_is_not_judged_by_containment():
    brief = STORIES["nk-srbm-east-sea"]["paragraphs"][0]
    s = sim(text("nk-srbm-east-sea"), brief)
    assert s.containment == 1.0
    assert s.smaller < CONFIG.containment_min_shingles
    assert not same_story(s, CONFIG)


@pytest.mark.parametrize("near", [0.5, 0.8, 0.95])
def test_headlines_that_agree_only_ever_widen_the_verdict(near):
    """``find_duplicate`` reads the headlines and ledes of a candidate only when its words
    would make it the same story if they agreed: no other answer of theirs may accept
    words that agreeing ones reject."""
    config = replace(CONFIG, near_threshold=near)
    steps = [i / 20 for i in range(21)]
    for jaccard, containment in itertools.product(steps, steps):
        if containment < jaccard:
            continue  # the shared part of the shorter text is never below the Jaccard
        for smaller in (10, 99, 100, 5000):
            s = Similarity(jaccard, containment, smaller)
            for agree in (None, False):
                if same_story(s, config, agree):
                    assert same_story(s, config, True), (s, agree)


def test_distinct_stories_on_one_topic_stay_apart():
    """Every pair of one family: two missile launches a week apart told with the same
    agency boilerplate, launches of one day, two days of market reports, in English and
    Korean."""
    families: dict[str, list[str]] = {}
    for story_id, story in STORIES.items():
        families.setdefault(story["family"], []).append(story_id)
    checked = 0
    for members in families.values():
        for a, b in itertools.combinations(members, 2):
            s = sim(text(a), text(b))
            assert not same_story(s, CONFIG), (a, b, s)
            checked += 1
    assert checked >= 12
    template = sim(text("nk-srbm-east-sea"), text("nk-srbm-east-sea-next-week"))
    assert 0.15 < template.jaccard < CONFIG.near_threshold  # shared boilerplate, not a copy


def test_fingerprint_is_deterministic_across_processes():
    fp = fingerprint(text("ko-srbm-east-sea"), CONFIG)
    assert len(fp.band_keys) == CONFIG.bands + CONFIG.anchors
    assert all(0 <= k < 2**47 for k in fp.band_keys)
    code = (
        "import json, sys; from pipelines.dedupe import DedupeConfig, fingerprint; "
        "print(json.dumps(fingerprint(sys.stdin.read(), DedupeConfig()).band_keys))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        input=text("ko-srbm-east-sea"),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PYTHONHASHSEED": "random", "PATH": ""},
        check=True,
    )
    assert tuple(json.loads(out.stdout)) == fp.band_keys


def test_empty_text_has_no_index_keys():
    fp = fingerprint("", CONFIG)
    assert fp.shingles == frozenset()
    assert fp.band_keys == ()


def test_config_from_settings_and_validation():
    config = DedupeConfig.from_settings(
        Settings({"DEDUPE_NEAR_THRESHOLD": "0.6", "DEDUPE_BANDS": 20, "DEDUPE_NUM_PERM": 100})
    )
    assert (config.near_threshold, config.bands, config.rows) == (0.6, 20, 5)
    with pytest.raises(ValueError, match="multiple of DEDUPE_BANDS"):
        DedupeConfig.from_settings(Settings({"DEDUPE_NUM_PERM": 100, "DEDUPE_BANDS": 30}))
    with pytest.raises(ValueError, match="DEDUPE_NEAR_THRESHOLD"):
        DedupeConfig(near_threshold=1.5)
    assert replace(CONFIG, seed=2).index_params != CONFIG.index_params
    assert replace(CONFIG, near_threshold=0.9).index_params == CONFIG.index_params


# -- find_duplicate against the archive ---------------------------------------------------------
@pytest.fixture
def archive(tmp_path):
    archive = SqliteStoryIndex.acquire(tmp_path / "news.db")
    archive.reset(CONFIG.index_params)
    yield archive
    archive.release()


def _store(archive: SqliteStoryIndex, url: str, body: str) -> int:
    fp = fingerprint(body, CONFIG)
    archive.stage(url, list(fp.band_keys))
    articles = SqliteArticles(archive.connection)
    return articles.insert({"url": url, "text": body, "text_hash": fp.text_hash})


def _find(archive: SqliteStoryIndex, url: str, body: str):
    return find_duplicate(fingerprint(body, CONFIG), url_keys(url), archive, CONFIG)


def test_find_duplicate_kinds(archive):
    ids = {sid: _store(archive, f"https://herald.example/{sid}", text(sid)) for sid in STORIES}
    verdict = _find(archive, "https://blog.example/copy", repost("nk-srbm-east-sea"))
    assert (verdict.kind, verdict.article_id) == ("near", ids["nk-srbm-east-sea"])
    assert CONFIG.near_threshold <= verdict.similarity < 1
    verdict = _find(archive, "https://blog.example/ko", repost("ko-cruise-yellow-sea"))
    assert (verdict.kind, verdict.article_id) == ("near", ids["ko-cruise-yellow-sea"])
    reflowed = text("exports-october").replace("\n\n", " ").replace("'", "\u2019")
    verdict = _find(archive, "https://mirror.example/x", reflowed)
    assert (verdict.kind, verdict.article_id, verdict.similarity) == (
        "exact", ids["exports-october"], 1.0,
    )  # fmt: skip
    verdict = _find(archive, "http://herald.example/samsung-q3/", text("samsung-q3"))
    assert (verdict.kind, verdict.article_id) == ("url", ids["samsung-q3"])
    fresh = (
        "Heavy snow fell across Gangwon Province on Saturday, cutting off mountain roads and "
        "delaying flights at Yangyang airport, as the first cold wave of the season arrived. "
        "Forecasters said up to 30 centimetres could accumulate in higher areas by Sunday."
    )
    assert _find(archive, "https://herald.example/snow", fresh) is None


# -- short stories: the headline and the lede as evidence -------------------------------------------
BRIEF = (
    "South Korea's central bank kept its policy rate at 3.5 percent on Thursday, citing "
    "slowing inflation and weak household spending."
)
OTHER_BRIEF = (
    "Hyundai Motor will build a battery plant in Ulsan with an investment of two trillion "
    "won, the company said in a regulatory filing."
)
LEFTOVER = (
    "Our desk republishes agency copy around the clock; banners may open a second window, "
    "and closing it brings you straight back to the story you were reading on this page. "
    "Readers keep this page going with small gifts every month."
)


def test_a_short_copy_with_a_changed_headline_and_extra_blocks_joins_its_story(crawl):
    c = crawl()
    c.run("https://wire.example/rates", BRIEF, title="Bank of Korea holds rates")
    stored = c.store.articles.id_for_url("https://wire.example/rates")
    copy = c.run(
        "https://blog.example/rates-2",
        f"{BRIEF}\n\n{LEFTOVER}",
        title="BREAKING: BANK OF KOREA HOLDS RATES (VIDEO)",
    )
    assert (copy.duplicate_of, copy.duplicate_kind) == (stored, "near")
    # the lede used as the headline is evidence too
    lede_title = c.run("https://blog.example/rates-3", f"{LEFTOVER}\n\n{BRIEF}", title=BRIEF)
    assert lede_title.duplicate_of == stored
    # without headlines, the words alone decide: the brief is too short to be judged by
    # containment, and the copy too far from it
    sim = similarity(fingerprint(BRIEF, CONFIG).shingles, fingerprint(copy.text, CONFIG).shingles)
    assert not same_story(sim, CONFIG)
    c.close()


def test_two_short_stories_sharing_junk_stay_apart(crawl):
    c = crawl()
    c.run("https://blog.example/rates", f"{BRIEF}\n\n{LEFTOVER}", title="Bank of Korea holds rates")
    other = c.run(
        "https://blog.example/battery",
        f"{OTHER_BRIEF}\n\n{LEFTOVER}",
        title="Hyundai to build battery plant in Ulsan",
    )
    assert other.duplicate_of is None
    # the shared block alone would make them one story to the words
    a = fingerprint(f"{BRIEF}\n\n{LEFTOVER}", CONFIG).shingles
    b = fingerprint(f"{OTHER_BRIEF}\n\n{LEFTOVER}", CONFIG).shingles
    assert same_story(similarity(a, b), CONFIG)
    c.close()


def test_an_edited_short_copy_under_another_headline_joins_its_story(crawl):
    c = crawl()
    story = (
        f"{BRIEF}\n\nThe bank also cut its growth forecast for next year to 1.9 percent.\n\n"
        "Economists had expected the decision, and most of them see a cut in the spring."
    )
    c.run("https://wire.example/rates", story, title="Bank of Korea holds rates")
    stored = c.store.articles.id_for_url("https://wire.example/rates")
    edited = story.replace("kept its policy rate", "left its key policy rate unchanged")
    edited = edited.replace("citing slowing", "pointing to slower")
    copy = c.run(
        "https://blog.example/you-wont-believe",
        f"{edited}\n\nShare this story with your friends.",
        title="You will not believe what the central bank did",
    )
    # the headlines and ledes disagree, but the lines the texts differ in still overlap
    assert (copy.duplicate_of, copy.duplicate_kind) == (stored, "near")
    c.close()


def test_empty_texts_never_match(crawl):
    c = crawl()
    c.run("https://blog.example/a", "", title="Photo gallery")
    c.run("https://blog.example/b", "… ✨", title="Photo gallery")
    blank = c.run("https://blog.example/c", "", title="Photo gallery")
    assert blank.duplicate_of is None
    assert blank.text_hash is None
    assert fingerprint("… ✨", CONFIG).text_hash is None
    c.close()


# -- the pipeline --------------------------------------------------------------------------------
@pytest.fixture
def crawl(tmp_path):
    """Dedupe and store steps of one crawler on a fresh archive: ``crawl.run(item)``."""

    class Crawl:
        def __init__(self, settings=None):
            self.crawler = get_crawler(
                settings_dict={"DB_PATH": str(tmp_path / "news.db"), **(settings or {})}
            )
            self.dedupe = build_from_crawler(DedupePipeline, self.crawler)
            self.store = build_from_crawler(StorePipeline, self.crawler)
            self.dedupe.open_spider()
            self.store.open_spider()

        def run(self, url: str, body: str, **fields) -> ArticleItem:
            item = ArticleItem(url=url, text=body, site="test", **fields)
            stored = self.store.process_item(self.dedupe.process_item(item))
            self.dedupe.item_done(stored)  # the item_scraped signal: it left the pipeline
            return stored

        def stat(self, name: str) -> int | None:
            return self.crawler.stats.get_value(name)

        def close(self):
            self.store.close_spider()
            self.dedupe.close_spider()

    crawls = []

    def make(settings=None):
        crawls.append(Crawl(settings))
        return crawls[-1]

    yield make
    for c in crawls:
        if c.dedupe.index is not None:
            c.close()


def test_a_copy_judged_while_its_story_is_in_flight_waits_for_it(crawl):
    # the first copy was found new and is still on its way to the store step (a later step
    # waits on the worker pool) when the second one reaches the dedupe step
    c = crawl()
    first = c.dedupe.process_item(
        ArticleItem(url="https://herald.example/a/1", text=text("nk-srbm-east-sea"), site="t")
    )
    assert first.duplicate_kind is None
    second = c.dedupe.process_item(
        ArticleItem(url="https://mirror.example/1", text=text("nk-srbm-east-sea"), site="t")
    )
    unrelated = c.dedupe.process_item(
        ArticleItem(url="https://herald.example/a/2", text=text("kospi-close-up"), site="t")
    )
    assert unrelated.duplicate_kind is None  # nothing in flight shares its keys: judged now

    async def land_then_judge():
        waiting = asyncio.ensure_future(second)
        await asyncio.sleep(0.05)
        assert not waiting.done()  # it waits while the first copy is in flight
        c.dedupe.item_done(c.store.process_item(first))
        return await waiting

    judged = asyncio.run(land_then_judge())
    assert (judged.duplicate_kind, judged.duplicate_of) == ("exact", 1)
    assert c.stat("dedupe/waited") == 1
    # a story still in flight when its crawl closes holds no later crawl up
    c.dedupe.process_item(
        ArticleItem(url="https://herald.example/a/3", text=text("kospi-close-down"), site="t")
    )
    c.close()
    later = crawl()
    copy = later.dedupe.process_item(
        ArticleItem(url="https://mirror.example/3", text=text("kospi-close-down"), site="t")
    )
    assert copy.duplicate_kind is None  # judged at once (the first copy was never stored)


def test_pipeline_marks_sightings_and_counts_them(crawl, tmp_path):
    c = crawl()
    first = c.run("https://herald.example/a/nk-missile", text("nk-srbm-east-sea"))
    assert first.duplicate_kind is None
    assert first.text_hash == text_hash(text("nk-srbm-east-sea"))
    c.run("https://herald.example/a/kospi", text("kospi-close-up"))
    same_url = c.run(
        "https://www.herald.example/a/nk-missile/?utm_source=twitter", text("nk-srbm-east-sea")
    )
    exact = c.run("https://mirror.example/1", text("nk-srbm-east-sea").replace("\n\n", "\n"))
    near = c.run("https://blog.example/nk", repost("nk-srbm-east-sea"))
    other_day = c.run("https://herald.example/a/kospi-2", text("kospi-close-down"))
    assert (same_url.duplicate_kind, same_url.duplicate_of, same_url.similarity) == ("url", 1, 1.0)
    assert (exact.duplicate_kind, exact.duplicate_of, exact.similarity) == ("exact", 1, 1.0)
    assert (near.duplicate_kind, near.duplicate_of) == ("near", 1)
    assert 0.5 <= near.similarity < 1
    assert other_day.duplicate_kind is None
    c.close()
    stats = {k: c.stat(f"dedupe/{k}") for k in ("new", "url", "exact", "near", "version")}
    assert stats == {"new": 3, "url": 1, "exact": 1, "near": 1, "version": None}
    db = tmp_path / "news.db"
    assert [r["url"] for r in rows(db, "SELECT url FROM articles ORDER BY id")] == [
        "https://herald.example/a/nk-missile",
        "https://herald.example/a/kospi",
        "https://herald.example/a/kospi-2",
    ]
    dupes = rows(db, "SELECT url, article_id, kind, similarity FROM duplicates ORDER BY id")
    assert [(d["kind"], d["article_id"]) for d in dupes] == [("url", 1), ("exact", 1), ("near", 1)]
    assert c.stat("store/duplicates") == 3


def test_revisited_url_with_changed_text_is_kept_as_a_version(crawl, tmp_path):
    c = crawl()
    url = "https://herald.example/a/nk-missile"
    c.run(url, text("nk-srbm-east-sea"))
    c.run(url, text("nk-srbm-east-sea"))  # unchanged: a sighting, no version
    updated = text("nk-srbm-east-sea") + "\n\nThe launch was the 20th this year, officials said."
    item = c.run(url, updated, title="Updated")
    assert item.duplicate_kind == "url"
    assert 0.8 < item.similarity < 1
    c.run(url, updated)  # the same update again: no second version
    blog = "https://blog.example/nk"
    assert c.run(blog, repost("nk-srbm-east-sea")).duplicate_kind == "near"
    # The copy's URL is known now, but its text was never stored: no version of the story.
    again = c.run(blog, repost("nk-srbm-east-sea") + "\n\nShare this post!")
    assert (again.duplicate_kind, again.duplicate_of) == ("url", 1)
    c.close()
    versions = rows(tmp_path / "news.db", "SELECT * FROM article_versions")
    assert [(v["article_id"], v["url"], v["title"]) for v in versions] == [(1, url, "Updated")]
    assert versions[0]["text"] == updated
    assert rows(tmp_path / "news.db", "SELECT text FROM articles")[0]["text"] == text(
        "nk-srbm-east-sea"
    )
    assert c.stat("dedupe/version") == 1
    assert c.stat("dedupe/url") == 4


def test_index_is_rebuilt_when_its_parameters_change(crawl, tmp_path):
    c = crawl()
    c.run("https://herald.example/ko", text("ko-srbm-east-sea"))
    c.close()
    c = crawl({"DEDUPE_SHINGLE_SIZE": 3, "DEDUPE_NUM_PERM": 128, "DEDUPE_BANDS": 32})
    params = json.loads(c.dedupe.index.params())
    assert (params["shingle_size"], params["num_perm"], params["bands"]) == (3, 128, 32)
    near = c.run("https://blog.example/ko", repost("ko-srbm-east-sea"))
    assert (near.duplicate_kind, near.duplicate_of) == ("near", 1)
    c.close()
    n = rows(tmp_path / "news.db", "SELECT COUNT(*) n FROM lsh_bands")[0]["n"]
    assert n == 32 + 3


def test_two_pipelines_of_one_process_share_their_stories(crawl, tmp_path):
    """Two spiders of one process: the second sees the first's uncommitted story."""
    a, b = crawl(), crawl()
    assert a.dedupe.index.connection is b.dedupe.index.connection
    a.run("https://herald.example/nk", text("nk-cruise-yellow-sea"))
    item = b.run("https://blog.example/nk", repost("nk-cruise-yellow-sea"))
    assert (item.duplicate_kind, item.duplicate_of) == ("near", 1)
    a.close()
    b.close()
    assert rows(tmp_path / "news.db", "SELECT COUNT(*) n FROM articles")[0]["n"] == 1


def test_not_configured_when_disabled(tmp_path):
    crawler = get_crawler(settings_dict={"DEDUPE_ENABLED": False, "DB_PATH": str(tmp_path / "x")})
    with pytest.raises(NotConfigured):
        build_from_crawler(DedupePipeline, crawler)
    assert not Path(tmp_path / "x").exists()
