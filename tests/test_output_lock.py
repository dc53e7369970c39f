"""One `tamis run` per output at a time (tamis.engine.output_lock).

- A run into an output that a live run holds is refused before it writes anything: exit 2, one line saying
  which run holds it (the live holder here is this test process, so no second job has to be timed).
- A lock left by a run that is gone (its pid ended, or reused by another process) is taken over.
- A lock from another machine, or one that cannot be read, is never taken over: the message names the file.
- The lock is removed when the run ends, also when it is refused or fails.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import asdict, replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import REPO, SAMPLE_DIR, ended_pid, said_by, tamis_cli
from fsspec.implementations.memory import MemoryFileSystem

from tamis.engine.output_lock import LOCK_NAME, Holder, OutputLock, OutputLockedError


def _write_lock(root: Path, holder: Holder) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / LOCK_NAME
    path.write_text(json.dumps(asdict(holder)))
    return path


def test_the_lock_is_exclusive_and_released(tmp_path: Path) -> None:
    with OutputLock(str(tmp_path / "out")) as lock:
        held = json.loads(lock.path.read_text())
        assert (held["host"], held["pid"]) == (Holder.this_process().host, os.getpid())
        with pytest.raises(OutputLockedError, match="in use by the run started .* on this machine"):
            OutputLock(str(tmp_path / "out")).acquire()
    assert not lock.path.exists()


def test_a_lock_whose_run_is_gone_is_taken_over(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    here = Holder.this_process()
    root = tmp_path / "out"
    _write_lock(root, replace(here, pid=ended_pid()))
    with OutputLock(str(root)) as lock:
        assert json.loads(lock.path.read_text())["pid"] == os.getpid()
    assert "is gone; taking it over" in caplog.text
    if here.process_start is not None:  # Linux: this pid, but another process's start time (a reused pid)
        _write_lock(root, replace(here, process_start=here.process_start - 1))
        with OutputLock(str(root)):
            pass


@pytest.mark.parametrize("content", ["other machine", "unreadable"])
def test_a_lock_that_cannot_be_checked_is_kept(tmp_path: Path, content: str) -> None:
    root = tmp_path / "out"
    if content == "other machine":
        path = _write_lock(root, replace(Holder.this_process(), host="another-node", pid=ended_pid()))
        expected = "on machine 'another-node'"
    else:
        root.mkdir()
        path = root / LOCK_NAME
        path.write_text("")
        expected = "a run whose lock file cannot be read"
    with pytest.raises(OutputLockedError) as raised:
        OutputLock(str(root)).acquire()
    assert expected in str(raised.value) and f"delete {path} and run again" in str(raised.value)
    assert path.exists()


def _tamis_run(output: Path, home: Path, *extra: str) -> subprocess.CompletedProcess:
    return tamis_cli(home, "run", str(REPO / "pipelines" / "fineweb.yaml"), "--input",
                     str(SAMPLE_DIR / "dolma_sample-0000.warc.gz"), "--output", str(output), "--workers", "1",
                     "--no-progress", "--no-plugins", *extra)


def test_a_second_run_into_a_held_output_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    output = tmp_path / "out"
    path = _write_lock(output, Holder.this_process())  # held by a live process: this one
    for extra in ((), ("--overwrite",)):
        refused = _tamis_run(output, home, *extra)
        said = said_by(refused)
        assert refused.returncode == 2, said
        assert f"error: {output} is in use by the run started" in said and "Wait for it to end" in said, said
        assert sorted(p.name for p in output.iterdir()) == [LOCK_NAME]  # no manifest, nothing else
    assert json.loads(path.read_text())["pid"] == os.getpid()


@pytest.mark.parametrize("command", ["tokenize", "dedup", "sample"])
def test_tokenize_dedup_and_sample_into_a_held_output_are_refused(tmp_path: Path, command: str) -> None:
    home = tmp_path / "home"
    home.mkdir()
    shards = tmp_path / "src" / "data" / "d"
    shards.mkdir(parents=True)
    pq.write_table(pa.table({"id": ["a"], "text": ["a document"]}), shards / "part-0.parquet")
    output = tmp_path / "out"
    _write_lock(output, Holder.this_process())
    extra = ["--no-progress"] if command == "tokenize" else []
    source = str(tmp_path / "src") if command == "sample" else str(shards / "part-0.parquet")
    refused = tamis_cli(home, command, source, "--output", str(output), *extra)
    said = said_by(refused)
    assert refused.returncode == 2 and f"error: {output} is in use by the run started" in said, said
    assert sorted(p.name for p in output.iterdir()) == [LOCK_NAME]


def test_the_lock_is_released_when_the_run_stops_after_taking_it(tmp_path: Path) -> None:
    """An output that holds another pipeline's run is refused after the lock is taken (the manifest is read
    under it): the lock goes with the refusal. (After a finished run, a full disk, SIGTERM and SIGKILL:
    tests/test_storage_errors.py and tests/test_faults.py.)"""
    home = tmp_path / "home"
    home.mkdir()
    output = tmp_path / "out"
    output.mkdir()
    (output / "manifest.json").write_text(json.dumps({"fingerprint": "another", "pipeline": {"name": "other"}}))
    refused = _tamis_run(output, home)
    said = said_by(refused)
    assert refused.returncode == 2 and "holds the output of a different pipeline" in said, said
    assert sorted(p.name for p in output.iterdir()) == ["manifest.json"]


class _NoExclusiveCreate(MemoryFileSystem):
    """An object store that cannot create exclusively (as a store answering 501 to `If-None-Match`)."""

    protocol = ("noexcl",)

    def pipe_file(self, path, value, mode="overwrite", **kwargs):
        if mode == "create":
            raise NotImplementedError("conditional create")
        return super().pipe_file(path, value, mode=mode, **kwargs)


def test_a_store_without_exclusive_create_runs_unlocked_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    """Not a failure: the output goes unlocked, as object stores were before they could be locked, and says so."""
    store = _NoExclusiveCreate()
    with caplog.at_level("WARNING", logger="tamis.engine.output_lock"):
        with OutputLock("bucket/out", store) as lock:
            assert lock.held is False and not store.exists("bucket/out/_lock.json")
            with OutputLock("bucket/out", store) as second:  # nothing to refuse it
                assert second.held is False
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2 and all(w.startswith("noexcl://bucket/out: not locked") for w in warnings), warnings
    exclusive = MemoryFileSystem()  # fsspec's memory store creates exclusively: locked
    with OutputLock("/bucket/out2", exclusive) as lock, pytest.raises(OutputLockedError):
        OutputLock("/bucket/out2", exclusive).acquire()
    assert not exclusive.exists("/bucket/out2/_lock.json")
