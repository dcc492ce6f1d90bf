"""The documentation: every setting documented, a short README whose links resolve, and
user-facing text that speaks of the software, not of how it was built."""

from __future__ import annotations

import re
from pathlib import Path

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

README_MAX_LINES = 300
# The pages the README links to: every page of docs/ and the changelog.
README_PAGES = {
    "docs/sites.md",
    "docs/extraction.md",
    "docs/cleaning.md",
    "docs/dedupe.md",
    "docs/tagging.md",
    "docs/storage.md",
    "docs/operations.md",
    "docs/safety.md",
    "docs/throughput.md",
    "docs/distributed.md",
    "docs/settings.md",
    "docs/architecture.md",
    "docs/development.md",
    "docs/benchmarks.md",
    "CHANGELOG.md",
}
_LINK_RE = re.compile(r"\]\((?!https?://|mailto:)([^)\s]+)\)")
_HEADING_RE = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE_RE = re.compile(r"^\s*(```|~~~)")
# How the project was built is not the product's business (issue numbers, verdicts against
# targets, this machine's paths, lookup history).
_HISTORY_RE = re.compile(
    r"(?<![\w.])/work/|index ids?\b|looked up \d|build machine|this round|\bissues? #?\d|"
    r"(?-i:\bMISSED\b)|\btargets? (?:of|>=|<=)",
    re.IGNORECASE,
)


def project_settings() -> set[str]:
    names = set(_DEFINED_RE.findall((ROOT / "crawler" / "settings.py").read_text())) | set(SETTING)
    for folder in ("crawler", "pipelines"):
        for path in (ROOT / folder).rglob("*.py"):
            names.update(_READ_RE.findall(path.read_text(encoding="utf-8")))
    return {n for n in names if not hasattr(default_settings, n) and n not in PLAYWRIGHT_OWN}


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def anchors(path: Path) -> set[str]:
    """GitHub's anchors for the headings of a Markdown file (code blocks skipped)."""
    found: set[str] = set()
    in_fence = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if _FENCE_RE.match(line):
            in_fence = not in_fence
            continue
        match = None if in_fence else _HEADING_RE.match(line)
        if not match:
            continue
        slug = re.sub(r"[^\w\- ]", "", match.group(2).lower()).replace(" ", "-")
        base, n = slug, 1
        while slug in found:
            slug, n = f"{base}-{n}", n + 1
        found.add(slug)
    return found


def links(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
    return _LINK_RE.findall(text)


def test_every_custom_setting_is_documented():
    docs = "".join(p.read_text(encoding="utf-8") for p in doc_files())
    names = project_settings()
    assert {"DB_PATH", "SITES_FILE", "CLEAN_RULES_FILE", "TAG_KOREA_THRESHOLD"} <= names
    missing = sorted(n for n in names if f"`{n}`" not in docs)
    assert not missing, f"settings in neither README.md nor docs/*.md: {missing}"


def test_readme_is_short():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"


def test_readme_links_the_documentation_pages():
    linked = {
        (ROOT / target.split("#", 1)[0]).resolve().relative_to(ROOT).as_posix()
        for target in links(ROOT / "README.md")
        if target.split("#", 1)[0].endswith(".md")
    }
    assert linked == README_PAGES
    on_disk = {p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md")}
    assert on_disk | {"CHANGELOG.md"} == README_PAGES


def test_links_between_documents_resolve():
    """Every relative link of the README and docs/ leads to a file of the repository, and to a
    heading of it when it names one."""
    broken = []
    for source in [*doc_files(), ROOT / "CHANGELOG.md"]:
        for target in links(source):
            file_part, _, anchor = target.partition("#")
            path = (source.parent / file_part).resolve() if file_part else source
            if not path.exists():
                broken.append(f"{source.name}: {target} (no such file)")
                continue
            if anchor and path.suffix == ".md" and anchor not in anchors(path):
                broken.append(f"{source.name}: {target} (no such heading)")
    assert not broken, broken


def test_user_facing_text_speaks_of_the_software():
    files = [*doc_files(), ROOT / "CHANGELOG.md", ROOT / "data" / "sites.toml"]
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in files
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if _HISTORY_RE.search(line)
    ]
    assert not found, found
