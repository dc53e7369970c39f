"""Extraction at the limit: plain `trafilatura.extract` against tamis's fast path, same pages, one process.

    python benchmarks/bench_extraction.py [--records 2000] [--repeat 2] [--chunk 10] [--all-shared]
                                          [--pipelines] [--json]

1. Builds (or reuses, cached under .bench/corpus/) a Common-Crawl-shaped WARC corpus from the real pages in
   shared/data with shared/tools/make_warc_corpus.py (bench_process.build_corpus; default 2,000 records),
   and reads its HTML pages with tamis's WARC reader. --all-shared uses every HTML page of shared/data
   instead (the WARC samples, extraction/scrapinghub_aeb, extraction/readability_testpages).
2. Warms both sides on the first 50 pages, then runs plain trafilatura and the fast path
   (tamis.extract.fast_trafilatura installed in this process) over the same pages in the same order,
   FineWeb's settings, interleaved in chunks of `--chunk` pages (order flipped every chunk, so that both
   sides meet the same machine load), each side with its own dedup cache, `--repeat` rounds, the fast
   path's caches of rule answers emptied before each: CPU seconds (process time), pages per CPU-second,
   and whether every page's text is byte-identical (the differential check on this corpus).
3. With --pipelines, then runs benchmarks/bench_process.py on the same corpus (tamis in-process, tamis via
   Ray and datatrove 0.10.1, warmed, same trafilatura) and prints its table: wall time, CPU time, per step.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_process  # noqa: E402

SHARED_DATA = Path(os.environ.get("TAMIS_SHARED_DATA", bench_process.SHARED / "data"))


def corpus_pages(files: list[Path]) -> list[str]:
    from tamis.readers.warc import WarcReader
    from tamis.stats.counters import StepCounters

    pages = []
    for path in files:
        for batch in WarcReader().iter_batches(str(path), StepCounters()):
            pages.extend(html for html in batch["html"] if html)
    return pages


def shared_pages() -> list[str]:
    pages = corpus_pages(sorted((SHARED_DATA / "warc").glob("*.warc.gz")))
    for folder in ("extraction/scrapinghub_aeb/html", "extraction/readability_testpages/html"):
        for path in sorted((SHARED_DATA / folder).glob("*.html.gz")):
            pages.append(gzip.decompress(path.read_bytes()).decode("utf-8", "replace"))
    return pages


def _extract_chunk(pages: list[str]) -> tuple[list[str | None], float]:
    import trafilatura

    cpu = time.process_time()
    texts = [trafilatura.extract(h, favor_precision=True, include_comments=False, deduplicate=True) for h in pages]
    return texts, time.process_time() - cpu


def compare(pages: list[str], repeat: int, chunk: int = 10, warm: int = 50) -> dict[str, Any]:
    """Plain trafilatura against the fast path, interleaved in chunks of `chunk` pages in one process.

    The machine is shared, so its load changes over seconds; CPU time of one process over short
    alternating chunks (order flipped every chunk) gives both sides the same conditions. Each side has its
    own segment cache for `deduplicate` (trafilatura.deduplication.LRU_TEST, swapped per chunk), so each
    sees the pages once, in order, from an empty cache, as in a real run. Both sides are warmed on the first
    `warm` pages first; before each round the fast path's own caches of rule answers are emptied, so that
    it is measured on pages it has not seen (its caches only help across pages, never within a repeat).
    """
    from trafilatura import deduplication

    from tamis.extract import fast_trafilatura

    if not fast_trafilatura.is_verified():
        raise SystemExit("the installed trafilatura is not one the fast path was verified against")
    original_cache = deduplication.LRU_TEST

    def run_round(selection: list[str]) -> tuple[dict[str, float], dict[str, list[str | None]]]:
        caches = {side: deduplication.LRUCache(maxsize=original_cache.maxsize) for side in ("plain", "fast")}
        cpu = {"plain": 0.0, "fast": 0.0}
        texts: dict[str, list[str | None]] = {"plain": [], "fast": []}
        fast_trafilatura.forget_caches()
        for number, start in enumerate(range(0, len(selection), chunk)):
            for side in ("plain", "fast") if number % 2 == 0 else ("fast", "plain"):
                if side == "fast":
                    fast_trafilatura.install()
                else:
                    fast_trafilatura.uninstall()
                deduplication.LRU_TEST = caches[side]
                out, seconds = _extract_chunk(selection[start : start + chunk])
                cpu[side] += seconds
                texts[side].extend(out)
        return cpu, texts

    try:
        run_round(pages[:warm])
        rounds = [run_round(pages) for _ in range(repeat)]
    finally:
        fast_trafilatura.uninstall()
        deduplication.LRU_TEST = original_cache
    plain_texts = rounds[0][1]["plain"]
    different = sorted({i for _cpu, texts in rounds for i, (a, b) in enumerate(zip(texts["plain"], texts["fast"],
                                                                                   strict=True)) if a != b})
    if any(texts["plain"] != plain_texts for _cpu, texts in rounds):
        raise SystemExit("plain trafilatura gave different text on two rounds over the same pages")
    total = {side: sum(cpu[side] for cpu, _texts in rounds) for side in ("plain", "fast")}
    return {
        "pages": len(pages),
        "pages_with_text": sum(1 for t in plain_texts if t),
        "identical": not different,
        "different_pages": different[:20],
        "chunk": chunk,
        "cpu_seconds": {side: [round(cpu[side], 3) for cpu, _texts in rounds] for side in ("plain", "fast")},
        "pages_per_cpu_second": {side: repeat * len(pages) / total[side] for side in total},
        "speedup": total["plain"] / total["fast"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=2000, help="HTML response records in the corpus (default 2000)")
    ap.add_argument("--files", type=int, default=2)
    ap.add_argument("--exact-dup-rate", type=float, default=0.05)
    ap.add_argument("--near-dup-rate", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pages", action="append", default=None, help="page folders for the corpus builder")
    ap.add_argument("--corpus-tool", default=str(bench_process.DEFAULT_TOOL))
    ap.add_argument("--bench-dir", default=str(bench_process.REPO / ".bench"))
    ap.add_argument("--repeat", type=int, default=2, help="measured rounds (each over every page, both sides)")
    ap.add_argument("--chunk", type=int, default=10, help="pages per alternation between the two sides")
    ap.add_argument("--limit", type=int, default=None, help="only the first N pages")
    ap.add_argument("--all-shared", action="store_true", help="every HTML page of shared/data, not the corpus")
    ap.add_argument("--pipelines", action="store_true", help="then run bench_process.py on the same corpus")
    ap.add_argument("--recipe", default="basic", help="bench_process.py recipe for --pipelines")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    args.pages = args.pages or [str(bench_process.DEFAULT_PAGES)]
    if args.all_shared:
        pages, source = shared_pages(), f"every HTML page of {SHARED_DATA}"
        files: list[Path] = []
    else:
        files = bench_process.build_corpus(args, Path(args.bench_dir))
        pages, source = corpus_pages(files), f"{args.records}-record corpus {files[0].parent}"
    pages = pages[: args.limit] if args.limit else pages
    result = compare(pages, args.repeat, args.chunk)
    result["source"] = source
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        rate = result["pages_per_cpu_second"]
        print(f"extraction in one process, FineWeb's trafilatura settings; {result['pages']} pages ({source})")
        print(f"  plain trafilatura.extract : {rate['plain']:.1f} pages per CPU-second  "
              f"(CPU s per round: {result['cpu_seconds']['plain']})")
        print(f"  tamis fast path           : {rate['fast']:.1f} pages per CPU-second  "
              f"(CPU s per round: {result['cpu_seconds']['fast']})")
        print(f"  speed-up {result['speedup']:.2f}x; text identical on every page: {result['identical']}"
              + ("" if result["identical"] else f" (first differing pages: {result['different_pages']})"))
    if args.pipelines and files:
        command = [sys.executable, str(Path(__file__).with_name("bench_process.py")), "--records", str(args.records),
                   "--files", str(args.files), "--exact-dup-rate", str(args.exact_dup_rate), "--near-dup-rate",
                   str(args.near_dup_rate), "--seed", str(args.seed), "--recipe", args.recipe,
                   "--bench-dir", args.bench_dir]
        for folder in args.pages:
            command += ["--pages", folder]
        sys.stdout.flush()
        subprocess.run(command, check=True)
    if not result["identical"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
