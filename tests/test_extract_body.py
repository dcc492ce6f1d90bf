"""extract_body and the page metadata take shortcuts for speed (one parse, no htmldate when
the page declares its date, the fallback extractors only for a doubtful body): what they
skip would not have changed the result."""

from __future__ import annotations

import lxml.etree
import lxml.html
import pytest
import trafilatura
from readability import Document
from trafilatura.metadata import extract_author, extract_metadata
from trafilatura.utils import load_html

from crawler import extract
from crawler.extract import body
from crawler.extract.author import find_author
from crawler.extract.body import _OPTIONS, extract_body, max_text_length, parse_html
from crawler.extract.encoding import decode_html
from tests.conftest import FIXTURES

FIXTURE_PAGES = sorted(FIXTURES.rglob("*.html"))


def _read(path) -> str:
    return decode_html(path.read_bytes())[0]


_FIRST = [
    "The council approved the new budget after a long debate on Tuesday evening, officials said.",
    "Members argued over the cost of the bridge repairs, which have been delayed for three years.",
    "The mayor said the city would borrow part of the money from the regional development bank.",
    "Opposition members warned that the loan would burden taxpayers for at least a decade.",
    "Residents who attended the meeting asked for more details about the timetable of the works.",
    "The finance office said the first payments would be made before the end of the year.",
]
_SECOND = [
    "Engineers said the old bridge could carry only half of the traffic it was built for.",
    "Trucks heavier than ten tonnes have been banned from crossing it since the spring.",
    "Shop owners on both banks of the river said their sales had dropped since the ban.",
    "The repairs are expected to take two years, during which a ferry will carry cars.",
    "The city will publish the full contract on its website once it has been signed.",
    "A public hearing on the ferry service is planned for the first week of next month.",
]


def _chunk(sentences: list[str]) -> str:
    paragraphs = "".join(f"<p>{s} <span class='link'>{s}</span></p>" for s in sentences)
    return (
        '<div class="grid grid-layout--adrail"><div class="body__container article__body">'
        f'{paragraphs}</div><div class="grid-layout__aside"></div></div>'
    )


# An article split in two by an ad row: trafilatura keeps the first part, readability both.
SPLIT_ARTICLE = (
    "<!DOCTYPE html><html><head><title>Council approves budget</title></head><body>"
    '<header><nav><a href="/">Home</a> <a href="/news">News</a></nav></header>'
    '<main><article class="article main-content"><h1>Council approves budget</h1>'
    f'<div class="article__chunks">{_chunk(_FIRST)}'
    f'<div class="ad-slot"><span>Advertisement</span></div>{_chunk(_SECOND)}</div>'
    "</article></main><footer><p>Copyright 2026 City News</p></footer></body></html>"
)
# All the text is the article: readability has nothing to add.
PLAIN_ARTICLE = (
    "<html><head><title>Budget</title></head><body><article><h1>Budget</h1>"
    + "".join(f"<p>{s}</p>" for s in _FIRST + _SECOND)
    + "</article></body></html>"
)
_ROWS = "".join(
    f"<tr><td>{s[:30]}</td><td colspan='3'>{s[30:]}</td></tr>" for s in _FIRST + _SECOND
)
# Pages that make trafilatura write markers and separators (tables, lists, code, line breaks)
# or keep text in unusual places (a form wrapping the page, a figure holding a table).
TRICKY_PAGES = {
    "table": (
        "<html><body><article><h1>Results</h1><p>" + _FIRST[0] + "</p><table>"
        "<tr><th>Name</th><th>Votes</th><th rowspan='2'>Share</th><th>Seat</th></tr>"
        f"{_ROWS}<tr><td>a</td><td>b</td><td>c</td><td>d</td><td>e</td><td>f</td></tr>"
        "</table></article></body></html>"
    ),
    "lists": (
        "<html><body><article><p>"
        + _FIRST[1]
        + "</p><ol>"
        + "".join(f"<li>{s}<ul><li>a</li><li>b<ol><li>c</li></ol></li></ul></li>" for s in _SECOND)
        + "</ol><dl><dt>x</dt><dd>y</dd></dl></article></body></html>"
    ),
    "code": (
        "<html><body><article><p>" + _FIRST[2] + "</p><pre>  a  =  1\n\n    b   =   2</pre>"
        "<p>Run <code>x  =  y</code> then.</p></article></body></html>"
    ),
    "breaks": (
        "<html><body><div>"
        + "<br>".join(f"{s}<b>x</b>y<i>z</i>" for s in _FIRST + _SECOND)
        + "</div><div>loose <a href='/'>link</a> text<div>inner</div>tail</div></body></html>"
    ),
    "form": (
        "<html><body><form id='aspnetForm'><div class='content'>"
        + "".join(f"<p>{s}</p>" for s in _FIRST)
        + "</div></form></body></html>"
    ),
    "figure": (
        "<html><body><article><p>"
        + _FIRST[3]
        + "</p><figure><table><tr><td>"
        + _SECOND[0]
        + "</td><td>1</td></tr></table><figcaption>cap</figcaption></figure></article></body></html>"
    ),
    "nfc": (
        "<html><body><article>"
        + "".join(f"<p>\u0958\u0959\u095a {s} \ufb1d\ufb1f</p>" for s in _FIRST)
        + "</article></body></html>"
    ),
    "korean": _read(FIXTURES / "sites/pub/ko/missile.html"),
    "split": SPLIT_ARTICLE,
}
CRAFTED = {
    **TRICKY_PAGES,
    "plain": PLAIN_ARTICLE,
    "fragment": "<div><p>" + _FIRST[0] + "</p></div>",
    # a control character trafilatura deletes when it parses the page itself
    "control character": PLAIN_ARTICLE.replace("new budget", "new\x0cbudget").replace(
        "<p>Engineers", "<p><span>Engineers</span>"
    ),
}


def _page_ids(pages: list) -> list[str]:
    return [str(p.relative_to(FIXTURES)) for p in pages]


@pytest.mark.parametrize("path", FIXTURE_PAGES, ids=_page_ids(FIXTURE_PAGES))
def test_fixture_pages_need_no_fallback(path):
    """Pages whose body trafilatura finds whole: every extractor run on them gives no more."""
    html = _read(path)
    assert extract_body(html, "https://news.example/a") == extract_body(
        html, "https://news.example/a", every_fallback=True
    )


@pytest.mark.parametrize("name", sorted(CRAFTED))
def test_crafted_pages_need_no_fallback(name):
    html = CRAFTED[name]
    assert extract_body(html, "https://news.example/a") == extract_body(
        html, "https://news.example/a", every_fallback=True
    )


def test_readability_completes_a_split_article():
    text = extract_body(SPLIT_ARTICLE)
    assert _FIRST[0] in text
    assert _SECOND[-1] in text
    assert "Copyright" not in text


def _headed(*headings: str) -> str:
    heads = "".join(f"<h1>{h}</h1>" for h in headings)
    return (
        "<html><head><title>Budget news - City Paper</title></head><body><article>"
        + heads
        + "".join(f"<p>{s}</p>" for s in _FIRST + _SECOND)
        + "</article></body></html>"
    )


def test_the_headline_above_the_body_is_not_body_text():
    # the page's one <h1>, shown above the body, is the headline: the title holds it
    assert PLAIN_ARTICLE.count("<h1>") == 1
    assert extract_body(PLAIN_ARTICLE).startswith(_FIRST[0])
    text = extract_body(_headed("Council approves the bridge budget"))
    assert text.startswith(_FIRST[0])
    assert "Council approves the bridge budget" not in text


def test_a_heading_that_may_be_body_text_stays():
    # several <h1>: the page uses them for widget titles too, none is surely the headline
    two = extract_body(_headed("Council approves the bridge budget", "Most read"))
    assert two.startswith("Council approves the bridge budget")
    # a heading that reads as a sentence may be the lede used as the headline
    lede = extract_body(_headed(_FIRST[0]))
    assert lede.startswith(_FIRST[0])
    assert _FIRST[1] in lede


def test_control_characters_next_to_spans_do_not_break_extraction():
    # lxml refuses to merge the span's text into a paragraph holding a control character
    html = PLAIN_ARTICLE.replace("<p>Engineers", "<p>\x0b<span>Engineers</span>")
    assert _SECOND[0] in extract_body(html)


# A blog post written as "text<br><br>text" inside a container that also holds boxed
# paragraphs: the post's own first line is loose text of the container.
_LOOSE_LEDE = (
    "BUSAN : The port handled a record 24 million containers last year, worth 9.5 billion US "
    "dollars in fees."
)
LOOSE_TEXT_POST = f"""<html><head><title>Busan port sets record</title></head><body><article>
<div class="post-body entry-content" itemprop="articleBody">
<div dir="ltr">
{_LOOSE_LEDE}
<br /><br />
WATCH &#8211; <a href="/p/ferry.html">Ferry service resumes after the storm</a>
<br /><br />
<div class="bx-support-box">
<p>Harbour Daily is reader-funded. Become a member from $2 a month.</p>
</div>
<br /><br />
<div class="bx-notice">
<p>Join our channel for new posts every hour. This site shows pop-under adverts, so a second window can open when you tap anything; close it and carry on. Requests go in the chat box \u2764. Stay safe \U0001f64f</p>
</div>
</div>
</div>
</article></body></html>"""


def test_loose_text_beside_boxed_paragraphs_is_kept():
    text = extract_body(LOOSE_TEXT_POST, "https://blog.example/p/busan.html")
    assert text.startswith(_LOOSE_LEDE)
    assert "Ferry service resumes" in text
    # each run of the container's own text becomes a paragraph; blocks and breaks stay
    div = lxml.html.fragment_fromstring(
        "<div>One <b>two</b>.<br>Three<div><p>Box</p></div> four</div>"
    )
    body.wrap_loose_text(div)
    assert lxml.html.tostring(div, encoding="unicode") == (
        "<div><p>One <b>two</b>.</p><br><p>Three</p><div><p>Box</p></div><p> four</p></div>"
    )


def test_the_given_tree_is_not_modified():
    tree = parse_html(SPLIT_ARTICLE)
    before = lxml.html.tostring(tree)
    assert extract_body(SPLIT_ARTICLE, tree=tree) == extract_body(SPLIT_ARTICLE)
    assert lxml.html.tostring(tree) == before


class _Spy:
    """Stands in for readability's Document and counts its uses."""

    calls = 0

    def __init__(self, page):
        type(self).calls += 1
        self.document = Document(page)

    def summary(self, **kwargs):
        return self.document.summary(**kwargs)


def test_readability_runs_only_when_the_body_is_doubtful(monkeypatch):
    monkeypatch.setattr(body, "Document", _Spy)
    _Spy.calls = 0
    assert _SECOND[0] in extract_body(PLAIN_ARTICLE)
    assert _Spy.calls == 0  # every paragraph of the page is in trafilatura's body
    assert _SECOND[0] in extract_body(SPLIT_ARTICLE)
    assert _Spy.calls == 1  # paragraphs marked up like the body's are missing from it


@pytest.mark.parametrize("name", sorted(TRICKY_PAGES))
def test_max_text_length_bounds_what_trafilatura_takes(name):
    html = TRICKY_PAGES[name]
    tree = parse_html(html)
    page_bound = max_text_length(tree)
    text = trafilatura.extract(html, output_format="txt", **_OPTIONS) or ""
    assert len(text) <= page_bound
    summary = load_html(Document(html).summary(html_partial=False))
    summary_text = trafilatura.extract(summary, output_format="txt", **_OPTIONS) or ""
    assert len(summary_text) <= page_bound
    assert len(summary_text) <= max_text_length(summary)


def test_max_text_length_gives_up_on_formulas():
    html = "<html><body><p>x <math alttext='a+b'><mi>a</mi></math></p></body></html>"
    assert max_text_length(parse_html(html)) == float("inf")


# -- page metadata ------------------------------------------------------------------------------
METADATA_PAGES = {
    "single-word meta author": (
        '<html><head><meta name="author" content="Admin"><title>A title | Site</title>'
        "</head><body><article><h1>A title</h1><p class='byline'>By Jane Park</p>"
        f"<p>{_FIRST[0]}</p></article></body></html>"
    ),
    "json-ld": (
        '<html><head><script type="application/ld+json">{"@type": "NewsArticle", '
        '"headline": "JSON &amp; title", "author": {"@type": "Person", "name": "Min-ji Park"}, '
        '"description": "What happened", "datePublished": "2026-11-26T08:30:00+09:00"}</script>'
        f"</head><body><article><p>{_FIRST[1]}</p></article></body></html>"
    ),
    "no title element": f"<html><body><h1>Only a heading</h1><p>{_FIRST[2]}</p></body></html>",
    "dated url and text": (
        '<html><head><link rel="canonical" href="https://news.example/2025/03/04/story"></head>'
        f"<body><p>Published 4 March 2025</p><p>{_FIRST[3]}</p></body></html>"
    ),
}


def _metadata_cases():
    cases = [(str(p.relative_to(FIXTURES)), _read(p)) for p in FIXTURE_PAGES]
    return cases + sorted(METADATA_PAGES.items())


@pytest.mark.parametrize(("name", "html"), _metadata_cases(), ids=[n for n, _ in _metadata_cases()])
def test_page_metadata_matches_trafilatura(name, html):
    url = "https://news.example/a/1"
    expected = extract_metadata(parse_html(html), default_url=url)
    tree = parse_html(html)
    meta, date_url = extract.page_metadata(tree, url)
    assert (meta.title, meta.author, meta.description) == (
        expected.title,
        expected.author,
        expected.description,
    )
    assert extract.guess_date(tree, date_url) == expected.date


AUTHOR_PAGES = {
    "discarded parts around the name": (
        "<html><body><div class='byline'>By <time>May 2</time>Jane<span class='print'>Print"
        "</span> Park<!-- x --> and <figure>img</figure>Lee</div></body></html>"
    ),
    "name in a comment list first": (
        "<html><body><div id='comments'><span class='author'>Commenter One</span></div>"
        "<p class='author-name'>Jane Park</p></body></html>"
    ),
    "too long, then a plausible one": (
        "<html><body><span class='author'>" + "x " * 70 + "</span>"
        "<div id='authorbox'>Min-ji Kim</div></body></html>"
    ),
    "rel and itemprop": (
        "<html><body><a rel='author' href='/a'>Ann Lee</a><span itemprop='author'>B C</span>"
        "</body></html>"
    ),
    "no author": "<html><body><p class='lead'>Nothing here.</p></body></html>",
}


@pytest.mark.parametrize(
    "html",
    [_read(p) for p in FIXTURE_PAGES] + list(AUTHOR_PAGES.values()),
    ids=_page_ids(FIXTURE_PAGES) + list(AUTHOR_PAGES),
)
def test_author_search_matches_trafilatura(html):
    tree = parse_html(html)
    assert find_author(tree) == extract_author(tree)


def test_date_is_guessed_only_when_the_page_declares_none(monkeypatch):
    calls = []
    guess = extract.guess_date
    monkeypatch.setattr(extract, "guess_date", lambda *a: calls.append(a) or guess(*a))
    dated = _read(FIXTURES / "sites/pub/a/2026/11/missile-launch.html")
    assert extract.extract_article(dated, "https://herald.example/a").published_at
    undated = METADATA_PAGES["dated url and text"]
    item = extract.extract_article(
        undated, "https://news.example/x", fallback={"published": "2026-01-02"}
    )
    assert item.published_at == "2026-01-02"
    assert calls == []
    item = extract.extract_article(undated, "https://news.example/x")
    assert len(calls) == 1
    assert item.published_at == "2025-03-04"


def test_the_page_tree_has_one_element_class_chosen_without_python():
    """lxml.html's own parser runs a Python method per element to give forms, inputs and
    labels classes of their own; extraction reads none of their form API, so the page is
    parsed with one class for every element, and extracts as trafilatura's parse does."""
    html = (
        "<html><head><title>T</title></head><body><!-- note --><form action='/s'>"
        "<label>Search</label><input name='q'><select><option>a</option></select>"
        "<textarea>x</textarea></form><article><p>"
        + "Words of the story here. " * 20
        + "</p></article></body></html>"
    )
    tree = parse_html(html)
    kinds = {type(e) for e in tree.iter() if isinstance(e.tag, str)}
    assert kinds == {lxml.html.HtmlElement}
    assert isinstance(next(tree.iter(lxml.etree.Comment)), lxml.html.HtmlComment)
    assert extract_body(html, tree=tree) == extract_body(
        html, tree=lxml.html.document_fromstring(html)
    )
