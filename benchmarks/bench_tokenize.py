"""`tamis tokenize` throughput: tokens per second per core, against tiktoken alone in the same process.

Builds FineWeb-schema Parquet shards from the 181 real articles of shared/data (repeated `--repeat` times
under new ids), then, side by side in one run:

- *tiktoken alone*: `encode_ordinary_batch` of every text, one thread, in this process (the floor: no
  Parquet, no files, no Ray);
- *tamis tokenize* for each format (and `--shuffle`), `run_tokenize(workers=W)` on an embedded Ray of W
  CPUs started once (its start is not timed): wall seconds, tokens/s per core (W), and tokens per CPU
  second of its tasks (encode + write), which does not depend on how loaded the machine is.

    python benchmarks/bench_tokenize.py [--shards 8] [--repeat 3] [--workers 1] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tamis.annotate.tokens import gpt2_encoding
from tamis.io.parquet import FINEWEB_SCHEMA

SHARED = Path(os.environ.get("TAMIS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
ARTICLES = SHARED / "extraction" / "scrapinghub_aeb" / "ground-truth.json"


def make_corpus(root: Path, shards: int, repeat: int) -> list[str]:
    data = json.loads(ARTICLES.read_text())
    texts = [data[k]["articleBody"] for k in sorted(data) if data[k]["articleBody"]] * repeat
    for i in range(shards):
        chunk = texts[i::shards]
        columns = {name: [None] * len(chunk) for name in FINEWEB_SCHEMA.names}
        columns["text"] = chunk
        columns["id"] = [f"<urn:bench:{i}:{j}>" for j in range(len(chunk))]
        pq.write_table(pa.table(columns, schema=FINEWEB_SCHEMA), root / f"part-{i:03d}.parquet")
    return texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    import ray

    from tamis.tokenize.stage import TokenizeOptions, run_tokenize

    work = Path(tempfile.mkdtemp(prefix="bench-tok-"))
    rows = []
    try:
        corpus = work / "corpus"
        corpus.mkdir()
        texts = make_corpus(corpus, args.shards, args.repeat)
        encoding = gpt2_encoding()
        started, cpu = time.perf_counter(), time.process_time()
        tokens = sum(len(t) + 1 for t in encoding.encode_ordinary_batch(texts, num_threads=1))
        seconds = time.perf_counter() - started
        rows.append({"side": "tiktoken alone (1 thread)", "tokens": tokens, "seconds": seconds, "cores": 1,
                     "cpu_seconds": time.process_time() - cpu})
        ray.init(address="local", num_cpus=args.workers, include_dashboard=False, logging_level="ERROR",
                 _temp_dir=tempfile.mkdtemp(prefix="tr-bench-", dir="/tmp"))
        for fmt, shuffle in (("datatrove", False), ("megatron", False), ("numpy", False), ("datatrove", True)):
            out = work / f"{fmt}-{shuffle}"
            started = time.perf_counter()
            result = run_tokenize([str(corpus)], TokenizeOptions(str(out), format=fmt, shuffle=shuffle),
                                  workers=args.workers, show_progress=False)
            seconds = time.perf_counter() - started
            rows.append({"side": f"tamis tokenize {fmt}{' --shuffle' if shuffle else ''}",
                         "tokens": result.totals["tokens"], "seconds": seconds, "cores": args.workers,
                         "bytes": result.totals["bytes"],
                         "cpu_seconds": result.totals["encode_cpu_seconds"] + result.totals["write_cpu_seconds"]})
        ray.shutdown()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for row in rows:
        row["tokens_per_s_per_core"] = row["tokens"] / row["seconds"] / row["cores"]
        # CPU seconds of the tasks (encode + write), not wall: the figure that does not depend on machine load
        row["tokens_per_cpu_s"] = row["tokens"] / row["cpu_seconds"]
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    print(f"{len(texts):,} documents in {args.shards} shards; workers {args.workers}")
    print(f"{'side':38} {'tokens':>10} {'wall s':>8} {'tokens/s/core':>14} {'task CPU s':>10} "
          f"{'tokens/CPU-s':>13} {'vs tiktoken':>11}")
    floor = rows[0]["tokens_per_cpu_s"]
    for row in rows:
        print(f"{row['side']:38} {row['tokens']:>10,} {row['seconds']:>8.2f} {row['tokens_per_s_per_core']:>14,.0f} "
              f"{row['cpu_seconds']:>10.2f} {row['tokens_per_cpu_s']:>13,.0f} "
              f"{row['tokens_per_cpu_s'] / floor:>10.2f}x")


if __name__ == "__main__":
    main()
