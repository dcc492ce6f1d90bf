"""Summarise a py-spy ``--format raw`` profile (collapsed stacks): per process, the functions
with the most samples on top of the stack (self) and anywhere in it (inclusive)."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from pathlib import Path

_FRAME_RE = re.compile(r"^(?P<func>.+?) \((?P<file>[^()]*?)(?::\d+)?\)$")
_SITE_RE = re.compile(r".*/(?:site-packages|lib/python3\.\d+)/")
_CHECKOUT_RE = re.compile(r"^/(?:.*/)?(?=(?:crawler|pipelines|bench|tests)/)")


def _frame(raw: str) -> str:
    """``func (path:line)`` -> ``func (short/path)`` without the line, site-packages prefix cut."""
    m = _FRAME_RE.match(raw.strip())
    if not m:
        return raw.strip()
    path = _SITE_RE.sub("", m.group("file"))
    path = _CHECKOUT_RE.sub("", path)
    return f"{m.group('func')} ({path})"


def _process_name(frame: str) -> str:
    """``process 123:"cmdline"`` -> ``worker 123`` / ``main 123``."""
    pid = frame.split(":", 1)[0].removeprefix("process ").strip()
    kind = "worker" if "multiprocessing" in frame else "main"
    return f"{kind} {pid}"


def summarise(raw_file: Path, *, top: int = 15) -> list[str]:
    """Lines of text: for each process (by samples), its top-``top`` self and inclusive
    functions as shares of that process's samples."""
    per_proc: dict[str, Counter[str]] = defaultdict(Counter)
    incl: dict[str, Counter[str]] = defaultdict(Counter)
    totals: Counter[str] = Counter()
    for line in raw_file.read_text(errors="replace").splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        count = int(count_s)
        frames = stack.split(";")
        proc = "process"
        while frames and frames[0].startswith("process "):
            proc = _process_name(frames.pop(0))
        if frames and frames[0].startswith("thread "):
            frames = frames[1:]
        if not frames:
            continue
        names = [_frame(f) for f in frames]
        totals[proc] += count
        per_proc[proc][names[-1]] += count
        for name in set(names):
            incl[proc][name] += count
    lines: list[str] = []
    grand = sum(totals.values()) or 1
    for proc, total in totals.most_common():
        if total / grand < 0.02:
            continue
        lines.append(f"{proc}: {total} samples ({total / grand:.0%} of all)")
        lines.append("  self:")
        for name, count in per_proc[proc].most_common(top):
            lines.append(f"    {count / total:6.1%}  {name}")
        lines.append("  inclusive:")
        for name, count in incl[proc].most_common(top + 10)[: top + 10]:
            lines.append(f"    {count / total:6.1%}  {name}")
    return lines
