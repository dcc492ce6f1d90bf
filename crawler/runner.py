"""Run several configured sites in one Scrapy process and summarise what each did."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from crawler.spiderloader import site_spider_class

if TYPE_CHECKING:
    from scrapy.crawler import Crawler, CrawlerProcessBase

    from crawler.sites import Site


@dataclass
class SiteResult:
    """What one site's crawl did, read from its Scrapy stats."""

    site: str
    stats: dict[str, Any] = field(default_factory=dict)

    def get(self, key: str) -> int:
        return int(self.stats.get(key, 0) or 0)

    @property
    def status(self) -> str:
        return str(self.stats.get("finish_reason", "not run"))

    @property
    def stored(self) -> int:
        return self.get("store/inserted")

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


def crawl_sites(
    process: CrawlerProcessBase, sites: list[Site], spider_classes: dict[str, type]
) -> tuple[list[SiteResult], float]:
    """Crawl ``sites`` concurrently in ``process``; block until all finish.

    ``spider_classes`` maps a kind to its generic spider class. Returns one result per site
    (in the order given) and the wall time in seconds.
    """
    crawlers: list[tuple[Site, Crawler]] = []
    for site in sites:
        crawler = process.create_crawler(site_spider_class(spider_classes[site.kind], site))
        process.crawl(crawler)
        crawlers.append((site, crawler))
    started = time.monotonic()
    process.start()
    elapsed = time.monotonic() - started
    results = []
    for site, crawler in crawlers:
        stats = crawler.stats.get_stats() if crawler.stats else {}
        results.append(SiteResult(site.name, dict(stats)))
    return results, elapsed


def format_summary(results: list[SiteResult], elapsed: float) -> str:
    """A plain-text table: one line per site, then the totals."""
    header = f"{'site':<24} {'status':<12} {'pages':>6} {'stored':>7} {'dupes':>6} {'errors':>6}  dropped"
    lines = [header, "-" * len(header)]
    for r in results:
        dropped = ", ".join(f"{k}: {v}" for k, v in sorted(r.dropped.items())) or "-"
        lines.append(
            f"{r.site:<24} {r.status:<12} {r.pages:>6} {r.stored:>7} {r.duplicates:>6} "
            f"{r.errors:>6}  {dropped}"
        )
    total_stored = sum(r.stored for r in results)
    total_dupes = sum(r.duplicates for r in results)
    total_dropped = sum(sum(r.dropped.values()) for r in results)
    lines.append("-" * len(header))
    lines.append(
        f"{len(results)} sites, {total_stored} articles stored, {total_dupes} duplicates, "
        f"{total_dropped} dropped, in {elapsed:.1f} s"
    )
    return "\n".join(lines)
