"""Run the pipeline on a 3-worker `ray.cluster_utils.Cluster` with a worker node removed mid-process and another
mid-dedup, and print its output's fingerprints beside those of an undisturbed run's output (made by the test) as
JSON. Run by tests/test_faults.py in its own process, since a test session already holds an in-process Ray.

    cluster_fault_run.py CORPUS_GLOB PIPELINE WORKDIR REFERENCE_OUTPUT
"""

from __future__ import annotations

import atexit
import json
import sys
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import ray
from ray.cluster_utils import Cluster

from tamis.engine.ray_runtime import make_private_ray
from tamis.engine.runner import run_pipeline
from tamis.pipeline.spec import load_pipeline


def read_rows(output: Path) -> list[tuple]:
    rows = []
    for path in sorted(output.glob("data/*/*.parquet")):
        table = pq.read_table(path, columns=["id", "text", "token_count"])
        rows += list(zip(*(table.column(c).to_pylist() for c in table.column_names), strict=True))
    return sorted(rows)


def dropped(output: Path) -> tuple[bool, dict, int | None]:
    """(complete, each step's drops by reason, documents dedup removed) from a run's stats.json."""
    stats = json.loads((output / "stats.json").read_text())
    steps = {name: step["dropped"] for name, step in stats["steps"].items()}
    return stats["complete"], steps, steps.get("dedup", {}).get("duplicate")


def main() -> None:
    corpus_glob, pipeline, workdir, reference = sys.argv[1], sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])
    # loopback, a token, and a private temp folder (Ray's default one, where Cluster.add_node records the head's
    # address, is inside it too), as tamis's embedded Ray
    private = make_private_ray()
    atexit.register(private.release)  # also when the cluster fails to start
    # the head's agent on a free port (ray_runtime.dashboard_agent_on_a_free_port says why)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "temp_dir": str(private.ray_dir),
                                                            "dashboard_agent_listen_port": 0})
    workers = [cluster.add_node(num_cpus=1) for _ in range(3)]
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, logging_level="WARNING", log_to_driver=False)
    spec = load_pipeline(pipeline)
    try:
        faulty_output = workdir / "faulty"
        outcome: dict = {}

        def run() -> None:
            outcome["result"] = run_pipeline(spec, [corpus_glob], str(faulty_output), show_progress=False)

        thread = threading.Thread(target=run)
        thread.start()
        deadline = time.time() + 300
        while time.time() < deadline and not list(faulty_output.glob("_commits/process/*.json")):
            time.sleep(0.05)
        committed_before = len(list(faulty_output.glob("_commits/process/*.json")))
        cluster.remove_node(workers[0])
        removed_at = time.time()
        # then a second worker, as soon as the dedup stage has committed its first task (edges) and others run
        while thread.is_alive() and time.time() < deadline and not list(faulty_output.glob("dedup/edges/*")):
            time.sleep(0.02)
        dedup_running_at_second_removal = thread.is_alive() and not (faulty_output / "dedup" / "summary.json").exists()
        cluster.remove_node(workers[1])
        thread.join(timeout=600)
        faulty = outcome["result"]
        ref_rows, faulty_rows = read_rows(reference), read_rows(faulty_output)
        reference_complete, reference_counts, reference_removed = dropped(reference)
        faulty_complete, faulty_counts, faulty_removed = dropped(faulty_output)
        print(json.dumps({
            "committed_before_removal": committed_before,
            "completed_after_removal": len(faulty.completed) - committed_before,
            "seconds_after_removal": round(time.time() - removed_at, 1),
            "dedup_running_at_second_removal": dedup_running_at_second_removal,
            "reference_dedup_removed": reference_removed,
            "faulty_dedup_removed": faulty_removed,
            "reference_ok": reference_complete,
            "faulty_ok": faulty.ok and faulty_complete,
            "faulty_failed": faulty.failed,
            "reference_rows": len(ref_rows),
            "faulty_rows": len(faulty_rows),
            "identical": ref_rows == faulty_rows,
            "duplicate_ids": len(faulty_rows) - len({row[0] for row in faulty_rows}),
            "reference_counts": reference_counts,
            "faulty_counts": faulty_counts,
        }))
    finally:
        ray.shutdown()
        cluster.shutdown()
        private.release()


if __name__ == "__main__":
    main()
