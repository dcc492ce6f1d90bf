"""Is a site's run healthy? Its close reason, its errors, and its figures against its own
recent history in the ``runs`` table (no external service)."""

from __future__ import annotations

import logging
import statistics
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from crawler.config import default, read_config, setting

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from typing import Self

    from scrapy.settings import BaseSettings

logger = logging.getLogger(__name__)

DEFAULT_SEEN_STATS: tuple[str, ...] = tuple(default("ANOMALY_SEEN_STATS"))
"""Stats that count an article the site still offers: stored now, seen again (recorded as a
duplicate), or skipped before download because it is already stored (incremental crawl).
A healthy site that published nothing new still *offers* articles; a broken one offers none."""

MAX_CAUSES = 2
"""Logged errors quoted in a run's problems (``log/first_errors`` keeps a few more)."""

CLOSE_REASONS = {
    "finished": "finished",
    "closespider_timeout": "site time limit reached (CRAWLALL_SITE_TIMEOUT)",
    "run_timeout": "run time limit reached (CRAWLALL_RUN_TIMEOUT)",
    "run_timeout_forced": "stopped by force after the run time limit and grace period",
    "shutdown": "stopped by a signal (Ctrl-C / SIGTERM)",
    "database_error": "database write failed",
    "not run": "did not start",
}


@dataclass(frozen=True)
class RunFigures:
    """The figures of one run that health checks look at."""

    status: str
    seen: int
    """Articles the site offered: stored + duplicates + already-stored skips (``seen_stats``)."""
    stored: int
    pages: int
    errors: int
    """Logged errors + spider exceptions + failed downloads (the ``runs.errors`` column)."""
    logged_errors: int
    """ERROR log lines and spider exceptions only: each one fails the run."""
    first_errors: tuple[str, ...] = ()
    """The first ERROR messages of the run (stat ``log/first_errors``): the causes."""

    @classmethod
    def from_stats(
        cls,
        stats: Mapping[str, Any],
        *,
        status: str | None = None,
        seen_stats: Iterable[str] = DEFAULT_SEEN_STATS,
    ) -> Self:
        def num(key: str) -> int:
            value = stats.get(key, 0)
            return int(value) if isinstance(value, int | float) else 0

        logged = num("log_count/ERROR") + num("spider_exceptions_count")
        first = stats.get("log/first_errors")
        return cls(
            status=status or str(stats.get("finish_reason") or "not run"),
            seen=sum(num(k) for k in seen_stats),
            stored=num("store/inserted"),
            pages=num("response_received_count"),
            errors=logged + num("downloader/exception_count"),
            logged_errors=logged,
            first_errors=tuple(str(m) for m in first) if isinstance(first, list) else (),
        )

    @property
    def error_rate(self) -> float:
        """Errors per attempted page, in [0, 1)."""
        return self.errors / max(self.pages + self.errors, 1)


@dataclass(frozen=True)
class AnomalyConfig:
    """Thresholds of the history checks (settings ``ANOMALY_*``)."""

    history_runs: int = setting("ANOMALY_HISTORY_RUNS")
    """The site's last N finished runs form its recent history."""
    min_runs: int = setting("ANOMALY_MIN_RUNS")
    """No history check until the site has this many finished runs."""
    zero_min_median: float = setting("ANOMALY_ZERO_MIN_MEDIAN")
    """Zero articles is an anomaly when the recent median is at least this."""
    drop_ratio: float = setting("ANOMALY_DROP_RATIO")
    """Fewer articles than this fraction of the recent median is an anomaly ..."""
    drop_min_median: float = setting("ANOMALY_DROP_MIN_MEDIAN")
    """... for sites whose recent median is at least this (small counts vary naturally)."""
    error_rate_min: float = setting("ANOMALY_ERROR_RATE_MIN")
    """An error rate (errors / attempted pages) of at least this ..."""
    error_rate_factor: float = setting("ANOMALY_ERROR_RATE_FACTOR")
    """... and at least this many times the recent median rate is an anomaly ..."""
    error_min_count: int = setting("ANOMALY_ERROR_MIN_COUNT")
    """... when the run had at least this many errors."""
    seen_stats: tuple[str, ...] = setting("ANOMALY_SEEN_STATS")

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> Self:
        config = read_config(cls, settings)
        if config.history_runs < 1 or config.min_runs < 1 or config.min_runs > config.history_runs:
            raise ValueError("ANOMALY_MIN_RUNS must be between 1 and ANOMALY_HISTORY_RUNS")
        if not 0 < config.drop_ratio < 1 or not 0 < config.error_rate_min <= 1:
            raise ValueError("ANOMALY_DROP_RATIO and ANOMALY_ERROR_RATE_MIN must be in (0, 1)")
        return config


def status_problems(run: RunFigures) -> list[str]:
    """What is wrong with a run by itself: an early close, logged errors (with their count
    as in the ``errors`` column and their first causes)."""
    problems = []
    if run.status != "finished":
        problems.append(f"closed: {CLOSE_REASONS.get(run.status, run.status)}")
    if run.logged_errors:
        problems.append(errors_problem(run))
    return problems


def errors_problem(run: RunFigures) -> str:
    """``1 error logged: source https://x/feed.xml failed (http_404) ...``, or with failed
    downloads also counted in ``errors``: ``8 errors (2 logged, 6 failed downloads): ...``."""
    downloads = run.errors - run.logged_errors
    if downloads > 0:
        s = "" if downloads == 1 else "s"
        text = f"{run.errors} errors ({run.logged_errors} logged, {downloads} failed download{s})"
    else:
        text = f"{plural(run.logged_errors, 'error')} logged"
    causes = list(run.first_errors[:MAX_CAUSES])
    if not causes:
        return text
    more = run.logged_errors - len(causes)
    return f"{text}: {' | '.join(causes)}" + (f" (+{more} more in the log)" if more > 0 else "")


def plural(n: int, word: str) -> str:
    """``1 site``, ``2 sites``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def anomalies(
    run: RunFigures, history: Sequence[RunFigures], config: AnomalyConfig | None = None
) -> list[str]:
    """What is unusual about ``run`` next to the site's ``history`` (newest first; only
    finished runs count, at most ``config.history_runs`` of them)."""
    config = config or AnomalyConfig()
    past = [h for h in history if h.status == "finished"][: config.history_runs]
    if len(past) < config.min_runs:
        return []
    found = []
    median_seen = statistics.median(h.seen for h in past)
    window = f"last {len(past)} runs"
    if run.seen == 0 and median_seen >= config.zero_min_median:
        found.append(f"no articles (median {median_seen:g} over the {window})")
    elif median_seen >= config.drop_min_median and run.seen < config.drop_ratio * median_seen:
        found.append(f"{run.seen} articles, far below the median {median_seen:g} ({window})")
    median_rate = statistics.median(h.error_rate for h in past)
    if (
        run.errors >= config.error_min_count
        and run.error_rate >= config.error_rate_min
        and run.error_rate >= config.error_rate_factor * median_rate
    ):
        found.append(
            f"error rate {run.error_rate:.0%} (median {median_rate:.0%} over the {window})"
        )
    return found


def run_problems(
    run: RunFigures, history: Sequence[RunFigures], config: AnomalyConfig | None = None
) -> list[str]:
    """Every reason to call the run failed: ``status_problems`` then ``anomalies``."""
    return status_problems(run) + anomalies(run, history, config)
