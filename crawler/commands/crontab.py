"""``scrapy crontab``: ready-to-paste cron lines (or systemd units) for this checkout."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError
from scrapy.utils.conf import closest_scrapy_cfg

from crawler.commands import PLACEHOLDER_CONTACTS, OneLineErrors, stdout_may_close, tool_command
from crawler.commands.crawlall import log_file
from crawler.config import db_path_for, get_float, get_str
from crawler.lock import lock_path_for

if TYPE_CHECKING:
    import argparse

    from scrapy.settings import BaseSettings


def cron_schedule(every: int) -> str:
    """The cron time fields for "every ``every`` minutes" (a divisor of an hour or a day)."""
    if every < 1:
        raise ValueError("--every must be at least 1 minute")
    if every < 60 and 60 % every == 0:
        return "* * * * *" if every == 1 else f"*/{every} * * * *"
    if every % 60 == 0 and 1440 % every == 0:
        hours = every // 60
        return "0 * * * *" if hours == 1 else f"0 */{hours} * * *"
    raise ValueError(f"--every {every}: use a divisor of 60 or a whole number of hours in a day")


def systemd_calendar(every: int) -> str:
    if every < 60:
        return f"*:0/{every}"
    return f"*-*-* 0/{every // 60}:00:00"


def run_timeout(settings: BaseSettings, every: int) -> float:
    """The run limit that keeps a run shorter than the interval: the configured one, or
    5/6 of the interval when that is none or too long (the next run would find the lock)."""
    configured = get_float(settings, "CRAWLALL_RUN_TIMEOUT")
    return configured if 0 < configured < every * 60 else every * 60 * 5 // 6


def crawl_argv(settings: BaseSettings, *, every: int, group: str | None) -> list[str]:
    """``python -m scrapy crawlall ...`` with absolute paths, from this checkout's venv."""
    argv = [str(Path(sys.executable).absolute()), "-m", "scrapy", "crawlall"]
    argv += ["--sites", str(Path(get_str(settings, "SITES_FILE")).absolute())]
    if group:
        argv += ["--group", group]
    argv += ["-s", f"DB_PATH={Path(db_path_for(settings)).absolute()}"]
    limit = run_timeout(settings, every)
    if limit != get_float(settings, "CRAWLALL_RUN_TIMEOUT"):
        argv += ["-s", f"CRAWLALL_RUN_TIMEOUT={limit:g}"]
    return argv


class Command(OneLineErrors, ScrapyCommand):
    requires_project = True
    requires_crawler_process = False
    default_settings: ClassVar[dict[str, Any]] = {"LOG_ENABLED": False}

    def syntax(self) -> str:
        return "[--every MINUTES] [--group GROUP] [--systemd]"

    def short_desc(self) -> str:
        return "Print cron lines (or systemd units) that run crawlall for this checkout"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument(
            "--every", type=int, default=30, help="minutes between runs (default 30)"
        )
        parser.add_argument("--group", help="crawl only this group of sites")
        parser.add_argument(
            "--systemd", action="store_true", help="print a systemd service and timer instead"
        )

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if args:
            raise UsageError(f"unexpected arguments: {' '.join(args)}", print_help=False)
        try:
            schedule = cron_schedule(opts.every)
        except ValueError as exc:
            raise UsageError(str(exc), print_help=False) from None
        cfg = closest_scrapy_cfg()
        project = Path(cfg).parent if cfg else Path.cwd()
        argv = crawl_argv(self.settings, every=opts.every, group=opts.group)
        with stdout_may_close():
            if agent_note := self.placeholder_note():
                print(agent_note)
            if opts.systemd:
                stop_after = run_timeout(self.settings, opts.every) + get_float(
                    self.settings, "CRAWLALL_STOP_GRACE"
                )
                print(self.systemd_units(project, argv, opts.every, int(stop_after) + 120))
            else:
                print(self.cron_lines(project, argv, schedule))

    def placeholder_note(self) -> str | None:
        """A comment line when ``USER_AGENT`` still has the shipped placeholder contact."""
        agent = self.settings.get("USER_AGENT") or ""
        if not any(p in agent for p in PLACEHOLDER_CONTACTS):
            return None
        return (
            "# FIRST: USER_AGENT still has the placeholder contact; put your own URL and "
            "e-mail\n# into USER_AGENT in crawler/settings.py, so that site owners can reach you."
        )

    def cron_lines(self, project: Path, argv: list[str], schedule: str) -> str:
        command = f"cd {shlex.quote(str(project))} && {shlex.join(argv)}"
        report = [str(Path(sys.executable).absolute()), "-m", "scrapy", "report", "--since"]
        report += ["24h", "-s", f"DB_PATH={Path(db_path_for(self.settings)).absolute()}"]
        return (
            f"# newscrawler in {project}: add with `crontab -e` (or: (crontab -l; "
            f"{tool_command('scrapy')} crontab) | crontab -)\n"
            "# crawlall prints nothing while every site is fine, so cron mails only failures.\n"
            "# Exit codes: 0 ok, 1 some sites failed, 2 usage/config error, 75 the previous run\n"
            f"# still holds the lock ({lock_path_for(db_path_for(self.settings)).absolute()}).\n"
            f"# Log (rotated): {log_file(self.settings).absolute()}\n"
            f"{schedule} {command}\n"
            "# A daily report by mail at 07:00:\n"
            f"0 7 * * * cd {shlex.quote(str(project))} && {shlex.join(report)}"
        )

    @staticmethod
    def systemd_units(project: Path, argv: list[str], every: int, stop_after: int) -> str:
        return (
            "# ~/.config/systemd/user/newscrawler.service (or /etc/systemd/system/ with User=)\n"
            "[Unit]\n"
            "Description=newscrawler: crawl every enabled site (scrapy crawlall)\n"
            "Wants=network-online.target\n"
            "After=network-online.target\n\n"
            "[Service]\n"
            "Type=oneshot\n"
            f"WorkingDirectory={project}\n"
            f"ExecStart={shlex.join(argv)}\n"
            "# 75: a run started by hand still holds the lock; not a failure of the timer's run\n"
            "SuccessExitStatus=75\n"
            f"TimeoutStartSec={stop_after}\n"
            "Nice=10\n\n"
            "# ~/.config/systemd/user/newscrawler.timer\n"
            "[Unit]\n"
            f"Description=Run newscrawler every {every} minutes\n\n"
            "[Timer]\n"
            f"OnCalendar={systemd_calendar(every)}\n"
            "Persistent=true\n"
            "RandomizedDelaySec=30\n\n"
            "[Install]\n"
            "WantedBy=timers.target\n"
            "# Enable: systemctl --user daemon-reload && "
            "systemctl --user enable --now newscrawler.timer\n"
            "# Logs: journalctl --user -u newscrawler (summary on failure) and the rotating file"
        )
