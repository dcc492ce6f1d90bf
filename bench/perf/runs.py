"""The four measured runs over the mirror, each in its own subprocess: fetch-only, naive,
the project's crawl (also its second run and the scale runs) and news-please."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.perf import measure
from bench.perf.mirror import SITEMAP_CHUNK

ROOT = Path(__file__).resolve().parents[2]
SPIDERS = Path(__file__).resolve().parent / "spiders"
NP_VENV = ROOT / "bench" / "out" / "venv-newsplease"
PROJECT_STATS = (
    "store/inserted", "store/duplicates", "item_dropped_count", "dedupe/exact", "dedupe/near",
    "incremental/skipped", "downloader/response_status_count/304", "response_received_count",
    "pool/workers", "pool/jobs", "finish_reason",
)  # fmt: skip


@dataclass
class Row:
    """One measured run."""

    name: str
    pages: int
    """Article pages in the run (the mirror's first N)."""
    wall: float
    """Seconds from start to exit of the process (start-up and shut-down included)."""
    cpu: float
    """User + system CPU seconds of the process and its children."""
    peak_rss: int
    """Bytes: highest sum of RSS over the process tree (crawler + pool workers)."""
    peak_rss_main: int
    """Bytes: the crawler process's own peak RSS."""
    requests: int | None = None
    articles: int | None = None
    """Articles stored (the project also records duplicates, in their own table)."""
    db_bytes: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    log: str = ""

    @classmethod
    def measured(cls, name: str, pages: int, m: measure.Measured) -> Row:
        row = cls(name, pages, m.wall, m.cpu, m.peak_rss, m.peak_rss_main, log=str(m.log))
        row.extra["returncode"] = m.returncode
        row.extra["cpu_main"] = round(m.cpu_main, 2)
        row.extra["server_cpu"] = round(m.server_cpu, 2)
        row.extra["others_cpu"] = round(m.others, 1)
        row.extra["others_share"] = round(m.others / (m.wall * (os.cpu_count() or 1)), 3)
        if m.returncode != 0:
            print(f"  !! {name} exited with {m.returncode}: see {m.log}")
        return row

    @property
    def rate(self) -> float:
        return self.pages / self.wall if self.wall else 0.0

    @property
    def cpu_per_page(self) -> float:
        return self.cpu / self.pages if self.pages else 0.0

    @property
    def db_per_article(self) -> float | None:
        if self.db_bytes is None or not self.articles:
            return None
        return self.db_bytes / self.articles


def neutral_settings(concurrency: int) -> list[str]:
    """``-s`` arguments of the standalone spiders: no politeness, high concurrency, no
    robots.txt."""
    settings = {
        "ROBOTSTXT_OBEY": "False",
        "AUTOTHROTTLE_ENABLED": "False",
        "DOWNLOAD_DELAY": "0",
        "CONCURRENT_REQUESTS": str(concurrency),
        "CONCURRENT_REQUESTS_PER_DOMAIN": str(concurrency),
        "COOKIES_ENABLED": "False",
        "TELNETCONSOLE_ENABLED": "False",
        "LOG_LEVEL": "INFO",
    }
    return [arg for k, v in settings.items() for arg in ("-s", f"{k}={v}")]


def project_command(n: int, sitemap: str, db: Path, concurrency: int) -> list[str]:
    """``scrapy crawl sitemap`` over the mirror's first ``n`` pages, politeness off for the
    local server (robots.txt still obeyed)."""
    children = -(-n // SITEMAP_CHUNK)
    return [
        sys.executable, "-m", "scrapy", "crawl", "sitemap",
        "-a", f"url={sitemap}", "-a", f"max_articles={n}", "-a", f"max_pages={children}",
        "-s", f"DB_PATH={db}",
        "-s", "AUTOTHROTTLE_ENABLED=False", "-s", "DOWNLOAD_DELAY=0",
        "-s", f"CONCURRENT_REQUESTS={concurrency}",
        "-s", f"CONCURRENT_REQUESTS_PER_DOMAIN={concurrency}",
    ]  # fmt: skip


def clean_env() -> dict[str, str]:
    """The environment without Scrapy or Python path overrides."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCRAPY_")}
    env.pop("PYTHONPATH", None)
    return env


def files_size(path: Path) -> int:
    """Bytes of an SQLite file with its -wal and -shm files."""
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file())


def table_sizes(conn: sqlite3.Connection) -> dict[str, int]:
    """Bytes per table (indexes and FTS shadow tables folded into their table), if SQLite
    was built with the dbstat table."""
    try:
        rows = conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall()
    except sqlite3.Error:
        return {}
    owner = dict(conn.execute("SELECT name, tbl_name FROM sqlite_master").fetchall())
    sizes: dict[str, int] = {}
    for name, size in rows:
        table = owner.get(name, name)
        if table.startswith("articles_fts"):
            table = "articles_fts"
        sizes[table] = sizes.get(table, 0) + size
    return dict(sorted(sizes.items(), key=lambda kv: -kv[1]))


@dataclass
class Runner:
    """What every run shares: the work folder, concurrency, the checkout measured, extra
    arguments of the project crawl and the web server's pid (its CPU is measured apart)."""

    work: Path
    concurrency: int
    repo: Path = ROOT
    project_args: list[str] = field(default_factory=list)
    server_pid: int | None = None

    def _run(self, cmd: list[str], cwd: Path, log: str) -> measure.Measured:
        return measure.run(
            cmd, cwd=cwd, log=self.work / log, env=clean_env(), server_pid=self.server_pid
        )

    def standalone(self, kind: str, n: int, sitemap: str) -> Row:
        """Fetch-only (``kind='fetchonly'``) or naive (``'naive'``) spider with
        ``runspider``, in a folder outside the repository: Scrapy looks for ``scrapy.cfg`` in
        every parent folder, and no project setting may apply."""
        folder = Path(tempfile.mkdtemp(prefix=f"perf-{kind}-"))
        stats_file = folder / "stats.json"
        out = folder / "items.jsonl"
        cmd = [
            sys.executable, "-m", "scrapy", "runspider", str(SPIDERS / f"{kind}.py"),
            "-a", f"sitemap={sitemap}", "-a", f"stats_out={stats_file}",
            *neutral_settings(self.concurrency),
        ]  # fmt: skip
        if kind == "naive":
            cmd += ["-O", str(out)]
        try:
            row = Row.measured(kind, n, self._run(cmd, folder, f"{kind}.log"))
            stats = json.loads(stats_file.read_text()) if stats_file.exists() else {}
            if stats.get("ssrf/refused") or not stats:
                print(f"  !! {kind}: no stats, or project settings leaked into the spider")
            row.requests = stats.get("downloader/request_count")
            row.extra["fetched"] = stats.get("bench/articles", 0)
            if kind == "naive" and out.exists():
                row.articles = stats.get("item_scraped_count", 0)
                row.db_bytes = out.stat().st_size
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return row

    def project(
        self, name: str, n: int, sitemap: str, db: Path, *, profile: Path | None = None
    ) -> Row:
        """The project's own crawl into ``db``, run in ``repo``; under py-spy (every
        process, 50 samples/s, raw stacks to ``profile``) when given."""
        cmd = project_command(n, sitemap, db, self.concurrency) + self.project_args
        if profile is not None:
            spy = Path(sys.executable).with_name("py-spy")
            cmd = [str(spy), "record", "--subprocesses", "--format", "raw", "-r", "50",
                   "-o", str(profile), "--", *cmd]  # fmt: skip
        log = f"{name.replace(' ', '-').replace(',', '')}-{n}.log"
        row = Row.measured(name, n, self._run(cmd, self.repo, log))
        if not db.exists():
            return row
        conn = sqlite3.connect(db)
        try:
            found = conn.execute("SELECT stats FROM runs ORDER BY id DESC LIMIT 1").fetchone()
            stats = json.loads(found[0] or "{}") if found else {}
            row.articles = conn.execute("SELECT COUNT(*) FROM articles").fetchone()[0]
            row.extra["duplicates"] = conn.execute("SELECT COUNT(*) FROM duplicates").fetchone()[0]
            row.extra["db_tables"] = table_sizes(conn)
        finally:
            conn.close()
        row.requests = stats.get("downloader/request_count")
        row.db_bytes = files_size(db)
        row.extra.update({k: stats[k] for k in PROJECT_STATS if k in stats})
        row.extra["dropped"] = {
            k.rsplit("/", 1)[-1]: v
            for k, v in stats.items()
            if k.startswith("item_dropped_reasons_count/")
        }
        return row

    def newsplease(self, python: Path, urls: list[str]) -> Row:
        """news-please's library API over ``urls`` (see spiders/newsplease_run.py)."""
        folder = self.work / "newsplease"
        folder.mkdir(parents=True, exist_ok=True)
        urls_file = folder / "urls.txt"
        urls_file.write_text("\n".join(urls) + "\n")
        db = folder / "newsplease.db"
        db.unlink(missing_ok=True)
        out = folder / "result.json"
        cmd = [str(python), str(SPIDERS / "newsplease_run.py"), str(urls_file), str(db), str(out)]
        row = Row.measured("newsplease", len(urls), self._run(cmd, folder, "newsplease.log"))
        result = json.loads(out.read_text()) if out.exists() else {}
        row.requests = len(urls)
        row.articles = result.get("articles")
        row.db_bytes = files_size(db) if db.exists() else None
        row.extra.update(result)
        return row


def newsplease_python() -> Path | None:
    """news-please's own venv (bench/out/venv-newsplease), created on first use: it pins
    older versions of shared dependencies, so it never goes into .venv."""
    python = NP_VENV / "bin" / "python"
    check = [str(python), "-c", "import newsplease"]
    if python.exists() and subprocess.run(check, capture_output=True, check=False).returncode == 0:
        return python
    print("news-please: creating bench/out/venv-newsplease (pip install news-please) ...")
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(NP_VENV)],
        [str(python), "-m", "pip", "install", "-q", "news-please"],
    ]
    for step in steps:
        if subprocess.run(step, check=False).returncode != 0:
            return None
    if subprocess.run(check, capture_output=True, check=False).returncode != 0:
        return None
    return python
