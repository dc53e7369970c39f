"""The per-task memory ceiling, on a real Ray: one input that blows up its worker's memory fails alone."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import WARC_DIR
from hostile import http_head, repeated, warc_head, with_neighbours

from tamis.engine.memory import AUTO, parse_task_memory, resolve_task_memory, task_reservation
from tamis.engine.runner import run_pipeline
from tamis.pipeline.spec import parse_pipeline

MIB = 1 << 20
REAL = [WARC_DIR / "dolma_sample-0000.warc.gz", WARC_DIR / "dolma_sample-0001.warc.gz"]


def huge_payload(size: int):
    """A response whose page is `size` bytes (a gzip member of about size/200)."""
    head = http_head()
    yield warc_head(2, len(head) + size) + head + b"<html><body>"
    yield from repeated(b"a", size - len(b"<html><body>"))
    yield b"\r\n\r\n"


def test_one_input_past_its_ceiling_fails_alone(ray_session, tmp_path: Path) -> None:
    # a pipeline that trusts pages up to 2 GiB, and one page of 400 MiB: without a ceiling that task takes
    # well over a GiB (the page, its copies, its text); with a 192 MiB ceiling it fails with MemoryError
    hostile, neighbours = with_neighbours(tmp_path / "hostile.warc.gz", huge_payload(400 * MIB))
    spec = parse_pipeline({"reader": {"step": "warc", "max_payload_bytes": 2**31}, "steps": [{"step": "trafilatura"}]})
    inputs = [str(p) for p in REAL] + [str(hostile)]
    result = run_pipeline(spec, inputs, str(tmp_path / "out"), show_progress=False, task_memory=192 * MIB)
    assert list(result.failed) == [str(hostile)]
    message = result.failed[str(hostile)]
    assert "out of memory" in message and str(hostile) in message and "--task-memory" in message
    assert sorted(result.completed) == sorted(str(p) for p in REAL)
    assert result.totals["html_docs"] == 22 + 15
    shards = (tmp_path / "out").glob("data/*/*.parquet")
    ids = {row["id"] for path in shards for row in pq.read_table(path).to_pylist()}
    assert ids and len(ids) == result.totals["kept"] and not ids & set(neighbours)
    # the workers survived: the same cluster runs the next job, and the hostile input again fails alone
    again = run_pipeline(spec, inputs, str(tmp_path / "out"), show_progress=False, task_memory=192 * MIB)
    assert list(again.failed) == [str(hostile)] and len(again.skipped) == 2


def test_task_memory_settings() -> None:
    assert parse_task_memory("4GiB") == 4 * 2**30 and parse_task_memory("512MiB") == 512 * MIB
    assert parse_task_memory("2G") == 2 * 2**30 and parse_task_memory(str(100 * MIB)) == 100 * MIB
    assert parse_task_memory("auto") == AUTO and parse_task_memory("off") is None
    for bad in ("lots", "12", "4 parsecs"):
        with pytest.raises(ValueError):
            parse_task_memory(bad)
    nodes = [{"Alive": True, "Resources": {"CPU": 8.0, "memory": 32 * 2**30}},
             {"Alive": True, "Resources": {"CPU": 4.0, "memory": 8 * 2**30}},
             {"Alive": False, "Resources": {"CPU": 64.0, "memory": 2**30}},
             {"Alive": True, "Resources": {"CPU": 0.0, "memory": 2**30}}]
    assert resolve_task_memory(AUTO, nodes) == 2 * 2**30  # the smallest share of a CPU: 8 GiB / 4
    assert resolve_task_memory(16 * 2**30, nodes) == 16 * 2**30
    assert resolve_task_memory(None, nodes) is None
    with pytest.raises(ValueError, match="more than any node"):
        resolve_task_memory(64 * 2**30, nodes)
    # what a task reserves: `auto` is per CPU, a size is per task
    assert task_reservation(2 * 2**30, 3, AUTO) == 6 * 2**30 and task_reservation(2 * 2**30, 3, "auto") == 6 * 2**30
    assert task_reservation(16 * 2**30, 3, 16 * 2**30) == 16 * 2**30 and task_reservation(None, 3, None) is None


#: a plugin folder whose step records what Ray assigned to the task it runs in
RECORDER_PLUGINS = Path(__file__).parent / "plugins"


@pytest.mark.parametrize(("workers", "task_memory", "cpus", "shares"), [
    (None, AUTO, 2, 2),        # one input on two CPUs: two extraction children, two CPUs' shares
    (1, AUTO, 1, 1),
    (None, 192 * MIB, 2, None),  # an explicit size is the task's, whatever its CPUs
])
def test_a_task_reserves_memory_for_its_cpus(ray_session, tmp_path: Path, workers, task_memory, cpus,
                                             shares) -> None:
    record = tmp_path / "assigned.json"
    spec = parse_pipeline({"plugins": [str(RECORDER_PLUGINS)],
                           "steps": [{"step": "assigned_resources", "path": str(record)}]})
    result = run_pipeline(spec, [str(REAL[0])], str(tmp_path / "out"), workers=workers, show_progress=False,
                          task_memory=task_memory)
    assert result.ok
    assigned = json.loads(record.read_text())
    share = resolve_task_memory(AUTO, ray_session.nodes())
    assert assigned["CPU"] == cpus
    assert assigned["memory"] == (share * shares if shares else task_memory)
