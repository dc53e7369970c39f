"""One of datatrove 0.10.1's MinHash stages on signature files made by benchmarks/bench_dedup_scale.py.

    /path/to/datatrove-venv/bin/python datatrove_dedup_scale.py buckets|cluster SIG_DIR WORK_DIR RANK

`buckets`: task RANK (the band) of MinhashDedupBuckets' 14. `cluster`: MinhashDedupCluster, its single
task, with `save_cluster_id` so that the clusters can be checked. Every task runs in its own process,
started by the benchmark (two bucket tasks at a time on 2 cores), which takes its wall time, CPU time and
peak RSS from wait4(); datatrove's own multi-worker mode forks from a forkserver, out of wait4()'s sight.
FineWeb's parameters: 14 bands x 8 hashes of 64 bits.
"""

import sys

from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupBuckets, MinhashDedupCluster
from datatrove.utils.hashing import HashConfig


def main() -> None:
    stage, sigs, work, rank = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    config = MinhashConfig(hash_config=HashConfig(precision=64, hash_fc="sha1"))
    if stage == "buckets":
        pipeline, tasks = [MinhashDedupBuckets(sigs, f"{work}/buckets", config=config)], config.num_buckets
    elif stage == "cluster":
        pipeline = [MinhashDedupCluster(f"{work}/buckets", f"{work}/remove", config=config, save_cluster_id=True)]
        tasks = 1
    else:
        raise SystemExit(f"unknown stage {stage!r}")
    LocalPipelineExecutor(pipeline, tasks=tasks, workers=1, local_tasks=1, local_rank_offset=rank,
                          logging_dir=f"{work}/logs/{stage}").run()


if __name__ == "__main__":
    main()
