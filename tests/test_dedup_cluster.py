"""The dedup stage on a 3-node ray.cluster_utils.Cluster gives the one-node output, also when a node is
removed while connected components run. The cluster lives in a subprocess: this session's `ray_session`
fixture owns the in-process Ray."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent / "dedup_cluster_script.py"


@pytest.mark.slow
def test_three_node_cluster_same_output_and_survives_a_lost_node(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path)], capture_output=True, text=True,
                          timeout=600)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    result = json.loads(lines[-1][len("RESULT "):])
    assert result["removed"] > 0 and result["one_node_rows"] > 0
    assert result["three_same"], result
    assert result["node_removed"], result
    assert result["removed_node_same"], result
