"""The layers of docs/architecture.md hold: no module imports from a layer above its own, no
two modules import each other (directly or round a loop), the modules pool workers import
stay free of Scrapy, and benchmarks and tests share no helpers. Imports are read with ``ast``
from crawler/, pipelines/, bench/ (and tests/, for the last rule)."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from functools import cache

from tests.conftest import ROOT

LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "foundation",
        (
            "crawler.items", "crawler.urls", "crawler.config", "crawler.address_policy",
            "crawler.extract", "crawler.limits", "crawler.pool", "crawler.failures",
            "crawler.sites", "crawler.anomaly", "crawler.browser", "crawler.lock",
            "crawler.summary", "crawler.chart", "crawler.timespan",
        ),
    ),
    ("storage", ("crawler.storage",)),
    ("pipelines", ("pipelines",)),
    (
        "crawling",
        (
            "crawler.spiders", "crawler.middlewares", "crawler.extensions",
            "crawler.spiderloader", "crawler.progress",
        ),
    ),
    (
        "operations",
        (
            "crawler.runner", "crawler.digest", "crawler.reprocess", "crawler.distributed",
            "crawler.commands", "crawler.settings", "crawler.siteserver", "crawler.faultsite",
        ),
    ),
    ("benchmarks", ("bench",)),
)  # fmt: skip
"""Lowest first; a module may import from its own layer and those below. A name covers the
module and everything under it (``crawler.extract`` covers ``crawler.extract.body``). The
same table is in docs/architecture.md."""

ALLOWED_UPWARD: set[tuple[str, str]] = set()
ALLOWED_CYCLE_EDGES: set[tuple[str, str]] = set()

LIGHT = ("crawler.limits", "crawler.extract", "pipelines.clean")
"""What a pool worker imports (``crawler.pool.PRELOAD*``, the jobs' modules): at import
time, neither they nor the project modules they import may pull in these packages."""
HEAVY = ("scrapy", "twisted", "scrapy_playwright", "playwright", "sqlite_utils", "datasketch")


@dataclass
class Module:
    name: str
    path: str
    imports: set[str] = field(default_factory=set)
    """Project modules imported anywhere (type-only imports included)."""
    runtime: set[str] = field(default_factory=set)
    """Project modules imported when the code runs (not under ``if TYPE_CHECKING``)."""
    top: set[str] = field(default_factory=set)
    """Project modules imported at import time (module level, not type-only)."""
    heavy: set[str] = field(default_factory=set)
    """Third-party top-level packages of ``HEAVY`` imported at import time."""
    foreign: set[str] = field(default_factory=set)
    """Imports of another tree's helpers (``tests`` from bench, ``bench`` from tests)."""


def _module_name(rel: str) -> str:
    parts = rel.removesuffix(".py").split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(test: ast.expr) -> bool:
    return ast.unparse(test) in {"TYPE_CHECKING", "typing.TYPE_CHECKING"}


def scan(name: str, path: str, source: str, known: set[str]) -> Module:
    """The imports of module ``name`` (file ``path``) among the ``known`` module names."""
    module = Module(name, path)
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]

    def resolve(target: str) -> str | None:
        while target and target not in known:
            target = target.rpartition(".")[0]
        return target if target and target != name else None

    def visit(node: ast.AST, *, typing_only: bool, nested: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, typing_only=True, nested=nested)
            for child in node.orelse:
                visit(child, typing_only=typing_only, nested=nested)
            return
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            targets = [f"{base}.{alias.name}" for alias in node.names]
        else:
            inner = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            for child in ast.iter_child_nodes(node):
                visit(child, typing_only=typing_only, nested=nested or inner)
            return
        resolved = {resolve(t) for t in targets} - {None}
        module.imports |= resolved
        if not typing_only:
            module.runtime |= resolved
            if not nested:
                module.top |= resolved
        for target in targets:
            first = target.split(".")[0]
            if first in HEAVY and not (typing_only or nested):
                module.heavy.add(first)
            if first in {"tests", "bench"} and first != name.split(".")[0]:
                module.foreign.add(target)

    visit(ast.parse(source), typing_only=False, nested=False)
    return module


@cache
def project() -> dict[str, Module]:
    files = {}
    for folder in ("crawler", "pipelines", "bench", "tests"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if "/fixtures/" not in rel:
                files[_module_name(rel)] = rel
    known = set(files)
    return {
        name: scan(name, rel, (ROOT / rel).read_text(encoding="utf-8"), known)
        for name, rel in files.items()
    }


def product() -> dict[str, Module]:
    return {n: m for n, m in project().items() if not n.startswith("tests")}


def layer_of(name: str) -> int | None:
    for number, (_, members) in enumerate(LAYERS):
        if any(name == m or name.startswith(m + ".") for m in members):
            return number
    return None


def test_the_scan_sees_every_kind_of_import():
    source = """
from __future__ import annotations
import os, a.b
from typing import TYPE_CHECKING
import scrapy
from . import sibling
from .c import thing
if TYPE_CHECKING:
    from d import Type
def later():
    import e
    import twisted
from tests.helpers import x
"""
    known = {"a", "a.b", "pkg.sibling", "pkg.c", "d", "e", "pkg.m", "tests.helpers"}
    m = scan("pkg.m", "pkg/m.py", source, known)
    assert m.imports == {"a.b", "pkg.sibling", "pkg.c", "d", "e", "tests.helpers"}
    assert m.runtime == m.imports - {"d"}
    assert m.top == m.runtime - {"e"}
    assert m.heavy == {"scrapy"}
    assert m.foreign == {"tests.helpers.x"}


def test_every_module_has_a_layer():
    unplaced = sorted(
        m.path
        for name, m in product().items()
        if layer_of(name) is None and (m.imports or not m.path.endswith("__init__.py"))
    )
    assert not unplaced, f"modules missing from LAYERS (and docs/architecture.md): {unplaced}"


def test_no_module_imports_from_a_layer_above_its_own():
    upward = []
    for name, module in product().items():
        own = layer_of(name)
        for target in sorted(module.imports):
            theirs = layer_of(target)
            if own is None or theirs is None or theirs <= own:
                continue
            if (name, target) not in ALLOWED_UPWARD:
                upward.append(f"{name} ({LAYERS[own][0]}) -> {target} ({LAYERS[theirs][0]})")
    assert not upward, "imports from a higher layer:\n" + "\n".join(upward)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def test_cycle_detection_finds_loops():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    graph = {
        name: {t for t in m.runtime if (name, t) not in ALLOWED_CYCLE_EDGES}
        for name, m in product().items()
    }
    cycles = _cycles(graph)
    assert not cycles, f"modules that import each other: {cycles}"


def test_allow_lists_name_real_imports():
    modules = product()
    for importer, target in ALLOWED_UPWARD | ALLOWED_CYCLE_EDGES:
        assert target in modules[importer].imports, f"{importer} -> {target} is gone: drop it"


def test_pool_workers_import_no_scrapy():
    modules = project()
    seen: set[str] = set()
    todo = list(LIGHT)
    heavy = []
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        module = modules[name]
        heavy += [f"{name} imports {h}" for h in sorted(module.heavy)]
        todo += sorted(module.top)
    assert {"crawler.items", "crawler.config"} <= seen
    assert not heavy, heavy


def test_benchmarks_and_tests_share_no_helpers():
    foreign = sorted(f"{n} -> {sorted(m.foreign)}" for n, m in project().items() if m.foreign)
    assert not foreign, f"imports of another tree's helpers (move them into the product): {foreign}"


def test_docs_architecture_shows_the_same_layers():
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\|\s*(\d+)\s*\|\s*([a-z]+)\s*\|([^|\n]*)\|", doc, re.MULTILINE)
    table = [(name, tuple(re.findall(r"`([\w.]+)`", cells))) for _, name, cells in rows]
    assert table == [(name, members) for name, members in LAYERS]


def test_allowed_upward_imports_are_upward():
    assert all(layer_of(target) > layer_of(importer) for importer, target in ALLOWED_UPWARD)
