"""Run the dedup stage on ray.cluster_utils.Cluster: 1 worker node, 3 worker nodes, and 3 worker nodes of
which one is removed while connected components run. Prints one JSON line comparing the outputs.

Run as a separate process (tests/test_dedup_cluster.py does): it starts and stops its own Ray cluster.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import threading
import time
from pathlib import Path

for key, value in {"RAY_USAGE_STATS_ENABLED": "0", "RAY_DEDUP_LOGS": "0"}.items():
    os.environ[key] = value

import pyarrow.parquet as pq  # noqa: E402
import ray  # noqa: E402
from ray.cluster_utils import Cluster  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from dedup_corpus import make_corpus  # noqa: E402

from tamis.dedup.options import DedupOptions  # noqa: E402
from tamis.dedup.stage import run_dedup  # noqa: E402
from tamis.engine.ray_runtime import make_private_ray  # noqa: E402

NODE = {"num_cpus": 1, "object_store_memory": 80 * 2**20}


def output_of(root: Path) -> list[tuple]:
    rows = []
    for path in sorted((root / "data").rglob("*.parquet")):
        table = pq.read_table(path)
        rows += [(path.name, r["id"], r["text"], r["minhash_cluster_id"], r["minhash_cluster_size"])
                 for r in table.to_pylist()]
    return rows


def main() -> None:
    base = Path(sys.argv[1])
    paths, _ = make_corpus(base / "in", originals=120, exact=40, near=40, words=200, shards=4)
    options = DedupOptions(cluster_columns=True, memory_per_task=16 * 2**20, ranges_per_band=2, partitions=8,
                           pii=False, token_count=False, max_in_flight=3)
    # loopback, a token and a private temp folder, as tamis's embedded Ray (another Ray on the machine once
    # removed the shared /tmp/ray/ray_current_cluster under this test)
    private = make_private_ray()
    atexit.register(private.release)  # also when the cluster fails to start
    # the head's agent on a free port (ray_runtime.dashboard_agent_on_a_free_port says why)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "object_store_memory": 80 * 2**20,
                                                            "temp_dir": str(private.ray_dir),
                                                            "dashboard_agent_listen_port": 0})
    result: dict = {}
    try:
        workers = [cluster.add_node(**NODE)]
        ray.init(address=cluster.address, log_to_driver=False, logging_level="WARNING")
        cluster.wait_for_nodes()
        one = run_dedup(paths, str(base / "w1"), str(base / "o1"), options)
        workers += [cluster.add_node(**NODE), cluster.add_node(**NODE)]
        cluster.wait_for_nodes()
        three = run_dedup(paths, str(base / "w3"), str(base / "o3"), options)

        removed_at: list[str] = []

        def remove_during_components() -> None:
            deadline = time.time() + 120
            while time.time() < deadline:
                if any((base / "w3r" / "_commits" / "components").glob("*.json")):
                    cluster.remove_node(workers[1], allow_graceful=False)
                    removed_at.append(time.strftime("%H:%M:%S"))
                    return
                time.sleep(0.01)

        killer = threading.Thread(target=remove_during_components)
        killer.start()
        lost = run_dedup(paths, str(base / "w3r"), str(base / "o3r"), options)
        killer.join()
        result = {
            "one_node_rows": len(output_of(base / "o1")),
            "removed": one["removed"],
            "three_same": output_of(base / "o1") == output_of(base / "o3"),
            "node_removed": bool(removed_at),
            "removed_node_same": output_of(base / "o1") == output_of(base / "o3r"),
            "rounds": lost["rounds"],
            "alive_nodes": sum(1 for n in ray.nodes() if n["Alive"]),
            "three_removed": three["removed"],
        }
    finally:
        ray.shutdown()
        cluster.shutdown()
        private.release()
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
