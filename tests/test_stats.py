"""`tamis stats` / `tamis inspect`: the stats of a run equal counts taken independently from its files.

Runs FineWeb's recipe on the demo sample and on a corpus made by shared/tools/make_warc_corpus.py, then checks
the merged stats against the Parquet shards (rows, tokens, languages) and the removed-document files (drops
per step and reason), on a finished run, on a run with an uncommitted input (PARTIAL), and after it resumed.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner
from conftest import REPO, SAMPLE_DIR, SHARED

from tamis.cli.main import cli
from tamis.engine import layout
from tamis.engine.runner import run_pipeline
from tamis.io.storage import read_json, write_json
from tamis.pipeline.spec import load_pipeline, parse_pipeline
from tamis.stats.load import load_run, to_json

SAMPLE = str(SAMPLE_DIR / "*.warc.gz")
MAKE_CORPUS = SHARED.parent / "tools" / "make_warc_corpus.py"
PAGES = SHARED / "extraction" / "scrapinghub_aeb" / "html"
FILTERS = ("gopher_repetition", "gopher_quality", "c4_quality", "fineweb_quality")


def fineweb(dedup: bool = True):
    """The recipe; without dedup, the process stage's shards are the final ones (what the resume test needs:
    with dedup, a run interrupted in its process stage has written no final shard yet)."""
    spec = load_pipeline(REPO / "pipelines" / "fineweb.yaml")
    return spec if dedup else dataclasses.replace(spec, dedup=None)


def independent_counts(output: Path) -> dict:
    """What the files on disk say, without looking at any stats file (committed inputs only)."""
    committed = {p.stem for p in output.glob("_commits/process/*.json")}
    rows = []
    for path in sorted(output.glob("data/*/*.parquet")):
        if path.stem.removeprefix("part-") in committed:
            rows += pq.read_table(path, columns=["id", "token_count", "language"]).to_pylist()
    drops: dict[str, Counter] = {}
    for path in sorted(output.glob("removed/*/*.parquet")):
        if path.stem.removeprefix("part-") in committed:
            reasons = pq.read_table(path, columns=["reason"]).column("reason").to_pylist()
            drops.setdefault(path.parent.name, Counter()).update(reasons)
    return {
        "kept": len(rows),
        "tokens": sum(r["token_count"] for r in rows),
        "languages": Counter(r["language"] for r in rows),
        "drops": drops,
        "ids": len({r["id"] for r in rows}),
    }


def assert_stats_match_files(output: Path, run) -> None:
    files = independent_counts(output)
    totals = run.totals()
    assert files["kept"] > 0
    assert totals["kept"] == files["kept"] == files["ids"]
    assert totals["tokens"] == files["tokens"]
    assert run.stats.languages == files["languages"]
    steps = run.stats.counters.steps
    # every step but the reader records each document it drops, with its reason (removed.mode: full)
    for name in run.steps_order[1:]:
        assert steps[name].dropped == files["drops"].get(name, Counter()), name
    assert sum(sum(c.values()) for c in files["drops"].values()) > 0
    # the last step's output is what was written (the writer, or dedup when the pipeline deduplicates)
    assert run.stats.counters.steps[run.steps_order[-1]].docs_out == files["kept"]
    output_tokens = run.stats.histograms.histograms["output/kept/tokens"]
    assert output_tokens.n == files["kept"] and output_tokens.total == files["tokens"]
    for name in FILTERS:
        kept = run.stats.histograms.histograms.get(f"{name}/kept/text_chars")
        assert kept is not None and kept.n == steps[name].docs_out, name


def counts_only(value):
    """The stats with timings removed: what must not change between a clean and a resumed run."""
    if isinstance(value, dict):
        return {k: counts_only(v) for k, v in value.items()
                if k not in ("seconds", "task_cpu_seconds", "task_wall_seconds", "child_cpu_seconds", "url", "source",
                             "path", "input")}
    if isinstance(value, list):
        return [counts_only(v) for v in value]
    return value


@pytest.fixture(scope="module")
def demo(ray_session, tmp_path_factory):
    output = tmp_path_factory.mktemp("demo") / "out"
    result = run_pipeline(fineweb(), [SAMPLE], str(output), show_progress=False)
    assert result.ok
    return output


def test_demo_stats_equal_counts_from_files(demo) -> None:
    run = load_run(str(demo))
    assert run.source == "stats.json" and not run.partial and run.label.startswith("COMPLETE: 4 of 4")
    assert_stats_match_files(demo, run)
    from_commits = load_run(str(demo), prefer_merged=False)
    assert from_commits.source == "commits"
    assert counts_only(to_json(from_commits)) == counts_only(to_json(run))


def test_filters_publish_feature_histograms(demo) -> None:
    run = load_run(str(demo))
    hist = run.stats.histograms.histograms
    steps = run.stats.counters.steps
    for step, feature in (("fineweb_quality", "line_punct_ratio"), ("fineweb_quality", "char_dup_ratio"),
                          ("gopher_repetition", "dup_line_frac"), ("gopher_quality", "alpha_words_ratio"),
                          ("c4_quality", "kept_lines_ratio")):
        kept = hist[f"{step}/kept/{feature}"]
        assert kept.n == steps[step].docs_out, (step, feature)
        removed = hist.get(f"{step}/removed/{feature}")
        assert (removed.n if removed else 0) <= sum(steps[step].dropped.values())
    # gopher_quality measures every document it sees, so each removed one is in its histograms
    assert hist["gopher_quality/removed/alpha_words_ratio"].n == sum(steps["gopher_quality"].dropped.values())
    assert hist["fineweb_quality/removed/line_punct_ratio"].n == sum(steps["fineweb_quality"].dropped.values())


def test_stats_cli_tables_and_json(demo) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["stats", str(demo), "--shards"], terminal_width=160)
    assert result.exit_code == 0, result.output
    run = load_run(str(demo))
    for text in ("COMPLETE: 4 of 4 inputs committed", "funnel", "top drop reasons", "languages", "shards (",
                 f"{run.totals()['tokens']:,}", "other_language"):
        assert text in result.output
    as_json = runner.invoke(cli, ["stats", str(demo), "--json"])
    data = json.loads(as_json.output)
    assert data["totals"]["kept"] == independent_counts(demo)["kept"]
    assert [row["step"] for row in data["funnel"]] == run.steps_order
    missing = runner.invoke(cli, ["stats", str(demo / "nothing-here")])
    assert missing.exit_code == 1 and "no tamis run" in missing.output


def test_stats_html_goes_where_asked_or_says_why_not(demo, tmp_path) -> None:
    """`--html` into folders that do not exist yet makes them; a file on the way, or a folder as the target,
    is exit 2 naming it (both were tracebacks)."""
    runner = CliRunner()
    page = tmp_path / "new" / "folders" / "report.html"
    made = runner.invoke(cli, ["stats", str(demo), "--html", str(page)])
    assert made.exit_code == 0, made.output
    assert page.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [p.name for p in page.parent.iterdir()] == ["report.html"]  # no temporary file left
    (tmp_path / "taken").write_text("a file")
    blocked = runner.invoke(cli, ["stats", str(demo), "--html", str(tmp_path / "taken" / "report.html")])
    assert blocked.exit_code == 2 and "is a file, not a folder" in blocked.output
    folder = runner.invoke(cli, ["stats", str(demo), "--html", str(tmp_path)])
    assert folder.exit_code == 2 and "is a folder, not a file" in folder.output


def test_inspect_samples_removed_documents_reproducibly(demo) -> None:
    runner = CliRunner()
    args = ["inspect", str(demo), "--step", "gopher_quality", "--sample", "3", "--seed", "7", "--json"]
    first = json.loads(runner.invoke(cli, args).output)
    again = json.loads(runner.invoke(cli, args).output)
    assert first["documents"] and [d["id"] for d in first["documents"]] == [d["id"] for d in again["documents"]]
    removed = [r for p in demo.glob("removed/gopher_quality/*.parquet") for r in pq.read_table(p).to_pylist()]
    for doc in first["documents"]:
        assert doc["origin"] == "gopher_quality" and doc["reason"].startswith("gopher_")
        assert {"alpha_words_ratio", "doc_words"} <= doc["features"].keys()
    dropped = sum(load_run(str(demo)).stats.counters.steps["gopher_quality"].dropped.values())
    assert first["candidates"] == len(removed) == dropped
    by_reason = json.loads(runner.invoke(cli, ["inspect", str(demo), "--reason", "other_language", "--sample", "50",
                                               "--json"]).output)
    assert by_reason["candidates"] == load_run(str(demo)).stats.counters.steps["language_id"].dropped["other_language"]
    assert {d["reason"] for d in by_reason["documents"]} == {"other_language"}
    text = runner.invoke(cli, ["inspect", str(demo), "--step", "language_id", "--sample", "1"], terminal_width=120)
    assert text.exit_code == 0 and "removed by language_id" in text.output


def test_inspect_kept_with_where_on_features(demo) -> None:
    runner = CliRunner()
    out = runner.invoke(cli, ["inspect", str(demo), "--sample", "100", "--where",
                              "token_count > 500 and line_punct_ratio >= 0.12", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    kept = [r for p in demo.glob("data/*/*.parquet") for r in pq.read_table(p).to_pylist()]
    assert 0 < data["candidates"] <= sum(r["token_count"] > 500 for r in kept)
    assert all(d["token_count"] > 500 and d["features"]["line_punct_ratio"] >= 0.12 for d in data["documents"])
    bad = runner.invoke(cli, ["inspect", str(demo), "--where", "no_such_column > 1"])
    assert bad.exit_code == 2 and "no_such_column" in bad.output


def test_inspect_compare_two_runs(demo, tmp_path) -> None:
    # a second run that differs in one threshold (on the two inputs with English pages): what moved shows
    other = tmp_path / "other"
    raw = yaml.safe_load((REPO / "pipelines" / "fineweb.yaml").read_text())
    next(s for s in raw["steps"] if s["step"] == "gopher_quality")["min_alpha_words_ratio"] = 0.7
    inputs = [str(SAMPLE_DIR / f"dolma_sample-000{i}.warc.gz") for i in (0, 1)]
    assert run_pipeline(parse_pipeline(raw), inputs, str(other), show_progress=False).ok
    out = CliRunner().invoke(cli, ["inspect", str(demo), "--step", "gopher_quality", "--sample", "20",
                                   "--compare", str(other), "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    moved = [d for d in data["documents"] if d["other_decision"] != d["decision"]]
    assert moved and all(d["other_decision"] == "kept" or not d["other_decision"].startswith("gopher_quality")
                         for d in moved)
    crosstab = {(row["this"], row["other"]): row["docs"] for row in data["compare"]["crosstab"]}
    assert crosstab.get(("gopher_quality: gopher_below_alpha_threshold", "kept"), 0) >= 1
    assert data["compare"]["common_ids"] == sum(crosstab.values())


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    if not MAKE_CORPUS.exists() or not PAGES.is_dir():
        pytest.skip(f"corpus tool or pages missing under {SHARED.parent}")
    directory = tmp_path_factory.mktemp("corpus")
    subprocess.run([sys.executable, str(MAKE_CORPUS), "--pages", str(PAGES), "--out", str(directory / "c.warc.gz"),
                    "--records", "45", "--files", "3", "--seed", "3"], check=True, stdout=subprocess.DEVNULL)
    files = sorted(directory.glob("*.warc.gz"))
    assert len(files) == 3
    return directory


def test_corpus_stats_after_interrupted_run_resumed(ray_session, corpus, tmp_path) -> None:
    inputs = [str(corpus / "*.warc.gz")]
    clean, resumed = tmp_path / "clean", tmp_path / "resumed"
    assert run_pipeline(fineweb(dedup=False), inputs, str(clean), show_progress=False).ok
    clean_run = load_run(str(clean))
    assert_stats_match_files(clean, clean_run)

    # the same job, interrupted: one input's task died after writing its shard, before its commit marker
    assert run_pipeline(fineweb(dedup=False), inputs, str(resumed), show_progress=False).ok
    markers = sorted(resumed.glob("_commits/process/*.json"))
    markers[1].unlink()
    manifest = read_json(*_local(resumed / "manifest.json"))
    write_json(*_local(resumed / "manifest.json"), {**manifest, "status": "running"})
    partial = load_run(str(resumed))
    assert partial.partial and partial.label.startswith("PARTIAL: 2 of 3 inputs committed (run in progress)")
    assert_stats_match_files(resumed, partial)  # only committed inputs count, the orphan shard does not
    assert partial.totals()["kept"] < clean_run.totals()["kept"]
    out = CliRunner().invoke(cli, ["stats", str(resumed)], terminal_width=160)
    assert "PARTIAL: 2 of 3 inputs committed" in out.output

    again = run_pipeline(fineweb(dedup=False), inputs, str(resumed), show_progress=False)
    assert len(again.completed) == 1 and len(again.skipped) == 2
    for prefer_merged in (True, False):
        resumed_run = load_run(str(resumed), prefer_merged=prefer_merged)
        assert not resumed_run.partial
        assert_stats_match_files(resumed, resumed_run)
        assert counts_only(to_json(resumed_run)) == counts_only(to_json(clean_run))


def _local(path: Path):
    from tamis.io.storage import filesystem

    fs, _ = filesystem(str(path))
    return fs, str(path)


def test_commit_markers_of_another_pipeline_are_ignored(demo, tmp_path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(demo, copy)
    marker = sorted(copy.glob("_commits/process/*.json"))[0]
    stray = json.loads(marker.read_text())
    stray.update(fingerprint="0000", input_id="other-input")
    (copy / "_commits/process/other-input.json").write_text(json.dumps(stray))
    run = load_run(str(copy), prefer_merged=False)
    assert run.ignored_markers == 1 and run.committed == 4
    assert layout.commits_dir(str(copy)).endswith("_commits/process")
