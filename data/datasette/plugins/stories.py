"""Datasette plugin: in the ``stories`` canned query (one line per story), the story's title
links to its full ``articles`` row. Loaded by ``scrapy datasette`` (``--plugins-dir``)."""

from __future__ import annotations

from typing import Any

import markupsafe
from datasette import hookimpl

STORY_KEY = "story"
"""The column of the ``stories`` query holding the ``articles`` id (and its marker)."""


@hookimpl
def render_cell(row: Any, value: Any, column: str, table: str | None, database: str,
                datasette: Any) -> markupsafe.Markup | None:  # fmt: skip
    if table is not None or column not in ("title", STORY_KEY):
        return None
    try:
        story = row[STORY_KEY]
    except (IndexError, KeyError):
        return None
    if story is None:
        return None
    href = datasette.urls.row(database, "articles", str(story))
    text = value if value is not None else story
    return markupsafe.Markup('<a href="{}">{}</a>').format(href, text)
