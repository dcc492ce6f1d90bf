"""Datasette plugin: ``/-/korea-chart``, Korea stories per day by site as an inline SVG.

Drawn on the server (``crawler.chart.korea_chart_svg``): no JavaScript, no CDN, works
offline. Loaded by ``scrapy datasette`` (``--plugins-dir data/datasette/plugins``).
"""

from __future__ import annotations

from typing import Any

import sqlite_utils
from datasette import hookimpl
from datasette.utils.asgi import NotFound, Response

from crawler.chart import chart_series, korea_chart_svg
from crawler.storage.reports import korea_stories_per_day

DAY_CHOICES = (7, 30, 90, 365)


def _rows(conn: Any) -> list[dict[str, Any]]:
    return korea_stories_per_day(sqlite_utils.Database(conn))


async def korea_chart(datasette: Any, request: Any) -> Response:
    names = [n for n in datasette.databases if not n.startswith("_")]
    name = request.args.get("db") or (names[0] if names else None)
    if name not in names:
        raise NotFound(f"no database {name!r}")
    try:
        days = min(max(int(request.args.get("days", 30)), 1), 3660)
    except ValueError:
        days = 30
    rows = await datasette.get_database(name).execute_fn(_rows)
    span, series = chart_series(rows, days=days)
    return Response.html(
        await datasette.render_template(
            "korea_chart.html",
            {
                "database": name,
                "days": days,
                "day_choices": DAY_CHOICES,
                "svg": korea_chart_svg(rows, days=days),
                "first_day": span[0] if span else None,
                "last_day": span[-1] if span else None,
                "totals": {site: sum(values) for site, values in series.items()},
            },
            request=request,
        )
    )


@hookimpl
def register_routes() -> list[tuple[str, Any]]:
    return [(r"^/-/korea-chart$", korea_chart)]


@hookimpl
def menu_links(datasette: Any) -> list[dict[str, str]]:
    return [{"href": datasette.urls.path("/-/korea-chart"), "label": "Korea stories chart"}]
