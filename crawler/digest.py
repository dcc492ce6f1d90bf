"""The digest ``scrapy report`` shows: per-site health and the latest Korea stories of a period,
as data (``--json``), plain text, or a self-contained HTML page with the chart (no scripts)."""

from __future__ import annotations

import html
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from crawler.chart import korea_chart_svg
from crawler.storage.reports import korea_stories_per_day, latest_korea_stories, site_activity
from crawler.timespan import iso

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    import sqlite_utils

logger = logging.getLogger(__name__)


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
