"""Tests for the Korea tagger's rules: what a found term means where it stands.

Each rule is exercised on a full-length article (tests/fixtures/tag/) and on a one-line item;
the texts are written for these tests.
"""

from __future__ import annotations

import tomllib

import pytest

from pipelines.tag import (
    DEFAULT_LEXICON_FILE,
    REPO_ROOT,
    Tagger,
    lexicon_from_dict,
    load_lexicon,
    read_lexicon,
    tag_story,
)
from pipelines.tag.rules import RULE_NAMES
from tests.test_tag import MINIMAL, fixture_story, korea_tags, write_lexicon

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


# -- who acts, where, and in passing: each rule on a full-length article and a one-line item
#
# Each long-article test also tags the story with the rule switched off ([rules] changed in a
# copy of the default lexicon), so it shows that the rule is what decides.


def tagger_with(**rules: object) -> Tagger:
    data = tomllib.loads((REPO_ROOT / DEFAULT_LEXICON_FILE).read_text(encoding="utf-8"))
    data["rules"].update(rules)
    return Tagger(lexicon_from_dict(data))


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
    lexicon = read_lexicon(write_lexicon(tmp_path, body))
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
