"""One file's pages through 1, 2, ... extraction children (tamis.extract.speculative): wall, CPU, re-extractions.

    python benchmarks/bench_speculative.py [--warc FILE ...] [--processes 1 2] [--batch 128] [--repeat 2]

The pages of the WARC files given (default: every HTML page of ../shared/data, as one file) go through
`SpeculativeExtraction` with the `trafilatura` step's settings (FineWeb's, fast path, 1 s CPU limit) in
batches of `--batch` pages, as a task hands them to the step (the WARC reader's batches are 128 pages), the
segment cache reset once at the start as at a file's start. For each number of children, alternating
across repeats: wall seconds, the machine's busy CPU seconds over the run (/proc/stat: the children, the
parent and anything else), pages extracted again because a guessed cache answered differently, timeouts,
and how many pages' results differ from the first run with the fewest children. The children are started
and warmed before the clock starts.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_extraction  # noqa: E402
import bench_process  # noqa: E402

ENGINE = "tamis.extract.trafilatura_engine:build"
PARAMS = {"favor_precision": True, "include_comments": False, "deduplicate": True, "fast_path": True}


def run(pages: list[str], processes: int, batch: int, timeout: float) -> dict[str, Any]:
    from tamis.extract.speculative import SpeculativeExtraction

    extraction = SpeculativeExtraction(ENGINE, PARAMS, timeout, processes=processes)
    try:
        extraction.start()
        extraction.extract_many(pages[:20])  # every child ready and warm
        extraction.reset()
        extraction.rerun_pages = 0
        cpu, wall = bench_process.machine_cpu_seconds(), time.monotonic()
        results: list[Any] = []
        for start in range(0, len(pages), batch):
            results.extend(extraction.extract_many(pages[start:start + batch]))
        wall, cpu = time.monotonic() - wall, bench_process.machine_cpu_seconds() - cpu
        outcomes = [type(r).__name__ if isinstance(r, Exception) else r for r in results]
        return {"processes": processes, "wall_seconds": wall, "machine_cpu_seconds": cpu,
                "rerun_pages": extraction.rerun_pages, "timeouts": outcomes.count("ExtractionTimeout"),
                "outcomes": outcomes}
    finally:
        extraction.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--warc", type=Path, action="append", help="WARC file(s), read in order as one file")
    ap.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=1.0,
                    help="CPU seconds a page (the step's default 1 s; a page near it can time out in one run and "
                         "not the next, which changes that page and, through the cache, later ones)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    pages = bench_extraction.corpus_pages(args.warc) if args.warc else bench_extraction.shared_pages()
    runs: list[dict[str, Any]] = []
    for repeat in range(args.repeat):
        order = args.processes if repeat % 2 == 0 else list(reversed(args.processes))
        for processes in order:
            bench_process.log(f"{len(pages)} pages, {processes} child(ren), repeat {repeat + 1} ...")
            runs.append(run(pages, processes, args.batch, args.timeout))
    reference = next(r["outcomes"] for r in runs if r["processes"] == min(args.processes))
    report = [{key: value for key, value in r.items() if key != "outcomes"}
              | {"pages_differing": sum(a != b for a, b in zip(r["outcomes"], reference, strict=True))} for r in runs]
    if args.json:
        print(json.dumps({"pages": len(pages), "runs": report}))
        return
    print(f"{len(pages)} pages, batches of {args.batch}, FineWeb's trafilatura settings with the fast path")
    print(f"{'children':>8} {'wall s':>8} {'machine CPU s':>14} {'re-extracted':>13} {'timeouts':>9} "
          f"{'pages differing from the first run':>35}")
    for r in report:
        print(f"{r['processes']:>8} {r['wall_seconds']:>8.2f} {r['machine_cpu_seconds']:>14.2f} "
              f"{r['rerun_pages']:>13} {r['timeouts']:>9} {r['pages_differing']:>35}")


if __name__ == "__main__":
    main()
