"""A local mirror of N distinct news stories in the real page templates of extraction-bench,
with a stated share of true re-posts, and sitemaps listing them (deterministic, cached)."""

from __future__ import annotations

import hashlib
import html
import json
import logging
import random
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import lxml.etree
import lxml.html

logger = logging.getLogger(__name__)

MIRROR_FORMAT = 2
"""Bump when the generator changes: cached mirrors of an older format are rebuilt."""
SITEMAP_CHUNK = 1000
"""URLs per child sitemap (the project's LINKS_PER_PAGE_MAX is 1000 per page)."""
BASE_TIME = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
"""Page ``i`` is dated ``BASE_TIME - i minutes``: newest first is page order."""
REPOST_SPAM = (
    "Join us on Telegram for the latest updates: t.me/newsdaily_channel",
    "Follow us on Facebook and Twitter to get breaking news first!",
    "Previous Post Next Post",
)

_BLOCK_TAGS = ("p", "li", "blockquote", "h2", "h3", "h4", "h5", "h6", "dd", "pre")
_TITLE_META = ("og:title", "twitter:title", "title", "sailthru.title", "parsely-title")
_URL_META = ("og:url", "twitter:url")
_WS_RE = re.compile(r"\s+")
_WORD_RE = re.compile(r"\w+")
# A sentence ends at . ! ? before an opening quote (straight or curly), bracket or capital.
_SENTENCE_RE = re.compile(
    "(?<=[.!?])\\s+(?=[\"'\u201c\u2018(\\[]?[A-Z0-9\u0400-\u04ff\uac00-\ud7a3])"
)
_SLOT = "\ue000{}\ue001"  # private-use characters: XML-safe markers
_SLOT_RE = re.compile("\ue000(\\d+|T|U)\ue001")


def _norm(text: str) -> str:
    return _WS_RE.sub(" ", text).strip()


def _shingles(text: str) -> set[tuple[str, ...]]:
    words = _WORD_RE.findall(text.lower())
    return {tuple(words[i : i + 4]) for i in range(max(0, len(words) - 3))}


@dataclass
class Template:
    """A real page cut into fixed HTML parts and numbered slots (paragraphs, title, URL)."""

    name: str
    parts: list[str]
    """Alternating: literal HTML, slot key, literal HTML, slot key, ... literal HTML."""
    slot_words: list[int]
    """Words of the original paragraph in each numbered slot (so refills keep the shape)."""
    residual: float
    """Share of the true body's 4-word shingles still in the template's fixed text."""

    def render(self, fills: dict[str, str]) -> str:
        out = []
        for i, part in enumerate(self.parts):
            out.append(fills.get(part, "") if i % 2 else part)
        return "".join(out)


def cut_template(name: str, page: str, body: str) -> Template | None:
    """The template of one page: every block holding part of the true ``body`` becomes a
    slot, and so do the headline, <title>, title metas and canonical URL. JSON-LD (which
    repeats the original headline and body) is dropped. ``None`` when no body was found."""
    tree = lxml.html.document_fromstring(page)
    truth = _norm(body)
    truth_shingles = _shingles(truth)
    slot_words: list[int] = []
    for script in tree.xpath('//script[@type="application/ld+json"]'):
        script.drop_tree()

    def covered(text: str) -> bool:
        if text in truth:
            return True
        sh = _shingles(text)
        return bool(sh) and len(sh & truth_shingles) / len(sh) >= 0.8

    for el in list(tree.iter(*_BLOCK_TAGS)):
        if el is not tree and tree not in el.iterancestors():
            continue  # inside a block replaced already
        text = _norm(el.text_content())
        if len(text) < 15 or not covered(text):
            continue
        for child in list(el):
            el.remove(child)
        el.text = _SLOT.format(len(slot_words))
        slot_words.append(len(text.split()))
    # Loose text directly in <div>s and the like.
    for el in tree.iter():
        if not isinstance(el.tag, str) or el.tag in ("script", "style"):
            continue
        for attr in ("text", "tail"):
            value = getattr(el, attr)
            if (
                value
                and "\ue000" not in value
                and len(_norm(value)) >= 40
                and covered(_norm(value))
            ):
                setattr(el, attr, _SLOT.format(len(slot_words)))
                slot_words.append(len(value.split()))
    if len(slot_words) < 3:
        return None
    titles = tree.xpath("//h1")
    if titles:
        h1 = titles[0]
        for child in list(h1):
            h1.remove(child)
        h1.text = _SLOT.format("T")
    for el in tree.xpath("//title"):
        el.text = _SLOT.format("T")
    for meta in tree.iter("meta"):
        key = (meta.get("property") or meta.get("name") or "").lower()
        if key in _TITLE_META:
            meta.set("content", _SLOT.format("T"))
        elif key in _URL_META:
            meta.set("content", _SLOT.format("U"))
    for link in tree.xpath('//link[@rel="canonical"]'):
        link.set("href", _SLOT.format("U"))
    out = lxml.html.tostring(tree, encoding="unicode", doctype="<!DOCTYPE html>")
    # The serializer percent-encodes the markers inside href attributes.
    out = out.replace("%EE%80%80", "\ue000").replace("%EE%80%81", "\ue001")
    pieces = _SLOT_RE.split(out)
    left = _SLOT_RE.sub(" ", out)
    fixed_text = _norm(lxml.html.document_fromstring(left).text_content())
    residual = len(_shingles(fixed_text) & truth_shingles) / max(1, len(truth_shingles))
    return Template(name, pieces, slot_words, round(residual, 3))


def sentence_halves(bodies: list[str]) -> tuple[list[str], list[str]]:
    """Every sentence of the corpus cut at its middle word: heads and tails. A story
    sentence is a random head + a random tail, so stories rarely share a whole sentence."""
    heads: list[str] = []
    tails: list[str] = []
    for body in bodies:
        for para in body.split("\n"):
            for sentence in _SENTENCE_RE.split(_norm(para)):
                words = sentence.split()
                if len(words) < 8 or not re.search(r"[A-Za-z]", sentence):
                    continue
                mid = len(words) // 2
                heads.append(" ".join(words[:mid]))
                tails.append(" ".join(words[mid:]))
    return heads, tails


@dataclass
class Story:
    title: str
    paragraphs: list[str]


class Mirror:
    """The mirror folder ``root``: ``a/<i>.html`` stories, ``r/<i>.html`` re-posts,
    ``sm/<n>/index.xml`` sitemap indexes of the first ``n`` pages, ``robots.txt``."""

    def __init__(self, root: Path, shared: Path, *, seed: int, repost_share: float) -> None:
        self.root = root
        self.shared = shared
        self.seed = seed
        self.repost_share = repost_share
        self.manifest_path = root / "manifest.json"
        self._templates: list[Template] | None = None
        self._halves: tuple[list[str], list[str]] | None = None

    # -- corpus -----------------------------------------------------------------------------
    def _load_corpus(self) -> None:
        templates = []
        bodies = []
        for gt in sorted((self.shared / "ground-truth").glob("*.json")):
            data = json.loads(gt.read_text(encoding="utf-8"))
            page = (self.shared / "html" / f"{gt.stem}.html").read_text(encoding="utf-8")
            bodies.append(data["articleBody"])
            template = cut_template(gt.stem[:12], page, data["articleBody"])
            if template is not None and template.residual <= 0.2:
                templates.append(template)
        self._templates = templates
        self._halves = sentence_halves(bodies)

    @property
    def templates(self) -> list[Template]:
        if self._templates is None:
            self._load_corpus()
        assert self._templates is not None
        return self._templates

    # -- pages ------------------------------------------------------------------------------
    def page_path(self, i: int) -> str:
        """URL path of page ``i`` (re-posts live under another path, as on another blog)."""
        return f"/r/{i}.html" if self.is_repost(i) else f"/a/{i}.html"

    def _rng(self, *key: object) -> random.Random:
        digest = hashlib.sha256(repr((self.seed, *key)).encode()).digest()
        return random.Random(int.from_bytes(digest[:8], "big"))

    def is_repost(self, i: int) -> bool:
        return i >= 20 and self._rng("repost", i).random() < self.repost_share

    def original_of(self, i: int) -> int:
        """The earlier story page ``i`` re-posts (an original, never a re-post)."""
        rng = self._rng("original", i)
        while True:
            j = rng.randrange(0, i)
            if not self.is_repost(j):
                return j

    def template_of(self, i: int) -> int:
        return self._rng("template", i).randrange(len(self.templates))

    def story(self, i: int) -> Story:
        """Story ``i``: for each paragraph slot of its template, about as many words of
        recombined sentences as the original paragraph had."""
        if self._halves is None:
            self._load_corpus()
        heads, tails = self._halves or ([], [])
        rng = self._rng("story", i)
        template = self.templates[self.template_of(i)]
        paragraphs = []
        for words in template.slot_words:
            sentences = []
            count = 0
            while count < max(8, words):
                sentence = f"{rng.choice(heads)} {rng.choice(tails)}"
                sentences.append(sentence)
                count += len(sentence.split())
            paragraphs.append(" ".join(sentences))
        title_words = f"{rng.choice(heads)} {rng.choice(tails)}".split()[:12]
        return Story(" ".join(title_words).rstrip(".,;:!?"), paragraphs)

    def render(self, i: int, base_url: str = "") -> str:
        """HTML of page ``i``. A re-post carries its original's story (same paragraphs and
        title) in another template, with spam lines after the body."""
        source = self.original_of(i) if self.is_repost(i) else i
        story = self.story(source)
        t_index = self.template_of(i)
        if self.is_repost(i) and t_index == self.template_of(source):
            t_index = (t_index + 1) % len(self.templates)
        template = self.templates[t_index]
        paragraphs = list(story.paragraphs)
        # The source story's paragraphs poured into this template's slots.
        slots = len(template.slot_words)
        if len(paragraphs) > slots:
            paragraphs = [*paragraphs[: slots - 1], " ".join(paragraphs[slots - 1 :])]
        fills = {str(k): html.escape(p, quote=False) for k, p in enumerate(paragraphs)}
        if self.is_repost(i):
            last = str(len(paragraphs) - 1)
            spam = "".join(f"<p>{html.escape(s)}</p>" for s in REPOST_SPAM)
            fills[last] = f"{fills[last]}</p>{spam}<p>"
        fills["T"] = html.escape(story.title)
        fills["U"] = html.escape(f"{base_url}{self.page_path(i)}")
        return template.render(fills)

    # -- files ------------------------------------------------------------------------------
    def _manifest(self) -> dict:
        try:
            return json.loads(self.manifest_path.read_text())
        except (OSError, ValueError):
            return {}

    def ensure(self, n: int) -> dict:
        """Make sure pages ``0 .. n-1`` exist; return
        the manifest (pages, templates used, seed, re-posts)."""
        manifest = self._manifest()
        key = {"format": MIRROR_FORMAT, "seed": self.seed, "repost_share": self.repost_share}
        if any(manifest.get(k) != v for k, v in key.items()):
            manifest = {**key, "pages": 0}
        have = manifest.get("pages", 0)
        if have < n:
            started = time.monotonic()
            (self.root / "a").mkdir(parents=True, exist_ok=True)
            (self.root / "r").mkdir(parents=True, exist_ok=True)
            total = 0
            for i in range(have, n):
                body = self.render(i).encode("utf-8")
                total += len(body)
                (self.root / self.page_path(i).lstrip("/")).write_bytes(body)
            manifest.update(
                pages=n,
                templates=len(self.templates),
                generated_seconds=round(time.monotonic() - started, 1),
            )
            logger.info(
                "mirror: %d pages generated (%.0f MB) in %.1f s",
                n - have,
                total / 1e6,
                time.monotonic() - started,
            )
        (self.root / "robots.txt").write_text("User-agent: *\nAllow: /\n")
        manifest["reposts"] = {str(n): sum(self.is_repost(i) for i in range(n))}
        self.root.mkdir(parents=True, exist_ok=True)
        self.manifest_path.write_text(json.dumps(manifest, indent=1))
        return manifest

    def write_sitemaps(self, n: int, base_url: str) -> str:
        """Sitemap index (and its children) of the first ``n`` pages with absolute URLs on
        ``base_url``; returns the index URL."""
        folder = self.root / "sm" / str(n)
        folder.mkdir(parents=True, exist_ok=True)
        children = []
        for k, start in enumerate(range(0, n, SITEMAP_CHUNK)):
            lines = ['<?xml version="1.0" encoding="UTF-8"?>']
            lines.append('<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">')
            for i in range(start, min(n, start + SITEMAP_CHUNK)):
                lastmod = (BASE_TIME - timedelta(minutes=i)).isoformat()
                lines.append(
                    f"<url><loc>{base_url}{self.page_path(i)}</loc><lastmod>{lastmod}</lastmod></url>"
                )
            lines.append("</urlset>")
            (folder / f"{k}.xml").write_text("\n".join(lines) + "\n")
            children.append(f"/sm/{n}/{k}.xml")
        lines = ['<?xml version="1.0" encoding="UTF-8"?>']
        lines.append('<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">')
        for k, child in enumerate(children):
            lastmod = (BASE_TIME - timedelta(minutes=k * SITEMAP_CHUNK)).isoformat()
            lines.append(
                f"<sitemap><loc>{base_url}{child}</loc><lastmod>{lastmod}</lastmod></sitemap>"
            )
        lines.append("</sitemapindex>")
        (folder / "index.xml").write_text("\n".join(lines) + "\n")
        return f"{base_url}/sm/{n}/index.xml"

    def urls(self, n: int, base_url: str) -> list[str]:
        return [f"{base_url}{self.page_path(i)}" for i in range(n)]

    def warm(self, n: int) -> int:
        """Read pages ``0 .. n-1`` once (into the page cache); return their total bytes."""
        total = 0
        for i in range(n):
            total += len((self.root / self.page_path(i).lstrip("/")).read_bytes())
        return total
