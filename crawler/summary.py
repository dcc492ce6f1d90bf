"""What one crawl did, in figures and words: the result of a site's crawl read from its Scrapy
stats, the progress line and the summary table (``scrapy crawl``, ``crawlall``, ``demo``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from crawler.anomaly import RunFigures, status_problems

logger = logging.getLogger(__name__)


@dataclass
class SiteResult:
    """What one site's crawl did, read from its Scrapy stats."""

    site: str
    stats: dict[str, Any] = field(default_factory=dict)

    def get(self, key: str) -> int:
        value = self.stats.get(key, 0)
        return int(value) if isinstance(value, int | float) else 0

    @property
    def status(self) -> str:
        return str(self.stats.get("finish_reason", "not run"))

    @property
    def stored(self) -> int:
        # A distributed worker hands its items to the writer instead (distributed/pushed).
        return self.get("store/inserted") + self.get("distributed/pushed")

    @property
    def duplicates(self) -> int:
        return self.get("store/duplicates")

    @property
    def dropped(self) -> dict[str, int]:
        """Dropped items by reason (the validate step's reasons; ``other`` for the rest)."""
        reasons = {
            k.removeprefix("validate/dropped/"): int(v)
            for k, v in self.stats.items()
            if k.startswith("validate/dropped/")
        }
        other = self.get("item_dropped_count") - sum(reasons.values())
        if other > 0:
            reasons["other"] = other
        return reasons

    @property
    def errors(self) -> int:
        return (
            self.get("log_count/ERROR")
            + self.get("spider_exceptions_count")
            + self.get("downloader/exception_count")
        )

    @property
    def pages(self) -> int:
        return self.get("response_received_count")

    @property
    def problems(self) -> list[str]:
        """Why the run failed (empty when healthy): the run recorder's verdict, which
        includes the history checks, or else the run's own status and logged errors."""
        recorded = self.stats.get("run/problems")
        if isinstance(recorded, list):
            return [str(p) for p in recorded]
        return status_problems(RunFigures.from_stats(self.stats))

    @property
    def ok(self) -> bool:
        return not self.problems


def progress_line(result: SiteResult, elapsed: float) -> str:
    """``[site] 0:15  pages 34 (136/min)  stored 20  dupes 3  dropped 1  errors 0``."""
    minutes, seconds = divmod(int(elapsed), 60)
    rate = result.pages / elapsed * 60 if elapsed > 0 else 0.0
    dropped = sum(result.dropped.values())
    return (
        f"[{result.site}] {minutes}:{seconds:02d}  pages {result.pages} ({rate:.0f}/min)  "
        f"stored {result.stored}  dupes {result.duplicates}  dropped {dropped}  "
        f"errors {result.errors}"
    )


def format_summary(results: list[SiteResult], elapsed: float) -> str:
    """A plain-text table: one line per site, the totals, then each failed site's problems."""
    header = (
        f"{'site':<24} {'status':<22} {'pages':>6} {'stored':>7} {'dupes':>6} {'errors':>6}"
        "  dropped"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        dropped = ", ".join(f"{k}: {v}" for k, v in sorted(r.dropped.items())) or "-"
        status = r.status if r.ok else f"{r.status} !"
        lines.append(
            f"{r.site:<24} {status:<22} {r.pages:>6} {r.stored:>7} {r.duplicates:>6} "
            f"{r.errors:>6}  {dropped}"
        )
    total_stored = sum(r.stored for r in results)
    total_dupes = sum(r.duplicates for r in results)
    total_dropped = sum(sum(r.dropped.values()) for r in results)
    failed = [r for r in results if not r.ok]
    lines.append("-" * len(header))
    verdict = f"{len(failed)} failed" if failed else "all fine"
    lines.append(
        f"{len(results)} sites, {total_stored} articles stored, {total_dupes} duplicates, "
        f"{total_dropped} dropped, in {elapsed:.1f} s; {verdict}"
    )
    for r in failed:
        lines.append(f"FAILED {r.site}: {'; '.join(r.problems)}")
    return "\n".join(lines)
