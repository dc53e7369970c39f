"""Inputs at scale: byte-range splitting, Common Crawl paths files, transient storage errors."""

from __future__ import annotations

import gzip
from pathlib import Path

import fsspec
import pyarrow.parquet as pq
import pytest
from conftest import SAMPLE_DIR, WARC_DIR, tamis_cli
from fsspec.implementations.local import LocalFileSystem

from tamis.engine.plan import WorkUnit, plan_units
from tamis.engine.runner import OutputConflictError, run_pipeline
from tamis.engine.task import TaskOptions, process_input
from tamis.io.retry import is_transient, with_retries
from tamis.pipeline.spec import parse_pipeline

PIPELINE = {"steps": [{"step": "trafilatura"}, {"step": "token_count"}]}
# state blocks of 400 kB (64 MiB by default): ranges are cut on their edges, so this 2.6 MB file can be split.
# resiliparse, not trafilatura: what is tested is the reading; trafilatura's state across ranges has its own
# test (tests/test_big_warc_split.py); 21.6 s with trafilatura, 5.1 s with resiliparse (2026-12-08).
SPLIT_PIPELINE = {"steps": [{"step": "resiliparse"}, {"step": "token_count"}],
                  "reader": {"step": "warc", "state_block_bytes": 400_000}}
IA = WARC_DIR / "ia-2008-heritrix_archive-org_sample.warc.gz"


def test_plan_tiles_large_files_exactly() -> None:
    units = plan_units(["a", "b"], {"a": 10_000, "b": 100}, max_task_bytes=3_000)
    ranges = [(u.start, u.end) for u in units if u.path == "a"]
    assert len(ranges) == 4 and ranges[0][0] == 0 and ranges[-1][1] == 10_000
    assert all(end == next_start for (_, end), (next_start, _) in zip(ranges, ranges[1:], strict=False))
    assert all(end - start <= 3_000 for start, end in ranges)
    assert [u for u in units if u.path == "b"] == [WorkUnit("b")]
    assert len({u.unit_id for u in units}) == len(units)


def test_split_input_reads_every_record_once(ray_session, tmp_path: Path) -> None:
    whole = run_pipeline(parse_pipeline(SPLIT_PIPELINE), [str(IA)], str(tmp_path / "whole"), show_progress=False)
    split = run_pipeline(parse_pipeline(SPLIT_PIPELINE), [str(IA)], str(tmp_path / "split"), max_task_bytes=400_000,
                         show_progress=False)
    assert len(split.completed) == -(-IA.stat().st_size // 400_000) == 7
    assert split.counters.steps["warc"].docs_out == whole.counters.steps["warc"].docs_out
    assert split.counters.steps["warc"].dropped == whole.counters.steps["warc"].dropped
    shards = (tmp_path / "split").glob("data/*/*.parquet")
    ids = [row["id"] for path in shards for row in pq.read_table(path).to_pylist()]
    assert len(ids) == len(set(ids)) == split.totals["kept"]
    again = run_pipeline(parse_pipeline(SPLIT_PIPELINE), [str(IA)], str(tmp_path / "split"), max_task_bytes=400_000,
                         show_progress=False)
    assert len(again.skipped) == 7 and not again.completed
    # a resume without the option reuses the recorded split; another one is refused, naming the option
    resumed = run_pipeline(parse_pipeline(SPLIT_PIPELINE), [str(IA)], str(tmp_path / "split"), show_progress=False)
    assert len(resumed.skipped) == 7 and not resumed.completed and resumed.max_task_bytes == 400_000
    with pytest.raises(OutputConflictError, match=r"--max-task-bytes: .* split at 400000 .* --max-task-bytes 400000"):
        run_pipeline(parse_pipeline(SPLIT_PIPELINE), [str(IA)], str(tmp_path / "split"), max_task_bytes=800_000,
                     show_progress=False)


def test_common_crawl_paths_file(ray_session, tmp_path: Path) -> None:
    names = sorted(p.name for p in SAMPLE_DIR.glob("*.warc.gz"))
    listing = tmp_path / "warc.paths.gz"
    listing.write_bytes(gzip.compress(("\n".join(f"examples/data/{n}" for n in names) + "\n").encode()))
    base = str(SAMPLE_DIR.parent.parent)
    result = run_pipeline(parse_pipeline(PIPELINE), [str(listing)], str(tmp_path / "out"), paths_base=base,
                          show_progress=False)
    assert sorted(Path(p).name for p in result.inputs) == names
    assert result.ok and len(result.completed) == len(names)


def test_a_failed_inputs_line_names_its_whole_path_in_a_log(ray_session, tmp_path: Path, capsys,
                                                            monkeypatch) -> None:
    """Where stderr is not a terminal (a log, CI), the run's lines are not folded at the console's width:
    the path in `failed PATH: …` is the whole path, on one line, so that it can be copied from the log."""
    monkeypatch.setenv("COLUMNS", "80")
    sample = sorted(SAMPLE_DIR.glob("*.warc.gz"))[0]
    missing = "crawl-data/CC-MAIN-2024-22/segments/1715971057216.39/warc/" + "x" * 40 + ".warc.gz"
    listing = tmp_path / "warc.paths"
    listing.write_text(f"examples/data/{sample.name}\n{missing}\n")
    result = run_pipeline(parse_pipeline(PIPELINE), [str(listing)], str(tmp_path / "out"),
                          paths_base=str(SAMPLE_DIR.parent.parent), show_progress=False)
    whole = str(SAMPLE_DIR.parent.parent / missing)
    assert list(result.failed) == [whole] and len(whole) > 80
    said = capsys.readouterr().err.splitlines()
    assert any(said_line.startswith(f"failed {whole}: ") for said_line in said), said


def test_a_workers_warning_reaches_a_log_without_colour_codes(tmp_path: Path) -> None:
    """`tamis run` from a bare shell into a log: the reader's warning for a truncated file, forwarded by Ray from
    the worker, arrives with its `(process_input pid=…)` prefix and no ANSI colour codes around it."""
    whole = (WARC_DIR / "dolma_sample-0000.warc.gz").read_bytes()
    (tmp_path / "half.warc.gz").write_bytes(whole[:len(whole) // 2])
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text("steps:\n  - step: resiliparse\n  - step: token_count\n")
    home = tmp_path / "home"
    home.mkdir()
    done = tamis_cli(home, "run", str(pipeline), "--input", str(tmp_path / "half.warc.gz"), "--output",
                     str(tmp_path / "out"), "--no-progress", "--no-plugins")
    assert done.returncode == 0, done.stderr[-3000:]
    warned = [line for line in done.stderr.splitlines() if "half.warc.gz: truncated near byte" in line]
    assert warned and "(process_input pid=" in warned[0], done.stderr[-3000:]
    assert "\x1b" not in done.stdout + done.stderr, warned


class FlakyFileSystem(LocalFileSystem):
    """A local filesystem whose first opens of each file time out, like a throttled object store."""

    protocol = ("flaky",)
    failures_left: dict[str, int] = {}

    def _open(self, path, mode="rb", **kwargs):
        left = self.failures_left.get(path, 0)
        if left:
            self.failures_left[path] = left - 1
            raise TimeoutError(f"read timed out on {path}")
        return super()._open(path, mode, **kwargs)


@pytest.fixture
def flaky_fs():
    fsspec.register_implementation("flaky", FlakyFileSystem, clobber=True)
    FlakyFileSystem.failures_left.clear()
    yield FlakyFileSystem
    FlakyFileSystem.failures_left.clear()


def test_transient_errors_are_retried_then_the_unit_succeeds(flaky_fs, tmp_path: Path) -> None:
    source = str(SAMPLE_DIR / "dolma_sample-0001.warc.gz")
    flaky_fs.failures_left[source] = 2
    spec = parse_pipeline(PIPELINE)
    options = TaskOptions(output=str(tmp_path / "out"), fingerprint=spec.fingerprint(), io_retry_delay=0.01)
    summary = process_input(spec, WorkUnit("flaky://" + source), options)
    assert len(summary["io_retries"]) == 2 and "timed out" in summary["io_retries"][0]
    assert summary["docs_kept"] > 0


def test_permanent_errors_are_not_retried(flaky_fs, tmp_path: Path) -> None:
    spec = parse_pipeline(PIPELINE)
    options = TaskOptions(output=str(tmp_path / "out"), fingerprint=spec.fingerprint(), io_retry_delay=0.01)
    with pytest.raises(FileNotFoundError):
        process_input(spec, WorkUnit("flaky://" + str(tmp_path / "missing.warc.gz")), options)


def test_transient_classification() -> None:
    class SlowDown(Exception):
        pass

    assert is_transient(TimeoutError())
    assert is_transient(OSError(104, "Connection reset by peer"))
    assert is_transient(SlowDown("Please reduce your request rate"))
    assert is_transient(RuntimeError("wrapped")) is False
    try:
        try:
            raise ConnectionError("reset")
        except ConnectionError as inner:
            raise RuntimeError("upload failed") from inner
    except RuntimeError as outer:
        assert is_transient(outer)
    assert not is_transient(FileNotFoundError("nope"))
    assert not is_transient(PermissionError("denied"))
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise TimeoutError()
        return "ok"

    assert with_retries(flaky, attempts=4, base_delay=0.001) == "ok" and len(calls) == 3
    with pytest.raises(TimeoutError):
        with_retries(lambda: (_ for _ in ()).throw(TimeoutError()), attempts=2, base_delay=0.001)


_WITHOUT_S3FS = ("import sys; sys.modules['s3fs'] = None; from tamis.cli.main import main; "
                 "sys.argv = ['tamis', *sys.argv[1:]]; main()")


def test_an_object_store_without_its_library_is_one_line_naming_the_extra(tmp_path: Path) -> None:
    """`s3://` without s3fs (tamis installed without its `s3` extra): exit 2 and the extra to install, for an
    input, an output or tokenize's input, with credentials kept out; it was an ImportError traceback."""
    import os
    import subprocess
    import sys

    from conftest import REPO

    pipeline = str(REPO / "pipelines" / "fineweb.yaml")
    env = {"HOME": os.environ.get("HOME", "/root"), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    for args in (["run", pipeline, "--input", "s3://bucket/crawl/*.warc.gz", "--output", str(tmp_path / "o")],
                 ["run", pipeline, "--input", str(SAMPLE_DIR / "*.warc.gz"), "--output",
                  "s3://KEYID:s3cr3t-value@bucket/out"],
                 ["tokenize", "s3://bucket/run", "--output", str(tmp_path / "t")]):
        done = subprocess.run([sys.executable, "-c", _WITHOUT_S3FS, *args], env=env, capture_output=True, text=True,
                              timeout=120)
        flat = " ".join(done.stderr.split())
        assert done.returncode == 2, done.stderr[-2000:]
        assert "Install s3fs" in flat and "pip install 'tamis[s3]'" in flat and "Traceback" not in flat
        assert "s3cr3t-value" not in done.stdout + done.stderr
    assert not (tmp_path / "o").exists() and not (tmp_path / "t").exists()
