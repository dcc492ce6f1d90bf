"""Codecs for the kept HTML of articles, on pages of the throughput mirror (CPU per page to
compress and decompress, bytes kept): zlib levels, zstd levels through ``compression.zstd``
(the standard library's from Python 3.14, ``backports.zstd`` before: what the crawler uses)
and, when installed, through the ``zstandard`` package, and the codec the crawler writes
(``crawler.storage.articles.compress_html``, from the decoded page).

Run: ``.venv/bin/python bench/bench_compress.py [MIRROR] [--pages N]``; MIRROR defaults to
``bench/out/mirror-seed1-reposts0.1`` (built by ``make bench``). ``zstandard`` is not a
dependency: ``.venv/bin/pip install zstandard`` to include it.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crawler.storage.articles import compress_html, decompress_html, zstd

DEFAULT_MIRROR = ROOT / "bench" / "out" / "mirror-seed1-reposts0.1"


def measure(
    pages: list[Any],
    compress: Callable[[Any], bytes],
    decompress: Callable[[bytes], Any],
    rounds: int = 3,
) -> tuple[float, float, float]:
    """(ms to compress, ms to decompress, kB kept) per page; the best of ``rounds``."""
    best = float("inf")
    blobs: list[bytes] = []
    for _ in range(rounds):
        start = time.process_time()
        blobs = [compress(page) for page in pages]
        best = min(best, time.process_time() - start)
    start = time.process_time()
    for blob in blobs:
        decompress(blob)
    back = time.process_time() - start
    n = len(pages)
    return best / n * 1000, back / n * 1000, sum(map(len, blobs)) / n / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mirror", type=Path, nargs="?", default=DEFAULT_MIRROR)
    parser.add_argument("--pages", type=int, default=400, help="pages sampled (400)")
    args = parser.parse_args(argv)
    files = sorted((args.mirror / "a").glob("*.html"))
    if not files:
        parser.error(f"no pages under {args.mirror / 'a'} (run make bench once to build it)")
    random.Random(1).shuffle(files)
    pages = [f.read_bytes() for f in files[: args.pages]]
    raw = sum(map(len, pages)) / len(pages) / 1024
    print(f"{len(pages)} pages, {raw:.1f} kB per page")
    print(f"{'codec':12} {'compress ms':>12} {'decompress ms':>14} {'kB kept':>8} {'ratio':>6}")
    codecs: list[tuple[str, Callable[[bytes], bytes], Callable[[bytes], bytes]]] = [
        (f"zlib {level}", lambda p, level=level: zlib.compress(p, level), zlib.decompress)
        for level in (1, 3, 6, 9)
    ]
    for level in (1, 3, 6):
        codecs.append(
            (f"zstd {level}", lambda p, level=level: zstd.compress(p, level), zstd.decompress)
        )
    try:
        import zstandard
    except ImportError:
        print("(the zstandard package is not installed: its rows are skipped)")
    else:
        for level in (1, 3):
            codec = zstandard.ZstdCompressor(level=level)
            codecs.append(
                (f"zstandard {level}", codec.compress, zstandard.ZstdDecompressor().decompress)
            )
    for name, compress, decompress in codecs:
        ms, back, kept = measure(pages, compress, decompress)
        print(f"{name:12} {ms:12.2f} {back:14.2f} {kept:8.1f} {raw / kept:6.2f}")
    texts = [page.decode("utf-8", "replace") for page in pages]
    ms, back, kept = measure(texts, compress_html, decompress_html)
    print(f"{'crawler':12} {ms:12.2f} {back:14.2f} {kept:8.1f} {raw / kept:6.2f}  (str -> zstd 3)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
