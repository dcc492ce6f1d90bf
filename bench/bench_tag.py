"""Benchmark the Korea tagger against the /korea/i baseline on labelled sets, side by side.

Run: ``.venv/bin/python bench/bench_tag.py [CSV ...] [--seconds N] [--sweep] [--wrong N]``.
The defaults are ``../shared/korea-tagging/dev.csv`` (short items: headline and one or two
sentences) and ``dev2.csv`` (full-length articles). Each set gets a project and a baseline
column: korea precision/recall/F1 (core vs none), mention items tagged ``korea``, hard
negatives tagged (``pool`` = ``hard_negative``), sub-tag accuracy, recall by sub-tag and
speed; then the items the project still gets wrong, with the rules that fired.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.tag import (
    KOREA_THRESHOLD,
    MENTION_THRESHOLD,
    TAG_NORTH,
    TAG_SOUTH,
    Tagger,
    load_lexicon,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "korea-tagging"
DEFAULT_SETS = (SHARED / "dev.csv", SHARED / "dev2.csv")
BASELINE_RE = re.compile("korea", re.IGNORECASE)
SUBTAGS = {"north_korea": {TAG_NORTH}, "south_korea": {TAG_SOUTH}, "both": {TAG_NORTH, TAG_SOUTH}}
LABELS = ("core", "mention", "none")


@dataclass(frozen=True)
class Item:
    id: str
    title: str
    text: str
    label: str
    subtag: str
    pool: str


@dataclass
class Outcome:
    korea: bool
    subtags: set[str]
    score: float | None = None
    rules: tuple[str, ...] = ()


def read_items(path: Path) -> list[Item]:
    """Rows with id, title, text, label (core/mention/none) and subtag; pool is optional."""
    try:
        handle = path.open(encoding="utf-8", newline="")
    except OSError as exc:
        raise SystemExit(f"{path}: cannot read the labelled set: {exc}") from exc
    with handle:
        reader = csv.DictReader(handle)
        missing = {"id", "title", "text", "label", "subtag"} - set(reader.fieldnames or ())
        if missing:
            raise SystemExit(f"{path}: missing column(s) {', '.join(sorted(missing))}")
        items = []
        for line, row in enumerate(reader, 2):
            if row["label"] not in LABELS or (row["label"] == "core") != (row["subtag"] in SUBTAGS):
                raise SystemExit(
                    f"{path}:{line}: bad label/subtag {row['label']!r}/{row['subtag']!r}"
                )
            items.append(
                Item(
                    row["id"],
                    row["title"],
                    row["text"],
                    row["label"],
                    row["subtag"],
                    row.get("pool") or "",
                )
            )
    return items


def run_project(tagger: Tagger, items: list[Item]) -> list[Outcome]:
    outcomes = []
    for item in items:
        result = tagger.tag(item.title, item.text)
        sides = {t for t in result.tags if t in (TAG_NORTH, TAG_SOUTH)}
        outcomes.append(
            Outcome(result.is_korea, sides, result.score, tuple(result.evidence["rules"]))
        )
    return outcomes


def run_baseline(items: list[Item]) -> list[Outcome]:
    return [Outcome(bool(BASELINE_RE.search(f"{i.title} {i.text}")), set()) for i in items]


def scores(items: list[Item], outcomes: list[Outcome]) -> dict[str, float | int]:
    pairs = list(zip(items, outcomes, strict=True))
    tp = sum(1 for i, o in pairs if i.label == "core" and o.korea)
    fn = sum(1 for i, o in pairs if i.label == "core" and not o.korea)
    fp = sum(1 for i, o in pairs if i.label == "none" and o.korea)
    mentions = [o for i, o in pairs if i.label == "mention"]
    tagged_mentions = sum(1 for o in mentions if o.korea)
    hard = [o for i, o in pairs if i.label == "none" and i.pool == "hard_negative"]
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    strict_p = tp / (tp + fp + tagged_mentions) if tp + fp + tagged_mentions else 0.0
    core = [(i, o) for i, o in pairs if i.label == "core"]
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "mentions": len(mentions),
        "tagged_mentions": tagged_mentions,
        "hard": len(hard),
        "tagged_hard": sum(1 for o in hard if o.korea),
        "strict_precision": strict_p,
        "core": len(core),
        "sub_ok": sum(1 for i, o in core if o.korea and o.subtags == SUBTAGS[i.subtag]),
    }


def recall_by_subtag(items: list[Item], outcomes: list[Outcome]) -> str:
    parts = []
    for subtag, short in (("north_korea", "N"), ("south_korea", "S"), ("both", "B")):
        group = [o for i, o in zip(items, outcomes, strict=True) if i.subtag == subtag]
        parts.append(f"{short} {sum(o.korea for o in group)}/{len(group)}")
    return " ".join(parts)


def speed(func, items: list[Item], min_seconds: float) -> float:
    done = 0
    start = time.perf_counter()
    while True:
        func(items)
        done += len(items)
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return done / elapsed


def share(part: int, whole: int) -> str:
    return f"{part}/{whole} ({part / whole:.0%})" if whole else "-"


def rows_for(
    items: list[Item], project: list[Outcome], baseline: list[Outcome], speeds: tuple[float, float]
) -> list[tuple[str, str, str]]:
    """(measure, project, baseline) rows for one set."""
    p, b = scores(items, project), scores(items, baseline)
    return [
        ("korea precision", f"{p['precision']:.3f}", f"{b['precision']:.3f}"),
        ("korea recall", f"{p['recall']:.3f}", f"{b['recall']:.3f}"),
        ("korea F1", f"{p['f1']:.3f}", f"{b['f1']:.3f}"),
        (
            "TP / FP / FN",
            f"{p['tp']} / {p['fp']} / {p['fn']}",
            f"{b['tp']} / {b['fp']} / {b['fn']}",
        ),
        (
            "mention items tagged korea",
            share(p["tagged_mentions"], p["mentions"]),
            share(b["tagged_mentions"], b["mentions"]),
        ),
        (
            "strict precision (mentions as FP)",
            f"{p['strict_precision']:.3f}",
            f"{b['strict_precision']:.3f}",
        ),
        (
            "hard negatives tagged korea",
            share(p["tagged_hard"], p["hard"]),
            share(b["tagged_hard"], b["hard"]),
        ),
        ("sub-tag accuracy (core items)", f"{share(p['sub_ok'], p['core'])}", "n/a"),
        ("recall by sub-tag", recall_by_subtag(items, project), recall_by_subtag(items, baseline)),
        ("speed (items/s)", f"{speeds[0]:,.0f}", f"{speeds[1]:,.0f}"),
    ]


def print_table(names: list[str], tables: list[list[tuple[str, str, str]]]) -> None:
    label_w = max(len(r[0]) for t in tables for r in t) + 2
    cell_w = max(16, *(len(c) + 2 for t in tables for r in t for c in r[1:]))
    head = " " * label_w + "".join(f"{n:<{2 * cell_w}}" for n in names)
    sub = " " * label_w + "".join(f"{'project':<{cell_w}}{'/korea/i':<{cell_w}}" for _ in names)
    print(head.rstrip())
    print(sub.rstrip())
    for index, (label, *_) in enumerate(tables[0]):
        cells = "".join(f"{t[index][1]:<{cell_w}}{t[index][2]:<{cell_w}}" for t in tables)
        print(f"{label:<{label_w}}{cells}".rstrip())


def sweep(name: str, items: list[Item], tagger: Tagger) -> None:
    """How F1 and the mention rate move with TAG_KOREA_THRESHOLD (how the default was chosen)."""
    print(f"== {name}: threshold sweep (TAG_KOREA_THRESHOLD): F1, mentions tagged korea, FP, FN")
    results = [tagger.tag(i.title, i.text) for i in items]
    for threshold in (3.0, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 9.0):
        outcomes = [Outcome(r.score >= threshold, set(), r.score) for r in results]
        s = scores(items, outcomes)
        print(
            f"  {threshold:4.1f}: F1 {s['f1']:.3f}  mentions {s['tagged_mentions']}/{s['mentions']}"
            f"  FP {s['fp']}  FN {s['fn']}"
        )
    by_label: dict[str, list[float]] = {label: [] for label in LABELS}
    for result, item in zip(results, items, strict=True):
        by_label[item.label].append(result.score)
    print(f"  weakest core scores: {sorted(by_label['core'])[:6]}")
    print(f"  strongest mention scores: {sorted(by_label['mention'], reverse=True)[:8]}")
    print(f"  strongest none scores: {sorted(by_label['none'], reverse=True)[:6]}")


def wrong_items(items: list[Item], outcomes: list[Outcome]) -> list[str]:
    lines = []
    for item, outcome in zip(items, outcomes, strict=True):
        problem = ""
        if item.label == "core" and not outcome.korea:
            problem = "missed core"
        elif item.label == "none" and outcome.korea:
            problem = "false korea"
        elif item.label == "mention" and outcome.korea:
            problem = "mention tagged korea"
        elif item.label == "core" and outcome.subtags != SUBTAGS[item.subtag]:
            got = "+".join(sorted(outcome.subtags)) or "-"
            problem = f"sub-tag {got}, want {item.subtag}"
        if problem:
            rules = ",".join(outcome.rules) or "-"
            lines.append(
                f"  [{problem}] {item.id} (score {outcome.score}; rules {rules}): {item.title}"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("csv", nargs="*", type=Path, default=list(DEFAULT_SETS))
    parser.add_argument("--seconds", type=float, default=1.0, help="time per speed measurement")
    parser.add_argument("--sweep", action="store_true", help="also sweep the korea threshold")
    args = parser.parse_args(argv)
    sets = [(path, read_items(path)) for path in args.csv]
    start = time.perf_counter()
    lexicon = load_lexicon()
    elapsed = time.perf_counter() - start
    tagger = Tagger(lexicon)
    for path, items in sets:
        counts = ", ".join(f"{label} {sum(i.label == label for i in items)}" for label in LABELS)
        print(f"set {path.stem}: {os.path.relpath(path)} ({len(items)} items: {counts})")
    print(
        f"lexicon: {lexicon.source} ({len(lexicon.entries)} entries, "
        f"{len(lexicon.terms) + len(lexicon.prefixes)} patterns, "
        f"loaded and compiled in {elapsed:.2f} s)"
    )
    print(f"thresholds: korea {KOREA_THRESHOLD}, mention {MENTION_THRESHOLD}")
    print()
    tables, wrong = [], []
    for path, items in sets:
        project = run_project(tagger, items)
        baseline = run_baseline(items)
        speeds = (
            speed(lambda xs: run_project(tagger, xs), items, args.seconds),
            speed(run_baseline, items, args.seconds),
        )
        tables.append(rows_for(items, project, baseline, speeds))
        wrong.append((path.stem, wrong_items(items, project)))
    print_table([path.stem for path, _ in sets], tables)
    if args.sweep:
        for path, items in sets:
            print()
            sweep(path.stem, items, tagger)
    for name, lines in wrong:
        print()
        print(f"== {name}: items the project gets wrong: {len(lines)}")
        print("\n".join(lines) if lines else "  (none)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
