"""The body extractors that run after trafilatura when its body is empty, short or doubtful,
on small pages built for each case (tests/fixtures/extract/): bodies only in the page's data,
articles split into blocks, link lists and fact boxes inside the article, paragraphs
trafilatura drops."""

from __future__ import annotations

import json

import lxml.html
import pytest
import trafilatura

from crawler.extract import body, extract_article
from crawler.extract.body import _OPTIONS, caption_keys, extract_body, is_superset, parse_html
from crawler.extract.coverage import coverage
from crawler.extract.prune import is_box, is_caption, is_screen_reader_only, prune
from crawler.extract.structured import PageData, json_values, same_headline
from pipelines.clean import clean_text
from tests.conftest import FIXTURES

PAGES = FIXTURES / "extract"
URL = "https://news.example/2026/03/story"


def _page(name: str) -> str:
    return (PAGES / f"{name}.html").read_text(encoding="utf-8")


def _trafilatura_alone(html: str) -> str:
    return trafilatura.extract(html, fast=True, **_OPTIONS) or ""


class _NoReadability:
    """readability-lxml failing on every page: the other fallbacks must do without it."""

    def __init__(self, page):
        raise body.Unparseable("not in this test")


# -- bodies only in the page's data ----------------------------------------------------------
def test_body_only_in_next_data_is_found():
    html = _page("nextdata_only")
    assert _trafilatura_alone(html) == ""  # the page shows no article text
    text = extract_body(html, URL)
    assert text.startswith("Dockers at the city's container port voted on Friday")
    assert "Queues of ships" in text
    assert text.endswith("the backlog cleared within a week.")
    # the related story in the same data is not mixed in
    assert "cod quotas" not in text


def test_body_in_the_data_of_another_story_is_not_taken():
    # the only body in the page's data belongs to a promoted story, not to this headline
    assert extract_body(_page("nextdata_other_story"), URL) is None


def test_body_in_streamed_flight_data_is_found():
    html = _page("flight_data")
    assert _trafilatura_alone(html) == ""
    item = extract_article(html, URL)
    assert item.text.startswith("서울 지하철 노사가 파업 사흘 만인 15일 밤")
    assert item.text.endswith("무정차 통과하기도 했다.")
    assert item.language == "ko"


def test_body_in_an_assigned_state_object_is_joined_from_its_text_blocks():
    text = extract_body(_page("hydration_blocks"), URL)
    paragraphs = text.split("\n\n")
    assert len(paragraphs) == 4
    assert paragraphs[0].startswith("A storm brought heavy snow back to the Alps")
    assert "snowplough" not in text  # the image block's caption is not a text block


def test_paywall_stub_is_replaced_by_the_body_the_page_declares():
    html = _page("paywall_jsonld")
    stub = _trafilatura_alone(html)
    assert len(stub) < 200
    item = extract_article(html, URL)
    assert item.text.startswith(stub)
    assert "about 3,000 jobs" in item.text
    assert "Subscribe" not in item.text


def test_json_values_reads_scripts_of_every_kind():
    values = list(json_values(parse_html(_page("hydration_blocks"))))
    assert values[0]["headlines"]["basic"] == "Storm closes mountain roads as snow returns"
    flight = [v for v in json_values(parse_html(_page("flight_data"))) if isinstance(v, dict)]
    assert flight[0]["article"]["contentHtml"].startswith("<p>서울 지하철")  # "$1f" resolved


def test_broken_json_is_skipped():
    html = _page("nextdata_only").replace('"buildId":"b1"}', '"buildId":"b1"')
    assert PageData(parse_html(html), lambda t: None).candidates == []
    assert "Dockers" not in (extract_body(html, URL) or "")


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (
            "Port strike ends after ten days",
            "Port strike ends after ten days | Harbour Times",
            True,
        ),
        ("Port strike ends after ten days", "PORT STRIKE ENDS, after ten days!", True),
        ("Port strike ends after ten days", "Fishing quotas cut for a third year", False),
        ("The Telegraph", "Starmer suggests he will keep taking gifts", False),
    ],
)
def test_same_headline(a, b, same):
    assert same_headline(a, b) is same


# -- articles split into blocks --------------------------------------------------------------
def test_article_split_into_blocks_by_ads_is_joined(monkeypatch):
    html = _page("split_blocks")
    alone = _trafilatura_alone(html)
    assert "Counting begins" not in alone  # trafilatura stops after the first block
    found = coverage(parse_html(html), alone)
    assert found.doubtful
    assert len(found.missed) == 4
    monkeypatch.setattr(body, "Document", _NoReadability)  # the blocks alone complete it
    text = extract_body(html, URL)
    assert text.startswith("DUBLIN — The two remaining candidates")
    assert "A question of neutrality" in text
    assert text.endswith("the electoral commission said.")
    assert "Advertisement" not in text
    assert "newsletter" not in text


def test_a_whole_body_is_not_doubtful():
    html = _page("split_blocks")
    assert not coverage(parse_html(html), extract_body(html, URL)).doubtful


# -- what the first body keeps that a fallback may not ---------------------------------------
def test_a_caption_does_not_keep_a_fallback_out():
    page = parse_html(
        "<html><body><article><figure><img src='a.jpg'><figcaption>Riot police stand in "
        "front of the parliament building in the capital on Saturday evening.</figcaption>"
        "</figure><p>x</p></article></body></html>"
    )
    first = (
        "Riot police stand in front of the parliament building in the capital on Saturday "
        "evening.\nThousands marched to the parliament on Saturday."
    )
    fallback = (
        "Thousands marched to the parliament on Saturday.\nThe protest was the largest since "
        "the election, organisers said.\nPolice said the march had been peaceful."
    )
    assert not is_superset(fallback, first)
    assert is_superset(fallback, first, besides=caption_keys(page))


# -- link lists and paragraphs trafilatura would drop ----------------------------------------
def test_link_lists_inside_the_article_go_and_its_own_lists_stay():
    html = _page("link_lists")
    assert "Eight all-season tyres tested" in _trafilatura_alone(html)
    text = extract_body(html, URL)
    assert "all-season tyres" not in text
    assert "tyre pressure" not in text
    assert "- Turn upright tyres a quarter turn every month." in text
    assert text.endswith("often including the change itself.")


def test_fact_box_inside_the_article_goes():
    html = _page("factbox")
    assert "Fakta om for tidlig fødsel" in _trafilatura_alone(html)
    text = extract_body(html, URL)
    assert "Fakta om" not in text
    assert "uke 37" not in text
    assert text.endswith("møte økningen neste år.")
    assert len(text.split("\n\n")) == 3


def test_fact_and_info_boxes_are_named_by_class_in_any_case():
    page = lxml.html.fromstring(
        "<div><div class='story FactBox'>a</div><aside class='INFO-BOX x'>b</aside>"
        "<div class='faktabox'>c</div><div class='sidebar box'>d</div>"
        "<div class='Faktabox'>e</div><div class='inbox'>f</div><p class='fact box'>g</p></div>"
    )
    assert [is_box(e) for e in page] == [True, True, True, False, False, False, False]
    assert prune(page) == 3
    assert page.text_content().split() == ["defg"]


def test_a_box_marked_up_as_an_article_inside_the_article_goes_the_article_stays():
    page = lxml.html.fromstring(
        "<html><body><article class='story infobox-layout'><p>story</p>"
        "<article class='article-body-infobox'><p>note</p></article></article></body></html>"
    )
    assert prune(page) == 1
    assert page.text_content().split() == ["story"]


def test_image_captions_inside_the_article_go():
    html = _page("captions")
    assert "Cars cross the harbour bridge" in _trafilatura_alone(html)
    text = extract_body(html, URL)
    assert "Cars cross" not in text
    assert "Photo: Ann Moss" not in text
    assert "Repair crews" not in text
    paragraphs = text.split("\n\n")  # the headline above them is the title's
    assert [p.split()[:2] for p in paragraphs] == [
        ["The", "harbour"],
        ["Engineers", "replaced"],
        ["The", "council"],
        ["Ferries", "that"],
    ]
    assert paragraphs[-1].endswith("usual timetable next week.")


def test_captions_are_named_by_tag_or_class_and_caption_sized():
    long = "A paragraph of the story itself. " * 30
    page = lxml.html.fromstring(
        "<div><figcaption>a</figcaption><p class='wp-caption-text'>b</p>"
        "<div class='Image-Caption'>c</div><div class='articleHeader hasCaption'>d</div>"
        f"<div class='caption'>{long}</div><p class='capital'>f</p></div>"
    )
    assert [is_caption(e) for e in page] == [True, True, True, False, False, False]
    assert prune(page) == 3
    assert page.text_content().strip().startswith("dA paragraph")
    assert page.text_content().endswith("f")


def test_screen_reader_only_text_goes_and_the_words_around_it_stay_apart():
    html = _page("screen_reader")
    alone = _trafilatura_alone(html)
    assert "opens in a new window" in alone
    assert "springMore evening" in alone
    text = extract_body(html, URL)
    assert "opens in a new window" not in text
    assert "More evening events planned" not in text
    assert "(see the results)" in text
    assert "Hours Sundays will run" in text


def test_screen_reader_only_classes():
    page = lxml.html.fromstring(
        "<div><span class='sr-only'>a</span><span class='u-Visually-Hidden'>b</span>"
        "<span class='screen-reader-text'>c</span><span class='hidden'>d</span>"
        "<span class='screen-title'>e</span></div>"
    )
    assert [is_screen_reader_only(e) for e in page] == [True, True, True, False, False]


def test_paragraph_opening_with_an_empty_bold_element_is_kept():
    html = _page("empty_inline")
    assert "first memorial plaque" not in _trafilatura_alone(html)
    text = extract_body(html, URL)
    assert "The first memorial plaque, unveiled that day" in text
    assert "1932: the stadium hosted the Olympic Games" in text


# -- and the clean step after it -------------------------------------------------------------
def test_teasers_and_notices_left_in_a_body_are_cleaned_and_recorded():
    text = (
        "Dockers voted on Friday to accept a pay offer and end the strike.\n\n"
        "Lesen Sie auch: Hafenarbeiter streiken erneut\n\n"
        "The union said 71 percent of members backed the deal.\n\n"
        "Ein Klick für den Datenschutz\n\n"
        "Employers said the backlog would be cleared within a week.\n\n"
        "Subscribe to continue reading."
    )
    result = clean_text(text, language="en")
    assert [p["rule"] for p in result.removed] == ["related", "embed_notice", "paywall"]
    assert result.text.count("\n\n") == 2
    json.dumps(result.removed)
