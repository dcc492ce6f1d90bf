"""Benchmark the Korea tagger on ../shared/korea-tagging/dev.csv against the /korea/i baseline.

Run: ``.venv/bin/python bench/bench_tag.py [DEV_CSV] [--rounds N] [--sweep]``.
"""

from __future__ import annotations

import argparse
import csv
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

DEV_CSV = Path(__file__).resolve().parents[1].parent / "shared" / "korea-tagging" / "dev.csv"
BASELINE_RE = re.compile("korea", re.IGNORECASE)
SUBTAGS = {"north_korea": {TAG_NORTH}, "south_korea": {TAG_SOUTH}, "both": {TAG_NORTH, TAG_SOUTH}}


@dataclass(frozen=True)
class Item:
    id: str
    title: str
    text: str
    label: str
    subtag: str


@dataclass
class Outcome:
    korea: bool
    subtags: set[str]
    score: float | None = None


def read_items(path: Path) -> list[Item]:
    with path.open(encoding="utf-8", newline="") as handle:
        return [
            Item(row["id"], row["title"], row["text"], row["label"], row["subtag"])
            for row in csv.DictReader(handle)
        ]


def run_project(tagger: Tagger, items: list[Item]) -> list[Outcome]:
    results = [tagger.tag(item.title, item.text) for item in items]
    return [
        Outcome(r.is_korea, {t for t in r.tags if t in (TAG_NORTH, TAG_SOUTH)}, r.score)
        for r in results
    ]


def run_baseline(items: list[Item]) -> list[Outcome]:
    return [Outcome(bool(BASELINE_RE.search(f"{i.title} {i.text}")), set()) for i in items]


def scores(items: list[Item], outcomes: list[Outcome]) -> dict[str, float | int]:
    tp = sum(1 for i, o in zip(items, outcomes, strict=True) if i.label == "core" and o.korea)
    fn = sum(1 for i, o in zip(items, outcomes, strict=True) if i.label == "core" and not o.korea)
    fp = sum(1 for i, o in zip(items, outcomes, strict=True) if i.label == "none" and o.korea)
    mentions = [o for i, o in zip(items, outcomes, strict=True) if i.label == "mention"]
    tagged_mentions = sum(1 for o in mentions if o.korea)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    strict_p = tp / (tp + fp + tagged_mentions) if tp + fp + tagged_mentions else 0.0
    core = [(i, o) for i, o in zip(items, outcomes, strict=True) if i.label == "core"]
    sub_ok = sum(1 for i, o in core if o.korea and o.subtags == SUBTAGS[i.subtag])
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "mentions": len(mentions),
        "tagged_mentions": tagged_mentions,
        "strict_precision": strict_p,
        "core": len(core),
        "sub_ok": sub_ok,
        "sub_tagged": sum(1 for _, o in core if o.korea),
    }


def recall_by_subtag(items: list[Item], outcomes: list[Outcome]) -> str:
    parts = []
    for subtag in SUBTAGS:
        group = [o for i, o in zip(items, outcomes, strict=True) if i.subtag == subtag]
        parts.append(f"{subtag} {sum(o.korea for o in group)}/{len(group)}")
    return ", ".join(parts)


def speed(func, items: list[Item], min_seconds: float, rounds: int) -> float:
    done = 0
    start = time.perf_counter()
    while True:
        for _ in range(rounds):
            func(items)
        done += rounds * len(items)
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return done / elapsed


def report(name: str, s: dict[str, float | int], items_per_s: float, subtags: bool) -> None:
    print(f"== {name}")
    print(
        f"  korea (core vs none): TP {s['tp']}  FP {s['fp']}  FN {s['fn']}  "
        f"P {s['precision']:.3f}  R {s['recall']:.3f}  F1 {s['f1']:.3f}"
    )
    share = s["tagged_mentions"] / s["mentions"] if s["mentions"] else 0.0
    print(
        f"  mention items tagged korea: {s['tagged_mentions']}/{s['mentions']} ({share:.0%}); "
        f"strict precision (tagged mentions as FP) {s['strict_precision']:.3f}"
    )
    if subtags:
        accuracy = s["sub_ok"] / s["core"] if s["core"] else 0.0
        of_tagged = s["sub_ok"] / s["sub_tagged"] if s["sub_tagged"] else 0.0
        print(
            f"  sub-tag accuracy on core items: {s['sub_ok']}/{s['core']} = {accuracy:.3f} "
            f"(of core items tagged korea: {of_tagged:.3f})"
        )
    else:
        print("  sub-tag accuracy on core items: n/a (the regex gives no sub-tags)")
    print(f"  speed: {items_per_s:,.0f} items/s")


def sweep(items: list[Item], tagger: Tagger) -> None:
    """How F1 and the mention rate move with TAG_KOREA_THRESHOLD (how the default was chosen)."""
    print("== threshold sweep (TAG_KOREA_THRESHOLD): F1, mention items tagged korea, FP, FN")
    results = [tagger.tag(i.title, i.text) for i in items]
    for threshold in (3.0, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 9.0):
        outcomes = [Outcome(r.score >= threshold, set(), r.score) for r in results]
        s = scores(items, outcomes)
        print(
            f"  {threshold:4.1f}: F1 {s['f1']:.3f}  mentions {s['tagged_mentions']}/{s['mentions']}"
            f"  FP {s['fp']}  FN {s['fn']}"
        )
    by_label: dict[str, list[float]] = {"core": [], "mention": [], "none": []}
    for result, item in zip(results, items, strict=True):
        by_label[item.label].append(result.score)
    print(f"  weakest core scores: {sorted(by_label['core'])[:6]}")
    print(f"  strongest mention scores: {sorted(by_label['mention'], reverse=True)}")
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
            lines.append(f"  [{problem}] {item.id} (score {outcome.score}): {item.title}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dev_csv", nargs="?", type=Path, default=DEV_CSV)
    parser.add_argument("--seconds", type=float, default=2.0, help="time per speed measurement")
    parser.add_argument("--sweep", action="store_true", help="also sweep the korea threshold")
    args = parser.parse_args(argv)
    items = read_items(args.dev_csv)
    counts = {label: sum(i.label == label for i in items) for label in ("core", "mention", "none")}
    print(f"dev set: {args.dev_csv} ({len(items)} items: {counts})")
    start = time.perf_counter()
    lexicon = load_lexicon()
    print(
        f"lexicon: {lexicon.source} ({len(lexicon.entries)} entries, "
        f"{len(lexicon.terms) + len(lexicon.prefixes)} patterns, "
        f"loaded and compiled in {time.perf_counter() - start:.2f} s)"
    )
    print(f"thresholds: korea {KOREA_THRESHOLD}, mention {MENTION_THRESHOLD}")
    tagger = Tagger(lexicon)
    project = run_project(tagger, items)
    baseline = run_baseline(items)
    project_speed = speed(lambda xs: run_project(tagger, xs), items, args.seconds, 5)
    baseline_speed = speed(run_baseline, items, args.seconds, 50)
    report("project (pipelines.tag)", scores(items, project), project_speed, subtags=True)
    print(f"  recall by sub-tag: {recall_by_subtag(items, project)}")
    report("baseline (/korea/i)", scores(items, baseline), baseline_speed, subtags=False)
    print(f"  recall by sub-tag: {recall_by_subtag(items, baseline)}")
    if args.sweep:
        sweep(items, tagger)
    wrong = wrong_items(items, project)
    print(f"== dev items the project still gets wrong: {len(wrong)}")
    print("\n".join(wrong) if wrong else "  (none)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
