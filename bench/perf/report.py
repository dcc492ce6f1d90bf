"""The benchmark's report: the table of the four runs with the project's speed ratios,
the incremental and scale figures, in Markdown (printed and saved to bench/out)."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from bench.perf.server import nginx_binary

if TYPE_CHECKING:
    from bench.perf.runs import Row

MB = 1024 * 1024
LABELS = {
    "fetchonly": "1 Scrapy fetch-only (ceiling)",
    "naive": "2 naive Scrapy + trafilatura",
    "project": "3 project: full crawl",
    "newsplease": "4 news-please",
}
RATIOS = (
    ("fetchonly", "project / ceiling"),
    ("naive", "project / baseline"),
    ("newsplease", "project / news-please"),
)
BUSY_WARNING = 0.10
"""A run during which other processes used more than this share of the machine is flagged."""


def mb(b: float | None) -> str:
    return "-" if b is None else f"{b / MB:.0f} MB"


def kb(b: float | None) -> str:
    return "-" if b is None else f"{b / 1024:.1f} kB"


def table(rows: dict[str, Row]) -> list[str]:
    """The four runs side by side, then the ratios of the project against each."""
    lines = [
        (
            "| run | pages | wall s | pages/s | CPU per page | peak RSS, crawler | peak RSS, "
            "all processes | DB bytes/article | other load |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, label in LABELS.items():
        row = rows.get(key)
        if row is None:
            continue
        lines.append(
            f"| {label} | {row.pages} | {row.wall:.1f} | {row.rate:.1f} | "
            f"{row.cpu_per_page * 1000:.1f} ms | {mb(row.peak_rss_main)} | {mb(row.peak_rss)} "
            f"| {kb(row.db_per_article)} | {row.extra.get('others_share', 0):.0%} |"
        )
    project = rows.get("project")
    if project is None:
        return lines
    lines.append("")
    for key, what in RATIOS:
        other = rows.get(key)
        if other is None or not other.rate:
            lines.append(f"- {what}: not measured")
            continue
        ratio = project.rate / other.rate
        lines.append(f"- {what} (pages/s): **{ratio:.2f}x**")
    cores = os.cpu_count() or 1
    if project.cpu_per_page:
        lines.append(
            f"- CPU bound: {project.cpu_per_page * 1000:.0f} ms of CPU per page on {cores} cores "
            f"allow at most {cores / project.cpu_per_page:.1f} pages/s; the crawl reached "
            f"{project.rate:.1f} ({project.rate * project.cpu_per_page / cores:.0%} of the "
            f"machine)"
        )
    busy = [r.name for r in rows.values() if r.extra.get("others_share", 0) > BUSY_WARNING]
    if busy:
        lines.append(
            f"- WARNING: other processes used more than {BUSY_WARNING:.0%} of the machine "
            f"during: {', '.join(busy)} (figures of those runs are low)"
        )
    return lines


def project_summary(row: Row) -> str:
    e = row.extra
    parts = [
        f"{e.get('store/inserted', 0)} articles stored",
        (
            f"{e.get('store/duplicates', 0)} duplicates recorded "
            f"({e.get('dedupe/exact', 0)} exact, {e.get('dedupe/near', 0)} near)"
        ),
        f"{e.get('item_dropped_count', 0)} dropped {e.get('dropped') or ''}".rstrip(),
        f"{e.get('response_received_count', 0)} responses",
        f"{e.get('pool/jobs', 0)} pool jobs on {e.get('pool/workers', 0)} workers",
    ]
    tables = e.get("db_tables") or {}
    if tables:
        top = ", ".join(f"{k} {v / MB:.1f} MB" for k, v in list(tables.items())[:5])
        parts.append(f"database {mb(row.db_bytes)} ({top})")
    return "; ".join(parts) + "."


def incremental_lines(first: Row, second: Row) -> list[str]:
    share = (second.requests or 0) / max(1, first.requests or 0)
    return [
        (
            f"- first run: {first.requests} requests in {first.wall:.1f} s; second run over "
            f"the unchanged mirror: {second.requests} requests ({share:.1%} of the first) in "
            f"{second.wall:.1f} s ({second.wall / first.wall:.1%} of the first)"
        ),
        (
            f"- second run: {second.extra.get('incremental/skipped', 0)} article requests "
            f"skipped as stored, {second.extra.get('downloader/response_status_count/304', 0)} "
            f"sources answered 304 Not Modified, {second.extra.get('store/inserted', 0)} "
            "articles stored"
        ),
    ]


def scale_table(rows: list[Row]) -> list[str]:
    lines = [
        (
            "| project crawl | wall s | pages/s | CPU per page | peak RSS, crawler | peak RSS, "
            "all processes | database | other load |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| N = {row.pages} | {row.wall:.1f} | {row.rate:.1f} | "
            f"{row.cpu_per_page * 1000:.1f} ms | {mb(row.peak_rss_main)} | {mb(row.peak_rss)} "
            f"| {mb(row.db_bytes)} | {row.extra.get('others_share', 0):.0%} |"
        )
    if len(rows) < 2:
        return lines
    small, big = rows[0], rows[-1]
    lines.append("")
    for what, a, b in (
        ("crawler process", small.peak_rss_main, big.peak_rss_main),
        ("all processes", small.peak_rss, big.peak_rss),
    ):
        growth = b / a - 1
        lines.append(
            f"- peak RSS, {what}: {mb(b)} at N = {big.pages}, {growth:+.1%} vs N = {small.pages}"
        )
    lines.append(
        f"- N = {big.pages} vs N = {small.pages}: pages/s x{big.rate / small.rate:.2f}, "
        f"CPU per page x{big.cpu_per_page / small.cpu_per_page:.2f}"
    )
    if small.extra.get("cpu_main") and big.extra.get("cpu_main"):
        split = [
            (row.extra["cpu_main"] / row.pages, (row.cpu - row.extra["cpu_main"]) / row.pages)
            for row in (small, big)
        ]
        lines.append(
            f"- CPU per page, crawler process: {split[0][0] * 1000:.1f} -> "
            f"{split[1][0] * 1000:.1f} ms; pool workers: {split[0][1] * 1000:.1f} -> "
            f"{split[1][1] * 1000:.1f} ms"
        )
    return lines


def machine() -> str:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    nginx = subprocess.run([nginx_binary(), "-v"], capture_output=True, text=True, check=False)
    return (
        f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, "
        f"{nginx.stderr.strip().replace('nginx version: ', '')}"
    )
