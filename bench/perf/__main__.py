"""Throughput benchmark: fetch-only ceiling, naive Scrapy + trafilatura, the project's crawl and
news-please over one local nginx mirror; incremental and scale runs. See docs/throughput.md."""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from bench.perf import report
from bench.perf.mirror import Mirror
from bench.perf.profile import summarise
from bench.perf.runs import ROOT, Row, Runner, newsplease_python
from bench.perf.server import Nginx

SHARED = ROOT.parent / "shared" / "extraction-bench"
OUT = ROOT / "bench" / "out"
RUNS = ("fetchonly", "naive", "project", "newsplease")


def mirror_for(seed: int, reposts: float) -> Mirror:
    """The cached mirror of ``seed`` with ``reposts`` re-posts under ``bench/out``."""
    return Mirror(
        OUT / f"mirror-seed{seed}-reposts{reposts:g}", SHARED, seed=seed, repost_share=reposts
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.perf", description=__doc__)
    p.add_argument("--n", type=int, default=2000, help="article pages in the table (2000)")
    p.add_argument("--seed", type=int, default=1, help="mirror seed (1)")
    p.add_argument("--reposts", type=float, default=0.10, help="share of re-posts (0.10)")
    p.add_argument("--concurrency", type=int, default=64, help="CONCURRENT_REQUESTS (64)")
    p.add_argument("--runs", default=",".join(RUNS), help=f"which of {','.join(RUNS)} to run")
    p.add_argument(
        "--newsplease-pages", type=int, default=1000, help="pages for news-please (1000)"
    )
    p.add_argument("--scale", action="store_true", help="also the project at --scale-n pages")
    p.add_argument("--scale-n", type=int, default=20000, help="pages of the scale run (20000)")
    p.add_argument("--full", action="store_true", help="--n 2000 --scale: the full benchmark")
    p.add_argument("--no-incremental", action="store_true", help="skip the second run")
    p.add_argument(
        "--project-args", default="", help="extra arguments for the project crawl (-s K=V ...)"
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="run the project crawl under py-spy and print its top functions per process",
    )
    p.add_argument(
        "--repo", type=Path, default=ROOT, help="checkout whose crawl is measured (this one)"
    )
    p.add_argument("--keep", action="store_true", help="keep the databases in bench/out/work")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.full:
        args.n, args.scale = 2000, True
    runs = {r.strip() for r in args.runs.split(",") if r.strip()}
    if unknown := runs - set(RUNS):
        print(f"unknown runs: {', '.join(sorted(unknown))}")
        return 2
    if not SHARED.exists():
        print(f"benchmark pages not found: {SHARED}")
        return 2
    work = OUT / "work"
    profile = work / "profile-project.txt" if args.profile else None
    if profile is not None and not Path(sys.executable).with_name("py-spy").exists():
        print("--profile needs py-spy: .venv/bin/pip install py-spy (a dev tool)")
        return 2
    mirror = mirror_for(args.seed, args.reposts)
    started = time.monotonic()
    manifest = mirror.ensure(max(args.n, args.scale_n if args.scale else 0))
    reposts = sum(mirror.is_repost(i) for i in range(args.n))
    size = mirror.warm(args.n)
    print(
        f"mirror: {mirror.root.relative_to(ROOT)}: {args.n} pages ({args.n - reposts} stories + "
        f"{reposts} re-posts) in {manifest['templates']} real page templates, "
        f"{size / report.MB:.0f} MB, ready in {time.monotonic() - started:.1f} s"
    )
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    runner = Runner(work, args.concurrency, args.repo, args.project_args.split())
    rows: dict[str, Row] = {}
    scale: list[Row] = []
    second: Row | None = None
    with Nginx(mirror.root) as server:
        runner.server_pid = server.proc.pid if server.proc else None
        sitemap = mirror.write_sitemaps(args.n, server.base_url)
        print(f"nginx on {server.base_url}; sitemap {sitemap}")
        for kind in ("fetchonly", "naive"):
            if kind in runs:
                rows[kind] = show(runner.standalone(kind, args.n, sitemap))
        if "project" in runs:
            db = work / f"project-{args.n}.db"
            rows["project"] = show(runner.project("project", args.n, sitemap, db, profile=profile))
            scale.append(rows["project"])
            if not args.no_incremental:
                second = show(runner.project("project, 2nd run", args.n, sitemap, db))
        if "newsplease" in runs:
            python = newsplease_python()
            if python is None:
                print("  news-please: could not be installed in its own venv: skipped")
            else:
                urls = mirror.urls(min(args.n, args.newsplease_pages), server.base_url)
                rows["newsplease"] = show(runner.newsplease(python, urls))
        if args.scale and "project" in runs:
            mirror.warm(args.scale_n)
            big = mirror.write_sitemaps(args.scale_n, server.base_url)
            db = work / f"project-{args.scale_n}.db"
            scale.append(show(runner.project("project", args.scale_n, big, db)))
    lines = [
        f"## Benchmark: N = {args.n} article pages, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        (
            f"Machine: {report.machine()}. Mirror: {args.n - reposts} stories + {reposts} "
            f"re-posts ({args.reposts:.0%}) in {manifest['templates']} real page templates, "
            f"seed {args.seed}, {size / args.n / 1024:.0f} kB per page on average; "
            f"concurrency {args.concurrency}."
        ),
        "",
        *report.table(rows),
    ]
    if "newsplease" in rows and rows["newsplease"].pages < args.n:
        lines.append(
            f"- news-please ran on the first {rows['newsplease'].pages} of the {args.n} pages "
            "(rates are per page, so comparable)."
        )
    if (project := rows.get("project")) is not None:
        lines += ["", "Project crawl: " + report.project_summary(project)]
        if second is not None:
            lines += ["", "### Incremental", "", *report.incremental_lines(project, second)]
    if len(scale) >= 2:
        lines += ["", "### Scale", "", *report.scale_table(scale)]
    if profile is not None and profile.exists():
        lines += ["", "### Profile of the project crawl (py-spy, share of samples)", "", "```"]
        lines += [*summarise(profile), "```"]
    print()
    print("\n".join(lines))
    (OUT / "perf-latest.md").write_text("\n".join(lines) + "\n")
    results = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "rows": {k: asdict(v) for k, v in rows.items()},
        "second": asdict(second) if second else None,
        "scale": [asdict(r) for r in scale],
    }
    (OUT / "perf-latest.json").write_text(json.dumps(results, indent=1, default=str))
    if not args.keep:
        for db in work.glob("*.db*"):
            db.unlink()
    return 0


def show(row: Row) -> Row:
    """One progress line per finished run."""
    print(
        f"  {row.name:<18} {row.pages:>6} pages {row.wall:7.1f} s {row.rate:7.1f} pages/s  "
        f"CPU {row.cpu_per_page * 1000:5.1f} ms/page  RSS {report.mb(row.peak_rss_main)} "
        f"(all {report.mb(row.peak_rss)})  other load {row.extra.get('others_share', 0):.0%}"
    )
    return row


if __name__ == "__main__":
    sys.exit(main())
