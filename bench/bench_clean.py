"""Extraction benchmark: trafilatura vs the project's extract_article + clean_text, same run.

Run: ``.venv/bin/python bench/bench_clean.py`` (``--help`` for options). Metric: the extraction
benchmark's own (4-token shingles; mean precision and recall over pages, F1 of the means).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import trafilatura

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crawler.extract.body import extract_body
from pipelines.clean import clean_text, default_rules

try:
    from crawler.extract import extract_article
except ImportError:  # without crawler.extract: the body alone, trafilatura's title
    extract_article = None

DEFAULT_BENCH = ROOT.parent / "shared" / "extraction-bench"
_TOKEN_RE = re.compile(r"\w+")


def shingles(text: str | None) -> Counter[tuple[str, ...]]:
    """Multiset of 4-token shingles (1-3 tokens -> one short shingle)."""
    tokens = _TOKEN_RE.findall(text or "")
    if len(tokens) < 4:
        return Counter([tuple(tokens)]) if tokens else Counter()
    return Counter(tuple(tokens[i : i + 4]) for i in range(len(tokens) - 3))


def page_scores(prediction: str | None, truth: str) -> tuple[float | None, float]:
    """(precision, recall) of one page; precision is None for an empty prediction."""
    predicted, true = shingles(prediction), shingles(truth)
    matched = sum((predicted & true).values())
    precision = matched / sum(predicted.values()) if predicted else None
    recall = matched / sum(true.values()) if true and predicted else 0.0
    return precision, recall


def load_pages(bench: Path) -> list[tuple[str, str, str, str]]:
    pages = []
    for truth_file in sorted((bench / "ground-truth").glob("*.json")):
        data = json.loads(truth_file.read_text(encoding="utf-8"))
        html = (bench / "html" / f"{truth_file.stem}.html").read_text(encoding="utf-8")
        pages.append((truth_file.stem, data["url"], html, data["articleBody"]))
    return pages


class Project:
    """The product's text: extract_article (body + title) then clean_text; keeps what went."""

    def __init__(self) -> None:
        self.fired: Counter[str] = Counter()
        self.pages_fired: Counter[str] = Counter()
        self.removed: dict[str, list[dict[str, str]]] = {}

    def __call__(self, html: str, url: str) -> str:
        if extract_article is not None:
            item = extract_article(html, url)
            body, title, domain, language = item.text, item.title, item.domain, item.language
        else:
            body = extract_body(html, url)
            meta = trafilatura.extract_metadata(html, default_url=url)
            title, domain, language = (meta.title if meta else None), None, None
        result = clean_text(body or "", title=title, domain=domain, language=language)
        counts = result.rule_counts()
        self.fired.update(counts)
        self.pages_fired.update(counts.keys())
        self.removed[url] = result.removed
        return result.text


def run(
    name: str, fn: Callable[[str, str], str | None], pages: list[tuple[str, str, str, str]]
) -> dict:
    precisions, recalls, per_page, empty = [], [], {}, 0
    start = time.perf_counter()
    predictions = {}
    for page_id, url, html, _ in pages:
        predictions[page_id] = fn(html, url)
    elapsed = time.perf_counter() - start
    for page_id, _, _, truth in pages:
        precision, recall = page_scores(predictions[page_id], truth)
        recalls.append(recall)
        if precision is None:
            empty += 1
        else:
            precisions.append(precision)
        per_page[page_id] = (precision, recall)
    p = sum(precisions) / len(precisions) if precisions else 0.0
    r = sum(recalls) / len(recalls)
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return {
        "name": name,
        "P": p,
        "R": r,
        "F1": f1,
        "empty": empty,
        "ms": elapsed / len(pages) * 1000,
        "per_page": per_page,
        "predictions": predictions,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bench", type=Path, default=DEFAULT_BENCH, help="benchmark directory")
    parser.add_argument(
        "--worst", type=int, default=0, help="also list the N pages where the project is weakest"
    )
    parser.add_argument(
        "--removed", action="store_true", help="print every line clean_text removed"
    )
    args = parser.parse_args(argv)

    pages = load_pages(args.bench)
    if not pages:
        parser.error(f"no benchmark pages under {args.bench} (expected html/ and ground-truth/)")
    project = Project()
    variants = [
        run(
            "trafilatura default (include_comments=False)",
            lambda h, u: trafilatura.extract(h, url=u, include_comments=False),
            pages,
        ),
        run(
            "trafilatura favor_precision",
            lambda h, u: trafilatura.extract(
                h, url=u, favor_precision=True, include_comments=False
            ),
            pages,
        ),
        run(
            "project: extract_article only (no clean)",
            lambda h, u: (
                extract_article(h, u).text if extract_article is not None else extract_body(h, u)
            ),
            pages,
        ),
        run("project: extract_article + clean_text", project, pages),
    ]

    print(f"extraction-bench: {len(pages)} pages ({args.bench})")
    print(
        f"trafilatura {trafilatura.__version__}; extract_article available: "
        f"{extract_article is not None}"
    )
    print(f"{'variant':<46} {'P':>6} {'R':>6} {'F1':>6} {'empty':>5} {'ms/page':>8}")
    for v in variants:
        print(
            f"{v['name']:<46} {v['P']:6.3f} {v['R']:6.3f} {v['F1']:6.3f} "
            f"{v['empty']:5d} {v['ms']:8.1f}"
        )
    ours = variants[-1]

    print("\nrule families fired on the benchmark (lines removed, pages):")
    for name in [*default_rules().names, "headline", "repeated_paragraph", "learned_boilerplate"]:
        print(f"  {name:<22} {project.fired[name]:4d} lines {project.pages_fired[name]:3d} pages")
    print(f"  {'total':<22} {sum(project.fired.values()):4d} lines")

    if args.worst:
        reference = variants[1]["per_page"]
        print(f"\n{args.worst} weakest pages (project P/R vs favor_precision P/R):")
        ranked = sorted(
            pages,
            key=lambda page: (ours["per_page"][page[0]][0] or 0) + ours["per_page"][page[0]][1],
        )
        for page_id, url, _, _ in ranked[: args.worst]:
            p, r = ours["per_page"][page_id]
            rp, rr = reference[page_id]
            print(
                f"  {page_id[:8]} P {p or 0:.3f} R {r:.3f}  (fp P {rp or 0:.3f} R {rr:.3f}) {url}"
            )
    if args.removed:
        print("\nremoved lines:")
        for page_id, url, _, _ in pages:
            for piece in project.removed.get(url, []):
                print(f"  {page_id[:8]} {piece['rule']:<20} {piece['text'][:110]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
