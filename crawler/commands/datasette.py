"""``scrapy datasette``: browse DB_PATH in Datasette with the project's metadata, canned
queries, the compact stories view and the Korea chart (``make datasette`` runs this).

Datasette runs as a child process; stopping this command (Ctrl-C, SIGTERM, SIGHUP) stops it
and removes the temporary metadata folder."""

from __future__ import annotations

import importlib.util
import json
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError

from crawler.commands import OneLineErrors, check_archive

if TYPE_CHECKING:
    import argparse
    from types import FrameType

ROOT = Path(__file__).resolve().parents[2]
METADATA = ROOT / "data" / "datasette-metadata.yml"
PLUGINS = ROOT / "data" / "datasette" / "plugins"
TEMPLATES = ROOT / "data" / "datasette" / "templates"
METADATA_DB = "news"
"""The database name the metadata file is written for (``data/news.db``)."""
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class Stopped(Exception):
    """A stop signal arrived while Datasette was running."""


def _stop(signum: int, frame: FrameType | None) -> None:
    raise Stopped(signum)


def serve(argv: list[str]) -> int:
    """Run Datasette (``argv``) until it exits, or until this process gets Ctrl-C, SIGTERM
    or SIGHUP: then stop it too (terminate, kill after 10 s). Returns its exit code, 0 when
    stopped."""
    previous = {sig: signal.signal(sig, _stop) for sig in STOP_SIGNALS}
    # argv is built from fixed parts, the settings and the options
    proc = subprocess.Popen(argv, cwd=ROOT)  # noqa: S603
    try:
        return proc.wait()
    except (KeyboardInterrupt, Stopped):
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


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


class Command(OneLineErrors, ScrapyCommand):
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
        db_path = Path(check_archive("datasette", self.settings, must_exist=True, write=False))
        with tempfile.TemporaryDirectory(prefix="newscrawler-datasette-") as tmp:
            metadata_file = Path(tmp) / "metadata.json"
            metadata_file.write_text(json.dumps(metadata_for(db_path)), encoding="utf-8")
            argv = datasette_argv(db_path, metadata_file, host=opts.host, port=opts.port)
            base = f"http://{opts.host}:{opts.port}"
            name = database_name(db_path)
            print(f"Datasette on {base}/ (Ctrl-C stops it)", flush=True)
            print(f"Stories, one line each: {base}/{name}/stories", flush=True)
            print(f"Korea chart: {base}/-/korea-chart", flush=True)
            self.exitcode = serve(argv)
