"""extract_article, page decoding and date normalisation, called directly."""

from __future__ import annotations

from dataclasses import asdict
from zoneinfo import ZoneInfo

import pytest

from crawler.extract import extract_article, normalise_date, url_domain
from crawler.extract.encoding import decode_html
from pipelines.validate import rejection
from tests.conftest import FIXTURES

PUB = FIXTURES / "sites" / "pub"
KOREAN_HTML = (
    "<html><head><title>삼성전자, 3분기 영업이익 급증</title></head><body><article>"
    "<h1>삼성전자, 3분기 영업이익 급증</h1>"
    "<p>삼성전자가 인공지능 서버용 고대역폭 메모리 수요 증가에 힘입어 3분기 영업이익이 "
    "전년 같은 기간보다 크게 늘었다고 27일 밝혔다.</p>"
    "<p>회사 측은 4분기에도 메모리 반도체 가격 상승세가 이어질 것으로 내다봤다.</p>"
    "</article></body></html>"
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2022-06-27T10:15:00+09:00", "2022-06-27T01:15:00+00:00"),
        ("2022-06-27T10:15:00Z", "2022-06-27T10:15:00+00:00"),
        ("Mon, 27 Jun 2022 01:15:00 GMT", "2022-06-27T01:15:00+00:00"),
        ("27 Jun 2022 10:15 +0900", "2022-06-27T01:15:00+00:00"),
        ("2022-06-27", "2022-06-27"),
        ("June 27, 2022", "2022-06-27"),
        ("not a date", None),
        ("", None),
        (None, None),
        ("1890-01-01T00:00:00Z", None),
    ],
)
def test_normalise_date(value, expected):
    assert normalise_date(value) == expected


def test_normalise_date_reads_zoneless_times_in_site_zone():
    assert normalise_date("2022-06-27 10:15", tz=ZoneInfo("Asia/Seoul")) == (
        "2022-06-27T01:15:00+00:00"
    )


@pytest.mark.parametrize(
    ("encoding", "header"),
    [
        ("euc-kr", None),
        ("euc-kr", "text/html"),
        ("euc-kr", "text/html; charset=utf-8"),  # a lying header
        ("euc-kr", "text/html; charset=iso-8859-1"),  # a lying single-byte header
        ("utf-8", None),
        ("utf-8", "text/html; charset=utf-8"),
    ],
)
def test_korean_bytes_decode_to_hangul(encoding, header):
    text, used = decode_html(KOREAN_HTML.encode(encoding), header)
    assert "삼성전자가 인공지능 서버용" in text
    assert used in ("cp949", "utf-8")


def test_other_legacy_encodings_without_declaration():
    japanese = "<p>日本の経済は回復している。東京の株価は上昇した。</p>".encode("shift_jis")
    assert "東京の株価" in decode_html(japanese)[0]
    western = "<p>Café — “quoted” naïve résumé</p>".encode("cp1252")
    assert decode_html(western) == ("<p>Café — “quoted” naïve résumé</p>", "cp1252")
    declared = b'<meta charset="windows-1252"><p>caf\xe9</p>'
    assert "café" in decode_html(declared)[0]


def test_extract_article_fields():
    html = (PUB / "a/2026/11/missile-launch.html").read_text(encoding="utf-8")
    item = extract_article(html, "https://herald.example/a/2026/11/missile-launch.html")
    assert item.title == "North Korea fires ballistic missile into East Sea, Seoul says"
    assert item.published_at == "2026-11-25T23:30:00+00:00"
    assert item.published_raw == "2026-11-26T08:30:00+09:00"
    assert item.authors == ["Min-ji Park"]
    assert item.language == "en"
    assert item.domain == "herald.example"
    assert "third launch this month" in item.text
    assert "Related" not in item.text
    # Paragraphs are separated by a blank line.
    assert "\n\nThe missile was launched" in item.text


def test_extract_article_accepts_bytes_and_fallback():
    body = KOREAN_HTML.encode("euc-kr")
    item = extract_article(
        body,
        "https://news.example/1",
        fallback={"published": "Thu, 27 Nov 2026 09:00:00 +0900", "authors": ["홍길동"]},
    )
    assert item.encoding == "cp949"
    assert item.language == "ko"
    assert item.title == "삼성전자, 3분기 영업이익 급증"
    assert item.published_at == "2026-11-27T00:00:00+00:00"
    assert item.authors == ["홍길동"]
    assert item.fallback == {"published": item.published_at, "authors": ["홍길동"]}


def test_page_metadata_beats_feed_fallback():
    html = (PUB / "a/2026/11/missile-launch.html").read_text(encoding="utf-8")
    item = extract_article(
        html,
        "https://herald.example/x",
        fallback={"title": "Feed title", "published": "2001-01-01T00:00:00Z"},
    )
    assert item.title.startswith("North Korea fires")
    assert item.published_at == "2026-11-25T23:30:00+00:00"
    assert item.fallback == {}


def test_page_without_article_is_rejected_by_validate():
    item = extract_article("<html><body><nav><a href='/'>Home</a></nav></body></html>", "http://x/")
    assert rejection(asdict(item)) in ("no_text", "too_short")
    full = extract_article((PUB / "a/2026/11/housing.html").read_bytes(), "http://x/h")
    assert rejection(asdict(full)) is None
    assert rejection({"url": "http://x/p.pdf", "content_type": "application/pdf"}) == "not_html"


@pytest.mark.parametrize(
    ("url", "domain"),
    [
        ("https://www.Yna.co.kr/view/AKR1", "yna.co.kr"),
        ("http://127.0.0.1:8760/a", "127.0.0.1:8760"),
        ("https://example.org:443/a", "example.org"),
    ],
)
def test_url_domain(url, domain):
    assert url_domain(url) == domain


def test_author_names_lose_by_and_korean_job_titles():
    from crawler.extract import clean_authors

    assert clean_authors(["김서연 기자", "By Jane Park", " Min-ji  Park ", "Jane Park"]) == [
        "김서연",
        "Jane Park",
        "Min-ji Park",
    ]
