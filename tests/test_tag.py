"""Tests for the Korea tagger (pipelines/tag/) and its lexicon (data/korea_lexicon.toml)."""

from __future__ import annotations

import json
import logging
import re
import tomllib
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
    Lexicon,
    LexiconError,
    TagConfig,
    Tagger,
    TagPipeline,
    load_lexicon,
    tag_story,
)
from pipelines.tag.rules import RULE_NAMES

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


def test_seed_story_is_a_north_korea_story_with_the_south_in_it():
    body = (FIXTURES / "seed_body.txt").read_text(encoding="utf-8")
    result = tag_story(SEED_TITLE, body, language="en")
    assert result.is_korea
    assert result.tags[:2] == ["korea", "north_korea"]
    # the South is there (Yoon, joint exercises) but North Korea is the subject and actor
    assert 0 < result.evidence["sides"]["south"] < result.evidence["sides"]["north"]
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


# -- ambiguity rules


@pytest.mark.parametrize(
    ("title", "text"),
    [
        ("Kim Kardashian launches a skincare line", "Kim Kardashian said the range sold out."),
        ("Clijsters out of Australian Open", "Former world No. 1 Kim Clijsters is injured."),
        ("England v Pakistan at the Kia Oval", "England face Pakistan at the Kia Oval on Friday."),
        ("Family chat: does he really drive a Kia?", "The group chat lit up at the news."),
        ("Westwood leads in Dubai", "Lee Westwood shot a 66 to lead by two strokes."),
        ("Browns' Lee Suggs ready for return", "Running back Lee Suggs has been cleared."),
        ("Kim captures one-shot win", "Christina Kim made a charge on the back nine on Sunday."),
        ("Mr Kim's shop closes after 30 years", "Ms Park and Mr Lee met at Fenway Park."),
        ("Moon mission delayed", "Nasa's Artemis mission to the Moon has been delayed."),
        ("Taiwan's former leader visits Japan", "Lee Teng-hui arrived in Osaka on Monday."),
    ],
)
def test_surnames_brands_as_names_and_other_people_are_not_evidence(title, text):
    result = tag_story(title, text)
    assert korea_tags(result.tags) == set()
    assert result.score == 0


def test_negative_contexts_are_reported_in_the_evidence():
    result = tag_story("Test at the Kia Oval", "Kim Kardashian watched from the stands.")
    reasons = " ".join(n["reason"] for n in result.evidence["negated"])
    assert "Kia Oval" in reasons
    assert "not Korean" in reasons
    assert "negative" in result.evidence["rules"]


def test_a_korean_brand_as_a_carmaker_is_evidence():
    result = tag_story("Kia recalls 300,000 cars", "Kia is recalling cars over a fire risk.")
    assert result.tags[:2] == ["korea", "south_korea"]


def test_korea_in_a_list_of_many_countries_is_a_mention():
    result = tag_story(
        "Leaders gather for climate summit",
        "Leaders from the US, Britain, France, Germany, Japan, South Korea and India met in "
        "Glasgow to discuss emissions targets.",
    )
    assert korea_tags(result.tags) == {"korea_mention"}
    assert "list" in result.evidence["rules"]
    assert result.evidence["terms"][0]["flags"] == ["list"]


def test_a_few_countries_are_not_a_list():
    result = tag_story(
        "Trilateral drills",
        "The US, Japan and South Korea held joint naval drills to deter North Korea.",
    )
    assert "list" not in result.evidence["rules"]


def test_headline_weighs_more_than_the_lead():
    in_title = tag_story("North Korea test-fires missile", "The launch came on Sunday.")
    in_lead = tag_story(
        "Missile test on Sunday", "The launch came on Sunday, days after talks with North Korea."
    )
    assert in_title.is_korea
    assert korea_tags(in_lead.tags) == {"korea_mention"}
    assert in_title.score > in_lead.score


def test_the_lead_subject_weighs_more():
    subject = tag_story("Chip output to rise", "Hynix Semiconductor Inc. will boost output.")
    aside = tag_story("Chip output to rise", "Chipmakers such as Hynix will boost output.")
    assert subject.tags[:2] == ["korea", "south_korea"]
    assert "subject" in subject.evidence["rules"]
    assert korea_tags(aside.tags) == {"korea_mention"}
    both = tag_story("Planes clip wings", "A Korean Air jet and a BA plane clipped wings.")
    assert korea_tags(both.tags) == {"korea_mention"}


def test_two_distinct_terms_in_the_lead_make_a_korea_story():
    result = tag_story(
        "Deserter to face court martial",
        "Lawyers for Charles Jenkins expect a hearing next month, four decades after he "
        "crossed into North Korea.",
    )
    assert result.tags[:2] == ["korea", "north_korea"]


def test_a_surname_in_the_headline_refers_to_the_person_in_the_text():
    result = tag_story(
        "Pak takes title with closing 65",
        "Se Ri Pak closed with a 65 to win by two shots in Portland on Sunday.",
    )
    assert result.tags[:2] == ["korea", "south_korea"]
    assert "surname" in result.evidence["rules"]
    assert "sports" in result.tags


def test_an_athlete_among_several_is_a_mention():
    result = tag_story(
        "Spurs 3-1 Leicester",
        "Harry Kane and Son Heung-min scored as Tottenham beat Leicester City.",
    )
    assert korea_tags(result.tags) == {"korea_mention"}


def test_a_headline_athlete_named_with_others_is_one_of_several():
    several = tag_story(
        "Kane and Son score as Spurs beat Leicester",
        "Harry Kane and Son Heung-min scored as Tottenham beat Leicester City.",
    )
    assert korea_tags(several.tags) == {"korea_mention"}
    assert "several" in several.evidence["rules"]
    central = tag_story(
        "Son hat-trick sinks Leicester", "Son Heung-min scored a 13-minute hat-trick."
    )
    assert central.tags[:2] == ["korea", "south_korea"]


def test_generic_romanised_korean_names_are_recognised():
    result = tag_story(
        "Cho Eun-ji wins Women's Open", "Cho Eun-ji shot a final-round 68 to win by one."
    )
    assert result.tags[:2] == ["korea", "south_korea"]
    assert result.evidence["terms"][0]["entry"] == "name:choeunji"


def test_korea_open_tennis_is_a_mention():
    result = tag_story(
        "Kvitova into Korea Open semi-finals",
        "Petra Kvitova beat Elise Mertens 6-4 6-2 at the Korea Open in Seoul on Thursday.",
    )
    assert korea_tags(result.tags) == {"korea_mention"}
    assert "tournament" in result.evidence["rules"]


def test_round_ups_are_mentions():
    result = tag_story(
        "Business round-up: oil slides, rates cut and North Korean exports rise",
        "Oil fell, two central banks cut rates and exports from N Korea to China rose.",
    )
    assert korea_tags(result.tags) == {"korea_mention"}
    assert "roundup" in result.evidence["rules"]


def test_dateline_and_quoted_south_korean_officials_do_not_make_both():
    result = tag_story(
        "Blast was not a nuclear test, says US",
        "SEOUL, South Korea - A large explosion near North Korea's border with China was not "
        "a nuclear test, South Korean and U.S. officials said Sunday.",
    )
    assert korea_tags(result.tags) == {"korea", "north_korea"}
    assert {"dateline", "source"} <= set(result.evidence["rules"])


def test_inter_korean_stories_get_both_sub_tags():
    result = tag_story(
        "Koreas hold military talks",
        "North and South Korea held general-level talks at the border village of Panmunjom.",
    )
    assert result.tags[:3] == ["korea", "north_korea", "south_korea"]


def test_generic_korea_defaults_to_south_korea():
    result = tag_story("What Koreans eat on New Year's Day", "Rice-cake soup comes first.")
    assert result.tags[:2] == ["korea", "south_korea"]


def test_an_elliptical_north_in_the_headline_counts():
    result = tag_story(
        "Eight defectors from North reach embassy in Bangkok",
        "BANGKOK -- Eight people believed to be North Korean entered the embassy on Monday.",
    )
    assert result.tags[:2] == ["korea", "north_korea"]
    assert "elliptical" in result.evidence["rules"]


def test_feed_escapes_are_undone():
    result = tag_story(
        "Russia says it #39;s ready to host N.Korean talks",
        "Six-party talks on North Korea \\#39;s nuclear programme \\stalled.",
    )
    assert result.tags[:2] == ["korea", "north_korea"]
    terms = {t["entry"]: t for t in result.evidence["terms"]}
    assert terms["north_korean"]["matched"] == ["N.Korean"]


def test_case_sensitive_forms():
    assert tag_story("Bush says NK must disarm", "").is_korea
    assert korea_tags(tag_story("NK cells fight tumours", "").tags) == set()
    assert korea_tags(tag_story("", "Rep. Frank Lucas (R-OK) said").tags) == set()
    assert korea_tags(tag_story("", "He was a great leader").tags) == set()
    assert korea_tags(tag_story("KIA soldiers honoured", "Killed in action: KIA").tags) == set()
    assert tag_story("ROK marines land", "").is_korea


def test_separators_are_optional_and_variants_match():
    for name in ("Kim Jong-un", "Kim Jong Un", "Kim Jong-Un", "Kim Jong-eun"):
        result = tag_story(f"{name} inspects troops", "")
        assert result.evidence["terms"][0]["entry"] == "kim_jong_un", name
    assert tag_story("SKorea's Kia to raise prices", "").tags[:2] == ["korea", "south_korea"]


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


# -- who acts, where, and in passing: each rule on a full-length article and a one-line item
#
# Each long-article test also tags the story with the rule switched off ([rules] changed in a
# copy of the default lexicon), so it shows that the rule is what decides.


def tagger_with(**rules: object) -> Tagger:
    data = tomllib.loads((REPO_ROOT / DEFAULT_LEXICON_FILE).read_text(encoding="utf-8"))
    data["rules"].update(rules)
    return Tagger(Lexicon.from_dict(data))


def terms_of(result) -> dict[str, dict]:
    return {t["entry"]: t for t in result.evidence["terms"]}


def test_subject_long_article_a_nationality_word_in_the_lead_subject():
    title, body = fixture_story("subject_recall.txt")
    assert len(body.split()) > 300
    result = tag_story(title, body)
    assert result.tags[:2] == ["korea", "south_korea"]
    assert terms_of(result)["south_korean"]["flags"] == ["subject"]
    off = tagger_with(subject_factor=1.0).tag(title, body)
    assert korea_tags(off.tags) == {"korea_mention"}


def test_subject_one_line_item_beats_a_late_mention():
    subject = tag_story(
        "Court jails former presidential aide",
        "A Korean court on Monday sentenced a former presidential aide to two years in prison.",
    )
    assert subject.tags[:2] == ["korea", "south_korea"]
    assert "subject" in subject.evidence["rules"]
    late = tag_story(
        "Court jails former presidential aide",
        "A former presidential aide was jailed for two years, the latest Korean bribery case.",
    )
    assert korea_tags(late.tags) == {"korea_mention"}


@pytest.mark.parametrize(
    ("title", "text"),
    [
        # a participle clause is not the subject
        (
            "Japan to expand missile defence",
            (
                "Japan's defence ministry, citing North Korea's missile tests, said it would "
                "buy more interceptors."
            ),
        ),
        # an example of the subject, and a subject shared with others
        ("Chip output to rise", "Chipmakers such as Hynix will raise output next year."),
        ("Planes clip wings", "A Korean Air jet and a BA plane clipped wings on the taxiway."),
        # a person under a headline about several people
        (
            "Four players share lead at Evian",
            "Kim Hyo-joo, chasing a first major title, birdied the last to post a 66.",
        ),
    ],
)
def test_subject_not_when_it_is_a_clause_an_example_or_one_of_several(title, text):
    result = tag_story(title, text)
    assert korea_tags(result.tags) == {"korea_mention"}
    assert "subject" not in result.evidence["rules"]


def test_subject_a_person_opening_the_lead_under_a_headline_about_the_result():
    result = tag_story(
        "Closing birdie gives Evian lead",
        "Kim Hyo-joo, chasing a first major title, birdied the last to post a 66.",
    )
    assert result.tags[:2] == ["korea", "south_korea"]
    assert "subject" in result.evidence["rules"]


def test_context_long_article_korea_as_the_background_of_the_headline():
    title, body = fixture_story("context_defence.txt")
    result = tag_story(title, body)
    assert korea_tags(result.tags) == {"korea_mention"}
    assert terms_of(result)["north_korea"]["flags"] == ["context"]
    off = tagger_with(context_before="(?!)").tag(title, body)
    assert off.is_korea


def test_context_one_line_items():
    background = tag_story(
        "Japan expands missile shield amid North Korea threat", "The cabinet approved it."
    )
    assert korea_tags(background.tags) == {"korea_mention"}
    assert "context" in background.evidence["rules"]
    # the same headline with North Korea as what the story is about
    subject = tag_story("North Korea threat drives Japan's missile shield", "")
    assert subject.is_korea


def test_venue_long_article_talks_in_seoul_about_the_north():
    title, body = fixture_story("venue_talks.txt")
    result = tag_story(title, body)
    assert korea_tags(result.tags) == {"korea", "north_korea"}
    assert "venue" in terms_of(result)["seoul"]["flags"]
    assert result.evidence["sides"]["south"] == 0
    off = tagger_with(venue_before="(?!)").tag(title, body)
    assert korea_tags(off.tags) == {"korea", "north_korea", "south_korea"}


def test_venue_one_line_items():
    talks = tag_story(
        "US envoy in Seoul for nuclear talks",
        "The US envoy arrived in Seoul on Sunday to discuss North Korea's nuclear programme.",
    )
    assert korea_tags(talks.tags) == {"korea", "north_korea"}
    assert "venue" in talks.evidence["rules"]
    # the venue is the only Korea in the story: it names the Korea
    fire = tag_story("Twelve killed in Seoul market fire", "The fire broke out at night.")
    assert korea_tags(fire.tags) == {"korea", "south_korea"}
    assert "venue" in fire.evidence["rules"]


def test_attached_long_article_a_korean_player_among_the_results():
    title, body = fixture_story("attached_golf.txt")
    result = tag_story(title, body)
    assert korea_tags(result.tags) == {"korea_mention"}
    assert terms_of(result)["south_korean"]["flags"] == ["attached"]
    off = tagger_with(attached_factor=1.0).tag(title, body)
    assert off.is_korea


def test_attached_one_line_items():
    aside = tag_story(
        "Hovland wins in Dubai",
        "Viktor Hovland won by one shot on Sunday and South Korean An Byeong-hun was fifth.",
    )
    assert korea_tags(aside.tags) == {"korea_mention"}
    assert "attached" in aside.evidence["rules"]
    firm = tag_story(
        "Shipbuilder wins $1bn order",
        "South Korea's Hanjin Heavy Industries won a $1bn order for container ships on Monday.",
    )
    assert firm.tags[:2] == ["korea", "south_korea"]  # one referent, still the subject
    assert "attached" in firm.evidence["rules"]


def test_list_long_article_one_of_four_partners():
    title, body = fixture_story("list_batteries.txt")
    result = tag_story(title, body)
    assert korea_tags(result.tags) == {"korea_mention"}
    assert "list" in terms_of(result)["hyundai"]["flags"]
    off = tagger_with(name_list_min_others=99).tag(title, body)
    assert off.is_korea


def test_list_one_line_items():
    several = tag_story(
        "Federer, Nadal and Chung Hyeon reach last eight", "All three won in straight sets."
    )
    assert korea_tags(several.tags) == {"korea_mention"}
    assert "list" in several.evidence["rules"]
    korean = tag_story("Samsung, LG and SK Hynix lead rally", "Chipmakers rose on Tuesday.")
    assert korean.tags[:2] == ["korea", "south_korea"]  # all Korean: not one of several
    assert "list" not in korean.evidence["rules"]


def test_example_long_article():
    title, body = fixture_story("example_watches.txt")
    result = tag_story(title, body)
    assert korea_tags(result.tags) == {"korea_mention"}
    assert terms_of(result)["samsung"]["flags"] == ["example"]
    off = tagger_with(example_before="(?!)").tag(title, body)
    assert off.score > result.score


def test_example_one_line_item():
    example = tag_story(
        "Smartwatch sales to double", "Watches such as Samsung's Galaxy Watch track sleep."
    )
    assert korea_tags(example.tags) == {"korea_mention"}
    assert "example" in example.evidence["rules"]
    subject = tag_story("Smartwatch sales to double", "Samsung's Galaxy Watch now tracks sleep.")
    assert subject.tags[:2] == ["korea", "south_korea"]


def test_personal_long_article_a_chef_who_grew_up_in_korea():
    title, body = fixture_story("personal_chef.txt")
    result = tag_story(title, body)
    assert korea_tags(result.tags) == {"korea_mention"}
    assert "personal" in terms_of(result)["south_korea"]["flags"]
    assert result.evidence["sides"]["south"] == 0
    off = tagger_with(personal_before="(?!)").tag(title, body)
    assert off.score > 3 * result.score


def test_personal_one_line_item():
    result = tag_story("Actor marries his Korean girlfriend", "The ceremony was private.")
    assert korea_tags(result.tags) == {"korea_mention"}
    assert "personal" in result.evidence["rules"]
    off = tagger_with(personal_after="(?!)").tag(
        "Actor marries his Korean girlfriend", "The ceremony was private."
    )
    assert off.is_korea


def test_aside_long_article_one_paragraph_about_korea():
    title, body = fixture_story("aside_trams.txt")
    result = tag_story(title, body)
    assert korea_tags(result.tags) == {"korea_mention"}
    assert "aside" in result.evidence["rules"]
    assert terms_of(result)["busan"]["body"] == 1  # counted where it was found
    off = tagger_with(aside_factor=1.0).tag(title, body)
    assert off.is_korea


def test_aside_one_line_item_has_no_body_so_no_aside():
    result = tag_story(
        "City approves tram network", "Seoul, Busan and Daegu built their subways in decades."
    )
    assert result.is_korea
    assert "aside" not in result.evidence["rules"]


def test_romanisations_long_article_variant_spellings_of_officials():
    title, body = fixture_story("variants_envoy.txt")
    result = tag_story(title, body)
    assert korea_tags(result.tags) == {"korea", "north_korea"}
    terms = terms_of(result)
    assert "Kim Gye-kwan" in terms["kim_kye_gwan"]["matched"]  # listed as Kim Kye-gwan
    assert terms["kim_kye_gwan"]["korea"] == "north"


@pytest.mark.parametrize(
    ("title", "entry"),
    [
        ("Kim Kye-kwan arrives in Beijing", "kim_kye_gwan"),
        ("Chang Song-thaek purged", "jang_song_thaek"),
        ("Hyungtaik Lee wins in Adelaide", "lee_hyung_taik"),
        ("Ri Hyung-taik wins in Adelaide", "lee_hyung_taik"),
    ],
)
def test_romanisations_one_line_items(title, entry):
    assert terms_of(tag_story(title, ""))[entry]["title"] == 1


def test_romanisations_shared_by_two_people_are_left_out(tmp_path):
    body = (
        MINIMAL
        + """
[names]
surnames = ["Kim"]
syllables = ["jong", "chong", "cheong", "il"]
spellings = [["j", "ch"], ["o", "eo"]]

[[group]]
name = "people"
source = "a public list of people"
category = "official"
korea = "north"
weight = 2.5
entries = [
  { id = "first", patterns = ["Kim Jong-il"] },
  { id = "second", korea = "south", patterns = ["Kim Chong-il"] },
]
"""
    )
    lexicon = Lexicon.load(write_lexicon(tmp_path, body))
    tagger = Tagger(lexicon)
    assert terms_of(tagger.tag("Kim Chong-il", ""))["second"]["title"] == 1  # listed: kept
    shared = terms_of(tagger.tag("Kim Cheong-il", ""))  # a variant of both people
    assert "first" not in shared
    assert "second" not in shared
    assert terms_of(tagger.tag("Jong-il Kim", ""))["first"]["title"] == 1


def test_every_rule_in_the_evidence_is_documented():
    doc = (REPO_ROOT / "docs" / "tagging.md").read_text(encoding="utf-8")
    for name in RULE_NAMES:
        assert f"`{name}`" in doc, name
    for key in load_lexicon().rules.__dataclass_fields__:
        assert f"`{key}`" in doc, key


# -- the lexicon


def test_default_lexicon_loads_as_one_compiled_regex():
    lexicon = load_lexicon()
    assert isinstance(lexicon.regex, re.Pattern)
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
    lexicon = Lexicon.load(write_lexicon(tmp_path, MINIMAL))
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
        Lexicon.load(path)
    assert str(path) in str(excinfo.value)


def test_duplicate_patterns_across_entries_are_refused(tmp_path):
    body = MINIMAL.replace(
        '{ id = "north_korea", patterns = ["North Korea"] },',
        '{ id = "north_korea", patterns = ["North Korea"] },\n'
        '  { id = "dprk", patterns = ["DPRK", "North-Korea"] },',
    )
    with pytest.raises(LexiconError, match=r"entry 'dprk': key 'patterns': pattern 'North-Korea'"):
        Lexicon.load(write_lexicon(tmp_path, body))


def test_toml_syntax_errors_name_the_file(tmp_path):
    path = write_lexicon(tmp_path, "[[group]\nname = ")
    with pytest.raises(LexiconError, match="not valid TOML"):
        Lexicon.load(path)
    with pytest.raises(LexiconError, match="cannot read"):
        Lexicon.load(tmp_path / "missing.toml")


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
    assert seed.tags[:3] == ["world", "korea", "north_korea"]
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
    assert stats.get_value("tag/south_korea") is None
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
