"""Tests for the Korea tagger (pipelines/tag/) and its lexicon (data/korea_lexicon.toml)."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
from itemadapter import ItemAdapter
from scrapy.exceptions import NotConfigured
from scrapy.settings import Settings
from scrapy.utils.misc import build_from_crawler
from scrapy.utils.test import get_crawler

from crawler.items import ArticleItem
from pipelines.tag import (
    DEFAULT_LEXICON_FILE,
    KOREA_THRESHOLD,
    MENTION_THRESHOLD,
    REPO_ROOT,
    LexiconError,
    TagConfig,
    Tagger,
    TagPipeline,
    load_lexicon,
    read_lexicon,
    tag_story,
)
from pipelines.tag.loader import resolve_lexicon_path

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "tag"
KOREA_TAGS = {"korea", "north_korea", "south_korea", "korea_mention"}
SEED_TITLE = (
    "North Korea has accused the United States of building a NATO-like military alliance in Asia."
)


def korea_tags(tags: list[str]) -> set[str]:
    return set(tags) & KOREA_TAGS


def fixture_story(name: str) -> tuple[str, str]:
    """A fixture whose first paragraph is the headline."""
    title, _, body = (FIXTURES / name).read_text(encoding="utf-8").partition("\n\n")
    return title.strip(), body


# -- full-length stories


def test_seed_story_is_about_both_koreas():
    body = (FIXTURES / "seed_body.txt").read_text(encoding="utf-8")
    result = tag_story(SEED_TITLE, body, language="en")
    assert result.is_korea
    assert result.tags[:3] == ["korea", "north_korea", "south_korea"]
    # North Korea is the subject and acts most; the South acts too (Yoon, joint exercises)
    sides = result.evidence["sides"]
    assert sides["north"] > sides["south"] >= 0.3 * sides["north"]
    assert {"nuclear", "military"} <= set(result.tags)
    terms = {t["entry"]: t for t in result.evidence["terms"]}
    assert terms["north_korea"]["title"] == 1
    assert terms["north_korea"]["body"] >= 5
    assert terms["kim_jong_un"]["matched"] == ["Kim Jong-un"]
    # the seed misspells the South Korean president's name; it is a listed variant
    assert terms["yoon_suk_yeol"]["matched"] == ["Yoon Si-yeol"]
    assert terms["yoon_suk_yeol"]["korea"] == "south"


def test_long_article_with_one_aside_about_korea_is_a_mention_only():
    body = (FIXTURES / "japan_economy.txt").read_text(encoding="utf-8")
    assert len(body.split()) >= 600
    result = tag_story("Japan's economy grows faster than expected as shoppers spend", body)
    assert korea_tags(result.tags) == {"korea_mention"}
    assert not result.is_korea
    assert MENTION_THRESHOLD <= result.score < KOREA_THRESHOLD
    (term,) = result.evidence["terms"]
    assert (term["entry"], term["title"], term["lead"], term["body"]) == ("south_korea", 0, 0, 1)


def test_the_same_aside_in_the_headline_makes_a_korea_story():
    body = (FIXTURES / "japan_economy.txt").read_text(encoding="utf-8")
    result = tag_story("South Korea and Japan: exports recover", body)
    assert result.tags[:2] == ["korea", "south_korea"]


def test_korean_language_missile_story():
    title, body = fixture_story("ko_missile.txt")
    result = tag_story(title, body, language="ko")
    assert result.tags[:2] == ["korea", "north_korea"]
    assert "south_korea" not in result.tags  # the South's joint chiefs are only the source
    assert "missile" in result.tags
    terms = {t["entry"]: t for t in result.evidence["terms"]}
    assert terms["north_korea"]["title"] == 1
    assert terms["hwasong"]["matched"] == ["화성-17형"]
    assert "source" in terms["sk_jcs"]["flags"]
    assert result.evidence["language"] == "ko"


def test_korean_language_company_story():
    title, body = fixture_story("ko_samsung.txt")
    result = tag_story(title, body, language="ko")
    assert result.tags[:2] == ["korea", "south_korea"]
    assert "economy" in result.tags
    terms = {t["entry"]: t for t in result.evidence["terms"]}
    assert terms["samsung"]["title"] == 1
    assert "SK하이닉스" in terms["sk_hynix"]["matched"]


@pytest.mark.parametrize(
    ("text", "entry"),
    [
        ("북한의 미사일 발사에 대해", "north_korea"),
        ("한국은 이날 회의에서", "south_korea"),
        ("대한민국 정부는", "south_korea"),
        ("김정은은 현지지도에서", "kim_jong_un"),
        ("삼성전자가 발표했다", "samsung"),
        ("평양에서 열린", "pyongyang"),
        ("남북관계가 경색됐다", "inter_korean"),
    ],
)
def test_hangul_terms_match_before_particles(text, entry):
    result = tag_story("", text)
    assert result.evidence["terms"][0]["entry"] == entry


def test_hangul_terms_do_not_match_inside_other_words():
    # 핵심 (key), 전세계 (the whole world), 고양이 (cat): no Korea evidence
    result = tag_story("", "핵심은 전세계 고양이 시장이다")
    assert result.evidence["terms"] == []


def test_evidence_is_json_serialisable_and_complete():
    result = tag_story(SEED_TITLE, (FIXTURES / "seed_body.txt").read_text(encoding="utf-8"))
    round_trip = json.loads(json.dumps(result.evidence))
    assert round_trip == result.evidence
    assert set(result.evidence) >= {"score", "terms", "sides", "topics", "rules", "words"}
    for term in result.evidence["terms"]:
        assert set(term) >= {"entry", "category", "korea", "matched", "title", "lead", "body"}
    assert result.evidence["sides"]["north"] > result.evidence["sides"]["south"] > 0


def test_empty_and_missing_text():
    assert tag_story(None, None).tags == []
    assert tag_story("", "").score == 0


def test_topic_tags_only_for_korea_stories_and_mentions():
    result = tag_story("Iran nuclear talks stall", "Iran's nuclear programme: talks stall.")
    assert result.tags == []
    assert result.evidence["topics"] == {}


# -- the lexicon


def test_default_lexicon_loads_as_one_compiled_regex():
    lexicon = read_lexicon(resolve_lexicon_path(DEFAULT_LEXICON_FILE))
    # read and checked at once, compiled on first use (a crawler process whose pool
    # workers do the tagging never compiles it)
    assert "regex" not in vars(lexicon)
    assert lexicon.scan("Seoul and Pyongyang")
    assert isinstance(vars(lexicon)["regex"], re.Pattern)
    assert len(lexicon.entries) > 250
    assert {"nuclear", "missile", "military", "diplomacy", "economy", "politics"} <= set(
        lexicon.topics
    )
    assert {"culture", "sports"} <= set(lexicon.topics)


def write_lexicon(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "lexicon.toml"
    path.write_text(body, encoding="utf-8")
    return path


MINIMAL = """
[topics.sports]
description = "sport"
patterns = ["golf"]

[[group]]
name = "test"
source = "a public list of country names"
category = "country"
korea = "north"
weight = 3.0
entries = [
  { id = "north_korea", patterns = ["North Korea"] },
]
"""


def test_a_minimal_lexicon_works(tmp_path):
    lexicon = read_lexicon(write_lexicon(tmp_path, MINIMAL))
    result = Tagger(lexicon).tag("North Korea golf", "")
    assert result.tags == ["korea", "north_korea", "sports"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ('{ id = "north_korea"', '{ id = "north_korea", wieght = 2'),
            r"entry 'north_korea': unknown key 'wieght'",
        ),
        (
            ('korea = "north"', 'korea = "norht"'),
            r"entry 'north_korea': key 'korea': one of north, south",
        ),
        (("weight = 3.0", 'weight = "heavy"'), r"entry 'north_korea': key 'weight'"),
        (
            ("weight = 3.0", "weight = 30"),
            r"entry 'north_korea': key 'weight': a number from 0 to 10",
        ),
        (('category = "country"', 'category = "planet"'), r"entry 'north_korea': key 'category'"),
        (('patterns = ["North Korea"]', "patterns = []"), r"entry 'north_korea': key 'patterns'"),
        (
            ('patterns = ["North Korea"]', 'patterns = "North Korea"'),
            r"entry 'north_korea': key 'patterns'",
        ),
        (
            ('{ id = "north_korea", patterns', '{ id = "north_korea", topics = ["golf"], patterns'),
            r"entry 'north_korea': key 'topics'",
        ),
        (
            ('patterns = ["golf"]', 'patterns = ["North Korea"]'),
            r"entry 'north_korea': key 'patterns': pattern 'North Korea' is already used by \[topics.sports\]",
        ),
        (
            ('name = "test"', 'name = "test"\ncolour = "red"'),
            r"\[\[group\]\] #1 \(test\): unknown key 'colour'",
        ),
        (
            ("[topics.sports]", "[rules]\nlist_factor = 3\n\n[topics.sports]"),
            r"\[rules\]: key 'list_factor': out of range",
        ),
        (
            ("[topics.sports]", "[rules]\nsource_after = '(unclosed'\n\n[topics.sports]"),
            r"\[rules\]: key 'source_after': bad regular expression",
        ),
        (
            (
                "[topics.sports]",
                '[topics.korea]\ndescription = "x"\npatterns = ["x"]\n\n[topics.sports]',
            ),
            r"\[topics.korea\]: topic names",
        ),
        (('description = "sport"', 'description = ""'), r"\[topics.sports\]: key 'description'"),
        (
            ("[[group]]", '[[negative]]\npatterns = ["Kia Oval"]\n\n[[group]]'),
            r"\[\[negative\]\] #1: key 'reason'",
        ),
        (("[topics.sports]", "colour = 1\n[topics.sports]"), r"top level: unknown key 'colour'"),
        (
            ('source = "a public list of country names"\n', ""),
            r"\[\[group\]\] #1 \(test\): key 'source': say where the names come from",
        ),
        (("[[group]]", "colour = 1\n[[group]]"), r"\[topics.sports\]: unknown key 'colour'"),
        (
            ('patterns = ["North Korea"]', 'patterns = ["North*"]'),
            r"entry 'north_korea': key 'patterns': '\*' not allowed",
        ),
    ],
)
def test_lexicon_errors_name_the_entry_and_the_key(tmp_path, change, message):
    old, new = change
    assert old in MINIMAL
    path = write_lexicon(tmp_path, MINIMAL.replace(old, new, 1))
    with pytest.raises(LexiconError, match=message) as excinfo:
        read_lexicon(path)
    assert str(path) in str(excinfo.value)


def test_duplicate_patterns_across_entries_are_refused(tmp_path):
    body = MINIMAL.replace(
        '{ id = "north_korea", patterns = ["North Korea"] },',
        '{ id = "north_korea", patterns = ["North Korea"] },\n'
        '  { id = "dprk", patterns = ["DPRK", "North-Korea"] },',
    )
    with pytest.raises(LexiconError, match=r"entry 'dprk': key 'patterns': pattern 'North-Korea'"):
        read_lexicon(write_lexicon(tmp_path, body))


def test_toml_syntax_errors_name_the_file(tmp_path):
    path = write_lexicon(tmp_path, "[[group]\nname = ")
    with pytest.raises(LexiconError, match="not valid TOML"):
        read_lexicon(path)
    with pytest.raises(LexiconError, match="cannot read"):
        read_lexicon(tmp_path / "missing.toml")


# -- the pipeline


def make_pipeline(settings: dict | None = None) -> TagPipeline:
    crawler = get_crawler(settings_dict=settings or {})
    return build_from_crawler(TagPipeline, crawler)


def test_pipeline_fills_fields_and_counts_stats():
    pipeline = make_pipeline()
    stats = pipeline.crawler.stats
    seed = ArticleItem(
        url="https://example.org/nk",
        title=SEED_TITLE,
        text=(FIXTURES / "seed_body.txt").read_text(encoding="utf-8"),
        tags=["world", "korea"],
    )
    out = pipeline.process_item(seed)
    assert out is seed
    assert seed.tags[:4] == ["world", "korea", "north_korea", "south_korea"]
    assert len(seed.tags) == len(set(seed.tags))
    assert seed.is_korea is True
    assert seed.korea_score > KOREA_THRESHOLD
    assert seed.korea_evidence["terms"][0]["entry"] == "north_korea"
    json.dumps(seed.korea_evidence)

    mention = {"url": "https://example.org/jp", "title": "Japan's economy grows"}
    mention["text"] = (FIXTURES / "japan_economy.txt").read_text(encoding="utf-8")
    pipeline.process_item(mention)
    assert mention["tags"][0] == "korea_mention"
    assert mention["is_korea"] is False

    other = ArticleItem(url="https://example.org/x", title="Lee Westwood leads", text="Golf.")
    pipeline.process_item(other)
    assert other.tags == []
    assert other.is_korea is False
    assert other.korea_score == 0

    assert stats.get_value("tag/korea") == 1
    assert stats.get_value("tag/north_korea") == 1
    assert stats.get_value("tag/south_korea") == 1
    assert stats.get_value("tag/korea_mention") == 1
    assert stats.get_value("tag/nuclear") == 1
    assert stats.get_value("tag/economy") == 1
    assert stats.get_value("tag/sports") is None


def test_pipeline_uses_description_when_there_is_no_text():
    item = ArticleItem(url="https://example.org/a", title="Talks", description="Pyongyang said.")
    make_pipeline().process_item(item)
    assert item.korea_evidence["terms"][0]["entry"] == "pyongyang"


def test_pipeline_skips_duplicates():
    pipeline = make_pipeline()
    item = ArticleItem(
        url="https://example.org/dup", title=SEED_TITLE, text="North Korea", duplicate_kind="exact"
    )
    before = ItemAdapter(item).asdict()
    assert pipeline.process_item(item) is item
    assert ItemAdapter(item).asdict() == before
    assert pipeline.crawler.stats.get_value("tag/korea") is None


def test_pipeline_not_configured_when_disabled():
    with pytest.raises(NotConfigured):
        make_pipeline({"TAG_ENABLED": False})


def test_pipeline_settings(tmp_path):
    lexicon = write_lexicon(tmp_path, MINIMAL)
    pipeline = make_pipeline(
        {
            "TAG_LEXICON_FILE": str(lexicon),
            "TAG_KOREA_THRESHOLD": "20",
            "TAG_MENTION_THRESHOLD": 1,
        }
    )
    assert pipeline.config == TagConfig(
        lexicon_file=lexicon, korea_threshold=20.0, mention_threshold=1.0
    )
    item = ArticleItem(url="https://example.org/a", title="North Korea", text="Samsung")
    pipeline.process_item(item)
    assert item.tags == ["korea_mention"]  # 9 < 20, and Samsung is not in this lexicon
    assert pipeline.crawler.stats.get_value("tag/korea_mention") == 1


def test_pipeline_refuses_a_bad_lexicon(tmp_path):
    bad = write_lexicon(tmp_path, MINIMAL.replace('korea = "north"', 'korea = "east"'))
    with pytest.raises(LexiconError, match="key 'korea'"):
        make_pipeline({"TAG_LEXICON_FILE": str(bad)})


def test_config_from_bare_settings(caplog):
    config = TagConfig.from_settings(Settings())
    assert config.lexicon_file == REPO_ROOT / DEFAULT_LEXICON_FILE or config.lexicon_file.exists()
    assert config.korea_threshold == KOREA_THRESHOLD
    assert config.mention_threshold == MENTION_THRESHOLD
    with pytest.raises(ValueError, match="TAG_KOREA_THRESHOLD"):
        TagConfig.from_settings(Settings({"TAG_KOREA_THRESHOLD": 0}))
    with caplog.at_level(logging.WARNING, logger="pipelines.tag"):
        TagConfig.from_settings(Settings({"TAG_MENTION_THRESHOLD": 9, "TAG_KOREA_THRESHOLD": 5}))
    assert "no story will be tagged korea_mention" in caplog.text


def test_pipeline_logs_items_and_a_summary(caplog):
    pipeline = make_pipeline()
    with caplog.at_level(logging.DEBUG, logger="pipelines.tag"):
        pipeline.process_item(ArticleItem(url="https://example.org/a", title="Seoul says no"))
        pipeline.process_item(ArticleItem(url="https://example.org/b", duplicate_kind="url"))
        pipeline.close_spider()
    debug = [r for r in caplog.records if r.levelno == logging.DEBUG]
    info = [r for r in caplog.records if r.levelno == logging.INFO]
    assert any("https://example.org/a" in r.getMessage() for r in debug)
    assert len(info) == 1
    assert (
        "1 stories tagged (1 korea, 0 korea_mention), 1 duplicates skipped" in info[0].getMessage()
    )


# -- documentation


def test_tagging_page_documents_settings_tags_and_topics():
    readme = (REPO_ROOT / "docs" / "tagging.md").read_text(encoding="utf-8")
    for setting in (
        "TAG_ENABLED",
        "TAG_LEXICON_FILE",
        "TAG_KOREA_THRESHOLD",
        "TAG_MENTION_THRESHOLD",
    ):
        assert f"`{setting}`" in readme
    for tag in (*sorted(KOREA_TAGS), *load_lexicon().topics):
        assert f"`{tag}`" in readme
    assert f"{KOREA_THRESHOLD}" in readme
    assert "bench/bench_tag.py" in readme
