"""Bytes -> text for web pages whose charset is missing, wrong or only in a meta tag."""

from __future__ import annotations

import codecs
import re

import charset_normalizer
from w3lib.encoding import http_content_type_encoding, read_bom, resolve_encoding

_META_CHARSET_RE = re.compile(
    rb"""<meta[^>]+?charset\s*=\s*["']?\s*([a-zA-Z0-9_:.+-]+)""", re.IGNORECASE
)
_XML_DECL_RE = re.compile(rb"""^\s*<\?xml[^>]+encoding\s*=\s*["']([a-zA-Z0-9_.:-]+)""")
# How much of the body to look at for a declaration / to hand to the detector.
_HEAD_BYTES = 4096
_LATIN = frozenset(
    {
        "cp1250",
        "cp1252",
        "cp1254",
        "cp1257",
        "latin_1",
        "iso8859_2",
        "iso8859_4",
        "iso8859_9",
        "iso8859_13",
        "iso8859_15",
        "iso8859_16",
        "mac_roman",
        "mac_latin2",
        "cp850",
        "cp437",
    }
)
_SINGLE_BYTE = _LATIN | frozenset(
    {
        "cp1251",
        "cp1253",
        "cp1255",
        "cp1256",
        "cp874",
        "koi8_r",
        "koi8_u",
        "iso8859_5",
        "iso8859_7",
        "iso8859_8",
        "tis_620",
        "ascii",
    }
)
_DETECT_BYTES = 64 * 1024


def _canonical(name: str | None) -> str | None:
    if not name:
        return None
    resolved = resolve_encoding(name.strip().lower())
    if resolved is None:
        return None
    # EUC-KR pages in the wild are nearly always CP949 (its superset); decode as such.
    if resolved in ("euc_kr", "ks_c_5601-1987"):
        return "cp949"
    return resolved


def _decodes(body: bytes, encoding: str) -> str | None:
    try:
        return body.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return None


def declared_encoding(body: bytes) -> str | None:
    """The encoding a page declares in its body (BOM, ``<meta charset>``, XML declaration)."""
    bom, _ = read_bom(body)
    if bom:
        return _canonical(bom)
    head = body[:_HEAD_BYTES]
    match = _XML_DECL_RE.search(head) or _META_CHARSET_RE.search(head)
    return _canonical(match.group(1).decode("ascii", "ignore")) if match else None


def decode_html(body: bytes, content_type: str | None = None) -> tuple[str, str]:
    """Decode a page; return ``(text, encoding)``.

    Order: byte-order mark; the HTTP header's charset and the page's own declaration, each
    taken only if the whole body decodes cleanly in it (a lying header loses); strict UTF-8;
    then statistical detection (charset-normalizer) for pages that declare nothing, such as
    EUC-KR or Shift_JIS served without a charset. As a last resort the detected (or cp1252)
    encoding with replacement characters, so no page is refused for its bytes.
    """
    bom, _ = read_bom(body)
    if bom:
        enc = _canonical(bom) or "utf-8"
        return body[_bom_len(body) :].decode(enc, "replace"), enc
    candidates = [
        _canonical(http_content_type_encoding(content_type) if content_type else None),
        declared_encoding(body),
        "utf-8",
    ]
    for enc in dict.fromkeys(c for c in candidates if c):
        text = _decodes(body, enc)
        if text is None:
            continue
        if enc in _SINGLE_BYTE and not body.isascii():
            # Any byte string "decodes" in a single-byte charset: a header or meta tag that
            # claims latin-1 for an EUC-KR page would go unnoticed. Take a multi-byte
            # detection that also decodes strictly over the claim.
            detected = _detect(body)
            if detected and detected not in _SINGLE_BYTE:
                better = _decodes(body, detected)
                if better is not None:
                    return better, detected
        return text, enc
    enc = _detect(body)
    if enc in _LATIN and _decodes(body, "cp1252") is not None:
        # Latin-script single-byte charsets are statistically indistinguishable on short
        # pages; windows-1252 is the web's default (HTML standard) for undeclared pages.
        enc = "cp1252"
    if enc:
        text = _decodes(body, enc)
        if text is not None:
            return text, enc
        return body.decode(enc, "replace"), enc
    return body.decode("cp1252", "replace"), "cp1252"


def decode_as(body: bytes, encoding: str) -> str:
    """The text ``decode_html`` gave for ``body`` when it chose ``encoding`` (the byte-order
    mark dropped, bad bytes replaced): a pool worker sends back the encoding, not the page."""
    return body[_bom_len(body) :].decode(encoding, "replace")


def _detect(body: bytes) -> str | None:
    guess = charset_normalizer.from_bytes(body[:_DETECT_BYTES]).best()
    return _canonical(guess.encoding) if guess else None


def _bom_len(body: bytes) -> int:
    for bom in (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF8):
        if body.startswith(bom):
            return len(bom)
    if body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return 2
    return 0
