"""Scrapy commands of the news crawler (the module name is the command name)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from scrapy.settings import SETTINGS_PRIORITIES

if TYPE_CHECKING:
    from scrapy.settings import Settings


def quiet_unless_verbose(settings: Settings, verbose: bool) -> None:
    """For the unattended commands (crawlall, ingest): the log goes to their rotating file
    (stderr too with -v, or when -L / --logfile are given) and the per-crawler progress
    lines, meant for `scrapy crawl` in a terminal, are off."""
    quiet = {"LOG_ENABLED": bool(verbose), "PROGRESS_ENABLED": False}
    for name, value in quiet.items():
        if settings.getpriority(name) < SETTINGS_PRIORITIES["cmdline"]:
            settings.set(name, value, priority="cmdline")
