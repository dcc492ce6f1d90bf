"""Extraction benchmark: trafilatura vs the project's extract_article + clean_text, on two
page sets side by side (extraction-bench, extraction-news), with figures per language.

Run: ``.venv/bin/python bench/bench_clean.py`` (``--help`` for options). Metric: the
extraction-bench one (4-token shingles, mean precision and recall over pages, F1 of the
means; see each set's README). Predictions get the truth's normalisation (NFC, soft hyphen,
zero-width space, word joiner and BOM dropped) before scoring.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
import time
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import trafilatura

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crawler.extract import extract_article
from pipelines.clean import clean_text, default_rules

DEFAULT_BENCH = ROOT.parent / "shared" / "extraction-bench"
DEFAULT_NEWS = ROOT.parent / "shared" / "extraction-news"
_TOKEN_RE = re.compile(r"\w+")
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u2060\ufeff"))


@dataclass
class Page:
    page_id: str
    url: str
    html: str
    truth: str
    language: str | None


@dataclass
class Variant:
    name: str
    fn: Callable[[Page], str | None]
    per_page: dict[str, tuple[float | None, float]] = field(default_factory=dict)
    predictions: dict[str, str | None] = field(default_factory=dict)
    seconds: float = 0.0


def normalise(text: str | None) -> str:
    return unicodedata.normalize("NFC", text or "").translate(_INVISIBLE)


def shingles(text: str | None) -> Counter[tuple[str, ...]]:
    """Multiset of 4-token shingles (1-3 tokens -> one short shingle)."""
    tokens = _TOKEN_RE.findall(text or "")
    if len(tokens) < 4:
        return Counter([tuple(tokens)]) if tokens else Counter()
    return Counter(tuple(tokens[i : i + 4]) for i in range(len(tokens) - 3))


def page_scores(prediction: str | None, truth: str) -> tuple[float | None, float]:
    """(precision, recall) of one page; precision is None for an empty prediction."""
    predicted, true = shingles(normalise(prediction)), shingles(truth)
    matched = sum((predicted & true).values())
    precision = matched / sum(predicted.values()) if predicted else None
    recall = matched / sum(true.values()) if true and predicted else 0.0
    return precision, recall


def summary(scores: list[tuple[float | None, float]]) -> tuple[float, float, float, int]:
    """(P, R, F1, empty pages) of a list of page scores: means over pages, F1 of the means."""
    precisions = [p for p, _ in scores if p is not None]
    p = sum(precisions) / len(precisions) if precisions else 0.0
    r = sum(r for _, r in scores) / len(scores) if scores else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f1, len(scores) - len(precisions)


def load_pages(folder: Path) -> list[Page]:
    """``ground-truth/<id>.json`` with ``html/<id>.html`` or ``html/<id>.html.gz``."""
    pages = []
    for truth_file in sorted((folder / "ground-truth").glob("*.json")):
        data = json.loads(truth_file.read_text(encoding="utf-8"))
        plain = folder / "html" / f"{truth_file.stem}.html"
        if plain.exists():
            html = plain.read_text(encoding="utf-8")
        else:
            html = gzip.decompress((folder / "html" / f"{plain.name}.gz").read_bytes()).decode()
        pages.append(
            Page(truth_file.stem, data["url"], html, data["articleBody"], data.get("language"))
        )
    return pages


class Project:
    """The product's text: extract_article (body + title) then clean_text; keeps what went."""

    def __init__(self, *, every_fallback: bool = False) -> None:
        self.every_fallback = every_fallback
        self.fired: Counter[str] = Counter()
        self.pages_fired: Counter[str] = Counter()
        self.removed: dict[str, list[dict[str, str]]] = {}
        self.raw: dict[str, str | None] = {}
        self.language: dict[str, str | None] = {}

    def __call__(self, page: Page) -> str:
        item = extract_article(page.html, page.url, every_fallback=self.every_fallback)
        self.raw[page.page_id] = item.text
        self.language[page.page_id] = item.language
        result = clean_text(
            item.text or "", title=item.title, domain=item.domain, language=item.language
        )
        counts = result.rule_counts()
        self.fired.update(counts)
        self.pages_fired.update(counts.keys())
        self.removed[page.page_id] = result.removed
        return result.text


def run(variant: Variant, pages: list[Page]) -> Variant:
    start = time.process_time()
    for page in pages:
        variant.predictions[page.page_id] = variant.fn(page)
    variant.seconds = time.process_time() - start
    for page in pages:
        variant.per_page[page.page_id] = page_scores(variant.predictions[page.page_id], page.truth)
    return variant


PROJECT = 2
"""Index of the product's own variant (extract_article + clean_text) in ``variants_for``."""


def variants_for(project: Project) -> list[Variant]:
    return [
        Variant(
            "trafilatura default",
            lambda p: trafilatura.extract(p.html, url=p.url, include_comments=False),
        ),
        Variant(
            "trafilatura favor_precision",
            lambda p: trafilatura.extract(
                p.html, url=p.url, favor_precision=True, include_comments=False
            ),
        ),
        Variant("project: extract_article + clean_text", project),
        Variant("project: extract_article only", lambda p: project.raw[p.page_id]),
        Variant("project, every fallback on every page", Project(every_fallback=True)),
    ]


def print_table(sets: dict[str, tuple[list[Page], list[Variant]]]) -> None:
    names = list(sets)
    head = " | ".join(f"{n[:20]:^27}" for n in names)
    print(f"{'':38} | {head} |")
    cols = " | ".join(f"{'P':>6} {'R':>6} {'F1':>6} {'e':>1} {'ms':>4}" for _ in names)
    print(f"{'variant':38} | {cols} |")
    for k, variant in enumerate(next(iter(sets.values()))[1]):
        cells = []
        for pages, variants in sets.values():
            v = variants[k]
            p, r, f1, empty = summary(list(v.per_page.values()))
            ms = f"{v.seconds / len(pages) * 1000:4.0f}" if v.seconds else "   -"
            cells.append(f"{p:6.3f} {r:6.3f} {f1:6.3f} {min(empty, 9):1d} {ms}")
        print(f"{variant.name:38} | {' | '.join(cells)} |")
    print("(e: pages with an empty prediction; ms: CPU ms per page, the project's includes clean)")
    exact = ", ".join(
        "{} P {:.4f} R {:.4f} F1 {:.4f}".format(
            name, *summary(list(variants[PROJECT].per_page.values()))[:3]
        )
        for name, (_, variants) in sets.items()
    )
    print(f"project to four places: {exact}")


def print_languages(name: str, pages: list[Page], variants: list[Variant]) -> None:
    by_language: dict[str, list[Page]] = defaultdict(list)
    for page in pages:
        by_language[page.language or "?"].append(page)
    order = sorted(by_language, key=lambda lang: (-len(by_language[lang]), lang))
    short = ["traf default", "traf precision", "project", "extract only", "every fallback"]
    print(f"\n{name}: F1 (R) per language")
    print(f"{'lang':>5} {'pages':>5}  " + "  ".join(f"{s:>15}" for s in short))
    for lang in order:
        group = by_language[lang]
        cells = []
        for v in variants:
            _, r, f1, _ = summary([v.per_page[p.page_id] for p in group])
            cells.append(f"{f1:7.3f} ({r:5.3f})")
        print(f"{lang:>5} {len(group):5d}  " + "  ".join(f"{c:>15}" for c in cells))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bench", type=Path, default=DEFAULT_BENCH, help="extraction-bench")
    parser.add_argument("--news", type=Path, default=DEFAULT_NEWS, help="extraction-news")
    parser.add_argument(
        "--only", choices=("bench", "news"), help="score one set only (quicker while tuning)"
    )
    parser.add_argument(
        "--worst", type=int, default=0, help="also list the N pages where the project is weakest"
    )
    parser.add_argument(
        "--removed", action="store_true", help="print every line clean_text removed"
    )
    args = parser.parse_args(argv)

    folders = {"extraction-bench": args.bench, "extraction-news": args.news}
    if args.only:
        folders = {k: v for k, v in folders.items() if k.endswith(args.only)}
    sets: dict[str, tuple[list[Page], list[Variant]]] = {}
    projects: dict[str, Project] = {}
    for name, folder in folders.items():
        pages = load_pages(folder)
        if not pages:
            parser.error(f"no pages under {folder} (expected html/ and ground-truth/)")
        project = projects[name] = Project()
        variants = [run(v, pages) for v in variants_for(project)]
        variants[3].seconds = 0.0  # its time is part of the project's row
        for page in pages:  # extraction-bench declares no language: the project's guess
            page.language = page.language or project.language.get(page.page_id)
        sets[name] = (pages, variants)

    print(f"trafilatura {trafilatura.__version__}")
    for name, folder in folders.items():
        print(f"{name}: {len(sets[name][0])} pages ({folder})")
    print()
    print_table(sets)
    for name, (pages, variants) in sets.items():
        print_languages(name, pages, variants)

    print("\nrule families fired (lines removed, pages), per set:")
    families = [*default_rules().names, "headline", "repeated_paragraph", "learned_boilerplate"]
    for family in families:
        cells = "  ".join(
            f"{p.fired[family]:4d} lines {p.pages_fired[family]:3d} pages"
            for p in projects.values()
        )
        print(f"  {family:<22} {cells}")

    for name, (pages, variants) in sets.items():
        if args.worst:
            ours, reference = variants[2].per_page, variants[1].per_page
            print(f"\n{name}: {args.worst} weakest pages (project P/R vs favor_precision P/R):")
            ranked = sorted(pages, key=lambda pg: (ours[pg.page_id][0] or 0) + ours[pg.page_id][1])
            for page in ranked[: args.worst]:
                p, r = ours[page.page_id]
                rp, rr = reference[page.page_id]
                print(
                    f"  {page.page_id[:40]:40} P {p or 0:.3f} R {r:.3f}  "
                    f"(fp P {rp or 0:.3f} R {rr:.3f}) {page.url[:70]}"
                )
        if args.removed:
            print(f"\n{name}: removed lines:")
            for page in pages:
                for piece in projects[name].removed.get(page.page_id, []):
                    print(f"  {page.page_id[:24]:24} {piece['rule']:<20} {piece['text'][:100]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
