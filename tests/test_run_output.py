"""What tokenize and sample say of a run's output before reading it (tamis.engine.run_output), state by state.

Real runs make these states in tests/test_tokenize.py (failed inputs) and tests/test_faults.py (a live driver,
then a killed one); here each manifest status is written as a run writes it, on a local folder and on an
object store's kind of file system (fsspec's memory one: no lock can be taken there).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fsspec.implementations.local import LocalFileSystem
from fsspec.implementations.memory import MemoryFileSystem

from tamis.engine.output_lock import OutputLock
from tamis.engine.run_output import UnfinishedRunError, check_finished, find_run_root, unfinished_reason


def _manifest(fs, root: str, **fields) -> None:
    fs.makedirs(root, exist_ok=True)
    with fs.open(f"{root}/manifest.json", "w") as handle:
        json.dump({"pipeline": {"name": "fineweb"}, "fingerprint": "f1", **fields}, handle)


def test_finished_runs_and_folders_of_other_tools_are_read_without_a_word(tmp_path: Path) -> None:
    fs = LocalFileSystem()
    assert unfinished_reason(fs, str(tmp_path)) is None  # no manifest: any folder of Parquet files
    _manifest(fs, str(tmp_path / "done"), status="complete")
    assert check_finished(fs, str(tmp_path / "done"), "OUT", allow_incomplete=False) is None
    (tmp_path / "tokens").mkdir()
    (tmp_path / "tokens" / "manifest.json").write_text(json.dumps({"fingerprint": "x", "status": "running"}))
    assert unfinished_reason(fs, str(tmp_path / "tokens")) is None  # a tokenize output's manifest: not a run's


def test_each_unfinished_state_says_why(tmp_path: Path) -> None:
    fs = LocalFileSystem()
    root = str(tmp_path / "failed")
    _manifest(fs, root, status="incomplete", failed={"a.warc.gz": "boom"})
    (tmp_path / "failed" / "stats.json").write_text(json.dumps({"fingerprint": "f1", "committed": 3, "units": 4}))
    with pytest.raises(UnfinishedRunError, match=r"^OUT: its run stopped with 1 failed input\(s\); 3 of 4 unit\(s\) "
                       r"committed, so its data/ holds part of the dataset only\. Run the same `tamis run` command "
                       r"again to finish it, or pass --allow-incomplete"):
        check_finished(fs, root, "OUT", allow_incomplete=False)
    warning = check_finished(fs, root, "OUT", allow_incomplete=True)
    assert warning == ("OUT: its run stopped with 1 failed input(s); 3 of 4 unit(s) committed; using the shards "
                       "written so far (--allow-incomplete)")
    (tmp_path / "failed" / "stats.json").write_text(json.dumps({"fingerprint": "f0", "committed": 4, "units": 4}))
    assert unfinished_reason(fs, root) == "its run stopped with 1 failed input(s)"  # an earlier run's stats

    root = str(tmp_path / "running")
    _manifest(fs, root, status="running")
    with OutputLock(root):
        assert unfinished_reason(fs, root).startswith("its run is still writing it (started ")
    gone = subprocess.run(  # a process that has ended: its lock is left behind, as by a killed driver
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock = {"host": OutputLock(root).holder.host, "pid": int(gone.stdout), "process_start": None, "since": "then"}
    (tmp_path / "running" / "_lock.json").write_text(json.dumps(lock))
    assert unfinished_reason(fs, root) == "its run stopped before it finished (interrupted, or its driver was lost)"

    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "manifest.json").write_text("{not json")
    assert unfinished_reason(fs, str(tmp_path / "bad")) == "its manifest.json cannot be read (JSONDecodeError)"


def test_on_an_object_store_a_running_manifest_may_be_a_live_run_or_a_stopped_one() -> None:
    fs = MemoryFileSystem()
    _manifest(fs, "/bucket/out", status="running")
    assert unfinished_reason(fs, "/bucket/out") == ("its manifest says its run is running (it may still be, or it "
                                                   "was stopped before it finished)")
    _manifest(fs, "/bucket/out", status="complete")
    assert unfinished_reason(fs, "/bucket/out") is None


def test_the_run_an_input_belongs_to_is_the_deepest_folder_with_a_manifest(tmp_path) -> None:
    """A run's output under a folder named data/ (a mount, say) is still found as itself, and a glob of its
    shards finds it too; a folder with no manifest above it belongs to no run."""
    run = tmp_path / "data" / "run"
    (run / "data" / "CC-MAIN-2024-22").mkdir(parents=True)
    (run / "manifest.json").write_text("{}")
    fs = LocalFileSystem()
    assert find_run_root(fs, str(run)) == str(run)
    assert find_run_root(fs, f"{run}/data/CC-MAIN-2024-22/part-1.parquet") == str(run)
    assert find_run_root(fs, f"{run}/data/**/*.parquet") == str(run)
    assert find_run_root(fs, str(tmp_path / "data")) is None
