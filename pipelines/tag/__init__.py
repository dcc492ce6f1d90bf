"""Tag Korea stories: a lexicon-driven scorer (``tag_story``) and the ``TagPipeline`` around it.

- ``lexicon``: the compiled lexicon and its one-pass matcher;
- ``loader``: reading and validating ``data/korea_lexicon.toml``;
- ``rules``: what a found term means where it stands (subject, venue, list, source...);
- ``tagger``: zones, scoring, the decision and its evidence;
- ``pipeline``: the Scrapy item pipeline.
"""

from __future__ import annotations

from pipelines.tag.lexicon import (
    DEFAULT_LEXICON_FILE,
    REPO_ROOT,
    TAG_KOREA,
    TAG_MENTION,
    TAG_NORTH,
    TAG_SOUTH,
    Entry,
    Lexicon,
    LexiconError,
)
from pipelines.tag.loader import lexicon_from_dict, load_lexicon, read_lexicon, resolve_lexicon_path
from pipelines.tag.pipeline import TagConfig, TagPipeline
from pipelines.tag.tagger import (
    KOREA_THRESHOLD,
    MENTION_THRESHOLD,
    Tagger,
    TagResult,
    clean_input,
    tag_story,
)

__all__ = [
    "DEFAULT_LEXICON_FILE",
    "KOREA_THRESHOLD",
    "MENTION_THRESHOLD",
    "REPO_ROOT",
    "TAG_KOREA",
    "TAG_MENTION",
    "TAG_NORTH",
    "TAG_SOUTH",
    "Entry",
    "Lexicon",
    "LexiconError",
    "TagConfig",
    "TagPipeline",
    "TagResult",
    "Tagger",
    "clean_input",
    "lexicon_from_dict",
    "load_lexicon",
    "read_lexicon",
    "resolve_lexicon_path",
    "tag_story",
]
