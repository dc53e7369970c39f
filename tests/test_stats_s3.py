"""`tamis stats` / `tamis inspect` on a run stored in S3 (a local moto server, loopback only)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner
from conftest import REPO, SAMPLE_DIR

from tamis.cli.main import cli
from tamis.engine.runner import run_pipeline
from tamis.pipeline.spec import load_pipeline
from tamis.stats.load import load_run, to_json

s3fs = pytest.importorskip("s3fs")
pytest.importorskip("moto")
BUCKET = "tamis-test"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                pytest.fail("moto server did not start")
            time.sleep(0.2)
    patch = pytest.MonkeyPatch()
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1", "FSSPEC_S3_ENDPOINT_URL": endpoint}.items():
        patch.setenv(key, value)
    import fsspec.config

    # fsspec reads FSSPEC_* variables when imported; the same setting for this process:
    patch.setitem(fsspec.config.conf, "s3", {**fsspec.config.conf.get("s3", {}), "endpoint_url": endpoint})
    s3fs.S3FileSystem.clear_instance_cache()
    fs = s3fs.S3FileSystem(endpoint_url=endpoint, key="testing", secret="testing")
    fs.mkdir(BUCKET)
    yield fs
    s3fs.S3FileSystem.clear_instance_cache()
    patch.undo()
    server.terminate()
    server.wait(timeout=10)


@pytest.fixture(scope="module")
def local_run(ray_session, tmp_path_factory):
    output = tmp_path_factory.mktemp("s3run") / "out"
    inputs = [str(SAMPLE_DIR / f"dolma_sample-000{i}.warc.gz") for i in (0, 1)]
    assert run_pipeline(load_pipeline(REPO / "pipelines" / "fineweb.yaml"), inputs, str(output),
                        show_progress=False).ok
    return output


def _counts(data: dict) -> dict:
    return {k: v for k, v in data.items() if k not in ("url", "shards", "removed_shards", "funnel", "source")}


def test_stats_read_from_s3_equal_local(s3, local_run) -> None:
    s3.put(str(local_run), f"{BUCKET}/runs/a", recursive=True)
    url = f"s3://{BUCKET}/runs/a"
    local = load_run(str(local_run), prefer_merged=False)
    for prefer_merged in (True, False):
        remote = load_run(url, prefer_merged=prefer_merged)
        assert remote.committed == 2 and not remote.partial
        assert remote.totals() == {**local.totals(), "task_cpu_seconds": remote.totals()["task_cpu_seconds"],
                                   "task_wall_seconds": remote.totals()["task_wall_seconds"]}
        assert remote.stats.counters.to_dict().keys() == local.stats.counters.to_dict().keys()
        assert remote.stats.histograms.to_dict() == local.stats.histograms.to_dict()
    assert json.loads(json.dumps(_counts(to_json(load_run(url, prefer_merged=False))), default=str)) == \
        json.loads(json.dumps(_counts(to_json(local)), default=str))

    runner = CliRunner()
    out = runner.invoke(cli, ["stats", url, "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["totals"]["kept"] == local.totals()["kept"]
    shown = runner.invoke(cli, ["inspect", url, "--step", "gopher_quality", "--sample", "2", "--json"])
    assert shown.exit_code == 0, shown.output
    docs = json.loads(shown.output)["documents"]
    assert docs and all(d["origin"] == "gopher_quality" for d in docs)


def test_partial_run_on_s3(s3, local_run) -> None:
    s3.put(str(local_run), f"{BUCKET}/runs/b", recursive=True)
    marker = sorted(s3.ls(f"{BUCKET}/runs/b/_commits/process"))[0]
    s3.rm(marker)
    manifest = json.loads(s3.cat_file(f"{BUCKET}/runs/b/manifest.json"))
    s3.pipe_file(f"{BUCKET}/runs/b/manifest.json", json.dumps({**manifest, "status": "running"}).encode())
    out = CliRunner().invoke(cli, ["stats", f"s3://{BUCKET}/runs/b"], terminal_width=160)
    assert out.exit_code == 0, out.output
    assert "PARTIAL: 1 of 2 inputs committed (run in progress)" in out.output
