"""``scrapy datasette``: browse DB_PATH in Datasette with the project's metadata, canned
queries and the Korea chart (``make datasette`` runs this)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError

from crawler.config import db_path_for

if TYPE_CHECKING:
    import argparse

ROOT = Path(__file__).resolve().parents[2]
METADATA = ROOT / "data" / "datasette-metadata.yml"
PLUGINS = ROOT / "data" / "datasette" / "plugins"
TEMPLATES = ROOT / "data" / "datasette" / "templates"
METADATA_DB = "news"
"""The database name the metadata file is written for (``data/news.db``)."""


def database_name(db_path: str | Path) -> str:
    """Datasette names a database after its file: ``/tmp/x.db`` -> ``x``."""
    return Path(db_path).stem


def metadata_for(db_path: str | Path, source: Path = METADATA) -> dict[str, Any]:
    """The metadata file with its database entry (and links) renamed for ``db_path``."""
    import yaml  # imported here: it comes with the datasette extra, other commands need none

    metadata = yaml.safe_load(source.read_text(encoding="utf-8"))
    name = database_name(db_path)
    if name != METADATA_DB:
        text = json.dumps(metadata).replace(f"/{METADATA_DB}/", f"/{name}/")
        metadata = json.loads(text)
        metadata["databases"] = {name: metadata["databases"].pop(METADATA_DB)}
    return metadata


def datasette_argv(
    db_path: str | Path, metadata_file: str | Path, *, host: str, port: int
) -> list[str]:
    """The ``python -m datasette serve`` command line for ``db_path``."""
    return [
        sys.executable,
        "-m",
        "datasette",
        "serve",
        str(db_path),
        "--metadata",
        str(metadata_file),
        "--plugins-dir",
        str(PLUGINS),
        "--template-dir",
        str(TEMPLATES),
        "--host",
        host,
        "--port",
        str(port),
        "--setting",
        "sql_time_limit_ms",
        "5000",
    ]


class Command(ScrapyCommand):
    requires_project = True
    requires_crawler_process = False
    default_settings: ClassVar[dict[str, Any]] = {"LOG_ENABLED": False}

    def syntax(self) -> str:
        return "[--host 127.0.0.1] [--port 8001]"

    def short_desc(self) -> str:
        return "Browse DB_PATH in Datasette (metadata, canned queries, Korea chart)"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument(
            "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
        )
        parser.add_argument("--port", type=int, default=8001, help="port (default 8001)")

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if args:
            raise UsageError(f"unexpected arguments: {' '.join(args)}", print_help=False)
        if importlib.util.find_spec("datasette") is None:
            raise UsageError(
                "Datasette is not installed: pip install -e '.[datasette]'", print_help=False
            )
        db_path = Path(db_path_for(self.settings))
        if not db_path.is_file():
            raise UsageError(
                f"{db_path}: no database yet (run `make demo` or a crawl first)", print_help=False
            )
        with tempfile.TemporaryDirectory(prefix="newscrawler-datasette-") as tmp:
            metadata_file = Path(tmp) / "metadata.json"
            metadata_file.write_text(json.dumps(metadata_for(db_path)), encoding="utf-8")
            argv = datasette_argv(db_path, metadata_file, host=opts.host, port=opts.port)
            print(f"Datasette on http://{opts.host}:{opts.port}/ (Ctrl-C stops it)")
            print(f"Korea chart: http://{opts.host}:{opts.port}/-/korea-chart")
            try:
                # argv is built above from fixed parts, the settings and the options
                self.exitcode = subprocess.run(argv, cwd=ROOT, check=False).returncode  # noqa: S603
            except KeyboardInterrupt:
                self.exitcode = 0
