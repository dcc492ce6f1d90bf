"""Validate step: drop what is not an article page, with a counted and logged reason."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from itemadapter import ItemAdapter
from scrapy.exceptions import DropItem, NotConfigured

from crawler.config import default, get_bool, get_int

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Self

    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

DEFAULT_MIN_CHARS: int = default("VALIDATE_MIN_CHARS")
"""A shorter body is a teaser, an index or an error page, not an article (``article_length``:
letters and digits, weighted by script, so Korean and English texts are judged alike)."""
HANGUL_WEIGHT = 2
"""A Hangul syllable block counts as two Latin letters: a Korean word (eojeol) is about three
syllables and carries what five to seven letters of English do, so a Korean brief of 50
words (150-180 syllables) measures like an English one of 50 words (about 250 letters)."""
HAN_KANA_WEIGHT = 3
"""A Han ideograph or kana counts as three Latin letters: Chinese and Japanese write a word
in one to two characters, without spaces."""
_COUNTED_RE = re.compile(r"[^\W_]", re.UNICODE)
_HANGUL_RE = re.compile("[\uac00-\ud7a3]")
_HAN_KANA_RE = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def article_length(text: str) -> int:
    """How much text ``text`` holds, in Latin letters: letters and digits count one, Hangul
    syllables ``HANGUL_WEIGHT``, Han ideographs and kana ``HAN_KANA_WEIGHT`` (the same
    minimum then asks the same amount of news of every script)."""
    length = len(_COUNTED_RE.findall(text))
    if text.isascii():
        return length
    hangul = len(_HANGUL_RE.findall(text))
    han_kana = len(_HAN_KANA_RE.findall(text))
    return length + hangul * (HANGUL_WEIGHT - 1) + han_kana * (HAN_KANA_WEIGHT - 1)


def long_enough(text: str, minimum: int) -> bool:
    """Whether ``article_length(text) >= minimum``, measured a piece at a time: a long text
    is judged by its opening alone."""
    if minimum <= 0:
        return True
    step = max(4 * minimum, 1024)
    total = 0
    for start in range(0, len(text), step):
        total += article_length(text[start : start + step])
        if total >= minimum:
            return True
    return False


def rejection(item: Mapping[str, Any], *, min_chars: int = DEFAULT_MIN_CHARS) -> str | None:
    """Why ``item`` is not a storable article (``not_html``, ``no_text``, ``too_short``,
    ``bad_url``), or ``None`` when it is one."""
    url = item.get("url") or ""
    if not url.startswith(("http://", "https://")):
        return "bad_url"
    if item.get("html") is None and item.get("text") is None:
        return "not_html"
    text = item.get("text") or ""
    if not text.strip():
        return "no_text"
    if not long_enough(text, min_chars):
        return "too_short"
    return None


class ValidatePipeline:
    """Drops items that are not articles: ``validate/dropped/<reason>`` and a DropItem."""

    def __init__(self, crawler: Crawler, *, min_chars: int) -> None:
        self.crawler = crawler
        self.min_chars = min_chars

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        if not get_bool(crawler.settings, "VALIDATE_ENABLED"):
            raise NotConfigured("VALIDATE_ENABLED is off")
        return cls(crawler, min_chars=get_int(crawler.settings, "VALIDATE_MIN_CHARS"))

    def process_item(self, item: Any) -> Any:
        adapter = ItemAdapter(item)
        reason = rejection(adapter, min_chars=self.min_chars)
        if reason is None:
            self.crawler.stats.inc_value("validate/ok")
            return item
        self.crawler.stats.inc_value(f"validate/dropped/{reason}")
        raise DropItem(
            f"not an article ({reason}): {adapter.get('url')} "
            f"[{adapter.get('content_type') or 'no content type'}]",
            log_level="INFO",
        )
