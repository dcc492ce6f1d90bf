"""Periods on the command line (``--since 24h``, ``--since 2026-11-01``) and the database's
timestamp form (ISO 8601 UTC), shared by ``scrapy report``, ``reprocess`` and ``export``."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mhdw])\s*$", re.IGNORECASE)
_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


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
