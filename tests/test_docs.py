"""Every setting the project defines or reads is documented in the README."""

from __future__ import annotations

import re

from scrapy.settings import default_settings

from crawler.config import SETTING
from tests.conftest import ROOT

# scrapy-playwright's own settings (documented by that project).
PLAYWRIGHT_OWN = {
    "PLAYWRIGHT_BROWSER_TYPE",
    "PLAYWRIGHT_LAUNCH_OPTIONS",
    "PLAYWRIGHT_MAX_PAGES_PER_CONTEXT",
    "PLAYWRIGHT_DEFAULT_NAVIGATION_TIMEOUT",
    "PLAYWRIGHT_ABORT_REQUEST",
    "PLAYWRIGHT_CONTEXTS",
    "PLAYWRIGHT_MAX_CONTEXTS",
    "PLAYWRIGHT_PROCESS_REQUEST_HEADERS",
}
_READ_RE = re.compile(r"""settings\.get\w*\(\s*["']([A-Z][A-Z0-9_]+)["']""")
_DEFINED_RE = re.compile(r"^([A-Z][A-Z0-9_]+)\s*=", re.MULTILINE)


def project_settings() -> set[str]:
    names = set(_DEFINED_RE.findall((ROOT / "crawler" / "settings.py").read_text())) | set(SETTING)
    for folder in ("crawler", "pipelines"):
        for path in (ROOT / folder).rglob("*.py"):
            names.update(_READ_RE.findall(path.read_text(encoding="utf-8")))
    return {n for n in names if not hasattr(default_settings, n) and n not in PLAYWRIGHT_OWN}


def test_every_custom_setting_is_documented():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    names = project_settings()
    assert {"DB_PATH", "SITES_FILE", "CLEAN_RULES_FILE", "TAG_KOREA_THRESHOLD"} <= names
    missing = sorted(n for n in names if f"`{n}`" not in readme)
    assert not missing, f"settings not in README.md: {missing}"
