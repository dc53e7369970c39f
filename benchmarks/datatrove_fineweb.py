"""The datatrove 0.10.1 side of benchmarks/bench_recipe.py: FineWeb's whole English recipe, dedup included.

    .bench/dtvenv/bin/python benchmarks/datatrove_fineweb.py --input CORPUS_DIR --workdir DIR \
        --lid-model src/tamis/resources/lid.176.ftz --gpt2-ranks src/tamis/resources/gpt2.tiktoken \
        [--tasks 1] [--workers 1] [--removed full|none]

The stages of datatrove's examples/fineweb.py, each run by LocalPipelineExecutor in turn, in this process:

1. process: WarcReader -> URLFilter -> Trafilatura(favour_precision, timeout 1 s) -> LanguageFilter(["en"], 0.65)
   -> GopherRepetitionFilter -> GopherQualityFilter -> C4QualityFilter(filter_no_terminal_punct=False)
   -> FineWebQualityFilter -> JsonlWriter (gzip), as the example writes its filtered output;
2. signatures: JsonlReader -> MinhashDedupSignature (5-grams, 14 bands x 8 rows, 64-bit SHA-1 hashes:
   FineWeb's MinhashConfig, which is tamis's `dedup:` in pipelines/fineweb.yaml);
3. buckets: MinhashDedupBuckets, one task per band;
4. cluster: MinhashDedupCluster, one task;
5. filter: JsonlReader -> MinhashDedupFilter -> PIIFormatter -> token count -> ParquetWriter (zstd, as tamis).

With --removed full (the default) every filter and the dedup filter get an exclusion writer (JSONL under
removed/<step>), as in the example; --removed none leaves them out. The offline substitutions of
datatrove_process.py apply (local lid.176.ftz, tiktoken counter, tldextract's bundled suffix list).

Prints one JSON object on stdout: per stage wall and CPU seconds (this process and its reaped children:
datatrove's extractor child, the executor's worker processes), per step seconds from each stage's
stats.json, documents kept, tokens, and the kept documents' ids.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import datatrove_process  # noqa: E402  (sets the offline environment variables on import)
from shared_libraries import installed_versions  # noqa: E402


def build_stages(args: argparse.Namespace) -> list[tuple[str, list, int]]:
    from datatrove.pipeline.dedup import (
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter
    from datatrove.utils.hashing import HashConfig

    work = args.workdir
    args.recipe = "fineweb"
    process = datatrove_process.build_pipeline(args)
    # datatrove_process's list ends with PIIFormatter, the token counter and the Parquet writer; the example
    # runs the first two after dedup, and writes the filtered documents as JSONL
    pii, tokens, parquet = process[-3:]
    process = process[:-3]
    if args.removed == "full":
        for step in process[1:]:
            if hasattr(step, "exclusion_writer") and type(step).__name__ != "Trafilatura":
                label = type(step).__name__.replace("Filter", "").lower()
                step.exclusion_writer = JsonlWriter(f"{work}/removed/{label}")
    process.append(JsonlWriter(f"{work}/filtered"))

    config = MinhashConfig(hash_config=HashConfig(precision=64, hash_fc="sha1"), n_grams=5, num_buckets=14,
                           hashes_per_bucket=8)
    dedup_filter = MinhashDedupFilter(f"{work}/remove", exclusion_writer=JsonlWriter(f"{work}/removed/minhash")
                                      if args.removed == "full" else None)
    return [
        ("process", process, args.tasks),
        ("signatures", [JsonlReader(f"{work}/filtered"), MinhashDedupSignature(f"{work}/sigs", config=config,
                                                                               language="en")], args.tasks),
        ("buckets", [MinhashDedupBuckets(f"{work}/sigs", f"{work}/buckets", config=config)], config.num_buckets),
        ("cluster", [MinhashDedupCluster(f"{work}/buckets", f"{work}/remove", config=config)], 1),
        ("filter", [JsonlReader(f"{work}/filtered"), dedup_filter, pii, tokens, parquet], args.tasks),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", required=True, help="folder holding the WARC files")
    ap.add_argument("--glob", default="*.warc.gz")
    ap.add_argument("--workdir", required=True, help="fresh folder for datatrove's outputs and logs")
    ap.add_argument("--lid-model", required=True)
    ap.add_argument("--gpt2-ranks", required=True)
    ap.add_argument("--tasks", type=int, default=1, help="tasks of the process, signature and filter stages")
    ap.add_argument("--workers", type=int, default=1, help="LocalPipelineExecutor workers (processes) per stage")
    ap.add_argument("--removed", choices=("full", "none"), default="full")
    args = ap.parse_args()

    from importlib import metadata

    import pyarrow.parquet as pq
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.utils.logging import logger

    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    stages = build_stages(args)
    report, started = [], time.perf_counter()
    for name, pipeline, tasks in stages:
        logs = os.path.join(args.workdir, "logs", name)
        cpu, wall = datatrove_process._cpu(), time.perf_counter()
        LocalPipelineExecutor(pipeline, tasks=tasks, workers=args.workers, logging_dir=logs,
                              skip_completed=False).run()
        wall = time.perf_counter() - wall
        after = datatrove_process._cpu()
        report.append({"stage": name, "tasks": tasks, "wall_seconds": wall,
                       "cpu_seconds": sum(after[k] - cpu[k] for k in after),
                       "steps": datatrove_process.step_rows(os.path.join(logs, "stats.json"))})
    wall = time.perf_counter() - started
    output = sorted(Path(args.workdir, "output").glob("*.parquet"))
    ids: list[str] = []
    tokens = 0
    for path in output:
        table = pq.read_table(path, columns=["id", "metadata"])
        ids.extend(table.column("id").to_pylist())
        tokens += sum(m.get("token_count", 0) for m in table.column("metadata").to_pylist())
    print(json.dumps({
        "versions": {"datatrove": metadata.version("datatrove"), **installed_versions()},
        "wall_seconds": wall,
        "cpu_seconds": sum(stage["cpu_seconds"] for stage in report),
        "stages": report,
        "kept": len(ids),
        "tokens": tokens,
        "ids": sorted(ids),
    }))


if __name__ == "__main__":
    main()
