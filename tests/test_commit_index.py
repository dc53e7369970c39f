"""The commit index (engine.commits): resume and `tamis stats` find committed inputs with listings, not one read
per input; the driver keeps no per-input summaries; damaged markers are not commits; stats stay exact.

Small versions of benchmarks/bench_driver_scale.py: 60 one-record WARC inputs made from real pages, index segments
of 10 units (the default is 1,000), on the session's real local Ray.
"""

from __future__ import annotations

import io
import json
import logging
import pickle
import random
import time
import urllib.request
from pathlib import Path

import pytest
import ray
from click.testing import CliRunner
from conftest import WARC_DIR
from fsspec.implementations.local import LocalFileSystem
from rich.console import Console

from tamis.cli.main import cli
from tamis.engine import commits, layout
from tamis.engine.runner import run_pipeline
from tamis.pipeline.spec import parse_pipeline
from tamis.stats.histograms import Histogram
from tamis.stats.load import load_run, to_json
from tamis.stats.watch import watch

PIPELINE = {"name": "tiny", "steps": [{"step": "resiliparse"}, {"step": "gopher_quality"}]}
INPUTS = 60
FLUSH = 10


def _one_record_warcs(source: Path, n: int) -> list[bytes]:
    from warcio.archiveiterator import ArchiveIterator
    from warcio.warcwriter import WARCWriter

    found = []
    with open(source, "rb") as handle:
        for record in ArchiveIterator(handle):
            headers = record.http_headers
            if record.rec_type == "response" and headers and "html" in headers.get_header("Content-Type", ""):
                out = io.BytesIO()
                WARCWriter(out, gzip=True).write_record(record)
                found.append(out.getvalue())
            if len(found) == n:
                break
    return found


@pytest.fixture(scope="module")
def tiny_inputs(tmp_path_factory) -> list[str]:
    directory = tmp_path_factory.mktemp("tiny")
    records = _one_record_warcs(WARC_DIR / "dolma_sample-0000.warc.gz", 20)
    assert len(records) == 20
    for i in range(INPUTS):
        (directory / f"page-{i:03d}.warc.gz").write_bytes(records[i % len(records)])
    return [str(directory / "*.warc.gz")]


@pytest.fixture
def small_segments(monkeypatch):
    monkeypatch.setattr(commits, "FLUSH_UNITS", FLUSH)


class CountingFileSystem(LocalFileSystem):
    """The local filesystem, counting listings and file reads (what costs a request on an object store)."""

    protocol = ("counting",)
    calls: dict[str, list[str]] = {}

    def ls(self, path, detail=False, **kwargs):
        self.calls.setdefault("ls", []).append(path)
        return super().ls(path, detail=detail, **kwargs)

    def _open(self, path, mode="rb", **kwargs):
        if "r" in mode:
            self.calls.setdefault("read", []).append(path)
        return super()._open(path, mode, **kwargs)


def _counted(root: str, fingerprint: str) -> tuple[commits.CommitState, dict[str, list[str]]]:
    CountingFileSystem.calls = {}
    state = commits.load_commits(CountingFileSystem(), root, fingerprint)
    return state, CountingFileSystem.calls


@pytest.fixture(scope="module")
def finished(ray_session, tiny_inputs, tmp_path_factory):
    patch = pytest.MonkeyPatch()
    patch.setattr(commits, "FLUSH_UNITS", FLUSH)
    output = tmp_path_factory.mktemp("finished") / "out"
    result = run_pipeline(parse_pipeline(PIPELINE), tiny_inputs, str(output), show_progress=False)
    patch.undo()
    assert result.ok and len(result.completed) == INPUTS
    return output, result


def _counts(run) -> dict:
    data = to_json(run)
    data["totals"] = {k: v for k, v in data["totals"].items() if not k.startswith("task_")}  # timings: float sums
    for counters in data["steps"].values():
        counters.pop("seconds")
        counters.pop("child_cpu_seconds")  # a float sum too
    return {key: data[key] for key in ("totals", "steps", "languages", "histograms", "drop_reasons", "shards")}


def test_driver_keeps_labels_not_summaries(finished) -> None:
    _, result = finished
    assert all(isinstance(label, str) for label in result.completed)
    # what the driver holds after the run: merged counts plus an id and a shard per input, not 55 KB summaries
    per_input = len(pickle.dumps(result)) / INPUTS
    summary = json.loads(next((finished[0] / "stats" / "process").glob("*.json")).read_text())
    assert per_input < 1000 < len(json.dumps(summary)), per_input
    assert "histograms" not in json.loads(next((finished[0] / "_commits" / "process").glob("*.json")).read_text())


def test_resume_check_is_two_listings_and_the_segments(finished) -> None:
    output, result = finished
    segments = sorted((output / "_index" / "process").glob("*.json"))
    assert len(segments) == INPUTS // FLUSH
    state, calls = _counted(str(output), result.fingerprint)
    assert len(state.units) == INPUTS and state.reads == len(segments)
    assert sorted(calls["ls"]) == sorted([layout.commits_dir(str(output)), layout.index_dir(str(output))])
    assert sorted(calls["read"]) == [str(s) for s in segments]  # no marker, no stats file

    # a driver killed before its last flush: the units of that segment are found by their marker names
    moved = segments[-1].rename(segments[-1].with_suffix(".gone"))
    try:
        state, calls = _counted(str(output), result.fingerprint)
        assert len(state.units) == INPUTS and len(state.unindexed) == FLUSH
        assert len(calls["ls"]) == 2 and len(calls["read"]) == state.reads == len(segments) - 1 + 2 * FLUSH
    finally:
        moved.rename(segments[-1])


def test_stats_from_index_equal_stats_from_markers(finished, tmp_path) -> None:
    import shutil

    output, _ = finished
    indexed = load_run(str(output), prefer_merged=False)
    merged = load_run(str(output))
    copy = tmp_path / "copy"
    shutil.copytree(output, copy)
    shutil.rmtree(copy / "_index")
    from_markers = load_run(str(copy), prefer_merged=False)
    assert indexed.source == from_markers.source == "commits" and merged.source == "stats.json"
    assert indexed.reads == INPUTS // FLUSH and from_markers.reads == 2 * INPUTS
    relocated = {**_counts(from_markers), "shards": None}
    assert {**_counts(indexed), "shards": None} == relocated == {**_counts(merged), "shards": None}
    assert indexed.totals()["docs_read"] == INPUTS


def test_stats_of_a_running_job_read_the_segments_and_the_unindexed_tail_only(finished, tmp_path,
                                                                                monkeypatch) -> None:
    """`tamis stats` (report and --json) on a running job: two listings, the index segments, and the marker and
    stats file of each unit committed since the last segment; no other marker or stats file is opened."""
    import shutil

    output, _ = finished
    copy = tmp_path / "running"
    shutil.copytree(output, copy)
    segments = sorted((copy / "_index" / "process").glob("*.json"))
    tail = json.loads(segments[-1].read_text())["units"]
    segments[-1].unlink()  # committed since the driver's last flush
    manifest = json.loads((copy / "manifest.json").read_text())
    (copy / "manifest.json").write_text(json.dumps({**manifest, "status": "running"}))
    monkeypatch.setattr("tamis.stats.load.filesystem", lambda url: (CountingFileSystem(), str(url).rstrip("/")))
    expected = {str(copy / "manifest.json"), *(str(s) for s in segments[:-1])}
    expected |= {str(copy / "_commits" / "process" / f"{unit}.json") for unit in tail}
    expected |= {str(copy / "stats" / "process" / f"{unit}.json") for unit in tail}
    reference = _counts(load_run(str(output)))  # the finished run's stats.json

    for argv in (["stats", str(copy)], ["stats", "--json", str(copy)]):
        CountingFileSystem.calls = {}
        out = CliRunner().invoke(cli, argv, terminal_width=160)
        assert out.exit_code == 0, out.output
        opened = set(CountingFileSystem.calls["read"]) - {str(copy / "dedup" / "summary.json")}  # absent here
        assert opened == expected, sorted(opened ^ expected)
        assert len(CountingFileSystem.calls["ls"]) == 2
        markers = [p for p in CountingFileSystem.calls["read"] if "/_commits/" in p or "/stats/process/" in p]
        assert len(markers) == 2 * len(tail) < INPUTS
    assert json.loads(out.output)["label"] == f"PARTIAL: {INPUTS} of {INPUTS} inputs committed (run in progress)"
    running = load_run(str(copy))
    assert running.source == "commits" and {**_counts(running), "shards": None} == {**reference, "shards": None}


def test_marker_that_is_not_an_object_is_not_committed(ray_session, tiny_inputs, tmp_path, small_segments,
                                                       caplog) -> None:
    output = tmp_path / "out"
    clean = run_pipeline(parse_pipeline(PIPELINE), tiny_inputs, str(output), show_progress=False)
    clean_histograms = json.loads((output / "stats.json").read_text())["histograms"]
    import shutil

    shutil.rmtree(output / "_index")  # as if the driver died before indexing anything
    markers = sorted((output / "_commits" / "process").glob("*.json"))
    markers[0].write_text("[1, 2]")
    markers[1].write_text("3")
    with caplog.at_level(logging.WARNING, logger="tamis.engine.commits"):
        partial = load_run(str(output), prefer_merged=False)
    assert partial.committed == INPUTS - 2 and partial.ignored_markers == 2
    assert "a JSON list, not an object" in caplog.text and "a JSON int, not an object" in caplog.text
    again = run_pipeline(parse_pipeline(PIPELINE), tiny_inputs, str(output), show_progress=False)
    assert again.ok and len(again.completed) == 2 and len(again.skipped) == INPUTS - 2
    assert again.totals["kept"] == clean.totals["kept"]
    assert json.loads((output / "stats.json").read_text())["histograms"] == clean_histograms


def test_deleted_marker_redoes_its_unit_and_repairs_the_index(ray_session, tiny_inputs, tmp_path,
                                                              small_segments) -> None:
    reference, output = tmp_path / "ref", tmp_path / "out"
    assert run_pipeline(parse_pipeline(PIPELINE), tiny_inputs, str(reference), show_progress=False).ok
    assert run_pipeline(parse_pipeline(PIPELINE), tiny_inputs, str(output), show_progress=False).ok
    sorted((output / "_commits" / "process").glob("*.json"))[7].unlink()
    again = run_pipeline(parse_pipeline(PIPELINE), tiny_inputs, str(output), show_progress=False)
    assert len(again.completed) == 1 and len(again.skipped) == INPUTS - 1
    segments = [json.loads(p.read_text()) for p in (output / "_index" / "process").glob("*.json")]
    assert sum(len(s["replaces"]) for s in segments) == 1  # the stale segment was replaced
    assert sum(len(s["units"]) for s in segments) == INPUTS  # every unit indexed once
    ref_stats, stats = (json.loads((p / "stats.json").read_text()) for p in (reference, output))
    assert stats["histograms"] == ref_stats["histograms"]  # exact, whatever the grouping
    for step, counters in ref_stats["steps"].items():
        assert {k: stats["steps"][step][k] for k in ("docs_in", "docs_out", "dropped")} == \
            {k: counters[k] for k in ("docs_in", "docs_out", "dropped")}
    state, calls = _counted(str(output), again.fingerprint)
    assert len(state.units) == INPUTS and not state.repairs and len(calls["read"]) == len(segments)


def test_histogram_totals_are_exact_in_any_grouping() -> None:
    rng = random.Random(0)
    parts = []
    for _ in range(200):
        histogram = Histogram((0.5,))
        histogram.add([rng.random() for _ in range(7)])
        parts.append(histogram)

    def merged(order: list[Histogram], group: int) -> float:
        total = Histogram((0.5,))
        for start in range(0, len(order), group):
            partial = Histogram((0.5,))
            for part in order[start:start + group]:
                partial.merge(part)
            total.merge(Histogram.from_dict(partial.to_dict(exact=True)))
        return total.total

    shuffled = parts[:]
    rng.shuffle(shuffled)
    assert merged(parts, 1) == merged(shuffled, 7) == merged(shuffled[::-1], 13)


def test_watch_refreshes_a_running_job_until_it_ends(ray_session, tiny_inputs, tmp_path, small_segments) -> None:
    import threading

    output = tmp_path / "out"
    finished_run = []
    # one task at a time, so the run lasts several refreshes: the process stage of 60 one-page inputs, four in
    # flight, can commit between two refreshes since no progress actor starts with it (show_progress=False)
    thread = threading.Thread(target=lambda: finished_run.append(
        run_pipeline(parse_pipeline(PIPELINE), tiny_inputs, str(output), workers=1, show_progress=False)))
    thread.start()
    buffer = io.StringIO()
    seen = []

    def sleep(seconds: float) -> None:
        seen.append(buffer.getvalue().count("funnel"))
        time.sleep(0.3)

    last = watch(str(output), Console(file=buffer, width=160), interval=0.3, iterations=400, sleep=sleep)
    thread.join(timeout=300)
    text = buffer.getvalue()
    assert finished_run and finished_run[0].ok
    assert last is not None and last.status == "complete" and not last.partial
    assert text.count("funnel") >= 2 and "PARTIAL" in text and text.rstrip().endswith(last.label)
    assert last.totals()["docs_read"] == INPUTS

    out = CliRunner().invoke(cli, ["stats", str(output), "--watch", "--interval", "0.1", "--iterations", "2"],
                             terminal_width=160)
    assert out.exit_code == 0 and out.output.count("funnel") == 1 and "COMPLETE" in out.output  # ended: 1 refresh


def test_tasks_export_ray_metrics(finished) -> None:
    ports = [node["MetricsExportPort"] for node in ray.nodes() if node["Alive"]]
    deadline, found = time.monotonic() + 40, {}
    while time.monotonic() < deadline:
        for port in ports:
            body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
            for line in body.splitlines():
                if line.startswith("ray_tamis_") and 'step="gopher_quality"' in line:
                    found[line.split("{")[0]] = found.get(line.split("{")[0], 0) + float(line.rsplit(" ", 1)[1])
        if "ray_tamis_step_docs_in_total" in found and "ray_tamis_dropped_docs_total" in found:
            break
        time.sleep(2)
    assert found.get("ray_tamis_step_docs_in_total", 0) >= 1, found
    assert found.get("ray_tamis_dropped_docs_total", 0) >= 1, found


def test_the_progress_actor_exists_only_when_progress_is_shown(ray_session, tiny_inputs, tmp_path,
                                                                monkeypatch) -> None:
    """Without a display nothing reads the progress actor, so none is created (it would hold a worker process
    of its own); with one, the runner creates one. The Ray metrics test above runs without it."""
    from tamis.engine import runner

    created: list[dict] = []
    real = runner.ProgressCounter

    class Recorded:
        @staticmethod
        def options(**options):
            created.append(options)
            return real.options(**options)

    monkeypatch.setattr(runner, "ProgressCounter", Recorded)
    quiet = run_pipeline(parse_pipeline(PIPELINE), tiny_inputs, str(tmp_path / "quiet"), show_progress=False)
    assert quiet.ok and created == []
    shown = run_pipeline(parse_pipeline(PIPELINE), tiny_inputs, str(tmp_path / "shown"), show_progress=True,
                         console=Console(file=io.StringIO()))
    assert shown.ok and len(created) == 1
    quiet_counts, shown_counts = (_counts(load_run(str(tmp_path / name))) for name in ("quiet", "shown"))
    assert {k: v for k, v in quiet_counts.items() if k != "shards"} == \
        {k: v for k, v in shown_counts.items() if k != "shards"}
