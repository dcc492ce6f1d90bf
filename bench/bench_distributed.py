"""Distributed mode on the perf mirror (bench/perf): 1, 2 and 3 workers on one Redis frontier
plus one writer, against the single-machine crawl; pages/s, CPU, fetches, what was stored."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    from collections.abc import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: bench.perf from this checkout

from bench.perf.__main__ import OUT, SHARED
from bench.perf.measure import _machine_busy
from bench.perf.mirror import SITEMAP_CHUNK, Mirror
from bench.perf.server import Nginx, free_port

_REQUESTS_RE = re.compile(r"'downloader/request_count': (\d+)")
_PUSHED_RE = re.compile(r"'distributed/pushed': (\d+)")
_PUSHED_BYTES_RE = re.compile(r"'distributed/pushed_bytes': (\d+)")


@dataclass
class Result:
    name: str
    workers: int
    pages: int
    wall: float
    """Seconds from the start to every page stored (workers done, queue drained)."""
    crawl_wall: float = 0.0
    """Seconds until the last worker exited."""
    cpu: float = 0.0
    machine_busy: float = 0.0
    articles: int = 0
    duplicates: int = 0
    requests: list[int] = field(default_factory=list)
    """downloader/request_count of each worker."""
    pushed: list[int] = field(default_factory=list)
    pushed_bytes: int = 0

    @property
    def rate(self) -> float:
        return self.pages / self.wall if self.wall else 0.0


POOL: list[str] = []
"""``-s POOL_WORKERS=K`` for every crawl and the writer, when --pool-workers is given."""


def crawl_args(sitemap: str, n: int, concurrency: int, db: Path) -> list[str]:
    children = -(-n // SITEMAP_CHUNK)
    settings = {
        "DB_PATH": str(db),
        "AUTOTHROTTLE_ENABLED": "False",
        "DOWNLOAD_DELAY": "0",
        "CONCURRENT_REQUESTS": str(concurrency),
        "CONCURRENT_REQUESTS_PER_DOMAIN": str(concurrency),
        "LOG_LEVEL": "INFO",
        "PROGRESS_ENABLED": "False",
    }
    return [
        sys.executable, "-m", "scrapy", "crawl", "sitemap",
        "-a", f"url={sitemap}", "-a", f"max_articles={n}", "-a", f"max_pages={children}",
        *(arg for k, v in settings.items() for arg in ("-s", f"{k}={v}")), *POOL,
    ]  # fmt: skip


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCRAPY_")}
    env.pop("PYTHONPATH", None)
    return env


def _stored(db: Path) -> tuple[int, int]:
    conn = sqlite3.connect(db)
    try:
        articles = conn.execute("SELECT COUNT(*) FROM articles").fetchone()[0]
        duplicates = conn.execute("SELECT COUNT(*) FROM duplicates").fetchone()[0]
    finally:
        conn.close()
    return articles, duplicates


def _children_cpu() -> float:
    usage = os.times()
    return usage.children_user + usage.children_system


def run_single(sitemap: str, n: int, concurrency: int, work: Path) -> Result:
    db = work / "single.db"
    log = work / "single.log"
    cpu0, busy0, t0 = _children_cpu(), _machine_busy(), time.monotonic()
    with log.open("w") as out:
        subprocess.run(
            crawl_args(sitemap, n, concurrency, db), cwd=ROOT, stdout=out,
            stderr=subprocess.STDOUT, env=_env(), check=False,
        )  # fmt: skip
    wall = time.monotonic() - t0
    result = Result("single machine (no Redis)", 0, n, wall, wall)
    result.cpu = _children_cpu() - cpu0
    result.machine_busy = _machine_busy() - busy0
    result.articles, result.duplicates = _stored(db)
    result.requests = [int(m) for m in _REQUESTS_RE.findall(log.read_text())]
    return result


def run_distributed(
    k: int,
    sitemap: str,
    n: int,
    concurrency: int,
    work: Path,
    redis_url: str,
    flush: Callable[[], object],
) -> Result:
    flush()
    db = work / f"dist-{k}.db"
    redis = {"REDIS_URL": redis_url, "DISTRIBUTED_IDLE_CLOSE": "3"}
    extra = [arg for key, v in redis.items() for arg in ("-s", f"{key}={v}")] + POOL
    cpu0, busy0, t0 = _children_cpu(), _machine_busy(), time.monotonic()
    writer_log = (work / f"dist-{k}-writer.log").open("w")
    writer = subprocess.Popen(
        [sys.executable, "-m", "scrapy", "ingest", "-v", "-s", f"DB_PATH={db}", *extra],
        cwd=ROOT, stdout=writer_log, stderr=subprocess.STDOUT, env=_env(),
    )  # fmt: skip
    workers = []
    logs = []
    for i in range(k):
        log = work / f"dist-{k}-worker-{i + 1}.log"
        logs.append(log)
        with log.open("w") as out:
            workers.append(
                subprocess.Popen(
                    crawl_args(sitemap, n, concurrency, work / "unused.db") + extra,
                    cwd=ROOT,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=_env(),
                )
            )
    for proc in workers:
        proc.wait()
    crawl_wall = time.monotonic() - t0
    import redis as redis_client  # the redis extra (pip install -e '.[redis]')

    client = redis_client.Redis.from_url(redis_url)
    while client.llen("newscrawler:items") or client.llen("newscrawler:items:processing"):
        time.sleep(0.05)
    wall = time.monotonic() - t0
    writer.send_signal(signal.SIGINT)
    writer.wait()
    writer_log.close()
    result = Result(f"{k} worker{'s' if k > 1 else ''} + writer", k, n, wall, crawl_wall)
    result.cpu = _children_cpu() - cpu0
    result.machine_busy = _machine_busy() - busy0
    result.articles, result.duplicates = _stored(db)
    for log in logs:
        text = log.read_text()
        result.requests += [int(m) for m in _REQUESTS_RE.findall(text)] or [0]
        result.pushed += [int(m) for m in _PUSHED_RE.findall(text)] or [0]
        result.pushed_bytes += sum(int(m) for m in _PUSHED_BYTES_RE.findall(text))
    return result


class RedisServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.folder = tempfile.mkdtemp(prefix="bench-redis-")

    def __enter__(self) -> Self:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server not found: apt-get install redis-server")
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.folder],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        import redis

        self.client = redis.Redis.from_url(self.url)
        for _ in range(200):
            try:
                self.client.ping()
                return self
            except redis.ConnectionError:
                time.sleep(0.05)
        raise SystemExit("redis-server did not start")

    def __exit__(self, *exc: object) -> None:
        self.client.close()
        self.proc.terminate()
        self.proc.wait(10)
        shutil.rmtree(self.folder, ignore_errors=True)


def table(results: list[Result], cores: int) -> list[str]:
    lines = [
        (
            "| run | pages | wall s (crawl / all stored) | pages/s | CPU s | CPU s/page "
            "| other load | requests per worker | articles | duplicates | queued kB/item |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for r in results:
        others = max(0.0, r.machine_busy - r.cpu) / (r.wall * cores) if r.wall else 0
        per_item = r.pushed_bytes / sum(r.pushed) / 1024 if sum(r.pushed) else None
        lines.append(
            f"| {r.name} | {r.pages} | {r.crawl_wall:.1f} / {r.wall:.1f} | {r.rate:.1f} "
            f"| {r.cpu:.0f} | {r.cpu / r.pages * 1000:.0f} ms | {others:.0%} "
            f"| {' + '.join(map(str, r.requests)) or '-'} | {r.articles} | {r.duplicates} "
            f"| {'-' if per_item is None else f'{per_item:.1f}'} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n", type=int, default=2000, help="article pages (2000)")
    p.add_argument("--workers", default="1,2,3", help="worker counts to run (1,2,3)")
    p.add_argument("--concurrency", type=int, default=32, help="CONCURRENT_REQUESTS (32)")
    p.add_argument("--no-single", action="store_true", help="skip the single-machine run")
    p.add_argument(
        "--pool-workers", type=int, help="POOL_WORKERS of every process (default: the project's)"
    )
    args = p.parse_args(argv)
    if args.pool_workers is not None:
        POOL[:] = ["-s", f"POOL_WORKERS={args.pool_workers}"]
    if not SHARED.exists():
        print(f"benchmark pages not found: {SHARED}")
        return 2
    mirror = Mirror(OUT / "mirror-seed1-reposts0.1", SHARED, seed=1, repost_share=0.10)
    mirror.ensure(args.n)
    mirror.warm(args.n)
    reposts = sum(mirror.is_repost(i) for i in range(args.n))
    work = OUT / "work-distributed"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    cores = os.cpu_count() or 1
    results: list[Result] = []
    with Nginx(mirror.root) as server, RedisServer() as redis:
        sitemap = mirror.write_sitemaps(args.n, server.base_url)
        print(f"mirror: {args.n} pages ({reposts} re-posts) on {server.base_url}; "
              f"Redis {redis.url}; {cores} cores")  # fmt: skip
        if not args.no_single:
            results.append(run_single(sitemap, args.n, args.concurrency, work))
            print("  ", table(results[-1:], cores)[-1])
        for k in (int(x) for x in args.workers.split(",")):
            r = run_distributed(
                k, sitemap, args.n, args.concurrency, work, redis.url, redis.client.flushall
            )
            results.append(r)
            print("  ", table([r], cores)[-1])
    report = [
        f"## Distributed mode: N = {args.n} article pages of the perf mirror, {cores} cores",
        "",
        *table(results, cores),
        "",
        (
            "pages/s = article pages / seconds until every page is stored (workers done and "
            "the writer's queue drained). requests per worker = downloader/request_count "
            "(robots.txt, sitemaps and articles). other load = the machine's busy CPU not "
            "spent by these processes (other jobs, nginx, Redis), as a share of all cores."
        ),
    ]
    print()
    print("\n".join(report))
    (OUT / "distributed-latest.md").write_text("\n".join(report) + "\n")
    (OUT / "distributed-latest.json").write_text(
        json.dumps([r.__dict__ for r in results], indent=1)
    )
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
