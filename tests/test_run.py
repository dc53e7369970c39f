"""End-to-end process stage on a real local Ray: schema, token counts, resume, determinism."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import REPO, SAMPLE_DIR, WARC_DIR, warcio_documents

from tamis.annotate.tokens import gpt2_encoding
from tamis.engine.runner import OutputConflictError, run_pipeline
from tamis.io.parquet import FINEWEB_SCHEMA
from tamis.pipeline.spec import load_pipeline, parse_pipeline
from tamis.stats.load import load_run

BASIC = {
    "name": "basic",
    "steps": [
        {"step": "trafilatura"},
        {"step": "language_id", "languages": ["en"], "threshold": 0.65},
        {"step": "token_count"},
    ],
    "removed": {"mode": "full"},
}
SAMPLE = str(SAMPLE_DIR / "*.warc.gz")


def read_output(output: Path) -> list[dict]:
    rows = []
    for path in sorted(output.glob("data/*/*.parquet")):
        rows += pq.read_table(path).to_pylist()
    return sorted(rows, key=lambda row: row["id"])


@pytest.fixture(scope="module")
def sample_run(ray_session, tmp_path_factory):
    output = tmp_path_factory.mktemp("run") / "out"
    result = run_pipeline(parse_pipeline(BASIC), [SAMPLE], str(output), show_progress=False)
    return output, result


def test_shards_have_fineweb_schema_and_english_text(sample_run) -> None:
    output, result = sample_run
    assert result.ok and len(result.completed) == 4
    shards = sorted(output.glob("data/*/*.parquet"))
    assert shards
    for shard in shards:
        table = pq.read_table(shard)
        assert table.schema.equals(FINEWEB_SCHEMA, check_metadata=False)
        assert table.num_rows > 0
        assert pq.ParquetFile(shard).metadata.row_group(0).column(0).compression == "ZSTD"
    rows = read_output(output)
    assert all(row["text"].strip() for row in rows)
    assert {row["language"] for row in rows} == {"en"}
    assert all(row["language_score"] > 0.65 for row in rows)
    assert len({row["id"] for row in rows}) == len(rows)
    assert {Path(row["file_path"]).name for row in rows} <= {p.name for p in SAMPLE_DIR.glob("*.warc.gz")}


def test_token_counts_equal_tiktoken_gpt2(sample_run) -> None:
    output, result = sample_run
    encoding = gpt2_encoding()
    rows = read_output(output)
    assert [row["token_count"] for row in rows] == [len(encoding.encode_ordinary(row["text"])) for row in rows]
    assert result.totals["tokens"] == sum(row["token_count"] for row in rows)


def test_counters_add_up(sample_run) -> None:
    output, result = sample_run
    rows = read_output(output)
    steps = result.counters.steps
    # every HTML page of the sample, as warcio counts them (54: 22 + 15 + 16 + 1)
    assert steps["warc"].docs_out == sum(len(warcio_documents(p)) for p in SAMPLE_DIR.glob("*.warc.gz"))
    assert steps["token_count"].docs_out == len(rows) == result.totals["kept"]
    for name in ("trafilatura", "language_id"):
        assert steps[name].docs_in - steps[name].docs_out == sum(steps[name].dropped.values())
    removed = pq.read_table(next(output.glob("removed/language_id/*.parquet"))).to_pylist()
    assert {row["reason"] for row in removed} <= {"other_language", "below_threshold"}


def test_rerun_skips_committed_inputs(sample_run) -> None:
    output, first = sample_run
    shard_times = {p: p.stat().st_mtime_ns for p in output.glob("data/*/*.parquet")}
    again = run_pipeline(parse_pipeline(BASIC), [SAMPLE], str(output), show_progress=False)
    assert len(again.skipped) == 4 and not again.completed
    assert {p: p.stat().st_mtime_ns for p in output.glob("data/*/*.parquet")} == shard_times
    assert again.totals["kept"] == first.totals["kept"]


def test_rerun_redoes_only_uncommitted_input(ray_session, tmp_path) -> None:
    output = tmp_path / "out"
    first = run_pipeline(parse_pipeline(BASIC), [SAMPLE], str(output), show_progress=False)
    marker = sorted(output.glob("_commits/process/*.json"))[0]
    marker.unlink()
    again = run_pipeline(parse_pipeline(BASIC), [SAMPLE], str(output), show_progress=False)
    assert len(again.completed) == 1 and len(again.skipped) == 3
    assert again.totals == {**first.totals, "seconds": again.totals["seconds"],
                            "task_cpu_seconds": again.totals["task_cpu_seconds"]}


def test_same_output_with_one_and_two_workers(ray_session, tmp_path) -> None:
    inputs = [SAMPLE, str(WARC_DIR / "clueweb09-ja_resiliparse_excerpt.warc.gz")]
    one = run_pipeline(parse_pipeline(BASIC), inputs, str(tmp_path / "one"), workers=1, show_progress=False)
    two = run_pipeline(parse_pipeline(BASIC), inputs, str(tmp_path / "two"), workers=2, show_progress=False)
    assert one.ok and two.ok
    assert read_output(tmp_path / "one") == read_output(tmp_path / "two")
    assert one.counters.to_dict().keys() == two.counters.to_dict().keys()
    for name in one.counters.steps:
        assert one.counters.steps[name].dropped == two.counters.steps[name].dropped


def test_one_input_on_two_cpus_gives_the_one_worker_output(ray_session, tmp_path) -> None:
    """With fewer inputs than CPUs each task takes the spare CPUs as extraction children
    (tamis.extract.speculative); the output is the one-worker output, row for row."""
    from tamis.engine.runner import task_cpus

    assert (task_cpus(1, None), task_cpus(1, 1), task_cpus(2, None), task_cpus(3, None)) == (2, 1, 1, 1)
    inputs = [str(WARC_DIR / "dolma_sample-0000.warc.gz")]
    one = run_pipeline(parse_pipeline(BASIC), inputs, str(tmp_path / "one"), workers=1, show_progress=False)
    spread = run_pipeline(parse_pipeline(BASIC), inputs, str(tmp_path / "spread"), show_progress=False)
    assert one.ok and spread.ok
    rows = read_output(tmp_path / "one")
    assert rows and rows == read_output(tmp_path / "spread")
    for name in one.counters.steps:
        assert one.counters.steps[name].dropped == spread.counters.steps[name].dropped


def test_changed_pipeline_refuses_to_mix_outputs(sample_run) -> None:
    output, _ = sample_run
    changed = {**BASIC, "steps": [{"step": "trafilatura"}, {"step": "token_count"}]}
    with pytest.raises(OutputConflictError, match="different pipeline"):
        run_pipeline(parse_pipeline(changed), [SAMPLE], str(output), show_progress=False)


def test_damaged_inputs_never_fail_the_job(ray_session, tmp_path) -> None:
    source = (WARC_DIR / "dolma_sample-0000.warc.gz").read_bytes()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "truncated.warc.gz").write_bytes(source[: len(source) // 2])
    (bad / "empty.warc.gz").write_bytes(b"")
    (bad / "garbage.warc.gz").write_bytes(os.urandom(50_000))
    flipped = bytearray(source)
    flipped[len(source) // 3] ^= 0xFF
    (bad / "flipped.warc.gz").write_bytes(bytes(flipped))
    result = run_pipeline(parse_pipeline(BASIC), [str(bad / "*.warc.gz")], str(tmp_path / "out"),
                          show_progress=False)
    assert result.ok and len(result.completed) == 4
    dropped = result.counters.steps["warc"].dropped
    assert sum(n for reason, n in dropped.items() if reason != "not_html") >= 3
    assert result.totals["kept"] > 0


def test_recipe_file_loads() -> None:
    spec = load_pipeline(REPO / "pipelines" / "fineweb.yaml")
    assert [s.step for s in spec.steps][:1] != []
    language = next(s for s in spec.steps if s.step == "language_id")
    assert language.params["languages"] == ["en"] and language.params["threshold"] == 0.65


def test_reader_only_pipeline_writes_every_html_document(ray_session, tmp_path) -> None:
    """`steps: []`: the WARC reader's documents go to the writer unextracted (text None); the task must commit
    them, not crash observing the text it does not have."""
    source = SAMPLE_DIR / "dolma_sample-0000.warc.gz"
    output = tmp_path / "out"
    result = run_pipeline(parse_pipeline({"name": "reader-only", "steps": []}), [str(source)], str(output),
                          show_progress=False)
    assert result.ok, result.failed
    html = warcio_documents(source)
    rows = read_output(output)
    assert len(rows) == result.totals["kept"] == result.totals["html_docs"] == len(html) > 0
    assert sorted(row["id"] for row in rows) == sorted(record_id for record_id, _, _ in html)
    assert all(row["text"] is None for row in rows)
    run = load_run(str(output), prefer_merged=False)
    assert run.totals()["kept"] == len(rows)
    # no text, so no length or word distributions of it
    assert not [key for key in run.stats.histograms.histograms if key.endswith(("/text_chars", "/words"))]
