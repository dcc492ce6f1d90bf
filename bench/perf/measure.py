"""Run one command as a child process and measure it: wall time, CPU seconds (user + sys of
the child and every process it waited for), peak RSS of its whole process tree."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

_PAGE = os.sysconf("SC_PAGE_SIZE")
POLL_SECONDS = 0.5


@dataclass
class Measured:
    wall: float
    cpu: float
    """User + system seconds of the child and its reaped descendants (``wait4`` rusage)."""
    peak_rss: int
    """Bytes: the highest sum of RSS over the child's process tree, polled every 0.5 s."""
    peak_rss_main: int
    """Bytes: the child process's own peak RSS (``ru_maxrss``)."""
    returncode: int
    log: Path
    cpu_main: float = 0.0
    """User + system seconds of the child process alone (not its children), as last polled
    (at most ``POLL_SECONDS`` before it exited); ``cpu - cpu_main`` is its workers'."""
    machine_busy: float = 0.0
    """CPU seconds the whole machine spent busy during the run (``/proc/stat``)."""
    server_cpu: float = 0.0
    """CPU seconds of the web server during the run."""
    others: float = 0.0
    """Of those, seconds not spent by the child tree, the web server or this process: other
    load on the machine, which makes the figures of this run unreliable."""


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:  # noqa: PTH123
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        kids.setdefault(ppid, []).append(int(entry.name))
    return kids


def _tree(pid: int) -> list[int]:
    """``pid`` and all its live descendants."""
    kids = _children()
    found, stack = [], [pid]
    while stack:
        p = stack.pop()
        found.append(p)
        stack.extend(kids.get(p, ()))
    return found


def tree_rss(pid: int) -> int:
    """Sum of the resident set sizes of ``pid`` and all its descendants, in bytes."""
    total = 0
    for p in _tree(pid):
        try:
            with open(f"/proc/{p}/statm", "rb") as f:  # noqa: PTH123
                total += int(f.read().split()[1]) * _PAGE
        except (OSError, IndexError, ValueError):
            pass
    return total


def _machine_busy() -> float:
    """Busy CPU seconds of the machine since boot (all cores)."""
    with open("/proc/stat") as f:  # noqa: PTH123
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """User + system seconds of process ``pid`` alone so far (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:  # noqa: PTH123
            stat = f.read()
        fields = stat[stat.rindex(b")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def tree_cpu(pid: int) -> float:
    """User + system seconds of ``pid`` and its live descendants so far."""
    return sum(process_cpu(p) for p in _tree(pid))


def run(
    cmd: list[str],
    *,
    cwd: Path,
    log: Path,
    env: dict[str, str] | None = None,
    server_pid: int | None = None,
) -> Measured:
    """Run ``cmd`` (stdout and stderr to ``log``) and measure it; ``server_pid``'s CPU
    time (the web server's) is measured apart from the other load on the machine."""
    log.parent.mkdir(parents=True, exist_ok=True)
    peak = 0
    done = threading.Event()
    server_before = tree_cpu(server_pid) if server_pid else 0.0
    busy_before = _machine_busy()
    self_before = sum(os.times()[:2])
    with log.open("wb") as out:
        started = time.monotonic()
        proc = subprocess.Popen(
            cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env or os.environ.copy()
        )

        main_cpu = 0.0

        def poll() -> None:
            nonlocal peak, main_cpu
            while not done.is_set():
                peak = max(peak, tree_rss(proc.pid))
                main_cpu = max(main_cpu, process_cpu(proc.pid))
                done.wait(POLL_SECONDS)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - started
        done.set()
        poller.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
    busy = _machine_busy() - busy_before
    server = (tree_cpu(server_pid) - server_before) if server_pid else 0.0
    cpu = usage.ru_utime + usage.ru_stime
    others = busy - cpu - server - (sum(os.times()[:2]) - self_before)
    return Measured(
        wall=wall,
        cpu=cpu,
        peak_rss=max(peak, usage.ru_maxrss * 1024),
        peak_rss_main=usage.ru_maxrss * 1024,
        returncode=proc.returncode,
        cpu_main=main_cpu,
        log=log,
        machine_busy=busy,
        server_cpu=server,
        others=max(0.0, others),
    )
