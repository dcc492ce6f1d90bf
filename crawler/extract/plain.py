"""Plain text: the fields of an extracted item without control characters, lone surrogates or
non-characters (none of them is text; a lone surrogate cannot even be written to SQLite)."""

from __future__ import annotations

import re
from dataclasses import fields
from typing import Any

from crawler.items import ArticleItem

__all__ = ["plain_item", "plain_text"]

# C0 controls other than tab/newline/carriage return, DEL, lone surrogates, non-characters.
_NOT_TEXT_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff]")


def plain_text(value: str) -> str:
    """``value`` without NUL and other control characters, lone surrogates or non-characters."""
    return _NOT_TEXT_RE.sub("", value)


def plain_item(item: ArticleItem) -> ArticleItem:
    """Every text field of ``item`` (and strings inside its lists and dicts) made plain."""
    for f in fields(item):
        value = getattr(item, f.name)
        cleaned = _plain_value(value)
        if cleaned is not value:
            setattr(item, f.name, cleaned)
    return item


def _plain_value(value: Any) -> Any:
    if isinstance(value, str):
        cleaned = plain_text(value)
        return value if cleaned == value else cleaned
    if isinstance(value, list):
        return [_plain_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain_value(v) for k, v in value.items()}
    return value
