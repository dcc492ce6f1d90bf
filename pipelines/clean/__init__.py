"""Clean step: strip spam, promo and boilerplate lines from article text, recording each one.
Rules are data (``data/clean_rules.toml``); ``clean_text`` is the pure core.

``lines`` (forms and keys of a line), ``rules`` (the rules file), ``core`` (``clean_text``),
``reclean`` (a run's stories cleaned again) and ``pipeline`` (``CleanPipeline``) build on
each other in that order."""

from __future__ import annotations

from pipelines.clean.core import (
    CleanResult,
    clean_text,
    headline_spans,
    own_lines,
    text_keys,
)
from pipelines.clean.lines import (
    boilerplate_candidates,
    is_long_line,
    key_form,
    line_key,
    text_form,
    tidy_spacing,
)
from pipelines.clean.pipeline import (
    CleanConfig,
    CleanPipeline,
    clean_with_rules_file,
    story_key_from_text,
)
from pipelines.clean.rules import (
    BUILTIN_RULES,
    DEFAULT_RULES_FILE,
    DOMAIN_RULES,
    HEADLINE,
    LEARNED,
    OTHER_HEADLINE,
    REPEATED,
    Family,
    PatternGroup,
    Rules,
    RulesError,
    default_rules,
    load_rules,
    parse_rules,
    required_strings,
)

__all__ = [
    "BUILTIN_RULES",
    "DEFAULT_RULES_FILE",
    "DOMAIN_RULES",
    "HEADLINE",
    "LEARNED",
    "OTHER_HEADLINE",
    "REPEATED",
    "CleanConfig",
    "CleanPipeline",
    "CleanResult",
    "Family",
    "PatternGroup",
    "Rules",
    "RulesError",
    "boilerplate_candidates",
    "clean_text",
    "clean_with_rules_file",
    "default_rules",
    "headline_spans",
    "is_long_line",
    "key_form",
    "line_key",
    "load_rules",
    "own_lines",
    "parse_rules",
    "required_strings",
    "story_key_from_text",
    "text_form",
    "text_keys",
    "tidy_spacing",
]
