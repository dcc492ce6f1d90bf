"""HTML -> ``ArticleItem``: body text, metadata and fallbacks from the feed or sitemap entry."""

from __future__ import annotations

import json
import logging
import re
import warnings
from datetime import UTC, datetime, tzinfo
from typing import Any
from urllib.parse import urljoin, urlsplit
from zoneinfo import ZoneInfo

import lxml.html
from dateutil import parser as dateparser
from htmldate import find_date
from trafilatura.metadata import (
    examine_meta,
    extract_meta_json,
    extract_title,
    extract_url,
)
from trafilatura.settings import Document, set_date_params

from crawler.extract.author import find_author
from crawler.extract.body import extract_body, parse_html
from crawler.extract.encoding import decode_html
from crawler.extract.plain import plain_item
from crawler.items import ArticleItem

__all__ = ["extract_article", "normalise_date", "url_domain"]

logger = logging.getLogger(__name__)
# trafilatura logs pages without a main text at ERROR; for a crawler that is an ordinary
# outcome, counted by the validate step (validate/dropped/no_text), not a crawl error.
logging.getLogger("trafilatura").setLevel(logging.CRITICAL)

_DATE_META = (
    "article:published_time",
    "og:published_time",
    "og:article:published_time",
    "datepublished",
    "publishdate",
    "publish-date",
    "pubdate",
    "publication_date",
    "sailthru.date",
    "parsely-pub-date",
    "dc.date.issued",
    "dcterms.created",
    "dc.date",
    "date",
    "article.published",
    "article:published",
)
# Zone abbreviations news sites print after times (dateutil knows only UTC/GMT/Z).
_TZ_NAMES = {
    name: hours * 3600
    for names, hours in (
        (("KST", "JST"), 9),
        (("HKT", "SGT", "AWST"), 8),
        (("IST",), 5.5),
        (("EST",), -5),
        (("EDT", "AST"), -4),
        (("CST", "MDT"), -6),
        (("CDT",), -5),
        (("MST", "PDT"), -7),
        (("PST",), -8),
        (("BST", "CET", "WAT"), 1),
        (("CEST", "EET", "SAST"), 2),
        (("EEST", "MSK"), 3),
        (("AEST",), 10),
        (("AEDT",), 11),
    )
    for name in names
}
_HANGUL_RE = re.compile(r"[\uac00-\ud7a3]")
_KANA_RE = re.compile(r"[\u3040-\u30ff]")
_HAN_RE = re.compile(r"[\u4e00-\u9fff]")
_LETTER_RE = re.compile(r"[^\W\d_]")
_LANG_RE = re.compile(r"^([a-zA-Z]{2,3})(?:[-_].*)?$")
_WS_RE = re.compile(r"\s+")
_BYLINE_PREFIX_RE = re.compile(r"^(?:by|written by|posted by)\s+", re.IGNORECASE)
_KO_TITLE_RE = re.compile(r"\s*(?:기자|특파원|선임기자|편집위원|논설위원|객원기자|인턴기자)$")


def url_domain(url: str) -> str:
    """Host of ``url`` in lower case without a leading ``www.``, plus ``:port`` when the URL
    names a port other than the scheme's default (so sites on one test host stay apart)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower().removeprefix("www.")
    try:
        port = parts.port
    except ValueError:
        port = None
    if port and port != {"http": 80, "https": 443}.get(parts.scheme):
        return f"{host}:{port}"
    return host


def normalise_date(value: Any, *, tz: tzinfo | None = None) -> str | None:
    """A date/time in any common notation -> ISO 8601 in UTC.

    Values without a time become a plain date (``2022-06-27``); values with a time but no
    zone are read in ``tz`` (default UTC). ``None`` when the value is not a date.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        parsed = value
    else:
        raw = str(value).strip()
        if not raw:
            return None
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
            return raw
        try:
            parsed = datetime.fromisoformat(raw)  # fast path: most feeds and pages use ISO
        except ValueError:
            try:
                with warnings.catch_warnings():
                    # An unknown zone name is read as no zone (then ``tz``), not an error.
                    warnings.simplefilter("ignore", dateparser.UnknownTimezoneWarning)
                    parsed = dateparser.parse(raw, tzinfos=_TZ_NAMES)
            except (ValueError, OverflowError):
                return None
        # A value that names no time of day at all stays a date.
        if not re.search(r"\d:\d", raw) and parsed.hour == parsed.minute == 0:
            return parsed.date().isoformat()
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz or UTC)
    if not 1990 <= parsed.year <= 2100:
        return None
    return parsed.astimezone(UTC).replace(microsecond=0).isoformat()


def _jsonld_objects(tree: lxml.html.HtmlElement) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for script in tree.xpath('//script[@type="application/ld+json"]'):
        try:
            data = json.loads(script.text_content() or "null")
        except (ValueError, RecursionError):  # broken, or nested deeper than Python recurses
            continue
        stack = [data]
        while stack:
            obj = stack.pop()
            if isinstance(obj, list):
                stack.extend(obj)
            elif isinstance(obj, dict):
                found.append(obj)
                if "@graph" in obj:
                    stack.append(obj["@graph"])
    return found


def _structured_published(tree: lxml.html.HtmlElement) -> str | None:
    """The first publication time the page declares in machine-readable form."""
    for obj in _jsonld_objects(tree):
        kind = obj.get("@type")
        kinds = kind if isinstance(kind, list) else [kind]
        if any(isinstance(k, str) and ("Article" in k or k == "BlogPosting") for k in kinds):
            for key in ("datePublished", "dateCreated", "uploadDate"):
                if isinstance(obj.get(key), str):
                    return obj[key]
    metas: dict[str, str] = {}
    for meta in tree.iter("meta"):
        key = (meta.get("property") or meta.get("name") or meta.get("itemprop") or "").lower()
        if key and meta.get("content") and key not in metas:
            metas[key] = meta.get("content")
    for key in _DATE_META:
        if key in metas:
            return metas[key]
    for el in tree.xpath('//*[@itemprop="datePublished"]|//time[@pubdate]|//article//time'):
        value = el.get("datetime") or el.get("content") or el.text_content()
        if value and value.strip():
            return value.strip()
    return None


def _canonical(tree: lxml.html.HtmlElement, url: str) -> str | None:
    for href in tree.xpath(
        '//link[translate(@rel,"CANONICAL","canonical")="canonical"]/@href'
        '|//meta[@property="og:url"]/@content'
    ):
        href = href.strip()
        if href:
            absolute = urljoin(url, href)
            if urlsplit(absolute).scheme in ("http", "https"):
                return absolute
    return None


def _declared_language(tree: lxml.html.HtmlElement) -> str | None:
    values = [
        tree.get("lang"),
        tree.get("{http://www.w3.org/XML/1998/namespace}lang"),
        *tree.xpath(
            '//meta[translate(@http-equiv,"CONTENT-LANGUAGE","content-language")'
            '="content-language"]/@content'
        ),
        *tree.xpath('//meta[@property="og:locale"]/@content'),
    ]
    for value in values:
        if value and (m := _LANG_RE.match(value.strip())):
            return m.group(1).lower()
    return None


def detect_script_language(text: str) -> str | None:
    """``ko`` / ``ja`` / ``zh`` when that script dominates ``text``; else ``None``."""
    sample = text[:5000]
    letters = len(_LETTER_RE.findall(sample))
    if not letters:
        return None
    hangul = len(_HANGUL_RE.findall(sample))
    kana = len(_KANA_RE.findall(sample))
    han = len(_HAN_RE.findall(sample))
    if hangul / letters > 0.3:
        return "ko"
    if kana / letters > 0.1:
        return "ja"
    if han / letters > 0.3:
        return "zh"
    return None


def clean_authors(names: list[str]) -> list[str]:
    """Author names without "By" and without the Korean job titles bylines carry
    ("김서연 기자" -> "김서연"), in order, without repeats."""
    cleaned = []
    for name in names:
        name = _BYLINE_PREFIX_RE.sub("", _WS_RE.sub(" ", name).strip())
        name = _KO_TITLE_RE.sub("", name).strip()
        if name and name not in cleaned:
            cleaned.append(name)
    return cleaned


def page_metadata(tree: lxml.html.HtmlElement, url: str) -> tuple[Document, str | None]:
    """trafilatura's ``extract_metadata(tree, default_url=url)`` for the fields used here
    (title, author, description), without the ones that are not (date, site name,
    categories, tags, licence), and the URL its date search would be given.

    The same steps in the same order as trafilatura 2.3, with its author search in the
    markup done in one pass (``find_author``); the date search (htmldate) is the costly part
    and is only needed when the page declares no date (``guess_date``).
    """
    meta = examine_meta(tree)
    if meta.author and " " not in meta.author:
        meta.author = None
    try:
        meta = extract_meta_json(tree, meta)
    except Exception as exc:  # noqa: BLE001 -- as trafilatura: bugs in its JSON-LD reader
        logger.debug("%s: JSON-LD metadata failed: %s", url, exc)
    if not meta.title:
        meta.title = extract_title(tree)
    if not meta.author:
        meta.author = find_author(tree)
    if not meta.url:
        meta.url = extract_url(tree, url)
    date_url = meta.url
    meta.clean_and_trim()
    return meta, date_url


def guess_date(tree: lxml.html.HtmlElement, date_url: str | None) -> str | None:
    """The date ``extract_metadata`` would give: htmldate with trafilatura's parameters."""
    return find_date(tree, url=date_url, **set_date_params(True))


def _one_line(value: str | None) -> str | None:
    if value is None:
        return None
    value = _WS_RE.sub(" ", value).strip()
    return value or None


def extract_article(
    html: str | bytes,
    url: str,
    *,
    fallback: dict[str, Any] | None = None,
    content_type: str | None = None,
    language: str | None = None,
    timezone: str | None = None,
    every_fallback: bool = False,
) -> ArticleItem:
    """Turn one page into an ``ArticleItem``.

    ``fallback`` is the feed/sitemap entry's metadata (``title``, ``published``,
    ``authors``, ``description``); it fills only what the page does not declare, and the
    keys it filled are listed in ``item.fallback``. ``language`` is a hint used when the page
    declares none; ``timezone`` (IANA name) is used for times given without a zone.
    ``text`` is ``None`` when the page has no recognisable article body. ``every_fallback``
    runs every body extractor on the page, not only when the first body is doubtful (to
    measure what that choice costs; see ``extract_body``).
    """
    encoding = None
    if isinstance(html, bytes):
        html, encoding = decode_html(html, content_type)
    tz = ZoneInfo(timezone) if timezone else None
    item = ArticleItem(url=url, domain=url_domain(url), encoding=encoding)
    tree = parse_html(html.replace("\x00", "") or "<html></html>")
    if tree is None:
        logger.debug("%s: unparsable HTML", url)
    date_url = None
    if tree is not None:
        meta, date_url = page_metadata(tree, url)
        item.title = _one_line(meta.title)
        if meta.author:
            item.authors = clean_authors(meta.author.split(";"))
        item.description = _one_line(meta.description)
        item.canonical_url = _canonical(tree, url)
        declared = _structured_published(tree)
        item.published_raw = declared
        item.published_at = normalise_date(declared, tz=tz)
        item.language = _declared_language(tree)

    filled: dict[str, Any] = {}
    for key, value in (fallback or {}).items():
        if value in (None, "", []):
            continue
        if key == "title" and not item.title:
            item.title = filled["title"] = _one_line(str(value))
        elif key == "published" and not item.published_at:
            item.published_raw = str(value)
            item.published_at = normalise_date(value, tz=tz)
            if item.published_at:
                filled["published"] = item.published_at
        elif key == "authors" and not item.authors:
            item.authors = filled["authors"] = clean_authors(list(value))
        elif key == "description" and not item.description:
            item.description = filled["description"] = _one_line(str(value))
    # trafilatura's date (htmldate) may be a guess from the URL or page text: it ranks below
    # a date the feed or sitemap entry states.
    if not item.published_at and tree is not None and (guessed := guess_date(tree, date_url)):
        item.published_raw = guessed
        item.published_at = normalise_date(guessed, tz=tz)
    if tree is not None:
        # last: the body extraction may change the tree
        item.text = extract_body(html, url, tree=tree, every_fallback=every_fallback, consume=True)
    # A dominant CJK script in the text beats a template's stock lang="en".
    detected = detect_script_language(item.text or item.title or "")
    item.language = detected or item.language or language
    item.fallback = filled
    return item


def extract_page(
    body: bytes,
    *,
    url: str,
    fallback: dict[str, Any] | None,
    content_type: str | None,
    language: str | None,
    timezone: str | None,
) -> ArticleItem:
    """Response body -> ``ArticleItem`` with its decoded ``html`` and ``encoding``, text fields
    made plain: what the in-process path of ``NewsSpider.parse_article`` gives (the job a
    pool worker runs)."""
    html, encoding = decode_html(body, content_type)
    item = plain_item(
        extract_article(
            html,
            url,
            fallback=fallback,
            content_type=content_type,
            language=language,
            timezone=timezone,
        )
    )
    item.html = html
    item.encoding = encoding
    return item
