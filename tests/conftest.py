"""Shared fixtures: local fixture sites on 127.0.0.1 and Scrapy runs in a subprocess."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from crawler.siteserver import SiteServers

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


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
