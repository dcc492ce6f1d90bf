"""Every setting is declared once (crawler/config.py): Scrapy's project settings, the config
objects of the steps and docs/settings.md all come from that declaration."""

from __future__ import annotations

import ast
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
from scrapy.settings import Settings, default_settings
from scrapy.utils.project import get_project_settings

from crawler import config
from crawler.anomaly import AnomalyConfig
from crawler.config import (
    SETTINGS,
    db_path_for,
    declared,
    get,
    get_bool,
    get_float,
    get_int,
    get_list,
    get_str,
    read_config,
    settings_page,
)
from crawler.distributed.config import DistributedConfig
from crawler.distributed.ingest import IngestConfig
from crawler.middlewares.incremental import IncrementalConfig
from crawler.runner import Limits
from pipelines.clean import CleanConfig
from pipelines.dedupe import DedupeConfig
from pipelines.store import StoreConfig
from tests.conftest import ROOT

CONFIG_OBJECTS = (
    AnomalyConfig,
    CleanConfig,
    DedupeConfig,
    DistributedConfig,
    IncrementalConfig,
    IngestConfig,
    Limits,
    StoreConfig,
)
"""Config dataclasses whose fields are declared settings (``setting(...)``)."""

PLAYWRIGHT_OWN = {
    "PLAYWRIGHT_BROWSER_TYPE",
    "PLAYWRIGHT_LAUNCH_OPTIONS",
    "PLAYWRIGHT_MAX_PAGES_PER_CONTEXT",
    "PLAYWRIGHT_DEFAULT_NAVIGATION_TIMEOUT",
    "PLAYWRIGHT_ABORT_REQUEST",
}
"""scrapy-playwright's own settings (documented by that project)."""

RAW_READS_LEFT: set[str] = set()
"""Modules still reading declared settings with Scrapy's getters and their own fallbacks."""

_GETTERS = {"get", "get_bool", "get_int", "get_float", "get_str", "get_list"}
_DECLARATION_USERS = {"setting", "default", "declared"}


def _reads() -> list[tuple[str, int, str, bool]]:
    """``(module path, line, setting name, read through crawler.config)`` of every setting
    name the code reads: ``settings.get*("NAME")``, ``get_int(settings, "NAME")``,
    ``setting("NAME")``, ``default("NAME")``."""
    found = []
    for folder in ("crawler", "pipelines"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                args = [a.value for a in node.args if isinstance(a, ast.Constant)]
                names = [a for a in args if isinstance(a, str) and a.isupper()]
                if not names:
                    continue
                if isinstance(func, ast.Name) and func.id in _GETTERS | _DECLARATION_USERS:
                    found.append((rel, node.lineno, names[0], True))
                elif (
                    isinstance(func, ast.Attribute)
                    and func.attr.startswith("get")
                    and "settings" in ast.unparse(func.value).lower()
                    and isinstance(node.args[0], ast.Constant)
                ):
                    found.append((rel, node.lineno, node.args[0].value, False))
    return found


def test_every_setting_the_code_reads_is_declared_or_scrapys_own():
    reads = _reads()
    assert len(reads) > 100  # the scan sees the code
    unknown = sorted(
        {
            f"{name} ({path}:{line})"
            for path, line, name, _ in reads
            if name not in config.SETTING
            and not hasattr(default_settings, name)
            and name not in PLAYWRIGHT_OWN
        }
    )
    assert not unknown, f"settings read but not declared in crawler/config.py: {unknown}"


def test_declared_settings_are_read_through_the_declaration():
    raw = sorted(
        f"{name} ({path}:{line})"
        for path, line, name, via_config in _reads()
        if not via_config and name in config.SETTING and path not in RAW_READS_LEFT
    )
    assert not raw, f"read with a default of their own instead of crawler.config: {raw}"


def test_every_declared_setting_is_used_and_documented():
    used = {name for _, _, name, _ in _reads()}
    assert sorted(s.name for s in SETTINGS if s.name not in used) == []
    for s in SETTINGS:
        assert s.group in config.GROUPS, s.name
        assert s.doc.strip(), s.name
        assert "\n" not in s.doc, s.name
        assert s.type in {str, int, float, bool, list}, s.name
        if s.default is not None:
            assert isinstance(s.default, s.type), (s.name, s.default)
        assert not hasattr(default_settings, s.name), f"{s.name} is Scrapy's own setting"
    assert len(config.SETTING) == len(SETTINGS), "a setting is declared twice"


def test_project_settings_take_the_declared_defaults():
    project = get_project_settings()
    for s in SETTINGS:
        assert project[s.name] == s.default, s.name
        assert get(project, s.name) == s.default, s.name
    # Every other upper-case name of crawler/settings.py is Scrapy's or scrapy-playwright's.
    own = set(config.scrapy_overrides())
    assert own, "crawler/settings.py sets Scrapy settings"
    assert not {n for n in own if not hasattr(default_settings, n)} - PLAYWRIGHT_OWN


def test_scrapy_settings_command_shows_declared_defaults():
    out = subprocess.run(
        [sys.executable, "-m", "scrapy", "settings", "--get", "DEDUPE_NEAR_THRESHOLD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert out.stdout.strip() == str(declared("DEDUPE_NEAR_THRESHOLD").default)


def test_docs_settings_page_is_current():
    page = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    assert page == settings_page(), (
        "docs/settings.md is out of date: python -m crawler.config > docs/settings.md"
    )
    for s in SETTINGS:
        assert f"| `{s.name}` |" in page


def test_typed_getters_read_values_and_fall_back_to_declared_defaults():
    given = Settings(
        {
            "DEDUPE_NUM_PERM": "96",
            "DEDUPE_NEAR_THRESHOLD": "0.5",
            "STORE_KEEP_HTML": "False",
            "SSRF_ALLOWED_HOSTS": "a.test,.b.test",
            "DB_PATH": Path("/tmp/x.db"),
            "SITES_FILE": "",
        }
    )
    assert get_int(given, "DEDUPE_NUM_PERM") == 96
    assert get_float(given, "DEDUPE_NEAR_THRESHOLD") == 0.5
    assert get_bool(given, "STORE_KEEP_HTML") is False
    assert get_list(given, "SSRF_ALLOWED_HOSTS") == ["a.test", ".b.test"]
    assert db_path_for(given) == "/tmp/x.db"
    assert get_str(given, "SITES_FILE") == "data/sites.toml"  # empty: the default
    bare = Settings()
    assert get_int(bare, "DEDUPE_BANDS") == 40
    assert get_str(bare, "CLEAN_RULES_FILE") is None
    assert db_path_for(bare) == "data/news.db"
    fresh = get_list(bare, "ANOMALY_SEEN_STATS")
    fresh.append("x")  # callers get copies: the declaration is not changed
    assert "x" not in config.default("ANOMALY_SEEN_STATS")


def test_getters_refuse_undeclared_names_and_wrong_types():
    with pytest.raises(KeyError, match="DEDUPE_NEAR_TRESHOLD is not a declared setting"):
        get_float(Settings(), "DEDUPE_NEAR_TRESHOLD")
    with pytest.raises(TypeError, match="DEDUPE_NUM_PERM is declared int, not float"):
        get_float(Settings(), "DEDUPE_NUM_PERM")


@pytest.mark.parametrize("cls", CONFIG_OBJECTS, ids=lambda c: c.__name__)
def test_config_objects_hold_declared_settings_with_matching_types(cls):
    held = config.setting_fields(cls)
    assert held, f"{cls.__name__} has no setting(...) fields"
    hints = {f.name: str(f.type) for f in dataclasses.fields(cls)}
    for attr, name in held.items():
        kind = declared(name).type
        expected = "tuple" if kind is list else kind.__name__
        assert hints[attr].startswith(expected), (cls.__name__, attr, hints[attr], name)


def test_read_config_reads_each_field_with_its_getter():
    settings = Settings({"ANOMALY_MIN_RUNS": "2", "ANOMALY_SEEN_STATS": ["a/b", "c/d"]})
    anomaly = read_config(AnomalyConfig, settings)
    assert anomaly.min_runs == 2
    assert anomaly.seen_stats == ("a/b", "c/d")
    assert anomaly.history_runs == declared("ANOMALY_HISTORY_RUNS").default
    store = StoreConfig.from_settings(Settings({"STORE_BATCH_SIZE": "7"}))
    assert (store.batch_size, store.db_path, store.busy_timeout) == (7, "data/news.db", 30.0)
    distributed = DistributedConfig.from_settings(Settings({"REDIS_URL": " redis://h:1/0 "}))
    assert (distributed.redis_url, distributed.prefix) == ("redis://h:1/0", "newscrawler")
