"""A full disk or an output that cannot be written: one line and a clear exit status, never a traceback.

- An `--output` under a folder this user cannot write (or on a read-only file system) is refused before
  anything starts, exit 2, for every command that writes: tests/test_pipeline_spec.py.
- A disk that fills up during `tamis run` (a real tmpfs, where this machine lets the tests mount one): exit 1
  with one line saying that committed work is kept; after space is freed the same command finishes the rest
  with the same totals as the run that never ran out of space.
- A task that meets a full disk stops the run: it is listed as failed, no other task starts (each would read
  its whole input and then fail at its first write), the same one line, exit 1; the rerun finishes the rest.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import REPO, WARC_DIR, said_by, tamis_cli

from tamis.cli.errors import storage_failure
from tamis.engine.output_lock import LOCK_NAME
from tamis.engine.runner import run_pipeline
from tamis.io.errors import storage_full_errno
from tamis.pipeline.spec import load_pipeline


def test_the_one_line_for_storage_errors() -> None:
    full = storage_failure(OSError(errno.ENOSPC, "No space left on device"))
    assert full == ("No space left on device. The work committed so far is kept; free some space and run the "
                    "same command again")
    denied = storage_failure(PermissionError(errno.EACCES, "Permission denied", "/data/out/stats.json"))
    assert denied is not None and denied.startswith("Permission denied: /data/out/stats.json. ")
    assert storage_failure(OSError(errno.ECONNRESET, "reset")) is None  # not the storage's: left as it was


def test_a_full_storage_is_recognised_through_what_wraps_it() -> None:
    class Wrapped(RuntimeError):  # how Ray hands a task's error to the driver: the original as `cause`
        def __init__(self, cause: BaseException):
            super().__init__("task failed")
            self.cause = cause

    assert storage_full_errno(Wrapped(OSError(errno.ENOSPC, "No space left on device"))) == errno.ENOSPC
    # Arrow's writers: an OSError without an errno, the system's text in its message
    arrow = OSError(f"Error writing bytes to file. Detail: [errno {errno.EDQUOT}] {os.strerror(errno.EDQUOT)}")
    assert arrow.errno is None and storage_full_errno(arrow) == errno.EDQUOT
    assert storage_full_errno(OSError(errno.EROFS, os.strerror(errno.EROFS))) == errno.EROFS
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as inner:
            raise RuntimeError("commit failed") from inner
    except RuntimeError as outer:
        assert storage_full_errno(outer) == errno.ENOSPC
    assert storage_full_errno(PermissionError(errno.EACCES, "Permission denied")) is None  # may be one input's
    assert storage_full_errno(Wrapped(ValueError("bad page"))) is None


def _mount_tmpfs(folder: Path, size: str) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True)
    return done.returncode == 0


def _tamis_run(output: Path, home: Path) -> subprocess.CompletedProcess:
    return tamis_cli(home, "run", str(REPO / "pipelines" / "fineweb.yaml"), "--input",
                     str(WARC_DIR / "dolma_sample-000*.warc.gz"), "--output", str(output), "--workers", "1",
                     "--no-progress", "--no-plugins")


def _rerun_here(output: Path, skipped: int | None = None) -> dict:
    """The same run as `_tamis_run`, in this process on the session's Ray; its totals from stats.json.

    Why not the command: the reruns that must finish check what the runner commits, not what the command
    prints, and each `tamis run` starts and stops a Ray of its own (6.3–7.8 s of the 12.8–15.7 s such a run
    took here on 2026-12-08)."""
    result = run_pipeline(load_pipeline(REPO / "pipelines" / "fineweb.yaml"),
                          [str(WARC_DIR / "dolma_sample-000*.warc.gz")], str(output), workers=1,
                          show_progress=False)
    assert result.ok and result.storage_error is None, result.failed
    if skipped is not None:
        assert len(result.skipped) == skipped, result.skipped
    assert not (output / LOCK_NAME).exists()  # the run let go of the output
    return json.loads((output / "stats.json").read_text())["totals"]


def _leave_free(folder: Path, kib: int) -> Path:
    """A file that takes all but `kib` KiB of the file system under `folder`."""
    filler = folder / "filler"
    fs = os.statvfs(folder)
    with open(filler, "wb") as handle:
        os.posix_fallocate(handle.fileno(), 0, fs.f_bavail * fs.f_frsize - kib * 1024)
    return filler


@pytest.mark.slow
def test_a_full_disk_in_every_stage_is_one_line_and_the_rerun_finishes(ray_session, tmp_path: Path) -> None:
    """On a real 8 MiB tmpfs, after a clean run whose totals every rerun below must give:

    - the driver: the clean run's stats.json removed and the tmpfs shrunk to what is left plus two pages, the
      rerun skips every committed input and runs out of space writing the run's own files (before: a
      traceback);
    - the process stage, into a new output with 24 KiB left: the manifest fits, the first task's shards do
      not. The task fails, the other input is not started (before: it ran and failed the same way);
    - the dedup stage (its outputs removed, 16 KiB left): a dedup task meets the full disk, the same one line
      (before: a DedupError traceback);
    - `tamis tokenize` of the output with 8 KiB left: the same one line.

    After each, space is freed and the same run finishes with the clean run's totals. The failures run as the
    command a user types (their exit status and line are what is tested); the clean run and the reruns that
    finish run in this process, on the session's Ray (`_rerun_here`), the runner being the same code."""
    small = tmp_path / "small"
    if not _mount_tmpfs(small, "8m"):
        pytest.skip("this machine does not let the tests mount a tmpfs")
    home = tmp_path / "home"
    home.mkdir()
    counts = ("records", "html_docs", "kept", "tokens", "bytes_read")
    one_line = "The work committed so far is kept; free some space and run the same command again"
    try:
        output = small / "clean"
        totals = _rerun_here(output)
        assert totals["kept"] > 0

        (output / "stats.json").unlink()
        fs = os.statvfs(small)
        used = (fs.f_blocks - fs.f_bfree) * fs.f_frsize
        subprocess.run(["mount", "-o", f"remount,size={used // 1024 + 8}k", str(small)], check=True)
        full = _tamis_run(output, home)
        said = said_by(full)
        assert full.returncode == 1, said
        assert f"No space left on device. {one_line}" in said and "Traceback" not in said, full.stderr[-3000:]
        subprocess.run(["mount", "-o", "remount,size=8m", str(small)], check=True)
        again = _rerun_here(output, skipped=2)
        assert {key: again[key] for key in counts} == {key: totals[key] for key in counts}
        shutil.rmtree(output)

        filler = _leave_free(small, 24)
        output = small / "out"
        full = _tamis_run(output, home)
        said = said_by(full)
        assert full.returncode == 1, said
        assert said.count("failed ") == 1 and "stopping: No space left on device. No more tasks start (1 input(s) " \
            "left)" in said, said
        assert one_line in said and "Traceback" not in said, full.stderr[-3000:]
        assert not (output / LOCK_NAME).exists()  # the failed run let go of the output
        filler.unlink()
        again = _rerun_here(output, skipped=0)
        assert {key: again[key] for key in counts} == {key: totals[key] for key in counts}

        for folder in ("dedup", "data"):  # the process stage stays committed: the rerun starts at dedup
            shutil.rmtree(output / folder)
        (output / "stats.json").unlink()
        filler = _leave_free(small, 16)
        full = _tamis_run(output, home)
        said = said_by(full)
        assert full.returncode == 1, said
        assert "error: No space left on device (dedup task signatures/" in said and one_line in said, said
        assert "DedupError" not in said and "retries remaining" not in said, said  # not retried: fails the same
        filler.unlink()
        again = _rerun_here(output, skipped=2)
        assert {key: again[key] for key in counts} == {key: totals[key] for key in counts}

        filler = _leave_free(small, 8)
        tokenize = tamis_cli(home, "tokenize", str(output), "--output", str(small / "tokens"), "--no-progress")
        said = said_by(tokenize)
        assert tokenize.returncode == 1 and f"error: No space left on device. {one_line}" in said, said
    finally:
        subprocess.run(["umount", str(small)], capture_output=True)
