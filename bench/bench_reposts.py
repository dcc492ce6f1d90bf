"""Re-post network benchmark: the repost lab (a wire site, a re-post spam blog and a link
aggregator generated on 127.0.0.1, its wording and stories chosen by a seed) crawled twice
with ``scrapy crawlall`` on several seeds, one row per seed: spam leakage, story loss, text
F1, same-story pair F1, stories stored twice, mixed clusters, empty rows, downloads.

Run: ``.venv/bin/python bench/bench_reposts.py [--seeds 1 2 3] [--lab DIR] [--out DIR]``
(``make bench-reposts``). Each seed takes 2-5 minutes on two cores; the seeds run one after
the other. The lab's own ``summary.json`` and crawl logs stay in ``--out``/seed-N.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_LAB = ROOT.parent / "shared" / "repost-lab"

COLUMNS = (
    ("seed", "seed", "{}"),
    ("leakage", "leak", "{:.3f}"),
    ("story_loss", "loss", "{:.3f}"),
    ("text_f1", "textF1", "{:.3f}"),
    ("dedupe_pair_f1", "pairF1", "{:.3f}"),
    ("stories_stored_more_than_once", "twice", "{}"),
    ("clusters_mixing_stories", "mixed", "{}"),
    ("empty_rows", "empty", "{}"),
    ("downloads", "run1 dl/pages", "{}"),
    ("again", "run2 again", "{}"),
    ("seconds", "s", "{:.0f}"),
)


def run_seed(seed: int, *, lab: Path, out: Path, python: str, extra: list[str]) -> dict:
    """Run the lab for one seed; the headline figures of its ``summary.json``."""
    folder = out / f"seed-{seed}"
    cmd = [python, str(lab / "run_lab.py"), "--seed", str(seed), "--project", str(ROOT)]
    cmd += ["--out", str(folder), "--python", python, *extra]
    started = time.monotonic()
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    summary_file = folder / "summary.json"
    if result.returncode or not summary_file.exists():
        sys.stderr.write(result.stdout[-3000:] + result.stderr[-3000:])
        return {"seed": seed, "error": f"run_lab.py exited {result.returncode}"}
    summary = json.loads(summary_file.read_text(encoding="utf-8"))
    row = {"seed": seed, **summary["score"]["headline"], "seconds": seconds}
    first = summary["run1"]["requests"]
    row["downloads"] = f"{first['article_downloads']}/{first['article_pages_fetched']}"
    second = summary.get("run2", {}).get("requests")
    row["again"] = second["article_pages_downloaded_again"] if second else "-"
    return row


def table(rows: list[dict]) -> str:
    """The rows as a fixed-width table, with the worst value of each figure below."""
    heads = [head for _, head, _ in COLUMNS]
    cells = []
    for row in rows:
        if "error" in row:
            cells.append([str(row["seed"]), row["error"]] + [""] * (len(COLUMNS) - 2))
            continue
        cells.append([fmt.format(row[key]) for key, _, fmt in COLUMNS])
    ok = [r for r in rows if "error" not in r]
    if len(ok) > 1:
        worst: dict = {"seed": "worst", "downloads": ""}
        for key in ("leakage", "story_loss", "stories_stored_more_than_once"):
            worst[key] = max(r[key] for r in ok)
        worst["again"] = max((r["again"] for r in ok if r["again"] != "-"), default="-")
        for key in ("clusters_mixing_stories", "empty_rows", "seconds"):
            worst[key] = max(r[key] for r in ok)
        for key in ("text_f1", "dedupe_pair_f1"):
            worst[key] = min(r[key] for r in ok)
        cells.append([fmt.format(worst[key]) for key, _, fmt in COLUMNS])
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(heads)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(heads, widths, strict=True))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="lab seeds")
    parser.add_argument("--lab", type=Path, default=DEFAULT_LAB, help="the repost-lab folder")
    parser.add_argument("--out", type=Path, help="work folders (default: a new temp folder)")
    parser.add_argument(
        "--python", default=sys.executable, help="interpreter with Scrapy and the project"
    )
    parser.add_argument(
        "--lab-arg", action="append", default=[], help="more run_lab.py arguments (repeatable)"
    )
    args = parser.parse_args(argv)
    if not (args.lab / "run_lab.py").exists():
        parser.error(f"--lab {args.lab}: no run_lab.py there")
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-reposts-"))
    out.mkdir(parents=True, exist_ok=True)
    print(f"repost lab {args.lab}, seeds {' '.join(map(str, args.seeds))}, work folders {out}")
    rows = []
    for seed in args.seeds:
        rows.append(run_seed(seed, lab=args.lab, out=out, python=args.python, extra=args.lab_arg))
        print(f"seed {seed} done", file=sys.stderr, flush=True)
    print(table(rows))
    print(
        "leak: share of spammed rows keeping a block; loss: 1 - mean recall per story; "
        "textF1: row text vs true body; pairF1: same-story pairs over distinct pages; "
        "twice: stories with 2+ rows; mixed: clusters joining stories; empty: rows without "
        "text; run1 dl/pages: article downloads / pages in the first run; run2 again: pages "
        "downloaded again by the unchanged second run"
    )
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
