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
"""A shorter body is a teaser, an index or an error page, not an article (letters and
digits counted, so Korean and English texts are judged alike)."""
_COUNTED_RE = re.compile(r"[^\W_]", re.UNICODE)


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
    if len(_COUNTED_RE.findall(text)) < min_chars:
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
