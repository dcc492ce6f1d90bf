"""Korea stories per day by site as a stacked bar chart in inline SVG: drawn on the server, no
scripts (``scrapy report --html`` and Datasette's ``/-/korea-chart``)."""

from __future__ import annotations

import html
import math
from collections import defaultdict
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

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
