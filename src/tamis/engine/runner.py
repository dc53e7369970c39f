"""The driver of a run: plans one task per input, keeps a bounded number in flight, commits results.

The driver never sees documents: tasks return a few hundred bytes of counters each. Resume is by commit
marker: an input whose marker exists with this pipeline's fingerprint is done and is not redone.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import platform
import posixpath
import time
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
from rich.console import Console

import tamis
from tamis.dedup.options import DEDUP_DIR, FINALIZE_STEPS, DedupOptions
from tamis.dedup.stage import run_dedup
from tamis.engine import layout
from tamis.engine.inputs import COMMON_CRAWL_BASE, expand_inputs
from tamis.engine.plan import WorkUnit, plan_units
from tamis.engine.progress import ProgressCounter, ProgressDisplay
from tamis.engine.ray_runtime import cluster_cpus, connect
from tamis.engine.removed import validate_removed_options
from tamis.engine.task import WRITER_STEP, TaskOptions, process_input
from tamis.io.storage import filesystem, read_json, url_of, write_json
from tamis.pipeline.spec import PipelineError, PipelineSpec, StepSpec
from tamis.stats.counters import TaskCounters
from tamis.stats.merge import DEDUP_STEP, merge_summaries

log = logging.getLogger(__name__)
MAX_TASK_RETRIES = 3
#: inputs larger than this are split into byte ranges, so no task reads more (Common Crawl's WARC files are
#: about 1 GiB, so by default they are not split)
DEFAULT_MAX_TASK_BYTES = 2 * 2**30
#: with dedup: the process stage's shards, and the dedup stage's work files (signatures, buckets, clusters)
INTERMEDIATE = "intermediate"



class OutputConflictError(RuntimeError):
    """The output directory holds a run of a different pipeline."""


@dataclass
class RunResult:
    output: str
    fingerprint: str
    inputs: list[str]
    skipped: list[str] = field(default_factory=list)
    completed: list[dict[str, Any]] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    counters: TaskCounters = field(default_factory=TaskCounters)
    totals: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    dedup: dict[str, Any] | None = None
    steps_order: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


def _versions() -> dict[str, str]:
    versions = {"tamis": tamis.__version__, "python": platform.python_version()}
    for package in ("ray", "pyarrow", "warcio", "trafilatura", "fasttext-numpy2-wheel", "tiktoken", "resiliparse"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return versions


def _remove_outputs(fs: Any, root: str) -> None:
    for sub in ("data", "removed", "stats", "_commits", INTERMEDIATE, DEDUP_DIR, "stats.json", "manifest.json"):
        path = layout.manifest_path(root).replace("manifest.json", sub)
        if fs.exists(path):
            fs.rm(path, recursive=True)


def _check_manifest(fs: Any, root: str, fingerprint: str, overwrite: bool) -> None:
    path = layout.manifest_path(root)
    if not fs.exists(path):
        return
    previous = read_json(fs, path)
    if previous.get("fingerprint") == fingerprint:
        return
    if overwrite:
        _remove_outputs(fs, root)
        return
    raise OutputConflictError(
        f"{root} holds the output of a different pipeline or options (fingerprint {previous.get('fingerprint')} "
        f"from {previous.get('pipeline', {}).get('name')!r}, this run is {fingerprint}); mixing them would give "
        "inconsistent data. Use another --output, or --overwrite to delete it and start over."
    )


def committed_inputs(fs: Any, root: str, fingerprint: str) -> dict[str, dict[str, Any]]:
    """input id -> commit summary, for inputs already done with this fingerprint."""
    directory = layout.commits_dir(root)
    if not fs.exists(directory):
        return {}
    done = {}
    for path in fs.glob(f"{directory}/*.json"):
        try:
            summary = read_json(fs, path)
        except Exception:  # noqa: BLE001 - an unreadable marker means the input is not committed
            log.warning("ignoring unreadable commit marker %s", path)
            continue
        if summary.get("fingerprint") == fingerprint:
            done[summary["input_id"]] = summary
    return done


def _totals(summaries: list[dict[str, Any]], counters: TaskCounters, spec: PipelineSpec, seconds: float) -> dict:
    reader = counters.steps.get(spec.reader.name)
    return {
        "units": len(summaries),
        "io_retries": sum(len(s.get("io_retries", [])) for s in summaries),
        "records": reader.events.get("records", 0) if reader else 0,
        "html_docs": sum(s["docs_read"] for s in summaries),
        "kept": sum(s["docs_kept"] for s in summaries),
        "tokens": sum(s["tokens"] for s in summaries),
        "bytes_read": sum(s["bytes_read"] for s in summaries),
        "task_cpu_seconds": round(sum(s["cpu_seconds"] for s in summaries), 3),
        "seconds": round(seconds, 3),
    }


def run_pipeline(
    spec: PipelineSpec,
    inputs: list[str],
    output: str,
    *,
    address: str | None = None,
    workers: int | None = None,
    limit: int | None = None,
    overwrite: bool = False,
    max_task_bytes: int | None = DEFAULT_MAX_TASK_BYTES,
    paths_base: str = COMMON_CRAWL_BASE,
    console: Console | None = None,
    show_progress: bool = True,
) -> RunResult:
    """Run the process stage of `spec` on `inputs` into `output` (see tamis.engine.layout).

    `max_task_bytes` splits larger input files into byte ranges (None: never split); `paths_base` is where
    the relative lines of a Common Crawl `*.paths.gz` input live.
    """
    console = console or Console(stderr=True)
    started = time.perf_counter()
    if "://" not in output:
        # workers may run in another directory (or on another node with shared storage): no relative paths
        output = os.path.abspath(output)
    try:
        removed_options = validate_removed_options(spec.removed, spec.source)
    except ValueError as exc:
        raise PipelineError(str(exc)) from None
    files, sizes = expand_inputs(inputs, paths_base)
    units = plan_units(files, sizes, max_task_bytes)
    split = max_task_bytes if any(u.part is not None for u in units) else None
    fingerprint = spec.fingerprint(limit=limit, removed=removed_options, split=split)
    fs, root = filesystem(output)
    if overwrite and fs.exists(layout.manifest_path(root)):
        _remove_outputs(fs, root)
    _check_manifest(fs, root, fingerprint, overwrite)
    manifest = {
        "pipeline": spec.to_dict(),
        "pipeline_file": spec.source,
        "fingerprint": fingerprint,
        "versions": _versions(),
        "inputs": {path: sizes.get(path) for path in files},
        "units": len(units),
        "options": {"limit": limit, "removed": removed_options, "max_task_bytes": split},
    }
    write_json(fs, layout.manifest_path(root), {**manifest, "status": "running"})
    done = committed_inputs(fs, root, fingerprint)
    result = RunResult(output=output, fingerprint=fingerprint, inputs=files)
    todo = [unit for unit in units if unit.unit_id not in done]
    result.skipped = [unit.label() for unit in units if unit.unit_id in done]
    summaries = [done[unit.unit_id] for unit in units if unit.unit_id in done]

    process_spec, dedup_options, finalize_steps = split_for_dedup(spec)
    dedup_summary = None
    if todo or dedup_options is not None:
        started_ray = connect(address, num_cpus=workers)
        try:
            if todo:
                options = TaskOptions(output=output, fingerprint=fingerprint, limit=limit, removed=removed_options,
                                      shard_subdir=INTERMEDIATE if dedup_options else "")
                summaries += _run_tasks(process_spec, todo, options, workers, result, console, show_progress)
            if dedup_options is not None and not result.failed:
                dedup_summary = _run_dedup_stage(fs, root, summaries, dedup_options, address, workers, console,
                                                 removed_options, finalize_steps, spec.writer)
        finally:
            if started_ray:
                ray.shutdown()

    merged = merge_summaries(summaries)
    if dedup_summary is not None:
        merged.apply_dedup(dedup_summary)
    result.counters = merged.counters
    result.seconds = time.perf_counter() - started
    result.totals = _totals(summaries, result.counters, spec, result.seconds)
    if dedup_summary is not None:
        result.totals.update(kept=dedup_summary["kept"], tokens=sum(s["tokens"] for s in merged.shards),
                             duplicates_removed=dedup_summary["removed"])
    result.dedup = dedup_summary
    result.steps_order = [spec.reader.name, *(s.name for s in process_spec.steps), WRITER_STEP,
                          *([DEDUP_STEP, *(s.name for s in finalize_steps)] if dedup_summary is not None else [])]
    write_json(fs, layout.merged_stats_path(root), {
        "fingerprint": fingerprint,
        "pipeline": spec.name,
        "steps_order": result.steps_order,
        "complete": not result.failed and len(summaries) == len(units),
        "inputs": len(files),
        "units": len(units),
        "committed": len(summaries),
        "failed": result.failed,
        "totals": result.totals,
        **merged.to_dict(),
    })
    status = "complete" if not result.failed else "incomplete"
    write_json(fs, layout.manifest_path(root), {**manifest, "status": status, "failed": result.failed})
    return result


def split_for_dedup(spec: PipelineSpec) -> tuple[PipelineSpec, DedupOptions | None, tuple[StepSpec, ...]]:
    """(the process stage's pipeline, the dedup options, the steps that run after dedup in finalize).

    With a `- step: dedup` entry in `steps:`, every step after it runs after dedup, in order, with its
    parameters (FineWeb-2's recipe). With a top-level `dedup:` section, the PII and token-count steps run
    after it (FineWeb's recipe), with theirs.
    """
    if spec.dedup is None:
        return spec, None, ()
    if spec.dedup_at is not None:
        before, after = spec.steps[:spec.dedup_at], spec.steps[spec.dedup_at:]
    else:
        before = tuple(s for s in spec.steps if s.step not in FINALIZE_STEPS)
        after = tuple(s for s in spec.steps if s.step in FINALIZE_STEPS)
    present = {s.step for s in after}
    options = dataclasses.replace(spec.dedup, pii="pii" in present, token_count="token_count" in present)
    return dataclasses.replace(spec, steps=before), options, after


def _run_dedup_stage(fs: Any, root: str, summaries: list[dict[str, Any]], options: DedupOptions,
                     address: str | None, workers: int | None, console: Console,
                     removed: dict[str, Any], steps: tuple[StepSpec, ...],
                     writer: StepSpec) -> dict[str, Any] | None:
    shards = [url_of(fs, s["shard"]["path"]) for s in summaries if s.get("shard")]
    if not shards:
        return None
    work_dir = url_of(fs, posixpath.join(root, DEDUP_DIR))
    output_root = url_of(fs, root)
    console.print(f"dedup ({options.kind}): {len(shards)} shard(s)")
    last_line = [time.monotonic()]

    def progress(stage: str, done: int, total: int) -> None:
        # one line when a stage finishes, and one every 10 s while a long stage runs
        if done == total or time.monotonic() - last_line[0] >= 10:
            last_line[0] = time.monotonic()
            console.print(f"dedup {stage}: {done}/{total} tasks")

    return run_dedup(sorted(shards), work_dir, output_root, options, address=address, workers=workers,
                     removed=removed if removed["mode"] != "none" else None, progress=progress,
                     steps=steps, writer=writer)


def _run_tasks(spec: PipelineSpec, todo: list[WorkUnit], options: TaskOptions, workers: int | None,
               result: RunResult, console: Console, show_progress: bool) -> list[dict[str, Any]]:
    remote = ray.remote(process_input).options(num_cpus=1, max_retries=MAX_TASK_RETRIES, retry_exceptions=False)
    # `workers` caps concurrency exactly; otherwise keep a second task queued per CPU so none idles.
    in_flight_limit = workers if workers else 2 * cluster_cpus()
    # On the driver's node: a worker node that dies must not take the progress display with it.
    here = NodeAffinitySchedulingStrategy(node_id=ray.get_runtime_context().get_node_id(), soft=True)
    counter = ProgressCounter.options(scheduling_strategy=here).remote()
    spec_ref = ray.put(spec)
    pending: dict[ray.ObjectRef, WorkUnit] = {}
    queue = list(reversed(todo))
    summaries = []
    with ProgressDisplay(console, len(todo), enabled=show_progress) as display:
        while queue or pending:
            while queue and len(pending) < in_flight_limit:
                unit = queue.pop()
                pending[remote.remote(spec_ref, unit, options, counter)] = unit
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
            for ref in ready:
                unit = pending.pop(ref)
                counter.finished.remote(unit.unit_id)
                try:
                    summary = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - one input's failure must not stop the others
                    message = str(exc).strip().splitlines()
                    error = next((line for line in reversed(message) if line.strip()), repr(exc))
                    result.failed[unit.label()] = error
                    console.print(f"[red]failed[/red] {unit.label()}: {error}")
                    continue
                summaries.append(summary)
                result.completed.append(summary)
                display.durations.append(summary["wall_seconds"])
            try:
                docs, nbytes, running = ray.get(counter.totals.remote(), timeout=10)
            except Exception:  # noqa: BLE001 - progress is display only; the run goes on without it
                docs, nbytes, running = display.docs, display.bytes, {}
            display.update(len(result.completed) + len(result.failed), docs, nbytes, running)
    ray.kill(counter)
    return summaries
