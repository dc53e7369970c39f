"""datatrove 0.10.1's four MinHash stages on JSONL copies of our shards, for benchmarks/bench_dedup.py.

    /path/to/datatrove-venv/bin/python datatrove_dedup.py JSONL_DIR WORK_DIR RESULT_JSON

One task per stage except buckets (one per band), one worker, in this process. Reading and writing are tiny
callables (the benchmark venv has neither pyarrow nor orjson); clusters come from stage 3's `.clusters`
files. Writes {"ids", "kept", "clusters": {id: cluster}, "cpu_seconds", "wall_seconds", "stages"} to
RESULT_JSON. SHA-1 64-bit shingle hashes, 5-grams, 14 bands x 8 hashes, seed 1: FineWeb's parameters,
which are tamis's defaults.
"""

import glob
import json
import resource
import struct
import sys
import time

from datatrove.data import Document
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.dedup.minhash import (
    MinhashConfig,
    MinhashDedupBuckets,
    MinhashDedupCluster,
    MinhashDedupFilter,
    MinhashDedupSignature,
)
from datatrove.utils.hashing import HashConfig


def cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    source, work, result = sys.argv[1:4]
    config = MinhashConfig(hash_config=HashConfig(precision=64, hash_fc="sha1"))
    ids: list[str] = []
    kept: list[str] = []

    def read(data=None, rank: int = 0, world_size: int = 1):
        ids.clear()
        for path in sorted(glob.glob(f"{source}/*.jsonl")):
            with open(path) as handle:
                for line in handle:
                    row = json.loads(line)
                    ids.append(row["id"])
                    yield Document(text=row["text"], id=row["id"])

    def collect(data, rank: int = 0, world_size: int = 1):
        for doc in data:
            kept.append(doc.id)
            yield doc

    stages = {
        "signatures": ([read, MinhashDedupSignature(f"{work}/sigs", config=config)], 1),
        "buckets": ([MinhashDedupBuckets(f"{work}/sigs", f"{work}/buckets", config=config)], config.num_buckets),
        "cluster": ([MinhashDedupCluster(f"{work}/buckets", f"{work}/remove", config=config,
                                         save_cluster_id=True)], 1),
        "filter": ([read, MinhashDedupFilter(f"{work}/remove"), collect], 1),
    }
    seconds, started = {}, time.perf_counter()
    for name, (pipeline, tasks) in stages.items():
        before = cpu()
        LocalPipelineExecutor(pipeline, tasks=tasks, workers=1, logging_dir=f"{work}/logs/{name}").run()
        seconds[name] = cpu() - before
    wall = time.perf_counter() - started
    clusters = {}
    for path in glob.glob(f"{work}/remove/*.clusters"):
        with open(path, "rb") as handle:
            data = handle.read()
        for doc, cluster in struct.iter_unpack("<2I", data):
            clusters[ids[doc]] = cluster
    with open(result, "w") as handle:
        json.dump({"ids": ids, "kept": kept, "clusters": clusters, "cpu_seconds": sum(seconds.values()),
                   "wall_seconds": wall, "stages": seconds}, handle)


if __name__ == "__main__":
    main()
