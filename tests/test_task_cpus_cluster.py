"""Task sizing on a cluster of unequal nodes (tamis.engine.runner.task_cpus), on a real multi-node Ray."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import WARC_DIR

SCRIPT = Path(__file__).parent / "scripts" / "cluster_task_cpus.py"


@pytest.mark.slow
def test_one_input_fits_the_smallest_node_then_spreads_on_bigger_ones(tmp_path: Path) -> None:
    """Worker nodes of 2 and 1 CPUs: the lone input's task asks for 1 CPU (so it fits either node); with only
    the 2-CPU node left it takes 2 CPUs (two extraction children), and the output is the same."""
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    done = subprocess.run([sys.executable, str(SCRIPT), str(WARC_DIR / "dolma_sample-0000.warc.gz"), str(tmp_path)],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["mixed"] == {"ok": True, "smallest": 1, "task_cpus": 1, "assigned_cpus": 1.0}, report
    assert report["bigger"] == {"ok": True, "smallest": 2, "task_cpus": 2, "assigned_cpus": 2.0}, report
    assert report["rows"] > 0 and report["identical"], report
