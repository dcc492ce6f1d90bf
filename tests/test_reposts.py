"""A re-post blog crawled for the first time: its template lines are learned from distinct
stories and cleaned off every stored row, the first ones too; a story it posts three times
keeps its text; a one-sentence brief it posts three times with junk is stored once, as its
sentence; a copy with a changed headline and extra blocks joins its story; a Korean brief is
stored with the default minimum length. Then the pieces one by one: the guard, the length
measure, re-cleaning and merging, and story keys of the sightings."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from scrapy.utils.misc import build_from_crawler
from scrapy.utils.test import get_crawler

import crawler.pool  # noqa: F401 - imported by the pipeline; trafilatura warns on import
from crawler.items import ArticleItem
from crawler.storage.articles import SqliteArticles
from crawler.storage.boilerplate import SqliteBoilerplate
from pipelines.clean import CleanPipeline, boilerplate_candidates, line_key, own_lines
from pipelines.dedupe import DedupeConfig, fingerprint
from pipelines.validate import article_length, long_enough, rejection
from tests.conftest import rows, scrapy

BLOCK = "This post was shared by the Hanbit Daily desk for our readers in the region."
PARAGRAPH_BLOCK = (
    "Hanbit Daily runs on small donations and the patience of readers who put up with our "
    "banners; if a second window appears while you read, it is one of those banners, and "
    "closing it keeps everything here working for everyone."
)
TEMPLE = [
    "Tens of thousands visited Gyeongju for the lantern festival this weekend.",
    "Monks lit ten thousand lanterns around the main hall of the temple.",
    "Local shops reported their busiest weekend since the summer holidays.",
    "The festival ends on Sunday with a parade through the old town.",
]
JEJU_BRIEF = (
    "Heavy rain warnings were issued for the whole of Jeju island on Friday as the typhoon "
    "approached from the south, and the island's airport cancelled more than two hundred "
    "flights while ferries to the mainland stayed in port until the storm passes."
)
KOREAN_BRIEF = (
    "새해 첫날 강원 강릉 경포해변에는 이른 새벽부터 해돋이를 보려는 시민과 관광객 수만 명이 "
    "몰려 백사장을 가득 메웠다.\n\n"
    "강릉시는 안전사고를 막기 위해 공무원과 경찰, 소방대원 등 삼백여 명을 해변 곳곳에 배치하고 "
    "주변 도로의 차량 통행을 통제했다.\n\n"
    "오전 일곱 시 사십 분쯤 수평선 위로 해가 떠오르자 사람들은 환호하며 가족의 건강과 새해 소원을 "
    "빌었고 일부는 차가운 바닷물에 발을 담그기도 했다."
)


def test_first_crawl_of_a_repost_blog_ends_clean(sites, db):
    base = sites.base_urls["spamblog"]
    result = scrapy("crawl", "feed", "-a", f"url={base}/feed.rss", "-a", "name=spamblog", db=db)
    assert result.returncode == 0, result.stderr[-3000:]
    stored = {r["url"].removeprefix(base): r for r in rows(db, "SELECT * FROM articles")}
    seen = {r["url"].removeprefix(base): r for r in rows(db, "SELECT * FROM duplicates")}
    # one row per story: of the temple story and the brief posted three times and of the port
    # story and its re-headlined copy with extra blocks, whichever came first is the story,
    # the others its sightings
    stories = {
        "port": ["/p/busan-port.html", "/p/busan-port-update.html"],
        "temple": [f"/p/temple-festival{n}.html" for n in ("", "-2", "-3")],
        "jeju": [f"/p/jeju-rain{n}.html" for n in ("", "-2", "-3")],
    }
    for paths in stories.values():
        (first,) = [p for p in paths if p in stored]
        assert {seen[p]["article_id"] for p in paths if p != first} == {stored[first]["id"]}
    assert len(stored) == 8
    assert len(seen) == 5
    # the blog's template lines (one short, one a paragraph) are gone from every row,
    # whichever was stored first, and each removal is on record (the brief's copies carry
    # one each, or neither)
    (jeju,) = [p for p in stories["jeju"] if p in stored]
    for path, row in stored.items():
        assert BLOCK not in row["text"], path
        assert PARAGRAPH_BLOCK not in row["text"], path
        if path not in ("/p/gangneung-sunrise.html", jeju):
            learned = {p["text"] for p in json.loads(row["removed"])}
            assert {BLOCK, PARAGRAPH_BLOCK} <= learned, path
    # the story posted three times keeps its own lines: copies of one story are one story
    (temple,) = [p for p in stories["temple"] if p in stored]
    assert stored[temple]["text"] == "\n\n".join(TEMPLE)
    # a one-sentence brief posted three times, each copy with other junk around it (the
    # blog's template lines, an app prompt, a community invite, a messenger handle, a
    # broken-download notice), is stored once, as its sentence
    assert stored[jeju]["text"] == JEJU_BRIEF
    # a Korean brief of ~55 words (160 syllables) is long enough for the default minimum
    assert stored["/p/gangneung-sunrise.html"]["text"] == KOREAN_BRIEF


# -- the length measure ---------------------------------------------------------------------------
def test_the_minimum_length_asks_the_same_amount_of_news_of_every_script():
    english = (
        "Tens of thousands of people crowded the beach in Gangneung on New Year's Day to watch "
        "the first sunrise of the year, and the city sent three hundred officials and police "
        "officers to keep order."
    )  # 35 words
    assert 150 < len(KOREAN_BRIEF.replace(" ", "").replace("\n", "")) < 200  # syllables etc.
    assert article_length(KOREAN_BRIEF) >= 200
    assert rejection({"url": "https://x.example/a", "text": KOREAN_BRIEF}) is None
    assert article_length(english) == sum(c.isalnum() for c in english)
    # a Korean text of the size of a 15-word English sentence is still too short
    short = "강릉 경포해변에 해돋이 인파가 몰렸다. 시는 교통을 통제했다."
    assert rejection({"url": "https://x.example/b", "text": short}) == "too_short"
    assert article_length("東京で地震") == 15
    # the check against a minimum reads a long text a piece at a time, with the same verdict
    long_text = "\n\n".join([english, KOREAN_BRIEF, "東京で地震", "--- ... ---" * 200] * 6)
    total = article_length(long_text)
    for minimum in (0, 1, 200, 1500, total - 1, total, total + 1, 10 * total):
        assert long_enough(long_text, minimum) == (total >= minimum), minimum


# -- the guard -----------------------------------------------------------------------------------
def _pipeline(tmp_path: Path, **settings: Any) -> CleanPipeline:
    crawler = get_crawler(settings_dict={"DB_PATH": str(tmp_path / "news.db"), **settings})
    pipeline = build_from_crawler(CleanPipeline, crawler)
    pipeline.open_spider()
    return pipeline


def test_learned_lines_never_empty_a_story(tmp_path):
    brief = (
        "Seoul subway fares rise by 150 won from June.\n\n"
        "The city said the increase was the first in eight years.\n\n"
        "Bus fares will follow in the autumn."
    )
    archive = SqliteBoilerplate.acquire(tmp_path / "news.db")
    try:  # three other stories of the domain carried the brief's lines
        for story in ("1", "2", "3"):
            archive.record("blog.example", story, boilerplate_candidates(brief), cap=4)
    finally:
        archive.release()
    pipeline = _pipeline(tmp_path, VALIDATE_MIN_CHARS=60)
    try:
        item = pipeline.process_item(
            ArticleItem(url="https://blog.example/fares", domain="blog.example", text=brief)
        )
    finally:
        asyncio.run(pipeline.close_spider())
    assert item.text == brief
    assert pipeline.crawler.stats.get_value("clean/guarded") == 1
    # without the guard's minimum (validation off) the learned lines go
    pipeline = _pipeline(tmp_path, VALIDATE_ENABLED=False)
    try:
        item = pipeline.process_item(
            ArticleItem(url="https://blog.example/fares", domain="blog.example", text=brief)
        )
    finally:
        asyncio.run(pipeline.close_spider())
    assert item.text == ""
    assert {p["rule"] for p in item.removed} == {"learned_boilerplate"}


BRIEF_TITLE = "Jeju issues heavy rain warning as typhoon nears"
BRIEF = (
    "Forecasters issued a heavy rain warning for Jeju on Friday as the typhoon nears the island."
)
PROMOS = [
    "Open the Hanbit reader for more",
    "Hanbit Daily readers hear it here first, every morning.",
]


def _learned_on_other_stories(tmp_path: Path, *lines: str) -> None:
    archive = SqliteBoilerplate.acquire(tmp_path / "news.db")
    try:
        for story in ("1", "2", "3", "4"):
            archive.record("blog.example", story, boilerplate_candidates("\n\n".join(lines)), cap=4)
    finally:
        archive.release()


def _clean_one(pipeline: CleanPipeline, text: str, title: str | None) -> ArticleItem:
    item = ArticleItem(url="https://blog.example/b", domain="blog.example", text=text, title=title)
    try:
        return pipeline.process_item(item)
    finally:
        asyncio.run(pipeline.close_spider())


def test_a_brief_whose_copies_taught_its_sentence_keeps_the_sentence_not_the_promos(tmp_path):
    # copies of the brief stored apart taught the domain its sentence, as other stories
    # taught it the promos: the guard keeps the sentence (it tells the headline's story)
    _learned_on_other_stories(tmp_path, BRIEF, *PROMOS)
    pipeline = _pipeline(tmp_path, VALIDATE_MIN_CHARS=40)
    item = _clean_one(pipeline, "\n\n".join([BRIEF, *PROMOS]), BRIEF_TITLE)
    assert item.text == BRIEF
    assert [(p["text"], p["rule"]) for p in item.removed] == [
        (line, "learned_boilerplate") for line in PROMOS
    ]
    assert pipeline.crawler.stats.get_value("clean/guarded") == 1
    # without a headline there is no evidence which line is the story's: all are kept
    pipeline = _pipeline(tmp_path, VALIDATE_MIN_CHARS=40)
    item = _clean_one(pipeline, "\n\n".join([BRIEF, *PROMOS]), None)
    assert item.text == "\n\n".join([BRIEF, *PROMOS])
    # a minimum the sentence alone does not reach: all are kept, as before
    pipeline = _pipeline(tmp_path, VALIDATE_MIN_CHARS=100)
    item = _clean_one(pipeline, "\n\n".join([BRIEF, *PROMOS]), BRIEF_TITLE)
    assert item.text == "\n\n".join([BRIEF, *PROMOS])


def test_learned_lines_never_replace_a_story_by_its_junk(tmp_path):
    # the sentence was taught, the promo line (long enough for the minimum) was not: what
    # is left tells nothing of the headline, so the sentence stays with it
    _learned_on_other_stories(tmp_path, BRIEF)
    pipeline = _pipeline(tmp_path, VALIDATE_MIN_CHARS=40)
    item = _clean_one(pipeline, f"{BRIEF}\n\n{PROMOS[1]}", BRIEF_TITLE)
    assert item.text == f"{BRIEF}\n\n{PROMOS[1]}"
    assert pipeline.crawler.stats.get_value("clean/guarded") == 1
    # a story that still tells its headline loses its taught lines as usual
    pipeline = _pipeline(tmp_path, VALIDATE_MIN_CHARS=40)
    story = "Jeju closed its airport on Friday as the typhoon brought heavy rain to the island."
    item = _clean_one(pipeline, f"{story}\n\n{BRIEF}", BRIEF_TITLE)
    assert item.text == story
    assert pipeline.crawler.stats.get_value("clean/guarded") is None


def test_own_lines_share_words_with_the_headline_or_the_lines_found_so_far():
    removed = [
        {"text": BRIEF, "rule": "learned_boilerplate"},
        {
            "text": "Ferries to the island were cancelled on Friday.",
            "rule": "learned_boilerplate",
        },
        {
            "text": "Ferries and flights to the island resume on Sunday.",
            "rule": "learned_boilerplate",
        },
        {"text": PROMOS[0], "rule": "learned_boilerplate"},
        {"text": "Jeju typhoon warning", "rule": "tags"},  # the rules file's: not the domain's
    ]
    own = own_lines(removed, BRIEF_TITLE)
    # the lede (jeju, heavy, rain, warning), the next sentence through the lede (island,
    # friday), the one after through that one (ferries); never the promo
    assert own == {line_key(p["text"]) for p in removed[:3]}
    assert own_lines(removed, None) == set()
    assert own_lines(removed, "Markets close higher") == set()


# -- sightings are keyed by story ------------------------------------------------------------------
def test_sightings_count_the_story_an_item_turned_out_to_be(tmp_path):
    pipeline = _pipeline(tmp_path, VALIDATE_MIN_CHARS=20)
    text = "A story about the harbour and its new cranes, told at length.\n\n" + BLOCK
    try:
        for n in range(4):  # four copies of stored story #7
            item = pipeline.process_item(
                ArticleItem(url=f"https://blog.example/{n}", domain="blog.example", text=text)
            )
            item.duplicate_of = 7
            pipeline.item_scraped(item)
    finally:
        asyncio.run(pipeline.close_spider())
    sightings = rows(tmp_path / "news.db", "SELECT DISTINCT article_key FROM boilerplate_sightings")
    assert sightings == [{"article_key": "7"}]


# -- re-cleaning and merging ----------------------------------------------------------------------
BODY = "The port of Busan handled a record number of containers last year, officials said."
JUNK = "Hanbit Daily is on every network you use, so find us there and say hello."


def _stored_and_cleaned(pipeline, articles, path, title, text, config):
    """A story through the clean step (nothing learned yet) and stored, as a crawl does."""
    url = f"https://blog.example/{path}"
    item = pipeline.process_item(
        ArticleItem(url=url, domain="blog.example", title=title, text=text)
    )
    article_id = articles.insert(
        {"url": url, "domain": "blog.example", "title": title, "text": item.text,
         "text_raw": text, "text_hash": fingerprint(item.text, config).text_hash,
         "fetched_at": "2026-12-01T00:00:00+00:00"}
    )  # fmt: skip
    pipeline.item_scraped(item)
    return article_id


def _junk_learned(pipeline):
    """Three other stories of the blog carry the junk line: it is learned from the third."""
    for story in (11, 12, 13):
        item = pipeline.process_item(
            ArticleItem(url=f"https://blog.example/o{story}", domain="blog.example",
                        text=f"Another story, number {story}, about the harbour.\n\n{JUNK}")
        )  # fmt: skip
        item.duplicate_of = story
        pipeline.item_scraped(item)


def test_a_story_cleaned_again_that_repeats_an_earlier_one_becomes_its_sighting(tmp_path):
    config = DedupeConfig()
    pipeline = _pipeline(tmp_path, VALIDATE_MIN_CHARS=40)
    articles = SqliteArticles(pipeline.boilerplate.connection)
    try:
        first = _stored_and_cleaned(pipeline, articles, "a", "Record year", BODY, config)
        raw = f"{BODY}\n\n{JUNK}"
        later = _stored_and_cleaned(pipeline, articles, "b", "Record Year!", raw, config)
        _junk_learned(pipeline)
    finally:
        asyncio.run(pipeline.close_spider())
    assert [r["id"] for r in rows(tmp_path / "news.db", "SELECT id FROM articles")] == [first]
    sighting = rows(tmp_path / "news.db", "SELECT url, article_id, kind FROM duplicates")
    assert sighting == [{"url": "https://blog.example/b", "article_id": first, "kind": "exact"}]
    assert later != first
    assert pipeline.crawler.stats.get_value("clean/recleaned") == 1
    assert pipeline.crawler.stats.get_value("clean/recleaned/merged") == 1


def test_a_later_story_that_repeats_an_earlier_one_cleaned_again_becomes_its_sighting(tmp_path):
    # the earlier copy carried the junk; the later one, unchanged, now repeats it
    config = DedupeConfig()
    pipeline = _pipeline(tmp_path, VALIDATE_MIN_CHARS=40)
    articles = SqliteArticles(pipeline.boilerplate.connection)
    try:
        raw = f"{BODY}\n\n{JUNK}"
        first = _stored_and_cleaned(pipeline, articles, "a", "Record year", raw, config)
        _stored_and_cleaned(pipeline, articles, "b", "Record Year!", BODY, config)
        _junk_learned(pipeline)
    finally:
        asyncio.run(pipeline.close_spider())
    stored = rows(tmp_path / "news.db", "SELECT id, text FROM articles")
    assert stored == [{"id": first, "text": BODY}]
    sighting = rows(tmp_path / "news.db", "SELECT url, article_id FROM duplicates")
    assert sighting == [{"url": "https://blog.example/b", "article_id": first}]


def test_only_stories_cleaned_before_a_line_was_learned_are_cleaned_again(tmp_path):
    config = DedupeConfig()
    pipeline = _pipeline(tmp_path, VALIDATE_MIN_CHARS=40)
    articles = SqliteArticles(pipeline.boilerplate.connection)
    other = (
        "Ferries to Jeju were cancelled on Monday as a storm crossed the strait, officials said."
    )
    try:
        before = _stored_and_cleaned(
            pipeline, articles, "a", "Ferries", f"{other}\n\n{JUNK}", config
        )
        _junk_learned(pipeline)
        after = _stored_and_cleaned(pipeline, articles, "b", "Record", f"{BODY}\n\n{JUNK}", config)
    finally:
        asyncio.run(pipeline.close_spider())
    texts = {
        r["id"]: r["text"] for r in rows(tmp_path / "news.db", "SELECT id, text FROM articles")
    }
    assert texts == {before: other, after: BODY}  # the later one was cleaned with it already
    assert pipeline.crawler.stats.get_value("clean/recleaned") == 1
