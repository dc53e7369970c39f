"""The tokenize driver's memory against the number of documents: it must not grow with them.

    python benchmarks/bench_tokenize_driver.py [--docs 50000 --docs 500000] [--files 8] [--shards 16]
        [--max-tokens N] [--no-shuffle] [--cpus 2]

For each document count D, in a fresh child process with a fresh embedded Ray: `--files` FineWeb-schema
Parquet shards holding D short documents in all (sentences of the real articles in
../shared/data/extraction/scrapinghub_aeb, each with its own id), then `run_tokenize` (shuffled by default,
numpy format, `--shards` output shards, the budget if given) under tracemalloc. Reports the driver's Python
peak (tracemalloc), its peak RSS, the growth per document between two counts, the wall time, the buckets
and the tokens written. Nothing here depends on tamis's internals beyond `run_tokenize`, so the same command
measures an older checkout (PYTHONPATH=<its src>).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ARTICLES = REPO.parent / "shared" / "data" / "extraction" / "scrapinghub_aeb" / "ground-truth.json"
RESULT = "RESULT "


def _sentences() -> list[str]:
    import re

    data = json.loads(ARTICLES.read_text())
    found: list[str] = []
    for key in sorted(data):
        found += [s.strip() for s in re.split(r"(?<=[.!?])\s+", data[key]["articleBody"] or "") if len(s) > 20]
    return found


def child(args: argparse.Namespace) -> None:
    import tracemalloc

    import pyarrow as pa
    import pyarrow.parquet as pq

    from tamis.tokenize.stage import TokenizeOptions, run_tokenize

    sentences = _sentences()
    work = Path(args.work)
    per_file = -(-args.child_docs // args.files)
    for f in range(args.files):
        ids = [f"<urn:bench:{f}:{i}>" for i in range(per_file)]
        texts = [sentences[(f * per_file + i) % len(sentences)] for i in range(per_file)]
        pq.write_table(pa.table({"id": ids, "text": texts}), work / "in" / f"part-{f:03d}.parquet")
    tracemalloc.start()
    started = time.perf_counter()
    result = run_tokenize([str(work / "in" / "*.parquet")],
                          TokenizeOptions(str(work / "out"), format="numpy", shuffle=args.shuffle,
                                          max_tokens=args.max_tokens, shards=args.shards),
                          workers=args.cpus, show_progress=False)
    wall = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    manifest = json.loads((work / "out" / "manifest.json").read_text())
    print(RESULT + json.dumps({"docs": result.totals["input_documents"], "tokens": result.totals["tokens"],
                               "python_peak_mb": peak / 2**20, "rss_mb": resource.getrusage(
                                   resource.RUSAGE_SELF).ru_maxrss / 1024, "wall": wall,
                               "buckets": manifest.get("buckets"), "shards": result.totals["output_shards"]}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, action="append")
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--shards", type=int, default=16)
    parser.add_argument("--max-tokens", type=int)
    parser.add_argument("--no-shuffle", dest="shuffle", action="store_false")
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--child-docs", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_docs:
        child(args)
        return
    results = []
    for docs in args.docs or [50_000, 500_000]:
        with tempfile.TemporaryDirectory(prefix="tamis-bench-tok-") as work:
            (Path(work) / "in").mkdir()
            command = [sys.executable, __file__, "--child-docs", str(docs), "--work", work, "--files",
                       str(args.files), "--shards", str(args.shards), "--cpus", str(args.cpus)]
            command += [] if args.shuffle else ["--no-shuffle"]
            command += ["--max-tokens", str(args.max_tokens)] if args.max_tokens else []
            run = subprocess.run(command, capture_output=True, text=True, env={**os.environ}, check=False)
            lines = [line for line in run.stdout.splitlines() if line.startswith(RESULT)]
            if run.returncode or not lines:
                sys.exit(f"{docs} documents: failed\n{run.stderr[-3000:]}")
            results.append(json.loads(lines[-1][len(RESULT):]))
    print(f"{'documents':>10} {'tokens':>11} {'buckets':>8} {'shards':>7} {'driver peak MB':>15} "
          f"{'peak RSS MB':>12} {'wall s':>7}")
    for r in results:
        print(f"{r['docs']:>10,} {r['tokens']:>11,} {str(r['buckets']):>8} {r['shards']:>7} "
              f"{r['python_peak_mb']:>15.1f} {r['rss_mb']:>12.0f} {r['wall']:>7.1f}")
    if len(results) > 1:
        first, last = results[0], results[-1]
        growth = (last["python_peak_mb"] - first["python_peak_mb"]) * 2**20 / (last["docs"] - first["docs"])
        print(f"driver's Python peak grows {growth:.1f} bytes per document")


if __name__ == "__main__":
    main()
