"""What one crawl did, in figures and words: the result of a site's crawl read from its Scrapy
stats, the progress line and the summary table (``scrapy crawl``, ``crawlall``, ``demo``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from crawler.anomaly import RunFigures, plural, status_problems

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
    def known(self) -> int:
        """Article links already stored, not fetched again (the incremental crawl)."""
        return self.get("incremental/skipped")

    @property
    def failed_articles(self) -> dict[str, int]:
        """Article downloads that failed, by reason (``article/failed/<reason>``)."""
        return {
            k.removeprefix("article/failed/"): int(v)
            for k, v in self.stats.items()
            if k.startswith("article/failed/") and isinstance(v, int | float)
        }

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

    @property
    def notes(self) -> list[str]:
        """What a person should know about a run that did not fail: every article download
        failed, so nothing was stored (with a hint for the SSRF guard's refusals)."""
        failed = self.failed_articles
        if self.stored or self.duplicates or not failed:
            return []
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(failed.items(), key=lambda kv: -kv[1]))
        note = (
            f"nothing stored: {plural(sum(failed.values()), 'article download')} failed ({reasons})"
        )
        if any(k.startswith("ssrf_") for k in failed):
            note += (
                "; the SSRF guard refuses private and loopback addresses the site does not "
                "name: use the articles' host in the site's URL, or list it in SSRF_ALLOWED_HOSTS"
            )
        return [note]


def progress_line(result: SiteResult, elapsed: float) -> str:
    """``[site] 0:15  pages 34 (136/min)  stored 20  known 5  dupes 3  dropped 1  errors 0``."""
    minutes, seconds = divmod(int(elapsed), 60)
    rate = result.pages / elapsed * 60 if elapsed > 0 else 0.0
    dropped = sum(result.dropped.values())
    return (
        f"[{result.site}] {minutes}:{seconds:02d}  pages {result.pages} ({rate:.0f}/min)  "
        f"stored {result.stored}  known {result.known}  dupes {result.duplicates}  "
        f"dropped {dropped}  errors {result.errors}"
    )


def format_summary(results: list[SiteResult], elapsed: float) -> str:
    """A plain-text table: one line per site, the totals, then each failed site's problems
    and the notes on the others.

    ``known`` counts article links already stored and not fetched again; ``errors`` is the
    figure a failed site's problem line gives (logged errors + failed downloads).
    """
    width = max(24, *(len(r.site) for r in results)) if results else 24
    header = (
        f"{'site':<{width}} {'status':<22} {'pages':>6} {'stored':>7} {'known':>6} "
        f"{'dupes':>6} {'errors':>6}  dropped"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        dropped = ", ".join(f"{k}: {v}" for k, v in sorted(r.dropped.items())) or "-"
        status = r.status if r.ok else f"{r.status} !"
        lines.append(
            f"{r.site:<{width}} {status:<22} {r.pages:>6} {r.stored:>7} {r.known:>6} "
            f"{r.duplicates:>6} {r.errors:>6}  {dropped}"
        )
    stored = sum(r.stored for r in results)
    known = sum(r.known for r in results)
    dupes = sum(r.duplicates for r in results)
    dropped_total = sum(sum(r.dropped.values()) for r in results)
    failed = [r for r in results if not r.ok]
    lines.append("-" * len(header))
    verdict = f"{len(failed)} failed" if failed else "all fine"
    new = "new article" if known else "article"
    already = f"{known} already stored (not fetched again), " if known else ""
    lines.append(
        f"{plural(len(results), 'site')}, {plural(stored, new)} stored, {already}"
        f"{plural(dupes, 'duplicate')}, {dropped_total} dropped, in {elapsed:.1f} s; {verdict}"
    )
    for r in failed:
        lines.append(f"FAILED {r.site}: {'; '.join(r.problems)}")
    for r in results:
        lines.extend(f"NOTE {r.site}: {note}" for note in r.notes)
    return "\n".join(lines)
