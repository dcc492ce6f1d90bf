"""The clean step: clean_text on real-world text, the rules file, learned boilerplate and
CleanPipeline built from a crawler."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from pathlib import Path
from typing import Any

import pytest
from scrapy.exceptions import DropItem, NotConfigured
from scrapy.utils.misc import build_from_crawler
from scrapy.utils.test import get_crawler

from crawler.extract.body import extract_body
from crawler.items import ArticleItem
from crawler.storage.boilerplate import SqliteBoilerplate
from pipelines.clean import (
    CleanPipeline,
    RulesError,
    boilerplate_candidates,
    clean_text,
    default_rules,
    headline_spans,
    is_long_line,
    key_form,
    line_key,
    load_rules,
    parse_rules,
    required_strings,
    text_form,
    text_keys,
    tidy_spacing,
)
from tests.conftest import FIXTURES

CLEAN = FIXTURES / "clean"
SEED_TITLE = (
    "North Korea has accused the United States of building a NATO-like military alliance in Asia."
)
REPOST_PAGES = ["blogger_en", "wordpress_en", "blogger_ko", "wordpress_ko"]
ARTICLE = (
    "Officials in Seoul said the talks would resume next month after a pause of two years.\n\n"
    "{line}\n\n"
    "The ministry said both sides had agreed to keep the military hotline open until then.\n\n"
    "Analysts said the meeting was the clearest sign yet of a thaw between the two Koreas."
)


def _expected(path: Path) -> str:
    """A fixture text file's content without the newline every text file ends with."""
    return path.read_text(encoding="utf-8").removesuffix("\n")


# -- the seed example --------------------------------------------------------------------------
@pytest.mark.parametrize("title", [None, SEED_TITLE])
def test_seed_example_becomes_expected_body(title):
    raw = (CLEAN / "seed_raw.txt").read_text(encoding="utf-8")
    result = clean_text(raw, title=title)
    assert result.text == _expected(CLEAN / "seed_expected_body.txt")
    footer = [p for p in result.removed if p["rule"] not in {"headline", "repeated_paragraph"}]
    assert [p["text"][:23] for p in footer] == [
        "Post a Comment",
        "Comment in the comment ",
        "Previous Post Next Post",
        "Join Us On Telegram To ",
    ]
    # the lede was there twice (once with a leading no-break space): exactly one copy went
    lede = [p for p in result.removed if p["rule"] in {"headline", "repeated_paragraph"}]
    assert [p["text"] for p in lede] == [SEED_TITLE]
    json.dumps(result.removed)  # JSON-serialisable as stored in articles.removed


# -- re-post pages: HTML -> extract_body -> clean_text ----------------------------------------
@pytest.mark.parametrize("name", REPOST_PAGES)
def test_repost_page_is_cleaned_to_the_article(name):
    html = (CLEAN / f"{name}.html").read_text(encoding="utf-8")
    case = json.loads((CLEAN / f"{name}.json").read_text(encoding="utf-8"))
    expected = _expected(CLEAN / f"{name}.expected.txt")
    body = extract_body(html, case["url"])
    result = clean_text(body, title=case["title"])
    # every article sentence kept, in order, and nothing else
    assert result.text == expected
    # every spam line removed, each by the family meant for it, in document order
    assert result.removed == case["removed"]
    for piece in case["removed"]:
        assert piece["text"] in body
        kept = 1 if piece["rule"] == "repeated_paragraph" else 0  # the first copy stays
        assert result.text.count(piece["text"]) == kept


def test_repost_fixtures_cover_every_family():
    fired = set()
    for name in REPOST_PAGES:
        fired |= {p["rule"] for p in json.loads((CLEAN / f"{name}.json").read_text())["removed"]}
    # reading time, calls to action, paywalls, appeals, embeds, author notes, cookie notices,
    # app prompts and section labels are news-site lines, download notices one line each
    # (SPAM_LINES, test_author_note_at_the_end_is_removed, the head-line test)
    expected = set(default_rules().names) - {
        "reading_time",
        "call_to_action",
        "paywall",
        "support_appeal",
        "embed_notice",
        "author_bio",
        "cookie_consent",
        "app_promo",
        "section_label",
        "download_notice",
    }
    assert expected <= fired, expected - fired


# -- families, one line at a time -----------------------------------------------------------
SPAM_LINES = [
    ("Post a Comment", "comment_widget"),
    ("12 Comments", "comment_widget"),
    ("Be the first to comment!", "comment_widget"),
    ("댓글 쓰기", "comment_widget"),
    ("« Previous Post | Next Post »", "post_navigation"),
    ("Newer Post Older Post Home", "post_navigation"),
    ("이전글 다음글", "post_navigation"),
    ("Join Us On Telegram To Get Live Updates", "social_join"),
    ("👉 JOIN OUR WHATSAPP CHANNEL for breaking news!!! 🔥🔥", "social_join"),
    ("텔레그램 채널 구독하기", "social_join"),
    ("Follow us on Twitter and Facebook", "follow_us"),
    ("Follow Newsbeat on Instagram, Facebook, Twitter and YouTube.", "follow_us"),
    ("Share this: Facebook Twitter WhatsApp Email", "share_bar"),
    ("공유하기", "share_bar"),
    ("This site has pop up ads which means a new tab opens once you click.", "popup_ads"),
    ("Please disable your ad blocker to continue.", "popup_ads"),
    ("ADVERTISEMENT", "advertisement"),
    ("- Advertisement -", "advertisement"),
    ("Story continues below advertisement", "advertisement"),
    ("광고", "advertisement"),
    ("Also read: Seoul's housing market cools as rates bite", "related"),
    ("READ MORE: Kim Jong Un inspects new destroyer", "related"),
    ("[Related: Japan lifts export curbs]", "related"),
    ("관련기사", "related"),
    ("Sign up for our daily newsletter to get the top stories.", "newsletter"),
    ("Get the day's top headlines delivered to your inbox every morning.", "newsletter"),
    ("This article was originally published on The Conversation.", "syndication"),
    ("Copyright © 2024 Example Media Inc. All rights reserved.", "copyright"),
    ("ⓒ 연합뉴스", "press_footer_ko"),
    ("<저작권자 ⓒ 한국일보, 무단 전재 및 재배포 금지>", "press_footer_ko"),
    ("무단 전재 및 재배포 금지", "press_footer_ko"),
    ("홍길동 기자 gildong@yna.co.kr", "reporter_contact"),
    ("Reporting by Hyonhee Shin; Editing by Ed Davies", "reporter_contact"),
    ("Amy Smith may be reached at asmith@example.com.", "reporter_contact"),
    ("Kim Jong Un at a rally in Pyongyang. (AP Photo/Ahn Young-joon)", "photo_credit"),
    ("Photo: Yonhap", "photo_credit"),
    ("[사진=연합뉴스]", "photo_credit"),
    ("Tags: North Korea, Missiles, Security", "tags"),
    ("#NorthKorea #Seoul", "tags"),
    ("Tempo de leitura: 3 minutos", "reading_time"),
    ("5 min read", "reading_time"),
    ("Click here to download the full report now.", "call_to_action"),
    ("[button link=”/subscribe/”]Send us your story[/button]", "call_to_action"),
    ("Lesen Sie auch: Regierung plant neue Regeln für Mieten", "related"),
    ("À lire aussi La Bourse de Séoul termine en hausse", "related"),
    ("Les også: Slik blir været i helgen", "related"),
    ("Czytaj więcej", "related"),
    ("【関連記事】", "related"),
    ("Get the latest news from example.com in your inbox.", "newsletter"),
    ("For the latest stories from around the world, sign up for our newsletters.", "newsletter"),
    ("Lesedauer: 4 Minuten", "reading_time"),
    ("Subscribe to continue reading.", "paywall"),
    ("This article is only available to subscribers.", "paywall"),
    ("Tu suscripción se está usando en otro dispositivo", "paywall"),
    ("2 Wochen kostenlos testen", "paywall"),
    (
        "Hat Ihnen dieser Artikel gefallen? Dann unterstützen Sie uns mit einer Spende.",
        "support_appeal",
    ),
    ("Did you enjoy this article? Support our journalism.", "support_appeal"),
    ("Fehler gefunden? Jetzt melden.", "support_appeal"),
    ("Ein Klick für den Datenschutz", "embed_notice"),
    ("Link zum YouTube-Inhalt", "embed_notice"),
    ("Sanctions were tightened at the summit in Brussels. 18.04.2024 | 0:21 min", "embed_notice"),
    # the separator after a short label may be a colon, a bar, a dash, a guillemet, an arrow
    ("Trending » Seoul subway fares to rise in June", "related"),
    ("You may like – Busan film festival opens with record crowds", "related"),  # noqa: RUF001
    ("TOPICS | Economy, Energy", "tags"),
    ("Image via Yonhap", "photo_credit"),
    ("Text by Kim Min-ji; edited by Lee Jun-ho", "reporter_contact"),
    ("[한빛일보] 김민지 기자", "reporter_contact"),
    # notification prompts, teasers ending in a call to click, credits naming a web address
    ("🔕 Enable push notifications and never miss a headline!", "call_to_action"),
    ("Tap the bell icon to hear about new posts first", "call_to_action"),
    ("Port strike enters its third week (tap here to read more)", "related"),
    ("Seoul unveils night bus routes | click to read", "related"),
    ("Image credit: pixabay.com", "photo_credit"),
    ("Liked this post? Forward it to a friend who would enjoy it.", "share_bar"),
    ("Follow the Harbour Daily group on Viber for morning briefs.", "social_join"),
    ("By registering you consent to our terms and to occasional offers.", "newsletter"),
    ("김민지 기자 = minji@harbour.example", "reporter_contact"),
    (
        "We and our 812 partners store and/or access information on a device, such as cookies.",
        "cookie_consent",
    ),
    ("By continuing to browse the site you agree to our use of cookies.", "cookie_consent"),
    ("Accept all cookies", "cookie_consent"),
    ("Download the KoreaWire app for breaking news alerts", "app_promo"),
    ("Available on the App Store and Google Play", "app_promo"),
    ("Ads by Google", "advertisement"),
    ("Please whitelist this site in your ad blocker to support us.", "popup_ads"),
    ("Add KoreaWire as a preferred source on Google News", "follow_us"),
    ("Follow our WhatsApp channel for breaking updates", "social_join"),
    ("Want stories like this in your inbox? Sign up here.", "newsletter"),
    ("Spotted an error? Leave a comment below and our editors will fix it.", "comment_widget"),
    ("Get breaking news alerts on WhatsApp: text JOIN to our number", "social_join"),
    # invitations to a community or channel, a handle to subscribe to, calls to read in the app
    ("Tap here to become part of our Harbour Daily community – it's free!", "social_join"),  # noqa: RUF001
    ("Be part of our Viber community for the morning briefing", "social_join"),
    ("Join our readers' circle today", "social_join"),
    ("Can't wait for the news? Subscribe to @harbourdaily on Telegram.", "social_join"),
    ("Open in app", "app_promo"),
    ("Read this story in the Harbour Daily app for the full experience", "app_promo"),
    ("Get the app", "app_promo"),
    # broken download links or buttons and whom to tell
    ("If a download link here is dead, leave us a note and we'll fix it.", "download_notice"),
    (
        "Download button not working? Report it below and the admin re-uploads it.",
        "download_notice",
    ),
    (
        "Found a broken download link? Tell us in the comments and we'll replace it.",
        "download_notice",
    ),
    ("Article continues below advertisement", "advertisement"),
    ("Ad · Content continues below", "advertisement"),
]


@pytest.mark.parametrize(("line", "rule"), SPAM_LINES)
def test_spam_line_between_paragraphs_is_removed(line, rule):
    text = ARTICLE.format(line=line)
    result = clean_text(text)
    assert result.removed == [{"text": line, "rule": rule}]
    assert result.text == ARTICLE.replace("{line}\n\n", "")


def test_author_note_at_the_end_is_removed():
    note = "Jane Park is a senior correspondent covering North Korea for the Herald."
    result = clean_text(ARTICLE.format(line="Talks resume.") + "\n\nThe author\n\n" + note)
    assert [p["rule"] for p in result.removed] == ["author_bio", "author_bio"]
    # the same sentence inside the article is not the author's note
    assert clean_text(ARTICLE.format(line=note)).removed == []


@pytest.mark.parametrize(
    ("line", "rule"),
    [
        ("By Jane Park", "byline"),
        ("By Jane Park ·", "byline"),
        ("Written by Kim Min-ji |", "byline"),
        ("Politics", "section_label"),
        ("North Korea", "section_label"),
        ("경제", "section_label"),
        ("Updated: Nov 19, 2019 9:42 a.m. ET", "dateline"),
        ("sexta-feira, 22 de outubro de 2010 às 20:13", "dateline"),
        ("입력 2024.05.23 14:05 수정 2024.05.23 16:30", "dateline"),
        ("VIA | koreaherald.com", "syndication"),
    ],
)
def test_head_lines_before_the_first_sentence_are_removed(line, rule):
    text = ARTICLE.replace("{line}\n\n", "")
    assert clean_text(f"{line}\n\n{text}").removed == [{"text": line, "rule": rule}]
    # the same line inside the article is not the head: it stays
    assert clean_text(ARTICLE.format(line=line)).removed == []


@pytest.mark.parametrize(
    "sentence",
    [
        "Pyongyang was invited to join the talks, but its foreign ministry declined to comment.",
        (
            "Protesters organised through Telegram channels and urged supporters to subscribe "
            "to independent outlets instead of state television."
        ),
        "Follow-up inspections found that the plant had resumed work, a UN report said.",
        (
            "Readers who comment on the ministry's website must now register with a phone "
            "number, and critics say the rule is meant to deter dissent."
        ),
        "Copyright holders in South Korea won a ruling against the streaming site on Monday.",
        "The share of exports to China fell to 19 percent, the lowest since 2004.",
        "업계는 텔레그램 등을 통해 유포된 명단이 사실과 다르다며 정부에 공식 확인을 요구했다.",
        "전문가들은 댓글과 구독자 질문에 답하며 금리 인하 기대감이 커졌다고 말했다.",
        "Lesen Sie auch die Stellungnahme des Ministeriums, forderte die Opposition am Montag.",
        "Subscribers to the service will pay more from March, the company said on Tuesday.",
        "Readers who want to support the campaign can donate at any post office, he said.",
        (
            "The regulator fined the company for placing cookies on users' devices without "
            "their consent, officials said."
        ),
        "Open the Settings app and tap General to see which version is installed.",
        "Pop-up ads that users cannot close will be banned from January, the ministry said.",
        "Entering the zone without permission is prohibited, police said on Monday.",
        "The story was first reported by the Yonhap wire service on Sunday evening.",
        "Seoul – North Korea fired two short-range missiles into the sea on Tuesday.",  # noqa: RUF001
        "Apple removed the app from its App Store in China after a request by regulators.",
        "Kim, who covers North Korea for a Seoul daily, said the reports were unconfirmed.",
        "Residents were asked to leave a note under the door if they saw the missing dog.",
        "Users can turn on notifications in the settings menu, the company said.",
        "Police asked residents to share it with anyone who may have seen the car.",
        "Officials urged people to follow the ministry's page on Facebook for updates.",
        "The mayor told reporters to click here to read the full statement, which drew laughs.",
        "Residents were urged to join the community group on WhatsApp to share flood reports.",
        "Protesters used Telegram to become part of a growing community of dissidents, he said.",
        '"Join our community," the pastor told a crowd of two thousand people in Busan.',
        "Analysts who follow @rybar on Telegram said the channel had predicted the attack.",
        "The ministry told people to read the guidance in the app before travelling.",
        "Users who open the app will see a new button for reporting scams, the bank said.",
        "If the download link fails, users should contact their bank, the regulator said.",
        "Links to the report were broken for hours, and the agency apologised on Tuesday.",
        "When the file was leaked, officials let us know at once, the lawyer said on Monday.",
        "Publishers say that if you are blocking ads, you are taking content without paying.",
        "The station is listener-supported and carries no advertising, its director said.",
        "Members can join as a patron from $10 a month, the museum said in a statement.",
        "Forward it to them now, the commander told his officers, according to the transcript.",
        "Engineers found a broken link in the cable and told us the repair would take a week.",
        "The content continues to draw crowds below the old city walls, organisers said.",
    ],
)
def test_prose_with_trigger_words_survives(sentence):
    result = clean_text(ARTICLE.format(line=sentence))
    assert result.removed == []
    assert sentence in result.text


def test_matching_ignores_case_punctuation_emoji_and_invisible_spaces():
    for line in [
        "JOIN\u00a0US ON\u200b TELEGRAM!!! 🚀🚀",
        "join us on telegram",
        "Join  us  on  Telegram 👇",
    ]:
        assert clean_text(ARTICLE.format(line=line)).removed[0]["rule"] == "social_join"
    assert line_key("Follow us on Twitter!") == line_key("FOLLOW\u00a0US ON TWITTER 👉")
    assert line_key("Follow us on Twitter") != line_key("Follow us on Facebook")


# -- footer, headline, repeats, normalisation --------------------------------------------------
def test_footer_is_trimmed_up_to_the_last_sentence():
    text = (
        "The two leaders agreed to meet again in the spring.\n\n"
        "Their aides said a date would be set within weeks.\n\n"
        "Post a Comment\n\n"
        "Home\n\n"
        "About us\n\n"
        "Share this:\n\n"
        "Contact"
    )
    result = clean_text(text)
    assert result.text == (
        "The two leaders agreed to meet again in the spring.\n\n"
        "Their aides said a date would be set within weeks."
    )
    assert [p["rule"] for p in result.removed] == [
        "comment_widget",
        "comment_widget",
        "comment_widget",
        "share_bar",
        "share_bar",
    ]


@pytest.mark.parametrize(
    ("line", "rule"),
    [
        ("This story was fetched by an automated system from partner sites.", "syndication"),
        ("Harbour Daily accepts no liability for the accuracy of reader posts.", "syndication"),
        ("Disclaimer: views in reader letters are not ours.", "syndication"),
        ("Excerpted from the Busan Ilbo", "syndication"),
    ],
)
def test_disclaimers_below_the_article_are_removed(line, rule):
    text = ARTICLE.replace("{line}\n\n", "")
    assert clean_text(f"{text}\n\n{line}").removed == [{"text": line, "rule": rule}]


@pytest.mark.parametrize(
    "sentence",
    [
        "The company said it takes no responsibility for the content of the leaked report.",
        "The ministry said the report was compiled by an automated system last year.",
    ],
)
def test_a_last_sentence_about_responsibility_or_automation_stays(sentence):
    text = ARTICLE.replace("{line}\n\n", "") + "\n\n" + sentence
    assert clean_text(text).removed == []


def test_a_brief_without_a_full_stop_between_spam_lines_keeps_its_line():
    brief = "Organisers of the Busan marathon look back on twenty years of the race"
    text = (
        "Get the Harbour Daily app for breaking news alerts on the go.\n\n"
        f"{brief}\n\n"
        "This blog shows pop-up ads: close any new tab that opens and carry on.\n\n"
        "Post a Comment"
    )
    result = clean_text(text, title="BUSAN MARATHON TURNS TWENTY")
    assert result.text == brief
    assert [p["rule"] for p in result.removed] == ["app_promo", "popup_ads", "comment_widget"]
    # without a headline that names it, a line between spam lines is part of the footer
    assert clean_text(text).text == ""
    assert clean_text(text, title="Seoul subway fares rise").text == ""
    # a story of list lines only (a calendar) keeps all of them, not only the named ones
    calendar = (
        "Busan marathon calendar 2027\n\nRound 1: March 3, Haeundae\n\nRound 2: May 5, Gwangan"
    )
    result = clean_text(
        f"Post a Comment\n\n{calendar}\n\nPost a Comment", title="Busan marathon 2027"
    )
    assert result.text == calendar


def test_short_last_lines_stay_when_no_footer_follows():
    text = (
        "The festival runs until Sunday at three venues.\n\n"
        "Venues:\n\n"
        "Seoul Arts Center\n\n"
        "Sejong Center"
    )
    assert clean_text(text).text == text
    # a footer below them takes only what is under it
    result = clean_text(text + "\n\nPost a Comment\n\nHome")
    assert result.text == text


def test_headline_repeated_in_the_body_is_removed():
    text = "Samsung profit triples on AI memory demand\n\n" + ARTICLE.replace("{line}\n\n", "")
    result = clean_text(text, title="Samsung profit triples on AI memory demand | Example News")
    assert result.removed == [
        {"text": "Samsung profit triples on AI memory demand", "rule": "headline"}
    ]
    assert clean_text(text).removed == []


def test_lede_that_reads_like_the_title_is_kept_when_not_repeated():
    text = SEED_TITLE + "\n\nAccording to the North Korean government, it must strengthen."
    assert clean_text(text, title=SEED_TITLE).text == text


def test_a_lede_cut_short_and_used_as_the_title_is_kept():
    # a re-post's title is its lede cut off mid-sentence: longer than a headline, so it reads
    # as the story's first sentence, not as a headline to remove
    lede = (
        "The port authority said on Tuesday that container traffic will not recover this year "
        "unless shipping lines return to the routes they left in the spring and"
    )
    text = f"{lede}\n\nPost a Comment"
    assert clean_text(text, title=lede).text == lede
    short = "Port traffic will not recover this year"
    assert clean_text(f"{short}\n\n{SEED_TITLE}.", title=short).text == f"{SEED_TITLE}."


def test_repeated_paragraph_keeps_the_first_copy_but_lists_repeat_freely():
    lede = "The central bank held its base rate at 3.5 percent for a seventh straight meeting."
    text = f"{lede}\n\nMarkets had expected the decision.\n\n{lede}"
    result = clean_text(text)
    assert result.text == f"{lede}\n\nMarkets had expected the decision."
    assert result.removed == [{"text": lede, "rule": "repeated_paragraph"}]
    recipe = "Day 1\n\n1 cup rice, 1 egg, 1 tsp. oil\n\nDay 2\n\n1 cup rice, 1 egg, 1 tsp. oil"
    assert clean_text(recipe).text == recipe


def test_normalisation_touches_only_whitespace_and_invisible_characters():
    raw = (
        "\u00a0First  paragraph\u200b with\u00a0a no-break space.\r\n"
        "Same paragraph, second line — “quoted”.\n\n\n\n"
        "\ufeffSecond paragraph: 3½ % «kept», e.g. \u2018this\u2019 …\n\n   \n\n"
        "Emoji stay 🏳️‍🌈 and so does the Korean 한국어 text."
    )
    expected = (
        "First paragraph with a no-break space.\n"
        "Same paragraph, second line — “quoted”.\n\n"
        "Second paragraph: 3½ % «kept», e.g. \u2018this\u2019 …\n\n"
        "Emoji stay 🏳️‍🌈 and so does the Korean 한국어 text."
    )
    assert tidy_spacing(raw) == expected
    result = clean_text(raw)
    assert result.text == expected
    assert result.removed == []


def test_empty_and_spam_only_texts():
    assert clean_text("").text == ""
    assert clean_text(None).text == ""
    result = clean_text("Post a Comment\n\nPrevious Post Next Post")
    assert result.text == ""
    assert len(result.removed) == 2


# -- learned boilerplate -----------------------------------------------------------------------
PROMO = "Watch our exclusive interviews on KoreaWire TV every Friday"


def _article(n: int, promo: bool = True) -> str:
    body = (
        f"Story number {n} begins with a sentence about the economy of the peninsula.\n\n"
        f"It continues with a second sentence about exports in month {n}."
    )
    return body + (f"\n\n{PROMO}" if promo else "")


def test_learned_boilerplate_pure_function():
    text = _article(1)
    assert clean_text(text).removed == []
    result = clean_text(text, boilerplate={line_key(PROMO)})
    assert result.removed == [{"text": PROMO, "rule": "learned_boilerplate"}]
    # lines up to 80 words are candidates (a longer one needs one story more); a longer
    # paragraph never is
    long_line = " ".join(["word"] * 40)
    candidates = boilerplate_candidates(text + "\n\n" + long_line + "\n\n" + "word " * 90)
    assert line_key(PROMO) in candidates
    assert line_key(long_line) in candidates
    assert is_long_line(long_line)
    assert not is_long_line(PROMO)
    assert all(len(line.split()) <= 80 for line in candidates.values())


def _pipeline(tmp_path: Path, **settings) -> CleanPipeline:
    settings = {"DB_PATH": str(tmp_path / "news.db"), "VALIDATE_MIN_CHARS": 40, **settings}
    crawler = get_crawler(settings_dict=settings)
    pipeline = build_from_crawler(CleanPipeline, crawler)
    pipeline.open_spider()
    return pipeline


def _through(pipeline: CleanPipeline, item: Any) -> Any:
    """The item through the clean step and out of the item pipeline (no store step here:
    the story is known by its cleaned text)."""
    item = pipeline.process_item(item)
    pipeline.item_scraped(item)
    return item


def _item(n: int, *, domain: str = "koreawire.example", promo: bool = True) -> ArticleItem:
    return ArticleItem(
        url=f"https://{domain}/news/{n}.html",
        domain=domain,
        title=f"Story {n}",
        text=_article(n, promo),
    )


def test_line_on_three_stories_is_removed_on_the_fourth(tmp_path):
    pipeline = _pipeline(tmp_path)
    try:
        for n in (1, 2, 3):
            item = _through(pipeline, _item(n))
            assert PROMO in item.text
        fourth = _through(pipeline, _item(4))
        assert PROMO not in fourth.text
        assert fourth.removed == [{"text": PROMO, "rule": "learned_boilerplate"}]
        # learned per domain: another site's identical line is not touched
        other = _through(pipeline, _item(5, domain="other.example"))
        assert PROMO in other.text
        stats = pipeline.crawler.stats
        assert stats.get_value("clean/removed/learned_boilerplate") == 1
    finally:
        asyncio.run(pipeline.close_spider())
    # the counts persist in the SQLite file: a new run starts knowing the line
    again = _pipeline(tmp_path)
    try:
        assert PROMO not in _through(again, _item(6)).text
    finally:
        asyncio.run(again.close_spider())


def test_never_learns_from_copies_of_one_story(tmp_path):
    pipeline = _pipeline(tmp_path, CLEAN_BOILERPLATE_MIN_ARTICLES=2)
    try:
        for n in range(5):  # one story at five URLs is one story
            copy = _item(1)
            copy.url = f"https://koreawire.example/copy-{n}.html"
            assert PROMO in _through(pipeline, copy).text
        assert PROMO in _through(pipeline, _item(2)).text  # seen on 1 other story
        assert PROMO not in _through(pipeline, _item(3)).text  # on 2 others: learned
    finally:
        asyncio.run(pipeline.close_spider())
    with pytest.raises(ValueError, match="at least 2"):
        build_from_crawler(
            CleanPipeline, get_crawler(settings_dict={"CLEAN_BOILERPLATE_MIN_ARTICLES": 1})
        )


def test_learning_can_be_switched_off(tmp_path):
    pipeline = _pipeline(tmp_path, CLEAN_LEARN=False)
    try:
        assert pipeline.boilerplate is None
        for n in range(1, 6):
            assert PROMO in _through(pipeline, _item(n)).text
    finally:
        asyncio.run(pipeline.close_spider())
    assert not (tmp_path / "news.db").exists()


def test_sightings_go_through_the_archive(tmp_path):
    archive = SqliteBoilerplate.acquire(tmp_path / "news.db")
    try:
        for n in (1, 2, 3):
            archive.record("a.example", f"{n}", boilerplate_candidates(PROMO), cap=3)
        archive.record("a.example", "3", boilerplate_candidates(PROMO), cap=4)  # same story
        assert archive.frequent("a.example", [line_key(PROMO)], min_articles=3) == {line_key(PROMO)}
        assert archive.frequent("a.example", [line_key(PROMO)], min_articles=4) == set()
    finally:
        archive.release()


# -- the pipeline --------------------------------------------------------------------------------
def test_pipeline_sets_fields_and_stats(tmp_path):
    pipeline = _pipeline(tmp_path)
    raw = (CLEAN / "seed_raw.txt").read_text(encoding="utf-8")
    item = ArticleItem(
        url="https://repost.example/2022/06/nato.html",
        domain="repost.example",
        title=SEED_TITLE,
        language="en",
        text=raw,
    )
    try:
        out = pipeline.process_item(item)
    finally:
        asyncio.run(pipeline.close_spider())
    assert out is item
    assert item.text == _expected(CLEAN / "seed_expected_body.txt")
    assert item.text_raw == raw
    assert [p["rule"] for p in item.removed] == [
        "headline",
        "comment_widget",
        "comment_widget",
        "post_navigation",
        "social_join",
    ]
    stats = pipeline.crawler.stats
    assert stats.get_value("clean/removed/comment_widget") == 2
    assert stats.get_value("clean/removed/post_navigation") == 1
    assert stats.get_value("clean/removed/social_join") == 1
    assert stats.get_value("clean/removed/headline") == 1
    assert stats.get_value("clean/items_changed") == 1
    assert stats.get_value("clean/removed/learned_boilerplate") is None


def test_pipeline_counts_nothing_for_a_clean_article(tmp_path):
    pipeline = _pipeline(tmp_path)
    text = ARTICLE.replace("{line}\n\n", "")
    try:
        item = pipeline.process_item({"url": "https://x.example/a", "text": text})
        empty = pipeline.process_item({"url": "https://x.example/b", "text": None})
    finally:
        asyncio.run(pipeline.close_spider())
    assert item["text"] == text
    assert item["removed"] == []
    assert item["text_raw"] == text
    assert empty["text"] is None
    assert not any(k.startswith("clean/") for k in pipeline.crawler.stats.get_stats())


def test_pipeline_drops_a_text_emptied_by_its_rules(tmp_path, caplog):
    spam = "Post a Comment\n\nSubscribe"
    pipeline = _pipeline(tmp_path)
    try:
        with pytest.raises(DropItem, match="too_short after cleaning"):
            pipeline.process_item(ArticleItem(url="https://x.example/spam", text=spam))
    finally:
        asyncio.run(pipeline.close_spider())
    assert pipeline.crawler.stats.get_value("clean/dropped/too_short") == 1
    # without the validate step, nothing is dropped: the text is left empty, and logged
    pipeline = _pipeline(tmp_path, VALIDATE_ENABLED=False)
    try:
        with caplog.at_level(logging.WARNING, logger="pipelines.clean"):
            item = pipeline.process_item(ArticleItem(url="https://x.example/spam", text=spam))
    finally:
        asyncio.run(pipeline.close_spider())
    assert item.text == ""
    assert item.text_raw == spam
    assert "nothing left" in caplog.text
    assert pipeline.crawler.stats.get_value("clean/emptied") == 1


def test_not_configured_when_disabled():
    crawler = get_crawler(settings_dict={"CLEAN_ENABLED": False})
    with pytest.raises(NotConfigured):
        build_from_crawler(CleanPipeline, crawler)


def test_rules_file_setting(tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text(
        "include_default = true\n[families.house_promo]\npatterns = ['koreawire tv .*']\n",
        encoding="utf-8",
    )
    pipeline = _pipeline(tmp_path, CLEAN_RULES_FILE=str(rules), CLEAN_LEARN=False)
    try:
        item = pipeline.process_item(
            {"url": "https://x.example/a", "text": ARTICLE.format(line="KoreaWire TV every Friday")}
        )
        spam = pipeline.process_item(
            {"url": "https://x.example/b", "text": ARTICLE.format(line="Post a Comment")}
        )
    finally:
        asyncio.run(pipeline.close_spider())
    assert item["removed"] == [{"text": "KoreaWire TV every Friday", "rule": "house_promo"}]
    assert spam["removed"][0]["rule"] == "comment_widget"  # the default families still apply
    assert pipeline.crawler.stats.get_value("clean/removed/house_promo") == 1


# -- rules validation -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            {"families": {"spam": {"patterns": ["(unclosed"]}}},
            r"\[families\.spam\] key 'patterns\[0\]': bad regex",
        ),
        (
            {"families": {"spam": {"patterns": ["ok", "[z-a]"]}}},
            r"\[families\.spam\] key 'patterns\[1\]': bad regex",
        ),
        (
            {"families": {"spam": {"patterns": ["x"], "colour": "red"}}},
            r"\[families\.spam\]: unknown key 'colour'",
        ),
        (
            {"families": {"spam": {"patterns": ["x"], "where": "middle"}}},
            r"\[families\.spam\] key 'where'",
        ),
        (
            {"families": {"spam": {"patterns": ["x"], "max_words": 0}}},
            r"\[families\.spam\] key 'max_words'",
        ),
        (
            {"families": {"spam": {"patterns": ["x"], "block": "yes"}}},
            r"\[families\.spam\] key 'block'",
        ),
        ({"families": {"spam": {"patterns": []}}}, r"\[families\.spam\] key 'patterns'"),
        (
            {"families": {"spam": {"patterns": [{"re": "x", "form": "html"}]}}},
            r"\[families\.spam\] key 'patterns\[0\]': form",
        ),
        (
            {"families": {"spam": {"patterns": [{"regex": "x"}]}}},
            r"\[families\.spam\] key 'patterns\[0\]': unknown key 'regex'",
        ),
        (
            {"families": {"headline": {"patterns": ["x"]}}},
            r"\[families\.headline\]: 'headline' is a built-in",
        ),
        ({"families": {"Bad Name": {"patterns": ["x"]}}}, r"\[families\.Bad Name\]"),
        ({"families": {"spam": ["x"]}}, r"\[families\.spam\]: must be a table"),
        ({"families": {}}, r"at least one family"),
        ({"version": 2, "families": {"spam": {"patterns": ["x"]}}}, r"key 'version'"),
        (
            {"rules": [], "families": {"spam": {"patterns": ["x"]}}},
            r"unknown top-level key 'rules'",
        ),
    ],
)
def test_invalid_rules_are_refused_with_family_and_key(doc, message):
    with pytest.raises(RulesError, match=message):
        parse_rules(doc, source="test.toml")


def test_rules_file_errors_name_the_file(tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text("[families.spam\npatterns = ['x']\n", encoding="utf-8")
    with pytest.raises(RulesError, match=r"broken\.toml: not valid TOML"):
        load_rules(broken)
    with pytest.raises(RulesError, match="cannot read"):
        load_rules(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[families.spam]\npatterns = ['ok', '(?P<x>a)(?P<x>b)']\n", encoding="utf-8")
    with pytest.raises(RulesError, match=r"bad.toml: \[families\.spam\] key 'patterns\[1\]'"):
        load_rules(bad)
    with pytest.raises(RulesError):
        build_from_crawler(CleanPipeline, get_crawler(settings_dict={"CLEAN_RULES_FILE": str(bad)}))


def test_project_rules_load_and_every_family_is_described():
    rules = load_rules()
    assert len(rules.families) >= 15
    assert all(family.description for family in rules.families)


def test_text_keys_split_once_are_the_candidates_and_the_headline_spans():
    teasers = "More news\nREAD ALSO: Seoul opens a new subway line to the airport\n\nShare"
    seed = (CLEAN / "seed_raw.txt").read_text(encoding="utf-8")
    for text in (seed, teasers, "", "One line only."):
        assert text_keys(text) == (boilerplate_candidates(text), headline_spans(text))
    assert text_keys(teasers)[1]  # the teaser line gives spans to look up


def test_ascii_lines_get_the_forms_the_general_path_gives():
    """An ASCII line skips normalisation and the two expressions of ``key_form`` (one
    translate); with a non-ASCII word after it, it takes the general path: the forms agree."""
    rng = random.Random(7)
    samples = [chr(c) for c in range(128)]
    samples += [
        "".join(chr(rng.randrange(128)) for _ in range(rng.randrange(60))) for _ in range(3000)
    ]
    samples += ["Don't miss: SUBSCRIBE to our_newsletter!!", "  A\tb\x0bc--d`e's  ", "x_y"]
    for line in samples:
        assert text_form(line + " \u00e9") == " ".join([*text_form(line).split(), "\u00e9"])
        assert key_form(line + " \u00e9") == " ".join([*key_form(line).split(), "\u00e9"])


@pytest.mark.parametrize(
    ("pattern", "needles"),
    [
        (r".*\ball rights reserved\b.*", {"all rights reserved"}),
        (r"(?:follow|join) us on \w+", {" us on "}),
        (r"(?:foo|barbaz)\s+x", {"foo", "barbaz"}),
        (r"(?:abc)+d?", {"abc"}),
        (r"(?:abc)*d", None),
        (r"ab?c", None),
        (r"(?i)copyright", None),
        (r"x(?i:abc)yz", None),
        (r"(?:abc|x)yz", None),
    ],
)
def test_a_pattern_names_the_strings_every_match_contains(pattern, needles):
    assert required_strings(pattern) == (None if needles is None else frozenset(needles))


def test_a_rule_group_passes_over_a_line_only_when_its_regex_cannot_match_it():
    """The needles only ever skip lines the group's regex would not match: checked on every
    line of the fixtures and the spam lines, and on pieces of them, in both forms."""
    lines = [line for line, _ in SPAM_LINES]
    for path in sorted(CLEAN.glob("*.txt")) + sorted(CLEAN.glob("*.json")):
        lines += path.read_text(encoding="utf-8").split("\n")
    lines += [line[i:] for line in lines for i in (3, 10) if len(line) > i]
    groups = [g for f in default_rules().families for g in f.groups]
    assert sum(g.needles is not None for g in groups) >= len(groups) // 2
    matched = 0
    for text in lines:
        forms = {"key": key_form(text), "text": text_form(text)}
        for group in groups:
            subject = forms[group.form]
            if group.regex.fullmatch(subject):
                matched += 1
                assert group.may_match(subject), (text, group.needles)
    assert matched > 50
