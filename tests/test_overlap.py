"""An output apart from the shards a command reads (tamis.engine.overlap): where they meet, the command stops
before it writes anything, naming both."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from tamis.cli.main import cli
from tamis.engine.overlap import OverlapError, check_apart
from tamis.tokenize.stage import TokenizeError, TokenizeOptions, run_tokenize


@pytest.fixture
def run_output(tmp_path: Path) -> Path:
    """A finished run's output, as far as the check looks: its manifest and one shard under data/."""
    out = tmp_path / "out"
    (out / "data" / "CC-MAIN-2024-22").mkdir(parents=True)
    (out / "manifest.json").write_text(json.dumps({"pipeline": {"name": "fineweb"}, "status": "complete"}))
    pq.write_table(pa.table({"id": ["a", "b"], "text": ["one document", "another document"]}),
                   out / "data" / "CC-MAIN-2024-22" / "part-0.parquet")
    return out


@pytest.mark.parametrize(("given", "output"), [
    ("out", "out"), ("out/data/**/*.parquet", "out"), ("out/data/CC-MAIN-2024-22/part-0.parquet", "out"),
    ("out", "out/data"), ("out", "out/data/CC-MAIN-2024-22"), ("out/data", "out/data/sub"), ("plain", "plain"),
    ("x/data/*.parquet", "x"),
])
def test_outputs_that_meet_their_inputs_are_refused(run_output: Path, given: str, output: str) -> None:
    root = run_output.parent
    with pytest.raises(OverlapError, match="would overwrite or mix with the shards it reads"):
        check_apart(str(root / output), [str(root / given)])


@pytest.mark.parametrize(("given", "output"), [
    ("out", "tokens"), ("out", "out/tokens"), ("out/data/CC-MAIN-2024-22/part-0.parquet", "elsewhere/out"),
    ("plain/part-0.parquet", "plain/tokens"),
])
def test_outputs_apart_from_their_inputs_are_accepted(run_output: Path, given: str, output: str) -> None:
    root = run_output.parent
    check_apart(str(root / output), [str(root / given)])


def test_dedup_tokenize_and_sample_into_their_own_inputs_write_nothing(run_output: Path, tmp_path: Path) -> None:
    """Before: `tamis dedup 'out/data/**/*.parquet' -o out` named each final shard as its input and replaced
    it; `tamis sample out -o out` overwrote each shard with its sample; tokenize wrote its manifest over the
    run's (and with --overwrite deleted the run's commit markers)."""
    shard = run_output / "data" / "CC-MAIN-2024-22" / "part-0.parquet"
    before = sorted(p.relative_to(run_output) for p in run_output.rglob("*")), shard.read_bytes()
    for args in (["dedup", f"{run_output}/data/**/*.parquet", "--output", str(run_output)],
                 ["sample", str(run_output), "--output", str(run_output)]):
        refused = CliRunner().invoke(cli, args, env={"COLUMNS": "300"})
        assert refused.exit_code == 2 and "would overwrite or mix with the shards it reads" in refused.output, \
            refused.output
    with pytest.raises(TokenizeError, match="would overwrite or mix with the shards it reads"):
        run_tokenize([str(run_output)], TokenizeOptions(str(run_output)), overwrite=True, show_progress=False)
    assert (sorted(p.relative_to(run_output) for p in run_output.rglob("*")), shard.read_bytes()) == before


def test_a_run_whose_inputs_are_under_its_output_data_is_refused(tmp_path: Path) -> None:
    """WARC files kept under OUTPUT/data/ would sit among the shards, and `--overwrite` deletes data/."""
    import shutil

    from conftest import WARC_DIR

    from tamis.engine.runner import OutputConflictError, run_pipeline
    from tamis.pipeline.spec import parse_pipeline

    inputs = tmp_path / "out" / "data"
    inputs.mkdir(parents=True)
    shutil.copy(WARC_DIR / "cc-main-2024-22_whirlwind.warc.gz", inputs / "crawl.warc.gz")
    with pytest.raises(OutputConflictError, match="would overwrite or mix with the shards it reads"):
        run_pipeline(parse_pipeline({"steps": [{"step": "trafilatura"}]}), [f"{inputs}/*.warc.gz"],
                     str(tmp_path / "out"), overwrite=True, show_progress=False)
    assert sorted(p.name for p in (tmp_path / "out").rglob("*")) == ["crawl.warc.gz", "data"]


def test_readers_refuse_the_output_of_a_run_they_do_not_read(run_output: Path, tmp_path: Path) -> None:
    """Before: `tamis dedup OTHER -o out` wrote its final shards among (or over) out's, and `tamis tokenize OTHER
    -o out --overwrite` deleted out's manifest and commit markers: out's dataset changed without a word."""
    other = tmp_path / "other"
    (other / "data" / "CC-MAIN-2024-22").mkdir(parents=True)
    pq.write_table(pa.table({"id": ["c"], "text": ["a third document"]}),
                   other / "data" / "CC-MAIN-2024-22" / "part-0.parquet")
    before = sorted(p.relative_to(run_output) for p in run_output.rglob("*"))
    for target in (run_output, run_output / "data" / "CC-MAIN-2024-22"):
        for args in (["dedup", str(other), "--output", str(target)], ["sample", str(other), "--output", str(target)]):
            refused = CliRunner().invoke(cli, args, env={"COLUMNS": "300"})
            assert refused.exit_code == 2 and "of a `tamis run`" in refused.output, refused.output
        with pytest.raises(TokenizeError, match=r"(is the output|lies inside the data/ folder) of a `tamis run`"):
            run_tokenize([str(other)], TokenizeOptions(str(target)), overwrite=True, show_progress=False)
    assert sorted(p.relative_to(run_output) for p in run_output.rglob("*")) == before


def test_a_readers_own_earlier_output_is_not_a_runs(tmp_path: Path) -> None:
    """A tokenize output has a manifest.json too (without a pipeline): writing into it again is its resume."""
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    (tokens / "manifest.json").write_text(json.dumps({"fingerprint": "f", "status": "running"}))
    check_apart(str(tokens), [str(tmp_path / "shards")])
    (tokens / "manifest.json").write_text(json.dumps({"pipeline": {}, "status": "complete"}))
    with pytest.raises(OverlapError, match="is the output of a `tamis run`"):
        check_apart(str(tokens), [str(tmp_path / "shards")])
