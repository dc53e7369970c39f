"""An --address / RAY_ADDRESS where nothing listens is one line within seconds, from every command that joins.

Before, `ray.init` waited about two minutes (Ray's GCS connection retries) printing native warnings.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, WARC_DIR, clean_environment

from tamis.engine.cluster_address import ClusterUnreachableError, check_cluster_reachable


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_probe_tells_a_listening_port_from_a_closed_one() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        check_cluster_reachable(f"127.0.0.1:{port}")
        check_cluster_reachable(f"ray://127.0.0.1:{port}")
    closed = _closed_port()
    for address in (f"127.0.0.1:{closed}", f"ray://localhost:{closed}", f"[::1]:{closed}"):
        with pytest.raises(ClusterUnreachableError, match="no Ray cluster answers at"):
            check_cluster_reachable(address)
    check_cluster_reachable("auto")  # no port: left to Ray


@pytest.mark.parametrize("how", ["option", "environment"])
@pytest.mark.parametrize("command", ["run", "tokenize"])
def test_a_cluster_address_where_nothing_listens_fails_fast_in_one_line(tmp_path: Path, how: str,
                                                                        command: str) -> None:
    address = f"127.0.0.1:{_closed_port()}"
    env = clean_environment(tmp_path)
    if how == "environment":
        env["RAY_ADDRESS"] = address
    args = {"run": ["run", str(REPO / "pipelines" / "fineweb.yaml"), "--input",
                    str(WARC_DIR / "dolma_sample-0000.warc.gz"), "--no-progress"],
            "tokenize": ["tokenize", str(tmp_path)]}[command]
    if command == "tokenize":  # a finished run's shape is not needed: joining the cluster comes first
        (tmp_path / "data").mkdir()
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"id": ["a"], "text": ["some words"]}), tmp_path / "data" / "part.parquet")
    extra = ["--address", address] if how == "option" else []
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "tamis.cli.main", *args, "--output", str(tmp_path / "out"), *extra],
                          env=env, capture_output=True, text=True, timeout=300)
    said = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 1, said
    assert f"no Ray cluster answers at {address} (Connection refused)" in said
    assert "Traceback" not in said
    assert time.monotonic() - started < 60, "it waited for Ray's own retries"
    if command == "run":
        assert not (tmp_path / "out").exists(), "the output was touched before the cluster was reached"
