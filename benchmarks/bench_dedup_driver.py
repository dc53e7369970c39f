"""The dedup driver's memory against the number of shards: it must not grow with shards × bands × ranges.

    python benchmarks/bench_dedup_driver.py [--shards 20 --shards 80] [--ranges 32] [--docs 200] [--partitions P]
        [--cpus 2]

For each shard count S, in a fresh child process with a fresh embedded Ray: S small FineWeb-schema shards
(`--docs` documents each, a few words of real text from ../shared/data/extraction, some repeated so that
there are duplicates), then `run_dedup` with `ranges_per_band=--ranges` (14 bands: 14 × R bucket tasks, and
14 × R groups per signature file, and `--partitions` component partitions: P tasks per round reading
from P files each) under tracemalloc. Reports the driver's Python peak (tracemalloc), its
peak RSS, and per stage the tasks and CPU seconds of the tasks (their meters). The growth per shard between
two shard counts is what the driver keeps per shard; if it changes with `--ranges`, part of it is kept per
(band, range), which a dump (8,000 shards × 14 × 149 groups, docs/dedup.md) multiplies.
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
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAGES = REPO.parent / "shared" / "data" / "extraction" / "readability_testpages" / "html"
RESULT = "RESULT "


def _words() -> list[str]:
    import gzip
    import re

    words: list[str] = []
    for page in sorted(PAGES.glob("*.html.gz"))[:20]:
        text = re.sub(r"<[^>]+>", " ", gzip.decompress(page.read_bytes()).decode("utf-8", "replace"))
        words += re.findall(r"[A-Za-z]{3,}", text)
    if len(set(words)) < 1000:
        sys.exit(f"too few words in {PAGES}: the benchmark needs varied documents")
    return words


def _shards(directory: Path, shards: int, docs: int) -> list[str]:
    import random

    import pyarrow as pa
    import pyarrow.parquet as pq

    from tamis.io.parquet import FINEWEB_SCHEMA

    directory.mkdir(parents=True, exist_ok=True)
    words = _words()
    rng = random.Random(0)
    originals = [" ".join(rng.choice(words) for _ in range(60)) for _ in range(max(1, shards * docs // 2))]
    paths = []
    for s in range(shards):
        ids = [f"s{s}-d{d}" for d in range(docs)]
        texts = [rng.choice(originals) for _ in ids]  # about half are copies of another document
        table = pa.table({"text": texts, "id": ids, "dump": ["CC-BENCH"] * docs,
                          "url": [f"https://example.com/{i}" for i in ids], "date": ["2024-01-01T00:00:00Z"] * docs,
                          "file_path": ["bench.warc.gz"] * docs, "language": ["en"] * docs,
                          "language_score": [1.0] * docs, "token_count": [60] * docs}, schema=FINEWEB_SCHEMA)
        path = directory / f"part-{s:05d}.parquet"
        pq.write_table(table, path)
        paths.append(str(path))
    return paths


def child(shards: int, ranges: int, docs: int, cpus: int, partitions: int | None) -> dict:
    import tracemalloc

    from tamis.dedup.options import DedupOptions
    from tamis.dedup.stage import run_dedup
    from tamis.engine.ray_runtime import connect, disconnect

    with tempfile.TemporaryDirectory(prefix="tamis-dedup-driver-") as tmp:
        root = Path(tmp)
        paths = _shards(root / "in", shards, docs)
        options = DedupOptions(pii=False, token_count=False, ranges_per_band=ranges, memory_per_task=64 * 2**20,
                               partitions=partitions)
        connect(num_cpus=cpus)
        try:
            rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            tracemalloc.start()
            started = time.perf_counter()
            summary = run_dedup(paths, str(root / "work"), str(root / "out"), options)
            wall = time.perf_counter() - started
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        finally:
            disconnect()
    stages: dict[str, dict[str, float]] = defaultdict(lambda: {"tasks": 0, "cpu_seconds": 0.0})
    for meter in summary["tasks"]:
        stages[meter["stage"]]["tasks"] += 1
        stages[meter["stage"]]["cpu_seconds"] += meter["cpu_seconds"]
    return {"shards": shards, "ranges": ranges, "groups_per_file": options.bands * ranges,
            "partitions": summary["partitions"], "rounds": summary["rounds"], "docs": summary["docs"],
            "kept": summary["kept"], "wall_seconds": round(wall, 2), "driver_python_peak": peak,
            "driver_rss_before": rss_before,
            "driver_peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "stages": {k: {"tasks": v["tasks"], "cpu_seconds": round(v["cpu_seconds"], 2)}
                       for k, v in stages.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shards", type=int, action="append")
    parser.add_argument("--ranges", type=int, default=32)
    parser.add_argument("--docs", type=int, default=200)
    parser.add_argument("--partitions", type=int, default=None, help="component partitions (default: planned)")
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    counts = args.shards or [20, 80]
    if args.child:
        print(RESULT + json.dumps(child(counts[0], args.ranges, args.docs, args.cpus, args.partitions)), flush=True)
        return
    results = []
    for shards in counts:
        command = [sys.executable, __file__, "--child", "--shards", str(shards), "--ranges", str(args.ranges),
                   "--docs", str(args.docs), "--cpus", str(args.cpus)]
        if args.partitions:
            command += ["--partitions", str(args.partitions)]
        out = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "RAY_DEDUP_LOGS": "0"})
        line = next((x for x in out.stdout.splitlines() if x.startswith(RESULT)), None)
        if line is None:
            sys.exit(f"child for {shards} shards failed:\n{out.stderr[-4000:]}")
        result = json.loads(line[len(RESULT):])
        results.append(result)
        print(json.dumps(result), flush=True)
    if len(results) >= 2:
        first, last = results[0], results[-1]
        per_shard = (last["driver_python_peak"] - first["driver_python_peak"]) / (last["shards"] - first["shards"])
        groups = last["groups_per_file"]
        print(f"driver Python peak: {per_shard:,.0f} bytes more per shard, with {groups} groups a file. For a dump "
              f"(8,000 shards of 14 x 149 groups): {per_shard * 8000 / 2**30:,.2f} GiB if that is per shard, "
              f"{per_shard / groups * 8000 * 14 * 149 / 2**30:,.2f} GiB if it is per group (run another --ranges "
              "to tell which)")

if __name__ == "__main__":
    main()
