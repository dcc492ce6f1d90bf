"""``scrapy demo``: serve the bundled offline demo sites on 127.0.0.1 and crawl them all."""

from __future__ import annotations

import json
import shlex
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError
from scrapy.settings import SETTINGS_PRIORITIES

from crawler.commands import OneLineErrors, check_archive, db_option, tool_command
from crawler.runner import crawl_sites, exit_code
from crawler.sites import KINDS, parse_sites
from crawler.siteserver import SiteServers
from crawler.storage.connection import connect
from crawler.storage.reports import newest_articles
from crawler.summary import format_summary

if TYPE_CHECKING:
    import argparse

DEMO_ROOT = Path(__file__).resolve().parents[2] / "data" / "demo"
DEFAULT_PORT = 8760


class Command(OneLineErrors, ScrapyCommand):
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
        db_path = check_archive("demo", self.settings)
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
        served = ", ".join(f"{name}={url}" for name, url in sorted(servers.base_urls.items()))
        print(f"Demo sites: {served}")
        print(format_summary(results, elapsed))
        print(f"\nLatest articles in {db_path}:")
        db = connect(db_path)
        try:
            latest = newest_articles(db, limit=20)
        finally:
            db.close()
        for row in latest:
            tags = ", ".join(json.loads(row["tags"] or "[]")) or "-"
            print(
                f"  [{row['site']}] {row['title']} ({row['published_at']}, "
                f"{row['language']}) tags: {tags}"
            )
        self.exitcode = exit_code(results)
        scrapy, db = tool_command("scrapy"), shlex.quote(str(db_path))
        option = db_option(self.settings)
        print(
            "\nNext (commands as you can type them here):\n"
            f"  {scrapy} report{option}    # per-site health, the latest Korea stories\n"
            f"  {tool_command('sqlite-utils')} tables {db} --counts\n"
            f"  {scrapy} datasette{option}    # browse it on http://127.0.0.1:8001/"
        )
