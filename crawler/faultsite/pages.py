"""What the fault site serves: deterministic articles, pages in legacy encodings with no
charset declared, compression bombs, hostile XML prologs, files that are not HTML."""

from __future__ import annotations

import random
import struct
import zlib
from functools import cache
from pathlib import Path

import brotli

TEXTS = Path(__file__).resolve().parent / "texts"
"""Real-language article texts (Korean, Japanese, French) for the encoding faults."""

_VOCABULARY = (
    "city council budget river bridge school teacher museum harbour railway farmer market "
    "election minister report factory export import wage union strike court judge law police "
    "weather storm flood drought harvest rice wheat coffee tea price index bank loan rate "
    "company chip battery engine ship port airline pilot station train bus road tunnel park "
    "forest mountain island coast village festival music film novel artist painter library "
    "hospital doctor nurse patient vaccine study survey census village mayor governor army "
    "navy border treaty summit talks envoy senator parliament committee vote ballot poll "
    "tax tariff subsidy pension housing rent tenant landlord builder architect engineer "
    "software network cable satellite rocket launch orbit telescope planet ocean fishery "
    "whale reef glacier climate carbon solar wind turbine grid outage blackout water pipe"
)
_WORDS = _VOCABULARY.split()
_FILLER = (
    "the", "a", "of", "in", "on", "after", "before", "while", "and", "but", "said", "says",
    "reported", "announced", "expects", "plans", "new", "local", "national", "first", "last",
)  # fmt: skip


def article_words(n: int, count: int = 260) -> str:
    """Distinct, deterministic prose for article ``n`` (no two share a story)."""
    rng = random.Random(n * 7919 + 17)  # noqa: S311 - reproducible prose, not security
    words = []
    for i in range(count):
        words.append(rng.choice(_WORDS) if i % 3 else rng.choice(_FILLER))
    sentences = [" ".join(words[i : i + 13]).capitalize() + "." for i in range(0, count, 13)]
    return " ".join(sentences)


def article_title(n: int) -> str:
    rng = random.Random(n)  # noqa: S311 - reproducible titles
    return f"Report {n}: {rng.choice(_WORDS)} and {rng.choice(_WORDS)} in the news"


def article_html(n: int, *, title: str | None = None, text: str | None = None) -> str:
    title = title or article_title(n)
    text = text or article_words(n)
    paras = "".join(f"<p>{p.strip()}.</p>" for p in text.split(".") if p.strip())
    return (
        f"<!doctype html><html lang='en'><head><title>{title}</title>"
        f"<meta property='article:published_time' content='2026-11-20T08:00:00+00:00'>"
        f"</head><body><nav><a href='/'>Home</a></nav><article><h1>{title}</h1>{paras}"
        f"</article><footer>Contact us</footer></body></html>"
    )


def encoded_page(name: str, encoding: str, *, drop: str | None = None) -> tuple[str, bytes]:
    """``(title, body)`` of fixture text ``name`` as an HTML page in ``encoding``, with no
    charset declared anywhere."""
    text = (TEXTS / f"{name}.txt").read_text(encoding="utf-8")
    if drop:
        text = text.replace(drop, "")
    title, *paras = [line for line in text.splitlines() if line.strip()]
    html = (
        f"<html><head><title>{title}</title></head><body><article><h1>{title}</h1>"
        + "".join(f"<p>{p}</p>" for p in paras)
        + "</article></body></html>"
    )
    return title, html.encode(encoding)


BOMB_KINDS = ("gzip", "deflate", "br")


@cache
def bomb(kind: str, size: int = 200 * 1024 * 1024) -> bytes:
    """``size`` zero bytes compressed with ``kind`` (gzip/deflate/br): a few hundred KB."""
    zeros = bytes(1024 * 1024)
    if kind == "br":
        compressor = brotli.Compressor(quality=1)
        out = [compressor.process(zeros) for _ in range(size // len(zeros))]
        return b"".join(out) + compressor.finish()
    if kind == "deflate":
        compressor = zlib.compressobj(9)
    else:
        compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip container
    out = [compressor.compress(zeros) for _ in range(size // len(zeros))]
    return b"".join(out) + compressor.flush()


DEEP_JSON = "[" * 100_000 + "]" * 100_000
"""JSON nested deeper than Python's parser recurses."""
PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n" + b"x" * 400
PNG = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + b"\x00" * 17 + b"x" * 400
LOL = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lollollollollollollollol">\n'
    + b"".join(
        f' <!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n'.encode()
        for i in range(1, 10)
    )
    + b"]>\n"
)
XXE = (
    b'<?xml version="1.0"?>\n<!DOCTYPE x [\n <!ENTITY xxe SYSTEM "file:///etc/passwd">\n'
    b' <!ENTITY ext SYSTEM "http://127.0.0.2:{canary}/xxe">\n]>\n'
)
