"""Node loss and driver crashes: the job completes, and its output equals an undisturbed run's."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import REPO
from fsspec.implementations.local import LocalFileSystem

from tamis.engine.run_output import UnfinishedRunError, check_finished, unfinished_reason
from tamis.engine.runner import run_pipeline
from tamis.pipeline.spec import load_pipeline

FAULT_SCRIPT = Path(__file__).parent / "scripts" / "cluster_fault_run.py"
PIPELINE = REPO / "pipelines" / "fineweb.yaml"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(RAY_USAGE_STATS_ENABLED="0")  # loopback and the token: tamis (and the fault script) set them
    return env


@pytest.fixture(scope="module")
def reference(ray_session, small_corpus, tmp_path_factory) -> Path:
    """The undisturbed run every faulty one must equal: the same pipeline and inputs, run once in this process
    on the session's Ray (the output does not depend on the workers or nodes, tests/test_run.py)."""
    output = tmp_path_factory.mktemp("faults") / "reference"
    glob = str(small_corpus[0].parent / "*.warc.gz")
    assert run_pipeline(load_pipeline(PIPELINE), [glob], str(output), show_progress=False).ok
    return output


@pytest.mark.slow
def test_worker_nodes_removed_during_process_and_dedup(small_corpus, reference: Path,
                                                        short_private_dir: Path) -> None:
    """Head + 3 one-CPU workers: one worker goes during the process stage, another during dedup."""
    work = short_private_dir
    glob = str(small_corpus[0].parent / "*.warc.gz")
    done = subprocess.run([sys.executable, str(FAULT_SCRIPT), glob, str(PIPELINE), str(work), str(reference)],
                          env=_env(), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["reference_ok"] and report["faulty_ok"], report
    assert report["completed_after_removal"] >= 1, report  # the first node really went away mid-process
    assert report["dedup_running_at_second_removal"], report  # and the second one while dedup ran
    assert report["faulty_dedup_removed"] == report["reference_dedup_removed"] > 0, report
    assert report["faulty_rows"] == report["reference_rows"] > 0
    assert report["identical"] and report["duplicate_ids"] == 0
    assert report["faulty_counts"] == report["reference_counts"]


def _rows(output: Path) -> list[tuple]:
    rows = []
    for path in sorted(output.glob("data/*/*.parquet")):
        rows += [(r["id"], r["text"], r["token_count"]) for r in pq.read_table(path).to_pylist()]
    return sorted(rows)


def _tamis(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    command = [sys.executable, "-m", "tamis.cli.main", "run", str(PIPELINE), *args, "--no-progress"]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


@pytest.mark.slow
def test_driver_killed_then_rerun_finishes_only_unfinished_work(small_corpus, reference: Path, tmp_path: Path,
                                                                short_private_dir: Path) -> None:
    glob = str(small_corpus[0].parent / "*.warc.gz")
    env = {**_env(), "TAMIS_RAY_TEMP_DIR": str(short_private_dir)}

    output = tmp_path / "crashed"
    driver = _tamis(["--input", glob, "--output", str(output), "--workers", "1"], env)
    markers = output / "_commits" / "process"
    deadline = time.time() + 300
    while time.time() < deadline and len(list(markers.glob("*.json"))) < 2:
        time.sleep(0.05)
    # what `tamis tokenize` and `tamis sample` would say of the output now (tamis.engine.run_output)
    with pytest.raises(UnfinishedRunError) as refused:
        check_finished(LocalFileSystem(), str(output), "OUT", allow_incomplete=False)
    said = str(refused.value)
    assert said.startswith("OUT: its run is still writing it (started ") and f"by process {driver.pid})" in said
    assert said.endswith("Wait for it to end, or pass --allow-incomplete to use the shards written so far"), said
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    # A task already running when the driver died may still commit its unit (Ray's workers outlive a killed
    # driver for a moment); what counts is what is committed when the rerun starts.
    time.sleep(2)
    assert unfinished_reason(LocalFileSystem(), str(output)) == ("its run stopped before it finished "
                                                                 "(interrupted, or its driver was lost)")
    before = {p.name: p.stat().st_mtime_ns for p in markers.glob("*.json")}
    assert 2 <= len(before) < len(small_corpus), before

    assert (output / "_lock.json").exists()  # the killed driver could not remove its lock of the output
    rerun = _tamis(["--input", glob, "--output", str(output), "--workers", "1"], env)
    out, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err[-2000:]
    assert "is gone; taking it over" in err and not (output / "_lock.json").exists()
    after = {p.name: p.stat().st_mtime_ns for p in markers.glob("*.json")}
    assert len(after) == len(small_corpus)
    assert all(after[name] == mtime for name, mtime in before.items()), "committed inputs were redone"
    assert f"skipped {len(before)} input(s)" in out, out
    assert _rows(output) == _rows(reference)
    ref_stats = json.loads((reference / "stats.json").read_text())
    stats = json.loads((output / "stats.json").read_text())
    for step, counters in ref_stats["steps"].items():
        for key in ("docs_in", "docs_out", "dropped"):
            assert stats["steps"][step][key] == counters[key], (step, key)
    assert stats["totals"]["kept"] == ref_stats["totals"]["kept"]
    assert stats["histograms"] == ref_stats["histograms"]


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_stopped_by_a_signal_exits_cleanly_and_the_rerun_resumes(small_corpus, tmp_path: Path,
                                                                   short_private_dir: Path, signum) -> None:
    """SIGTERM (a scheduler stopping the job) or Ctrl-C once inputs are committed: one line, exit 143 or 130,
    Ray's processes gone and the run's private folder removed; the same command then does only the rest.
    Before, SIGTERM printed a native stack dump from Ray's crash handler and aborted."""
    glob = str(small_corpus[0].parent / "*.warc.gz")
    env = {**_env(), "TAMIS_RAY_TEMP_DIR": str(short_private_dir)}
    output = tmp_path / "stopped"
    args = ["--input", glob, "--output", str(output), "--workers", "1"]
    driver = subprocess.Popen([sys.executable, "-m", "tamis.cli.main", "run", str(PIPELINE), *args, "--no-progress"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    markers = output / "_commits" / "process"
    deadline = time.time() + 300
    while time.time() < deadline and len(list(markers.glob("*.json"))) < 1 and driver.poll() is None:
        time.sleep(0.05)
    driver.send_signal(signum)
    _, err = driver.communicate(timeout=120)
    name = "SIGTERM" if signum == signal.SIGTERM else "Ctrl-C"
    assert driver.returncode == 128 + signum, err[-3000:]
    assert f"stopped by {name}: the work committed so far is kept" in err and "SIGTERM received" not in err
    assert list(short_private_dir.iterdir()) == [], "the run's private Ray folder was left behind"
    assert not (output / "_lock.json").exists(), "the stopped run kept its lock of the output"
    committed = len(list(markers.glob("*.json")))
    assert 1 <= committed < len(small_corpus)
    if signum != signal.SIGTERM:
        return  # the rerun is the same after either signal: once is enough

    rerun = _tamis(args, env)
    out, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err[-2000:]
    assert f"skipped {committed} input(s)" in out
    assert len(list(markers.glob("*.json"))) == len(small_corpus)
