"""What the crawler found: per-site health and the latest Korea stories, as text, JSON or a
self-contained HTML page with an inline SVG chart (no scripts, works offline)."""

from __future__ import annotations

import html
import logging
import math
import re
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from crawler.storage.reports import korea_stories_per_day, latest_korea_stories, site_activity

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    import sqlite_utils

logger = logging.getLogger(__name__)

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mhdw])\s*$", re.IGNORECASE)
_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)
"""Tableau 10: distinguishable colours for up to ten sites (then they repeat)."""


def parse_since(text: str, *, now: datetime | None = None) -> datetime:
    """``30m``, ``24h``, ``7d``, ``2w`` (ago) or an ISO date/time (UTC unless it says
    otherwise) -> an aware UTC datetime. Raises ``ValueError``."""
    now = now or datetime.now(UTC)
    if m := _DURATION_RE.match(text):
        return now - timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2).lower()])
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"--since {text!r}: give a duration (30m, 24h, 7d, 2w) or an ISO date/time "
            "(2026-11-27, 2026-11-27T08:00)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def iso(moment: datetime) -> str:
    """The database's timestamp form: ISO 8601 UTC with seconds."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


def build_report(
    db: sqlite_utils.Database, since: datetime, *, limit: int = 10, now: datetime | None = None
) -> dict[str, Any]:
    """Everything ``scrapy report`` shows, as plain data (what ``--json`` prints)."""
    since_iso = iso(since)
    sites = site_activity(db, since_iso)
    stories = latest_korea_stories(db, since_iso, limit=limit)
    totals = {
        key: sum(int(s[key] or 0) for s in sites)
        for key in ("runs", "failed_runs", "stored", "duplicates", "korea", "errors")
    }
    return {
        "since": since_iso,
        "generated_at": iso(now or datetime.now(UTC)),
        "sites": sites,
        "totals": totals,
        "failing_sites": [
            s["site"]
            for s in sites
            if s["last_status"] not in (None, "finished", "running") or s["last_problems"]
        ],
        "korea_stories": stories,
    }


def _short_time(value: str | None) -> str:
    """``2026-11-27T19:40:05+00:00`` -> ``2026-11-27 19:40``."""
    if not value:
        return "-"
    return value[:16].replace("T", " ")


def format_report(report: Mapping[str, Any], *, db_path: str | None = None) -> str:
    """The plain-text report: a table of sites, their problems, the latest Korea stories."""
    where = f" in {db_path}" if db_path else ""
    lines = [f"Since {_short_time(report['since'])} UTC{where}", ""]
    sites = report["sites"]
    if not sites:
        lines.append("No runs and no stored articles in this period.")
    else:
        width = max(12, *(len(s["site"]) for s in sites))
        header = (
            f"{'site':<{width}}  {'last run':<22} {'at (UTC)':<16} {'runs':>4} {'failed':>6} "
            f"{'stored':>6} {'dupes':>5} {'korea':>5} {'errors':>6}"
        )
        lines += [header, "-" * len(header)]
        for s in sites:
            status = s["last_status"] or "-"
            if s["last_problems"] or status not in ("finished", "running", "-"):
                status += " !"
            lines.append(
                f"{s['site']:<{width}}  {status:<22} {_short_time(s['last_started_at']):<16} "
                f"{s['runs']:>4} {s['failed_runs']:>6} {s['stored']:>6} {s['duplicates']:>5} "
                f"{s['korea']:>5} {s['errors']:>6}"
            )
        t = report["totals"]
        lines.append("-" * len(header))
        lines.append(
            f"{'total':<{width}}  {'':<22} {'':<16} {t['runs']:>4} {t['failed_runs']:>6} "
            f"{t['stored']:>6} {t['duplicates']:>5} {t['korea']:>5} {t['errors']:>6}"
        )
        problems = [(s["site"], p) for s in sites for p in s["last_problems"]]
        if problems:
            lines += ["", "Problems of the last run:"]
            lines += [f"  {site}: {problem}" for site, problem in problems]
    stories = report["korea_stories"]
    lines += ["", f"Latest Korea stories ({len(stories)} of {report['totals']['korea']}):"]
    if not stories:
        lines.append("  none")
    for story in stories:
        when = _short_time(story["published_at"] or story["fetched_at"])
        lines.append(f"  {when}  [{story['site']}] {story['title'] or story['url']}")
        lines.append(f"  {'':16}  tags: {', '.join(story['tags']) or '-'}  {story['url']}")
    return "\n".join(lines)


# -- the chart ---------------------------------------------------------------------------------
def chart_series(
    rows: Iterable[Mapping[str, Any]], *, days: int = 30
) -> tuple[list[str], dict[str, list[int]]]:
    """``korea_stories_per_day`` rows -> (the last ``days`` days up to the latest day with a
    story, ``{site: [count per day]}``)."""
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    latest: date | None = None
    for row in rows:
        try:
            day = date.fromisoformat(str(row["day"]))
        except ValueError:
            continue
        counts[row["site"] or "?"][day.isoformat()] = int(row["stories"])
        latest = day if latest is None or day > latest else latest
    if latest is None:
        return [], {}
    span = [(latest - timedelta(days=n)).isoformat() for n in range(days - 1, -1, -1)]
    series = {
        site: [by_day.get(d, 0) for d in span]
        for site, by_day in sorted(counts.items())
        if any(by_day.get(d) for d in span)
    }
    return span, series


def _nice_max(value: int) -> int:
    if value <= 5:
        return max(value, 1)
    magnitude = 10 ** int(math.log10(value))
    for step in (1, 2, 5, 10):
        top = int(math.ceil(value / (magnitude * step)) * magnitude * step)
        if top >= value:
            return top
    return value


def korea_chart_svg(rows: Iterable[Mapping[str, Any]], *, days: int = 30) -> str:
    """A stacked bar chart of Korea stories per day by site, as an inline ``<svg>``."""
    span, series = chart_series(rows, days=days)
    esc = html.escape
    if not span:
        return (
            '<svg xmlns="http://www.w3.org/2000/svg" width="480" height="60" role="img" '
            'aria-label="Korea stories per day"><text x="10" y="35" font-family="sans-serif" '
            'font-size="14">No Korea stories stored yet.</text></svg>'
        )
    left, top, bar, gap, plot_h = 44, 16, 18, 6, 200
    width = left + len(span) * (bar + gap) + 16
    totals = [sum(s[i] for s in series.values()) for i in range(len(span))]
    ymax = _nice_max(max(totals))
    legend_rows = math.ceil(len(series) / 3)
    height = top + plot_h + 40 + legend_rows * 20
    parts = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" font-family="sans-serif" '
            f'font-size="11" class="korea-chart" aria-label="Korea stories per day by site, '
            f'{esc(span[0])} to {esc(span[-1])}">'
        )
    ]
    for tick in range(ymax + 1) if ymax <= 5 else (0, ymax // 2, ymax):
        y = top + plot_h - tick / ymax * plot_h
        parts.append(
            f'<line x1="{left}" x2="{width - 8}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{tick:g}</text>'
        )
    colours = {site: PALETTE[i % len(PALETTE)] for i, site in enumerate(series)}
    label_every = max(1, math.ceil(len(span) / 10))
    for i, day in enumerate(span):
        x = left + gap / 2 + i * (bar + gap)
        y = top + plot_h
        for site, values in series.items():
            if not values[i]:
                continue
            h = values[i] / ymax * plot_h
            y -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar}" height="{h:.1f}" '
                f'fill="{colours[site]}"><title>{esc(day)} {esc(site)}: {values[i]}</title></rect>'
            )
        if i % label_every == 0 or i == len(span) - 1:
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{top + plot_h + 14}" '
                f'text-anchor="middle">{esc(day[5:])}</text>'
            )
    for n, site in enumerate(series):
        lx = left + (n % 3) * 200
        ly = top + plot_h + 34 + (n // 3) * 20
        parts.append(
            f'<rect x="{lx}" y="{ly - 10}" width="12" height="12" fill="{colours[site]}"/>'
            f'<text x="{lx + 18}" y="{ly}">{esc(site)} ({sum(series[site])})</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


_PAGE_CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em;max-width:70em;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}"
    "td,th{border-bottom:1px solid #ddd;padding:.25em .6em;text-align:left}"
    "td.n{text-align:right}.bad{color:#b00}.tags{color:#555;font-size:.9em}"
)


def report_html(report: Mapping[str, Any], chart_rows: Iterable[Mapping[str, Any]]) -> str:
    """A self-contained HTML page (inline CSS and SVG, no scripts): the chart, the site
    table and the latest Korea stories."""
    esc = html.escape
    rows = []
    for s in report["sites"]:
        bad = bool(s["last_problems"]) or s["last_status"] not in ("finished", "running", None)
        problems = "; ".join(s["last_problems"])
        rows.append(
            f"<tr><td>{esc(s['site'])}</td>"
            f'<td class="{"bad" if bad else ""}">{esc(s["last_status"] or "-")}'
            f"{' — ' + esc(problems) if problems else ''}</td>"
            f"<td>{esc(_short_time(s['last_started_at']))}</td>"
            + "".join(
                f'<td class="n">{int(s[k] or 0)}</td>'
                for k in ("runs", "failed_runs", "stored", "duplicates", "korea", "errors")
            )
            + "</tr>"
        )
    stories = "".join(
        f"<li>{esc(_short_time(st['published_at'] or st['fetched_at']))} "
        f'[{esc(st["site"])}] <a href="{esc(st["url"])}">{esc(st["title"] or st["url"])}</a> '
        f'<span class="tags">{esc(", ".join(st["tags"]))}</span></li>'
        for st in report["korea_stories"]
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>News crawler report since {esc(_short_time(report['since']))}</title>"
        f"<style>{_PAGE_CSS}</style></head><body>"
        f"<h1>News crawler report</h1><p>Since {esc(_short_time(report['since']))} UTC, "
        f"generated {esc(_short_time(report['generated_at']))} UTC.</p>"
        f"<h2>Korea stories per day by site</h2>{korea_chart_svg(chart_rows)}"
        "<h2>Sites</h2><table><tr><th>site</th><th>last run</th><th>at (UTC)</th>"
        "<th>runs</th><th>failed</th><th>stored</th><th>dupes</th><th>korea</th>"
        f"<th>errors</th></tr>{''.join(rows)}</table>"
        f"<h2>Latest Korea stories</h2><ul>{stories or '<li>none</li>'}</ul>"
        "</body></html>"
    )


def chart_rows(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """The rows the chart is drawn from (``crawler.storage.reports.korea_stories_per_day``)."""
    return korea_stories_per_day(db)
