"""Extraction at the limit: plain `trafilatura.extract` against tamis's fast path, same pages, one process.

    python benchmarks/bench_extraction.py [--records 2000] [--repeat 2] [--all-shared] [--pipelines]
                                          [--json]

1. Builds (or reuses, cached under .bench/corpus/) a Common-Crawl-shaped WARC corpus from the real pages in
   shared/data with shared/tools/make_warc_corpus.py (bench_process.build_corpus; default 2,000 records),
   and reads its HTML pages with tamis's WARC reader. --all-shared uses every HTML page of shared/data
   instead (the WARC samples, extraction/scrapinghub_aeb, extraction/readability_testpages).
2. Warms both sides (one pass each), then runs, alternately and `--repeat` times, plain trafilatura and the
   fast path (tamis.extract.fast_trafilatura installed in this process) over the same pages in the same
   order, FineWeb's settings, the dedup cache cleared before each pass: CPU seconds (process time), pages
   per CPU-second, and whether every page's text is byte-identical (the differential check on this corpus).
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


def one_pass(pages: list[str]) -> tuple[list[str | None], float, float]:
    import trafilatura
    from trafilatura.deduplication import LRU_TEST

    LRU_TEST.clear()
    cpu, wall = time.process_time(), time.perf_counter()
    texts = [trafilatura.extract(h, favor_precision=True, include_comments=False, deduplicate=True) for h in pages]
    return texts, time.process_time() - cpu, time.perf_counter() - wall


def compare(pages: list[str], repeat: int) -> dict[str, Any]:
    from tamis.extract import fast_trafilatura

    if not fast_trafilatura.is_verified():
        raise SystemExit("the installed trafilatura is not one the fast path was verified against")
    runs: dict[str, list[tuple[float, float]]] = {"plain": [], "fast": []}
    outputs: dict[str, list[str | None]] = {}
    for attempt in range(repeat + 1):  # the first round warms both sides and is not counted
        for side in ("plain", "fast"):
            if side == "fast":
                fast_trafilatura.install()
            try:
                texts, cpu, wall = one_pass(pages)
            finally:
                fast_trafilatura.uninstall()
            if attempt:
                runs[side].append((cpu, wall))
            if outputs.setdefault(side, texts) != texts:
                raise SystemExit(f"{side}: two passes over the same pages gave different text")
    different = [i for i, (a, b) in enumerate(zip(outputs["plain"], outputs["fast"], strict=True)) if a != b]
    best = {side: min(values) for side, values in runs.items()}  # least CPU: least disturbed by the machine
    return {
        "pages": len(pages),
        "pages_with_text": sum(1 for t in outputs["plain"] if t),
        "identical": not different,
        "different_pages": different[:20],
        "cpu_seconds": {side: [round(c, 3) for c, _ in values] for side, values in runs.items()},
        "wall_seconds": {side: [round(w, 3) for _, w in values] for side, values in runs.items()},
        "pages_per_cpu_second": {side: len(pages) / cpu for side, (cpu, _) in best.items()},
        "speedup": best["plain"][0] / best["fast"][0],
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
    ap.add_argument("--repeat", type=int, default=2, help="measured rounds per side after the warm-up round")
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
    result = compare(pages, args.repeat)
    result["source"] = source
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        rate = result["pages_per_cpu_second"]
        print(f"extraction in one process, FineWeb's trafilatura settings; {result['pages']} pages ({source})")
        print(f"  plain trafilatura.extract : {rate['plain']:.1f} pages per CPU-second  "
              f"(CPU s per pass: {result['cpu_seconds']['plain']})")
        print(f"  tamis fast path           : {rate['fast']:.1f} pages per CPU-second  "
              f"(CPU s per pass: {result['cpu_seconds']['fast']})")
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
