"""The driver of a run: plans one task per input, keeps a bounded number in flight, commits results.

The driver never sees documents: tasks return their counters and histograms, which it folds into a running
merge and a commit index (engine.commits), keeping per input only its id and shard. Resume is by commit marker:
an input whose marker exists with this pipeline's fingerprint is done and is not redone; the index makes that
check two listings and a few reads instead of one read per input.
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
from tamis.display import line, plugins_line, stderr_console
from tamis.engine import layout
from tamis.engine.cluster_address import check_cluster_reachable, requested_address
from tamis.engine.commits import CommitIndex, CommitState, load_commits
from tamis.engine.inputs import COMMON_CRAWL_BASE, expand_inputs, lookup_sizes
from tamis.engine.memory import AUTO, resolve_task_memory, task_reservation
from tamis.engine.output_lock import output_lock
from tamis.engine.overlap import OverlapError, check_apart
from tamis.engine.plan import WorkUnit, plan_units
from tamis.engine.progress import ProgressCounter, ProgressDisplay
from tamis.engine.ray_runtime import cluster_cpus, connect, disconnect, smallest_node_cpus
from tamis.engine.removed import validate_removed_options
from tamis.engine.task import WRITER_STEP, TaskOptions, process_input
from tamis.io.errors import full_storage_error
from tamis.io.redact import public_url, redact_text
from tamis.io.storage import filesystem, read_json, url_of, write_json
from tamis.pipeline.provenance import differences
from tamis.pipeline.spec import PipelineError, PipelineSpec, StepSpec
from tamis.stats.counters import TaskCounters
from tamis.stats.histograms import HistogramSet
from tamis.stats.merge import DEDUP_STEP
from tamis.steps.registry import loaded_plugin_files

log = logging.getLogger(__name__)
MAX_TASK_RETRIES = 3
#: the most CPUs one task asks for when a job has fewer inputs than CPUs (each becomes an extraction child,
#: tamis.extract.speculative); past this the task's own steps, not extraction, bound it
MAX_TASK_CPUS = 4
#: inputs larger than this are split into byte ranges, so no task reads more: a Common Crawl WARC file (about
#: 1 GiB, ~14 CPU minutes of FineWeb's recipe) becomes 4 ranges of a few CPU minutes each, so one slow file
#: cannot hold a job's tail (or a lost node's redo) for long; the figures are in docs/scaling.md. The files of a
#: paths file come without sizes: they are looked up (or read from the manifest of the run being resumed)
DEFAULT_MAX_TASK_BYTES = 256 * 2**20
#: `max_task_bytes` default: the split size an existing output was made with (its manifest), else the default;
#: the output does not depend on it (state blocks), but the units' ids do, so a resume keeps the recorded one
RECORDED = "recorded"
#: with dedup: the process stage's shards, and the dedup stage's work files (signatures, buckets, clusters)
INTERMEDIATE = "intermediate"



class OutputConflictError(RuntimeError):
    """The output directory holds a run of a different pipeline, or the inputs themselves."""


@dataclass
class RunResult:
    """What a run did. Per input it holds labels only: the counts are merged (`counters`, `totals`), and each
    input's full summary stays in storage (stats/process/<input-id>.json)."""

    output: str
    fingerprint: str
    inputs: list[str]
    skipped: list[str] = field(default_factory=list)
    #: labels of the units this run committed
    completed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    counters: TaskCounters = field(default_factory=TaskCounters)
    totals: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    dedup: dict[str, Any] | None = None
    steps_order: list[str] = field(default_factory=list)
    #: seconds from the call to the first task submitted (planning and the resume check), None if none ran
    first_task_seconds: float | None = None
    #: files the resume check read (index segments, markers and stats files of unindexed units)
    commit_reads: int = 0
    #: the split limit this run used (the recorded one on a resume without --max-task-bytes)
    max_task_bytes: int | None = None
    #: a task met a full or read-only output storage: the run started no task after it (and raises this)
    storage_error: OSError | None = None

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
    for sub in ("data", "removed", "stats", "_commits", "_index", INTERMEDIATE, DEDUP_DIR, "stats.json",
                "manifest.json"):
        path = layout.manifest_path(root).replace("manifest.json", sub)
        if fs.exists(path):
            fs.rm(path, recursive=True)


def _read_manifest(fs: Any, root: str) -> dict[str, Any] | None:
    """The manifest of an existing output, or None (read once per run: on S3 each read is a request)."""
    path = layout.manifest_path(root)
    return read_json(fs, path) if fs.exists(path) else None


def _check_manifest(previous: dict[str, Any] | None, root: str, fingerprint: str,
                    provenance: dict[str, Any] | None = None) -> None:
    if previous is None or previous.get("fingerprint") == fingerprint:
        return
    changed = differences(previous.get("provenance"), provenance or {})
    what = f"; changed: {', '.join(changed[:5])}" if changed else ""
    raise OutputConflictError(
        f"{root} holds the output of a different pipeline, options, library versions, models or plugin sources "
        f"(fingerprint {previous.get('fingerprint')} from {previous.get('pipeline', {}).get('name')!r}, this run "
        f"is {fingerprint}{what}); mixing them would give inconsistent data. Use another --output, or "
        "--overwrite to delete it and start over."
    )


def _recorded_split(previous: dict[str, Any]) -> tuple[int | None, int | None]:
    """(the --max-task-bytes an existing output was made with, the split value in its fingerprint)."""
    options = previous.get("options") or {}
    split = options.get("max_task_bytes")
    return options.get("split_limit", split if split is not None else DEFAULT_MAX_TASK_BYTES), split


def _with_listed_sizes(files: list[str], sizes: dict[str, int], previous: dict[str, Any] | None,
                       console: Console) -> dict[str, int]:
    """`sizes` with those of the inputs whose listing gave none (a paths file's), so that large ones are split.

    A resumed run takes them from its manifest, never from a new lookup: the plan, and so the ids of the units
    it has committed, must stay as they were (a file once run whole stays whole; a size that could not be
    found is recorded as None). Otherwise they are looked up, concurrently (tamis.engine.inputs.lookup_sizes).
    """
    unknown = [path for path in files if path not in sizes]
    if not unknown:
        return sizes
    recorded = (previous or {}).get("inputs") or {}
    if isinstance(recorded, list):  # an older manifest's list of inputs: their sizes were not used
        recorded = dict.fromkeys(recorded)
    sizes = dict(sizes)
    new = []
    for path in unknown:
        if public_url(path) not in recorded:
            new.append(path)
        elif isinstance(size := recorded[public_url(path)], int):
            sizes[path] = size
    if new:
        console.print(line(f"looking up the sizes of {len(new):,} listed input file(s), to split those larger "
                           "than --max-task-bytes"))
        started = time.perf_counter()
        found = lookup_sizes(new)
        sizes.update({path: size for path, size in found.items() if size is not None})
        missing = sum(size is None for size in found.values())
        console.print(line(f"sizes: {len(new) - missing:,} found, {missing:,} unknown (run whole) in "
                           f"{time.perf_counter() - started:.1f} s"))
    return sizes


def committed_inputs(fs: Any, root: str, fingerprint: str) -> set[str]:
    """Ids of the units already done with this fingerprint (see engine.commits: two listings, few reads)."""
    return load_commits(fs, root, fingerprint).units


def _totals(state: CommitState, counters: TaskCounters, spec: PipelineSpec, seconds: float) -> dict:
    reader = counters.steps.get(spec.reader.name)
    sums = state.sums
    return {
        "units": len(state.units),
        "io_retries": int(sums["io_retries"]),
        "records": reader.events.get("records", 0) if reader else 0,
        "html_docs": int(sums["docs_read"]),
        "kept": int(sums["docs_kept"]),
        "tokens": int(sums["tokens"]),
        "bytes_read": int(sums["bytes_read"]),
        "task_cpu_seconds": round(sums["cpu_seconds"], 3),
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
    max_task_bytes: int | None | str = RECORDED,
    paths_base: str = COMMON_CRAWL_BASE,
    console: Console | None = None,
    show_progress: bool = True,
    task_memory: int | str | None = AUTO,
) -> RunResult:
    """Run the process stage of `spec` on `inputs` into `output` (see tamis.engine.layout).

    `max_task_bytes` splits larger input files into byte ranges (None: never split; RECORDED: what the
    output was split at when it exists, else DEFAULT_MAX_TASK_BYTES); `paths_base` is where
    the relative lines of a Common Crawl `*.paths.gz` input live; `task_memory` is each task's memory
    ceiling in bytes, `"auto"` (each CPU's share of a node) or None (see tamis.engine.memory).
    """
    console = console or stderr_console()
    started = time.perf_counter()
    if "://" not in output:
        # workers may run in another directory (or on another node with shared storage): no relative paths
        output = os.path.abspath(output)
    try:
        removed_options = validate_removed_options(spec.removed, spec.source)
    except ValueError as exc:
        raise PipelineError(str(exc)) from None
    files, sizes = expand_inputs(inputs, paths_base)
    layout.check_distinct_ids(files)
    try:  # inputs under OUTPUT/data/ would be mixed with the shards, and deleted by --overwrite
        check_apart(output, inputs, runs=False)
    except OverlapError as exc:
        raise OutputConflictError(str(exc)) from None
    fs, root = filesystem(output)
    cluster = requested_address(address)
    if cluster is not None and not ray.is_initialized():
        check_cluster_reachable(cluster)  # before the output is touched; connect() probes it again
    with output_lock(fs, root):
        return _run_holding_output(spec, files, sizes, output, fs, root, address=address, workers=workers,
                                   limit=limit, overwrite=overwrite, max_task_bytes=max_task_bytes,
                                   removed_options=removed_options, console=console,
                                   show_progress=show_progress, task_memory=task_memory, started=started)


def _run_holding_output(spec: PipelineSpec, files: list[str], sizes: dict[str, int | None], output: str, fs: Any,
                        root: str, *, address: str | None, workers: int | None, limit: int | None,
                        overwrite: bool, max_task_bytes: int | None | str, removed_options: dict[str, Any],
                        console: Console, show_progress: bool, task_memory: int | str | None,
                        started: float) -> RunResult:
    """`run_pipeline` once the output is this run's alone: resume check, process stage, dedup, stats."""
    previous = None if overwrite else _read_manifest(fs, root)
    recorded_limit, recorded_split = _recorded_split(previous) if previous else (DEFAULT_MAX_TASK_BYTES, None)
    if max_task_bytes == RECORDED:
        max_task_bytes = recorded_limit
    if max_task_bytes is not None:
        sizes = _with_listed_sizes(files, sizes, previous, console)
    units = plan_units(files, sizes, max_task_bytes, spec.reader.build().state_block_bytes)
    split = max_task_bytes if any(u.part is not None for u in units) else None
    fingerprint = spec.fingerprint(limit=limit, removed=removed_options, split=split)
    if previous and previous.get("fingerprint") != fingerprint and previous.get("fingerprint") == spec.fingerprint(
            limit=limit, removed=removed_options, split=recorded_split):
        raise OutputConflictError(
            f"--max-task-bytes: {output} was split at {recorded_limit} bytes and this run asks for {max_task_bytes}; "
            "the documents would be the same, but not the units, so its committed work could not be reused. "
            f"Run with --max-task-bytes {recorded_limit} (or without the option, which reuses it), or --overwrite.")
    if overwrite and fs.exists(layout.manifest_path(root)):
        _remove_outputs(fs, root)
    plugins = loaded_plugin_files()
    console.print(plugins_line(plugins))
    provenance = spec.provenance()
    _check_manifest(previous, root, fingerprint, provenance)
    manifest = {
        "pipeline": spec.to_dict(),
        "pipeline_file": spec.source,
        "fingerprint": fingerprint,
        "versions": _versions(),
        "provenance": provenance,
        "plugins": [plugin.to_dict() for plugin in plugins],
        "inputs": {public_url(path): sizes.get(path) for path in files},
        "units": len(units),
        "options": {"limit": limit, "removed": removed_options, "max_task_bytes": split,
                    "split_limit": max_task_bytes},
    }
    write_json(fs, layout.manifest_path(root), {**manifest, "status": "running"})
    state = load_commits(fs, root, fingerprint, inputs=set(files))
    index = CommitIndex(fs, root, state)
    index.repair()
    result = RunResult(output=output, fingerprint=fingerprint, inputs=[public_url(path) for path in files],
                       commit_reads=state.reads, max_task_bytes=max_task_bytes)
    todo = [unit for unit in units if unit.unit_id not in state.units]
    result.skipped = [unit.label() for unit in units if unit.unit_id in state.units]

    process_spec, dedup_options, finalize_steps = split_for_dedup(spec)
    dedup_summary = None
    if todo or dedup_options is not None:
        started_ray = connect(address, num_cpus=workers)
        try:
            if todo:
                try:
                    memory_limit = resolve_task_memory(task_memory, ray.nodes())
                except ValueError as exc:
                    raise PipelineError(str(exc)) from None
                options = TaskOptions(output=output, fingerprint=fingerprint, limit=limit, removed=removed_options,
                                      shard_subdir=INTERMEDIATE if dedup_options else "", memory_limit=memory_limit,
                                      ray_metrics=True)
                try:
                    _run_tasks(process_spec, todo, options, workers, result, index, console, show_progress,
                               started, task_memory)
                finally:
                    index.flush()
            if dedup_options is not None and not result.failed:
                dedup_summary = _run_dedup_stage(fs, root, state.stats.shards, dedup_options, address, workers,
                                                 console, removed_options, finalize_steps, spec.writer)
        finally:
            if started_ray:
                disconnect()

    merged = state.stats
    committed = len(state.units)
    if dedup_summary is not None:
        merged.apply_dedup(dedup_summary)
    result.counters = merged.counters
    result.seconds = time.perf_counter() - started
    result.totals = _totals(state, result.counters, spec, result.seconds)
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
        "complete": not result.failed and committed == len(units),
        "inputs": len(files),
        "units": len(units),
        "committed": committed,
        "failed": result.failed,
        "totals": result.totals,
        **merged.to_dict(),
    })
    status = "complete" if not result.failed else "incomplete"
    write_json(fs, layout.manifest_path(root), {**manifest, "status": status, "failed": result.failed})
    if result.storage_error is not None:
        raise result.storage_error  # what was committed is recorded above; the rerun does the rest
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


def _run_dedup_stage(fs: Any, root: str, committed_shards: list[dict[str, Any]], options: DedupOptions,
                     address: str | None, workers: int | None, console: Console,
                     removed: dict[str, Any], steps: tuple[StepSpec, ...],
                     writer: StepSpec) -> dict[str, Any] | None:
    shards = [url_of(fs, shard["path"]) for shard in committed_shards]
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


def task_cpus(units: int, workers: int | None) -> int:
    """CPUs for each task of the process stage: one, unless the job has fewer inputs than CPUs, when each
    task takes its share (up to MAX_TASK_CPUS, and what the smallest node has), so the cores that no input
    would use extract the pages of the inputs there are. The output is the same either way."""
    available = min(cluster_cpus(), workers) if workers else cluster_cpus()
    return max(1, min(MAX_TASK_CPUS, smallest_node_cpus(), available // max(units, 1)))


def _run_tasks(spec: PipelineSpec, todo: list[WorkUnit], options: TaskOptions, workers: int | None,
               result: RunResult, index: CommitIndex, console: Console, show_progress: bool,
               started: float, task_memory: int | str | None = None) -> None:
    cpus = task_cpus(len(todo), workers)
    reservation = task_reservation(options.memory_limit, cpus, task_memory)
    memory = {"memory": reservation} if reservation else {}
    remote = ray.remote(process_input).options(num_cpus=cpus, max_retries=MAX_TASK_RETRIES, retry_exceptions=False,
                                               **memory)
    # `workers` caps concurrency exactly; otherwise keep a second task queued per CPU so none idles.
    in_flight_limit = workers if workers else 2 * cluster_cpus()
    # On the driver's node: a worker node that dies must not take the progress display with it. Only when
    # something shows it: the actor holds a worker process of its own (its start-up ~0.6 CPU s on 2 cores).
    counter = None
    if show_progress:
        here = NodeAffinitySchedulingStrategy(node_id=ray.get_runtime_context().get_node_id(), soft=True)
        counter = ProgressCounter.options(scheduling_strategy=here).remote()
    spec_ref = ray.put(spec)
    pending: dict[ray.ObjectRef, WorkUnit] = {}
    queue = list(reversed(todo))
    polled, docs, nbytes, running = 0.0, 0, 0, {}
    with ProgressDisplay(console, len(todo), enabled=show_progress) as display:
        while queue or pending:
            if result.storage_error is not None:
                queue.clear()  # every later task would fail at its first write, after reading its input
            while queue and len(pending) < in_flight_limit:
                unit = queue.pop()
                pending[remote.remote(spec_ref, unit, options, counter)] = unit
                if result.first_task_seconds is None:
                    result.first_task_seconds = time.perf_counter() - started
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
            for ref in ready:
                unit = pending.pop(ref)
                try:
                    summary = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - one input's failure must not stop the others
                    if counter is not None:
                        counter.finished.remote(unit.unit_id)  # a committed task told the counter itself
                    message = redact_text(str(exc), unit.path).strip().splitlines()
                    error = next((text for text in reversed(message) if text.strip()), type(exc).__name__)
                    result.failed[unit.label()] = error
                    console.print(line(("failed", "red"), f" {unit.label()}: {error}"))
                    if result.storage_error is None and (full := full_storage_error(exc)) is not None:
                        result.storage_error = full
                        left = f". No more tasks start ({len(queue)} input(s) left)" if queue else ""
                        running = f"; the {len(pending)} running may still commit" if pending else ""
                        console.print(line(("stopping", "red"), f": {full.strerror}{left}{running}"))
                    continue
                histograms = HistogramSet.from_dict(summary.pop("histograms", {}))
                index.add(summary, histograms)  # folded into the run's merge; not kept
                result.completed.append(unit.label())
                display.durations.append(summary["wall_seconds"])
            index.tick()
            if counter is not None and time.monotonic() - polled >= display.poll_seconds:
                # a blocking actor call: at most twice a second (live bar) or once per log line
                polled = time.monotonic()
                try:
                    docs, nbytes, running = ray.get(counter.totals.remote(), timeout=10)
                except Exception:  # noqa: BLE001 - progress is display only; the run goes on without it
                    docs, nbytes, running = display.docs, display.bytes, {}
            display.update(len(result.completed) + len(result.failed), docs, nbytes, running)
    if counter is not None:
        ray.kill(counter)
