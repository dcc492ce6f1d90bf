"""Shared fixtures: local fixture sites on 127.0.0.1, Scrapy runs in a subprocess and a
throwaway Redis server; the test tiers (``unit``, ``integration``, ``system``), given to each
test by what it runs."""

from __future__ import annotations

import inspect
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from crawler.siteserver import SiteServers

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
REDIS_SERVER = shutil.which("redis-server")
needs_redis = pytest.mark.skipif(
    REDIS_SERVER is None, reason="redis-server not installed (apt-get install redis-server)"
)


def scrapy(
    *args: str, db: Path | None = None, timeout: float = 180, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m scrapy ARGS`` in the project directory, like a user would."""
    cmd = [sys.executable, "-m", "scrapy", *args]
    if db is not None:
        cmd += ["-s", f"DB_PATH={db}"]
    cmd += ["-s", "AUTOTHROTTLE_ENABLED=False", "-s", "DOWNLOAD_DELAY=0"]
    return subprocess.run(
        cmd,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


def rows(db: Path, sql: str, params: tuple = ()) -> list[dict]:
    """Rows of a query on the SQLite file, as dicts (read with plain sqlite3)."""
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, params)]
    finally:
        conn.close()


@pytest.fixture
def sites():
    """The fixture sites of tests/fixtures/sites, each on its own free port."""
    with SiteServers(FIXTURES / "sites") as servers:
        yield servers


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "news.db"


# -- test tiers ----------------------------------------------------------------------------------
TIERS = ("unit", "integration", "system")
SYSTEM_FIXTURES = frozenset({"redis_url"})
"""Fixtures that need a service of the machine (a redis-server)."""
_SYSTEM_RE = re.compile(
    r"SIGKILL|browser_executable\(|render_js=true|\.chromium\b|RLIMIT_FSIZE|tmpfs"
)
"""Code that kills processes, drives Chromium or fills a disk."""
_INTEGRATION_RE = re.compile(
    r"\bsubprocess\.|\bPopen\(|\b(?:crawl|fault_crawl)\(|"
    r"\b(?:SiteServers|FaultServer|ExtractionWorker|WorkerPool)\("
)
"""Code that starts processes (a crawl, a worker) or serves sites on 127.0.0.1."""
_CALL_RE = re.compile(r"\b([A-Za-z_]\w*)\(")


def _test_code(item: pytest.Item) -> str:
    """The source of the test, of the fixtures it uses and of the helpers they call, as far
    as they are defined under tests/ (the product's own code is not followed)."""
    start = [getattr(item, "function", None)]
    for defs in getattr(item, "_fixtureinfo", None).name2fixturedefs.values():
        start += [d.func for d in defs]
    seen: set[object] = set()
    todo = [f for f in start if f is not None]
    parts = []
    while todo:
        func = todo.pop()
        if func in seen or not (getattr(func, "__module__", "") or "").startswith("tests"):
            continue
        seen.add(func)
        try:
            source = inspect.getsource(func)
        except (OSError, TypeError):
            continue
        parts.append(source)
        namespace = vars(inspect.getmodule(func))
        todo += [
            namespace[n] for n in _CALL_RE.findall(source) if inspect.isfunction(namespace.get(n))
        ]
    return "\n".join(parts)


def tier(item: pytest.Item) -> str:
    """``system`` for tests that need Redis, Chromium, SIGKILL or a full disk;
    ``integration`` for tests that start processes or servers (crawls of fixture sites);
    ``unit`` for the rest: functions called in-process."""
    if SYSTEM_FIXTURES & set(getattr(item, "fixturenames", ())):
        return "system"
    code = _test_code(item)
    if _SYSTEM_RE.search(code):
        return "system"
    if _INTEGRATION_RE.search(code):
        return "integration"
    return "unit"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Each test gets its tier's marker, unless it carries one itself (``-m unit`` selects
    the fast tier: ``make test-fast``)."""
    for item in items:
        if not any(item.get_closest_marker(name) for name in TIERS):
            item.add_marker(tier(item))


# -- a real Redis ------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def redis_url():
    """A throwaway ``redis-server`` on 127.0.0.1 (no persistence), stopped after the test."""
    redis = pytest.importorskip("redis", reason="pip install -e '.[redis]'")
    port = _free_port()
    folder = tempfile.mkdtemp(prefix="redis-test-")
    proc = subprocess.Popen(
        [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", folder],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.05)
        yield url
    finally:
        client.close()
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def server(redis_url):
    """A client of the ``redis_url`` server."""
    import redis

    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()
