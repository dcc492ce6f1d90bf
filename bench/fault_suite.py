"""Fault suite: real crawls against misbehaving local servers (crawler/faultsite), SIGKILLs,
locked/full/read-only databases and SSRF vectors; prints the figures.

Run: ``.venv/bin/python bench/fault_suite.py`` (or ``make faults``); ``--kills N`` sets the
number of SIGKILLs (default 20). Exit code 1 on a wrong outcome, crash, loss, corruption or SSRF miss.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crawler.address_policy import HostPolicy, static_refusal
from crawler.faultsite import (
    CASES,
    COMMON,
    HEALTHY,
    SSRF_VECTORS,
    CrawlResult,
    FaultServer,
    crawl,
    fault_crawl,
    integrity,
    query,
    stored_paths,
)


@dataclass
class Tally:
    cases: list[tuple[str, bool, str]] = field(default_factory=list)
    """(scenario, outcome as expected, note)."""
    crashes: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    corrupted: list[str] = field(default_factory=list)
    ssrf_static: tuple[int, int] = (0, 0)
    ssrf_crawled: tuple[int, int] = (0, 0)
    ssrf_kinds: set[str] = field(default_factory=set)

    def case(self, name: str, ok: bool, note: str = "") -> None:
        self.cases.append((name, ok, note))
        print(f"  {'ok ' if ok else 'BAD'} {name}{f'  ({note})' if note else ''}", flush=True)

    def run(self, name: str, result: CrawlResult, *, exit_code: int = 0) -> None:
        if result.crashed or result.returncode != exit_code:
            self.crashes.append(f"{name}: exit {result.returncode}")

    def check_db(self, name: str, db: Path) -> None:
        if db.exists() and integrity(db) != ("ok", 0):
            self.corrupted.append(name)


def _count(db: Path) -> int:
    try:
        return query(db, "SELECT COUNT(*) AS n FROM articles")[0]["n"]
    except sqlite3.Error:
        return 0


def article_faults(t: Tally, tmp: Path) -> None:
    db = tmp / "faults.db"
    with FaultServer() as server:
        result = fault_crawl(server, db)
        articles = stored_paths(db, server.base)
        t.run("fault crawl", result)
        t.check_db("fault crawl", db)
        for n in HEALTHY:
            if f"/ok/{n}.html" not in articles:
                t.lost.append(f"healthy article {n} (next to the faults)")
        for case in CASES:
            path = server.url(case.path).removeprefix(server.base)
            ok = (path in articles) is case.stored
            ok &= all(result.stats.get(k, 0) >= 1 for k in case.stats())
            expected = case.expected_log(server)
            ok &= expected is None or expected in result.stderr
            if case.contains and path in articles:
                row = articles[path]
                ok &= case.contains in row["title"] + "\n" + row["text"]
            if case.stored and path not in articles:
                t.lost.append(case.name)
            t.case(case.name, ok)
        if server.canary.hits:
            t.crashes.append(f"fault crawl reached the canary: {server.canary.hits}")


def xml_faults(t: Tally, tmp: Path) -> None:
    db = tmp / "xml.db"
    with FaultServer() as server:
        feeds = ",".join(
            f"{server.base}/{p}"
            for p in ("xxe.rss", "bomb.rss", "malformed.rss", "surrogate.json", "deep.json")
        )
        result = crawl("crawl", "feed", "-a", f"url={feeds}", db=db)
        articles = stored_paths(db, server.base)
        t.run("hostile feeds", result)
        blob = " ".join(str(v) for row in query(db, "SELECT * FROM articles") for v in row.values())
        clean = "root:" not in blob and "lollollol" not in blob and not server.canary.hits
        for name, path in (
            ("XXE feed (good entries salvaged)", "/ok/9201.html"),
            ("entity-bomb feed (good entries salvaged)", "/ok/9202.html"),
            ("malformed feed (good entries salvaged)", "/ok/9212.html"),
            ("lone surrogate + NUL in a JSON feed", "/surrogate-page.html"),
        ):
            t.case(name, path in articles and clean)
            if path not in articles:
                t.lost.append(name)
        t.case("JSON feed nested 100,000 deep", result.stats.get("feed/empty") == 1)
        db = tmp / "sitemaps.db"
        maps = ",".join(
            f"{server.base}/{p}" for p in ("xxe-sitemap.xml", "bomb-sitemap.xml", "big-sitemap.xml")
        )
        result = crawl(
            "crawl", "sitemap", "-a", f"url={maps}", "-a", "recency_days=0.05",
            "-a", "max_articles=50", "-s", "LINKS_PER_PAGE_MAX=5", db=db,
        )  # fmt: skip
        articles = stored_paths(db, server.base)
        t.run("hostile sitemaps", result)
        t.case("XXE sitemap", "/ok/9301.html" in articles and not server.canary.hits)
        t.case("entity-bomb sitemap", "/ok/9302.html" in articles)
        big = sum(1 for p in server.requests if p.startswith("/ok/2"))
        t.case(
            "sitemap of 100,000 URLs",
            big == 5 and result.stats.get("sitemap/skipped_old", 0) >= 99_900,
            f"{big} fetched, crawl {result.seconds:.1f} s",
        )


def robots_faults(t: Tally, tmp: Path) -> None:
    for mode, name in (("disallow", "robots.txt disallow"), ("error", "robots.txt answers 500")):
        db = tmp / f"robots-{mode}.db"
        with FaultServer(robots=mode) as server:
            result = crawl("crawl", "feed", "-a", f"url={server.base}/robots-feed.rss", db=db)
            stored = set(stored_paths(db, server.base))
            secret = "/private/secret.html" in server.requests
        t.run(name, result)
        if mode == "disallow":
            t.case(name, not secret and stored == {"/ok/9401.html"})
        else:
            t.case(name, stored == {"/ok/9401.html", "/private/secret.html"}, "allowed")


def _popen(*args: str, db: Path) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "scrapy", *args, "-s", f"DB_PATH={db}", *COMMON]
    return subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def concurrency_faults(t: Tally, tmp: Path) -> None:
    db = tmp / "dupes.db"
    with FaultServer() as server:
        server.ok_delay = 0.02
        procs = [
            _popen("crawl", "feed", "-a", f"url={server.base}/range-700-30.rss",
                   "-a", f"name={name}", "-s", "INCREMENTAL_ENABLED=False", db=db)
            for name in ("alpha", "beta")
        ]  # fmt: skip
        for p in procs:
            p.communicate(timeout=180)
    n_articles = _count(db)
    n_dupes = query(db, "SELECT COUNT(*) AS n FROM duplicates")[0]["n"]
    if any(p.returncode for p in procs):
        t.crashes.append("two spiders at once")
    t.case("same articles from two spiders at once", n_articles == 30 and n_dupes == 30,
           f"{n_articles} stored, {n_dupes} recorded as duplicates")  # fmt: skip
    t.lost.extend(["duplicate race"] * max(0, 30 - n_articles))
    t.check_db("two spiders", db)

    for exclusive, name in (
        (True, "database locked by a writer"),
        (False, "reader holds a snapshot"),
    ):
        db = tmp / f"locked-{exclusive}.db"
        with FaultServer() as server:
            server.ok_delay = 0.1
            crawl("crawl", "feed", "-a", f"url={server.base}/range-800-2.rss", db=db)
            proc = _popen(
                "crawl", "feed", "-a", f"url={server.base}/range-810-30.rss",
                "-s", "STORE_BATCH_SIZE=3", "-s", "STORE_FLUSH_INTERVAL=0.2",
                "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=2", db=db,
            )  # fmt: skip
            deadline = time.monotonic() + 60
            while _count(db) < 6 and time.monotonic() < deadline:
                time.sleep(0.05)
            conn = sqlite3.connect(db, timeout=30, isolation_level=None)
            conn.execute("BEGIN EXCLUSIVE" if exclusive else "BEGIN")
            conn.execute("SELECT COUNT(*) FROM articles").fetchone()
            time.sleep(2.5)
            conn.execute("COMMIT")
            conn.close()
            proc.communicate(timeout=180)
        count = _count(db)
        if proc.returncode:
            t.crashes.append(name)
        t.lost.extend([name] * max(0, 32 - count))
        t.case(name, count == 32 and proc.returncode == 0, f"{count}/32 stored")
        t.check_db(name, db)


def storage_faults(t: Tally, tmp: Path) -> None:
    db = tmp / "full.db"
    with FaultServer() as server:
        crawl("crawl", "feed", "-a", f"url={server.base}/range-1000-3.rss", db=db)

        def small_files() -> None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

        result = crawl(
            "crawl", "feed", "-a", f"url={server.base}/range-1000-40.rss",
            "-s", "STORE_BATCH_SIZE=5", db=db, preexec=small_files,
        )  # fmt: skip
        t.run("disk full", result, exit_code=1)
        t.check_db("disk full", db)
        clear = f"crawl: database {db} " in result.stderr
        again = crawl("crawl", "feed", "-a", f"url={server.base}/range-1000-40.rss", db=db)
        t.run("after disk full", again)
        t.lost.extend(["disk full"] * max(0, 40 - _count(db)))
        t.case("disk full (exit 1, clear error, next run recovers)",
               clear and result.returncode == 1 and _count(db) == 40)  # fmt: skip

        db = tmp / "readonly.db"
        crawl("crawl", "feed", "-a", f"url={server.base}/range-1200-3.rss", db=db)
        db.chmod(0o444)
        import ctypes

        def read_only() -> None:
            if os.geteuid() == 0:  # root ignores file modes unless it drops CAP_DAC_OVERRIDE
                libc = ctypes.CDLL(None, use_errno=True)
                for cap in (1, 2):
                    libc.prctl(24, cap, 0, 0, 0)

        result = crawl(
            "crawl", "feed", "-a", f"url={server.base}/range-1200-10.rss",
            db=db, preexec=read_only,
        )  # fmt: skip
        t.run("read-only database", result, exit_code=1)
        t.check_db("read-only database", db)
        t.case("read-only database (exit 1, clear error)",
               result.returncode == 1 and "is read-only" in result.stderr)  # fmt: skip
        db.chmod(0o644)


def kill_faults(t: Tally, tmp: Path, kills: int) -> None:
    db = tmp / "killed.db"
    total = 150
    rng = random.Random(7)
    with FaultServer() as server:
        server.ok_delay = 0.03
        feed = f"url={server.base}/range-3000-{total}.rss"
        args = ("crawl", "feed", "-a", feed, "-a", f"max_articles={total}")
        bad = 0
        for _ in range(kills):
            proc = _popen(*args, "-s", "STORE_BATCH_SIZE=4", "-s", "STORE_FLUSH_INTERVAL=0.2",
                          db=db)  # fmt: skip
            time.sleep(rng.uniform(0.2, 2.2))
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=60)
            if db.exists() and integrity(db) != ("ok", 0):
                bad += 1
                t.corrupted.append("after a SIGKILL")
        result = crawl(*args, db=db)
        t.run("run after the kills", result)
    stored = _count(db)
    t.lost.extend(["after kills"] * (total - stored))
    t.case(f"SIGKILL at {kills} random moments", bad == 0 and stored == total,
           f"integrity ok every time: {bad == 0}; next run stored {stored}/{total}")  # fmt: skip


def ssrf_vectors(t: Tally, tmp: Path) -> None:
    refused = [v for v in SSRF_VECTORS if static_refusal(v[0], HostPolicy())[0] is not None]
    t.ssrf_static = (len(refused), len(SSRF_VECTORS))
    t.ssrf_kinds |= {kind for _url, _reason, kind in refused}
    db = tmp / "ssrf.db"
    with FaultServer() as publisher, FaultServer() as agg:
        agg.extra_links = [publisher.url("/ok/9700.html"), publisher.url("/redirect-to-canary")]
        result = crawl("crawl", "aggregator", "-a", f"url={agg.base}/agg.html", db=db)
        hits = agg.canary.hits + publisher.canary.hits
        vectors = len(agg.ssrf_vectors()) + 1
        stored = set(stored_paths(db, publisher.base))
    t.run("aggregator steered at private hosts", result)
    refused_n = result.stats.get("ssrf/refused", 0)
    t.ssrf_crawled = (min(refused_n, vectors) if not hits else 0, vectors)
    if result.stats.get("ssrf/refused", 0) == vectors:
        t.ssrf_kinds |= {"host name resolving to loopback", "redirect to a private address"}
    t.case("aggregator links to undeclared hosts (+ redirect)",
           not hits and refused_n == vectors and stored == {"/ok/9700.html"},
           f"{refused_n}/{vectors} refused, canary hits {len(hits)}")  # fmt: skip
    db = tmp / "ssrf-sitemap.db"
    with FaultServer() as server:
        result = crawl(
            "crawl", "sitemap", "-a", f"url={server.base}/ssrf-index.xml", "-a", "max_pages=10",
            db=db,
        )  # fmt: skip
        hits = list(server.canary.hits)
    t.run("sitemap with file:/gopher:/private children", result)
    t.case("sitemap children: file:, gopher:, link-local, loopback",
           not hits and result.stats.get("ssrf/refused", 0) == 4)  # fmt: skip
    if not hits and result.stats.get("ssrf/refused", 0) == 4:
        t.ssrf_kinds.add("sitemap entry to file: / private host")
    from crawler.browser import browser_executable

    if browser_executable() is None:
        t.case("rendered page scripts (no Chromium here: not run)", True)
        return
    db = tmp / "ssrf-js.db"
    with FaultServer() as server:
        result = crawl(
            "crawl", "listing", "-a", f"url={server.base}/js/", "-a", "article_pattern=/js/story",
            "-a", "render_js=true", db=db,
        )  # fmt: skip
        hits = list(server.canary.hits)
        stored = set(stored_paths(db, server.base))
    t.run("rendered page", result)
    t.case("rendered page: fetch, iframe, WebSocket, beacon, redirect, image",
           not hits and "/js/story.html" in stored,
           f"{result.stats.get('ssrf/refused', 0)} refused in the browser")  # fmt: skip
    if not hits and result.stats.get("ssrf/refused", 0) >= 5:
        t.ssrf_kinds.add("rendered page script (fetch, iframe, WebSocket, redirect)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs during a crawl")
    args = parser.parse_args()
    t = Tally()
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        for title, step in (
            ("article pages", lambda: article_faults(t, tmp)),
            ("feeds, sitemaps", lambda: xml_faults(t, tmp)),
            ("robots.txt", lambda: robots_faults(t, tmp)),
            ("concurrency", lambda: concurrency_faults(t, tmp)),
            ("storage", lambda: storage_faults(t, tmp)),
            ("crashes", lambda: kill_faults(t, tmp, args.kills)),
            ("SSRF", lambda: ssrf_vectors(t, tmp)),
        ):
            print(f"{title}:", flush=True)
            step()
    wrong = [name for name, ok, _ in t.cases if not ok]
    static_ok, static_all = t.ssrf_static
    crawled_ok, crawled_all = t.ssrf_crawled
    print()
    print(f"fault cases tried:      {len(t.cases)} ({len(wrong)} with a wrong outcome)")
    print(f"crashes:                {len(t.crashes)}" + (f"  {t.crashes}" if t.crashes else ""))
    print(f"items lost:             {len(t.lost)}" + (f"  {t.lost}" if t.lost else ""))
    print(f"databases corrupted:    {len(t.corrupted)} (after {args.kills} SIGKILLs and faults)")
    print(
        f"SSRF vectors refused:   {static_ok}/{static_all} URL vectors, {crawled_ok}/{crawled_all}"
        f" in a real crawl; {len(t.ssrf_kinds)} kinds:"
    )
    for kind in sorted(t.ssrf_kinds):
        print(f"  - {kind}")
    print(f"time:                   {time.monotonic() - started:.0f} s")
    failed = (
        wrong or t.crashes or t.lost or t.corrupted
        or static_ok < static_all or crawled_ok < crawled_all or len(t.ssrf_kinds) < 12
    )  # fmt: skip
    return 1 if failed else 0


if __name__ == "__main__":
    threading.excepthook = lambda args: None  # servers see clients hang up on purpose
    sys.exit(main())
