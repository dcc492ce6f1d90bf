"""``scrapy demo``: serve the bundled offline demo sites on 127.0.0.1 and crawl them all."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError
from scrapy.settings import SETTINGS_PRIORITIES

from crawler.db import connect
from crawler.runner import crawl_sites
from crawler.sites import KINDS, parse_sites
from crawler.siteserver import SiteServers
from crawler.summary import format_summary

if TYPE_CHECKING:
    import argparse

DEMO_ROOT = Path(__file__).resolve().parents[2] / "data" / "demo"
DEFAULT_PORT = 8760


def demo_articles(db_path: str, limit: int = 20) -> list[dict[str, Any]]:
    """The newest stored articles of the demo database, for the summary."""
    db = connect(db_path)
    try:
        return list(
            db.query(
                "SELECT site, title, published_at, language, tags FROM articles "
                "ORDER BY id DESC LIMIT ?",
                [limit],
            )
        )
    finally:
        db.close()


class Command(ScrapyCommand):
    requires_project = True
    demo_settings: ClassVar[dict[str, Any]] = {
        "LOG_LEVEL": "WARNING",
        "AUTOTHROTTLE_ENABLED": False,
        "DOWNLOAD_DELAY": 0,
        "PROGRESS_ENABLED": False,  # the summary table covers all sites at the end
    }
    """Local servers need no politeness; the summary replaces the INFO log. They beat the
    project settings (a command's default_settings would not) unless given with -s / -L."""

    def syntax(self) -> str:
        return "[options]"

    def short_desc(self) -> str:
        return "Serve the offline demo sites on 127.0.0.1 and crawl them into DB_PATH"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument(
            "--port",
            type=int,
            default=DEFAULT_PORT,
            help=f"first port of the demo sites (default {DEFAULT_PORT}; 0 = any free ports). "
            "Fixed ports keep the demo's URLs the same from run to run.",
        )
        parser.add_argument(
            "--root", default=str(DEMO_ROOT), help="folder of demo sites (default data/demo)"
        )

    def process_options(self, args: list[str], opts: argparse.Namespace) -> None:
        super().process_options(args, opts)
        for name, value in self.demo_settings.items():
            if self.settings.getpriority(name) < SETTINGS_PRIORITIES["cmdline"]:
                self.settings.set(name, value, priority="cmdline")

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if args:
            raise UsageError("scrapy demo takes no arguments", print_help=False)
        root = Path(opts.root)
        sites_file = root / "sites.toml"
        if not sites_file.is_file():
            raise UsageError(f"{sites_file}: demo sites file not found", print_help=False)
        try:
            servers = SiteServers(root, base_port=opts.port).start()
        except OSError as exc:
            raise UsageError(
                f"cannot serve the demo on port {opts.port}: {exc} (try --port 0)",
                print_help=False,
            ) from None
        try:
            sites = parse_sites(
                tomllib.loads(servers.fill(sites_file.read_text(encoding="utf-8"))),
                source=str(sites_file),
            )
            assert self.crawler_process is not None
            kinds = {k: self.crawler_process.spider_loader.load(k) for k in KINDS}
            results, elapsed = crawl_sites(self.crawler_process, sites, kinds)
        finally:
            servers.stop()
        db_path = self.settings.get("DB_PATH")
        served = ", ".join(f"{name}={url}" for name, url in sorted(servers.base_urls.items()))
        print(f"Demo sites: {served}")
        print(format_summary(results, elapsed))
        print(f"\nLatest articles in {db_path}:")
        for row in demo_articles(db_path):
            tags = ", ".join(json.loads(row["tags"] or "[]")) or "-"
            print(
                f"  [{row['site']}] {row['title']} ({row['published_at']}, "
                f"{row['language']}) tags: {tags}"
            )
        print(f"\nExplore: sqlite-utils tables {db_path} --counts")
        if any(r.status != "finished" for r in results):
            self.exitcode = 1
