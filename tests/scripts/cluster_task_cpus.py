"""One input on a cluster whose worker nodes differ in size: the process task asks for the smallest node's
CPUs, so it (and its retry after a node loss) fits every node; once only bigger nodes are left it takes
their CPUs as extraction children. Prints what each run saw as JSON. Run by tests/test_task_cpus_cluster.py
in its own process, since a test session already holds an in-process Ray."""

from __future__ import annotations

import atexit
import json
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import ray
from ray.cluster_utils import Cluster

from tamis.engine.ray_runtime import make_private_ray, smallest_node_cpus
from tamis.engine.runner import run_pipeline, task_cpus
from tamis.pipeline.spec import parse_pipeline

#: a plugin folder whose step records what Ray assigned to the task it runs in
RECORDER_PLUGINS = Path(__file__).resolve().parent.parent / "plugins"


def run_once(source: str, workdir: Path, name: str) -> dict:
    record = workdir / f"{name}.json"
    spec = parse_pipeline({"plugins": [str(RECORDER_PLUGINS)],
                           "steps": [{"step": "trafilatura"}, {"step": "assigned_resources", "path": str(record)}]})
    result = run_pipeline(spec, [source], str(workdir / name), show_progress=False)
    rows = sorted(row for path in sorted((workdir / name).glob("data/*/*.parquet"))
                  for row in zip(*pq.read_table(path, columns=["id", "text"]).to_pydict().values(), strict=True))
    return {"ok": result.ok, "smallest": smallest_node_cpus(), "task_cpus": task_cpus(1, None),
            "assigned_cpus": json.loads(record.read_text())["CPU"], "rows": rows}


def main() -> None:
    source, workdir = sys.argv[1], Path(sys.argv[2])
    private = make_private_ray()
    atexit.register(private.release)
    # the head's agent on a free port (ray_runtime.dashboard_agent_on_a_free_port says why)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "temp_dir": str(private.ray_dir),
                                                            "dashboard_agent_listen_port": 0})
    cluster.add_node(num_cpus=2)
    small = cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, logging_level="WARNING", log_to_driver=False)
    try:
        mixed = run_once(source, workdir, "mixed")
        cluster.remove_node(small)
        deadline = time.time() + 60
        while smallest_node_cpus() != 2 and time.time() < deadline:
            time.sleep(0.2)
        bigger = run_once(source, workdir, "bigger")
    finally:
        ray.shutdown()
        cluster.shutdown()
    print(json.dumps({"mixed": {k: v for k, v in mixed.items() if k != "rows"},
                      "bigger": {k: v for k, v in bigger.items() if k != "rows"},
                      "rows": len(mixed["rows"]), "identical": mixed["rows"] == bigger["rows"]}))


if __name__ == "__main__":
    main()
