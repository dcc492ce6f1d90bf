"""``crawler.extract`` is the bottom layer: it imports neither the infrastructure above it
(``crawler.limits``, ``crawler.pool``) nor Scrapy, so a pool worker that only extracts stays
light and no import cycle can form."""

from __future__ import annotations

import ast
import json
import subprocess
import sys

from tests.conftest import ROOT

ABOVE = ("crawler.limits", "crawler.pool", "crawler.spiders", "crawler.storage", "pipelines")
HEAVY = ("scrapy", "twisted", "sqlite_utils", "datasketch")


def test_extract_package_imports_nothing_above_it():
    for path in sorted((ROOT / "crawler" / "extract").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                assert not name.startswith(ABOVE + HEAVY), f"{path.name} imports {name}"


def test_importing_extract_loads_no_scrapy_and_no_infrastructure():
    probe = (
        "import sys, json, crawler.extract; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        f"{HEAVY!r} or m.startswith({ABOVE!r}))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout) == []
