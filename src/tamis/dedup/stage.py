"""The dedup stage on Ray: signatures -> buckets -> connected components -> finalize.

    run_dedup(input_shards, work_dir, output_root, options) -> summary

`input_shards` are FineWeb-schema Parquet files (the process stage's output); `work_dir` holds every
intermediate (signatures/, edges/, components/) and the commit markers (_commits/<stage>/<task>.json);
final shards go to `<output_root>/data/<dump>/part-<ident>.parquet`. The driver plans tasks, keeps a
bounded number in flight and receives only file entries and counters, never documents.

Every task's outputs are committed by a marker holding the options' fingerprint and each file's size and
table digest (intermediates are block files, tamis.dedup.block_file); a rerun skips tasks whose marker
matches and whose files are present with their recorded size.
A reader that finds a corrupt or partial intermediate raises CorruptIntermediateError: the driver deletes
the producer's marker and plans again (at most MAX_REPLANS times), so the file is recomputed, never used.
Tasks lost with a node are retried by Ray; every task is deterministic and writes only its own files, so a
retry produces the same bytes.
"""

from __future__ import annotations

import functools
import logging
import math
import posixpath
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow.parquet as pq
import ray

from tamis.dedup.block_file import MAGIC
from tamis.dedup.buckets import BYTES_PER_ROW, IndexSource, bucket_task
from tamis.dedup.components import large_star_task, partitions_for, scatter_task, small_star_task
from tamis.dedup.finalize import finalize_task
from tamis.dedup.intermediate import CorruptIntermediateError, check_exists
from tamis.dedup.options import DedupOptions
from tamis.dedup.partition import MAX_SHARDS, signature_task
from tamis.io.errors import StorageFullError, full_storage_error
from tamis.io.storage import filesystem, read_json, write_json
from tamis.pipeline.spec import StepSpec
from tamis.stats.counters import TaskCounters
from tamis.stats.histograms import HistogramSet
from tamis.stats.languages import LanguageBreakdown
from tamis.stats.merge import DEDUP_STEP

log = logging.getLogger(__name__)
MAX_TASK_RETRIES = 3
#: errors of the storage or the network (throttling, a dropped connection, a timeout) that a task meets after
#: the filesystem's own retries: Ray runs the task again, up to MAX_TASK_RETRIES times. Damage to a file is
#: not among them: it is a CorruptIntermediateError, and the driver recomputes the file instead.
RETRYABLE_ERRORS = [OSError, TimeoutError]
MAX_REPLANS = 3
MAX_ROUNDS = 200
INDEX_FILE = "index.json"
#: the intermediates' format, in the index and in every fingerprint: work of another format is not reused
BLOCK_FORMAT = MAGIC.decode()


class DedupError(RuntimeError):
    """The dedup stage could not complete; the message names the task."""


@dataclass
class _Task:
    stage: str
    name: str
    fn: Callable[..., dict[str, Any]]
    args: tuple
    memory: int = 0
    files: Callable[[dict[str, Any]], list[dict[str, Any]]] = field(default=lambda s: [s["file"]])


@functools.cache
def _remote(fn: Callable[..., dict[str, Any]]) -> Any:
    """One Ray remote function per task function: `ray.remote(fn)` pickles and exports `fn` to the GCS each
    time it is called (6 ms a task on the 2-core machine, once for each of a stage's many bucket tasks)."""
    return ray.remote(_no_retry_on_full_storage(fn))


def _no_retry_on_full_storage(fn: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """`fn`, raising StorageFullError for a full disk: Ray retries a task's OSErrors (RETRYABLE_ERRORS, for
    flaky object stores), and each retry of a full disk would fail the same way, with its traceback logged."""

    @functools.wraps(fn)
    def task(*args: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            return fn(*args, **kwargs)
        except OSError as exc:
            if full_storage_error(exc) is None:
                raise
            raise StorageFullError(str(exc)) from None

    return task


class _Driver:
    def __init__(self, fs: Any, root: str, fingerprint: str, max_in_flight: int, progress: Callable | None):
        self.fs = fs
        self.root = root
        self.fingerprint = fingerprint
        self.max_in_flight = max_in_flight
        self.progress = progress
        self.producers: dict[str, str] = {}  # file path -> marker path
        self.meters: list[dict[str, Any]] = []

    def with_fingerprint(self, fingerprint: str) -> _Driver:
        other = _Driver(self.fs, self.root, fingerprint, self.max_in_flight, self.progress)
        other.producers, other.meters = self.producers, self.meters
        return other

    def marker(self, task: _Task) -> str:
        return posixpath.join(self.root, "_commits", task.stage, f"{task.name}.json")

    def _committed(self, task: _Task) -> dict[str, Any] | None:
        path = self.marker(task)
        try:
            if not self.fs.exists(path):
                return None
            data = read_json(self.fs, path)
        except Exception:  # noqa: BLE001 - an unreadable marker means the task is not committed
            return None
        if data.get("fingerprint") != self.fingerprint:
            return None
        summary = data["summary"]
        if not all(check_exists(self.fs, f) for f in task.files(summary) if f):
            return None
        return summary

    def run(self, tasks: list[_Task], keep: Callable[[dict[str, Any]], Any] | None = None,
            label: str | None = None) -> list[Any]:
        """Each task's summary, in task order, committed or computed now; with `keep`, what `keep` returns for
        it instead (called once per task, in the order results arrive), so the driver holds only that.
        `label` names the batch in progress lines (default: its stage), where a stage runs several batches."""
        results: list[Any] = [None] * len(tasks)
        todo = []
        for i, task in enumerate(tasks):
            summary = self._committed(task)
            if summary is None:
                todo.append(i)
            else:
                self._record(task, summary, reused=True)
                results[i] = keep(summary) if keep else summary
        pending: dict[ray.ObjectRef, int] = {}
        queue = list(reversed(todo))
        limit = self.max_in_flight or 2 * max(1, int(ray.cluster_resources().get("CPU", 1)))
        while queue or pending:
            while queue and len(pending) < limit:
                i = queue.pop()
                task = tasks[i]
                options: dict[str, Any] = {"num_cpus": 1, "max_retries": MAX_TASK_RETRIES,
                                           "retry_exceptions": RETRYABLE_ERRORS}
                if task.memory:
                    options["memory"] = task.memory
                pending[_remote(task.fn).options(**options).remote(*task.args)] = i
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            for ref in ready:
                i = pending.pop(ref)
                task = tasks[i]
                try:
                    summary = ray.get(ref)
                except CorruptIntermediateError:
                    self._drop(pending)
                    raise
                except ray.exceptions.RayTaskError as exc:
                    cause = exc.as_instanceof_cause()
                    self._drop(pending)
                    if isinstance(cause, CorruptIntermediateError):
                        raise CorruptIntermediateError(cause.path, cause.reason) from None
                    full = full_storage_error(exc, f" (dedup task {task.stage}/{task.name})")
                    if full is not None:  # the storage's error, which the command line says in one line
                        raise full from None
                    raise DedupError(f"dedup task {task.stage}/{task.name} failed: {exc}") from None
                write_json(self.fs, self.marker(task), {"fingerprint": self.fingerprint, "summary": summary})
                self._record(task, summary, reused=False)
                results[i] = keep(summary) if keep else summary
            if self.progress is not None:
                self.progress(label or (tasks[0].stage if tasks else ""), sum(r is not None for r in results),
                              len(tasks))
        return results  # type: ignore[return-value]

    def _drop(self, pending: dict[ray.ObjectRef, int]) -> None:
        """Let the tasks in flight finish and drop their results (the stage is replanned after a failure).

        They are not cancelled: `ray.cancel` racing with a task's reply crashed the driver inside Ray 2.60 (a
        failed check in TaskManager::CompletePendingTask, seen once in a fresh-clone CI run on 2026-12-07),
        and the tasks in flight are short."""
        for ref in pending:
            try:
                ray.get(ref)
            except Exception:  # noqa: BLE001 - results of dropped tasks do not matter
                pass
        pending.clear()

    def _record(self, task: _Task, summary: dict[str, Any], reused: bool) -> None:
        for entry in task.files(summary):
            if entry:
                self.producers[entry["path"]] = self.marker(task)
        meter = summary.get("meter")
        if meter and not reused:
            self.meters.append({"stage": task.stage, "task": task.name, **meter})

    def invalidate(self, path: str) -> bool:
        marker = self.producers.get(path)
        if marker is None or not self.fs.exists(marker):
            return False
        log.warning("recomputing %s: its producer's marker %s is removed", path, marker)
        self.fs.rm(marker)
        if self.fs.exists(path):
            self.fs.rm(path)
        return True


def choose_ranges(total_docs: int, options: DedupOptions) -> int:
    if options.ranges_per_band:
        return options.ranges_per_band
    return max(1, math.ceil(total_docs * BYTES_PER_ROW / options.memory_per_task))


def dedup_fingerprint(options: DedupOptions, shards: list[str], rows: list[int], ranges: int,
                      index_fingerprints: list[str]) -> str:
    """What the signature, bucket and component tasks' outputs depend on (their commit markers hold it)."""
    return options.fingerprint(shards, rows, ranges, index_fingerprints, BLOCK_FORMAT)


def _shard_rows(path: str) -> int:
    fs, inner = filesystem(path)
    with fs.open(inner, "rb") as handle:
        return pq.ParquetFile(handle).metadata.num_rows


def _load_index(directory: str, options: DedupOptions) -> dict[str, Any]:
    fs, root = filesystem(directory)
    path = posixpath.join(root, INDEX_FILE)
    if not fs.exists(path):
        raise DedupError(f"previous index {directory}: no {INDEX_FILE} (not a finished dedup work directory)")
    index = read_json(fs, path)
    if index.get("signature_format") != BLOCK_FORMAT:
        raise DedupError(f"previous index {directory} was written by an older tamis, whose signature files this "
                         f"version does not read (format {index.get('signature_format', 'Parquet')}, this version "
                         f"reads {BLOCK_FORMAT}): run the dedup stage of that output again to rebuild it")
    if index["signature_params"] != options.signature_params():
        raise DedupError(f"previous index {directory} was built with {index['signature_params']}, this run uses "
                         f"{options.signature_params()}: signatures are not comparable")
    return index


def run_dedup(input_shards: list[str], work_dir: str, output_root: str, options: DedupOptions, *,
              address: str | None = None, workers: int | None = None, removed: dict[str, Any] | None = None,
              progress: Callable[[str, int, int], None] | None = None,
              steps: tuple[StepSpec, ...] | None = None, writer: StepSpec | None = None) -> dict[str, Any]:
    """Deduplicate `input_shards` into final shards under `output_root`; returns a summary of counts,
    stages, and every task's CPU seconds and peak memory.

    `steps` run after dedup in the finalize tasks (None: PII and token count with their defaults, as
    `options.pii` / `options.token_count` say); `writer` writes the final shards (None: FineWeb's columns).
    """
    from tamis.engine.ray_runtime import connect, disconnect

    started = time.perf_counter()
    shards = sorted(dict.fromkeys(input_shards))
    if not shards:
        raise DedupError("no input shards")
    indexes = [_load_index(d, options) for d in options.previous_index]
    if len(shards) + sum(len(i["shards"]) for i in indexes) > MAX_SHARDS:
        raise DedupError(f"at most {MAX_SHARDS} shards (inputs and previous indexes) in one dedup run")
    fs, root = filesystem(work_dir)
    rows = [_shard_rows(s) for s in shards]
    ranges = choose_ranges(sum(rows), options)
    fingerprint = dedup_fingerprint(options, shards, rows, ranges, [i["fingerprint"] for i in indexes])
    driver = _Driver(fs, root, fingerprint, options.max_in_flight or (workers or 0), progress)
    started_ray = connect(address, num_cpus=workers)
    try:
        for attempt in range(MAX_REPLANS + 1):
            driver.meters = []
            try:
                return _plan_and_run(driver, shards, ranges, indexes, work_dir, output_root, options, started,
                                     removed, steps, writer)
            except CorruptIntermediateError as exc:
                if attempt == MAX_REPLANS:
                    raise DedupError(f"{exc} (still corrupt after {MAX_REPLANS} recomputations)") from None
                log.warning("%s: recomputing it", exc)
                if not driver.invalidate(exc.path):
                    raise DedupError(f"{exc}, and no task of this run produced it") from None
    finally:
        if started_ray:
            disconnect()
    raise AssertionError("unreachable")


def _plan_and_run(driver: _Driver, shards: list[str], ranges: int, indexes: list[dict[str, Any]], work_dir: str,
                  output_root: str, options: DedupOptions, started: float,
                  removed: dict[str, Any] | None = None, steps: tuple[StepSpec, ...] | None = None,
                  writer: StepSpec | None = None) -> dict[str, Any]:
    fs, root, fingerprint = driver.fs, driver.root, driver.fingerprint
    memory = options.memory_per_task

    # 1. signatures, one task per shard
    sig_tasks = [_Task("signatures", f"{i:06d}", signature_task, (path, i, ranges, options, work_dir))
                 for i, path in enumerate(shards)]
    signatures = driver.run(sig_tasks)

    # 2. buckets, one task per (band, range). The signature entries (a path, size and table digest per shard)
    # and the index sources go to the object store once: every bucket task reads from every file, and the
    # driver holds one copy of them, not one per task.
    sources, offset = [], len(shards)
    for directory, index in zip(options.previous_index, indexes, strict=True):
        sources.append(IndexSource(index["signature_files"], index["ranges"], offset, directory))
        offset += len(index["shards"])
    entries_ref = ray.put([s["file"] for s in signatures])
    sources_ref = ray.put(sources)
    bucket_tasks = [_Task("buckets", f"b{band:03d}-r{rng:05d}", bucket_task,
                          (band, rng, ranges, entries_ref, sources_ref, options, work_dir), memory)
                    for band in range(options.bands) for rng in range(ranges)]
    buckets = driver.run(bucket_tasks)

    # 3. connected components: a round's P tasks each read their block of every file of the round before, whose
    # entries go to the object store once per round
    total_edges = sum(b["edges"] for b in buckets)
    partitions = options.partitions or partitions_for(total_edges, memory)
    members: list[dict[str, Any] | None] = []
    rounds = 0
    if total_edges:
        edge_files = [b["file"] for b in buckets if b["edges"]]
        per_task = max(1, math.ceil(len(edge_files) / max(partitions, 1)))
        chunks = [edge_files[i:i + per_task] for i in range(0, len(edge_files), per_task)]
        scattered = driver.run([_Task("components", f"scatter-{t:05d}", scatter_task, (t, chunk, partitions,
                                                                                      work_dir), memory)
                                for t, chunk in enumerate(chunks)], label="components (scatter)")
        current = ray.put([s["file"] for s in scattered])
        for rounds in range(1, MAX_ROUNDS + 1):
            large = driver.run([_Task("components", f"large-{rounds:03d}-{p:05d}", large_star_task,
                                      (rounds, p, current, partitions, work_dir), memory,
                                      files=lambda s: [s["file"], s["members"]])
                                for p in range(partitions)], label=f"components (round {rounds}, large-star)")
            if sum(t["violations"] for t in large) == 0:
                members = [t["members"] for t in large]
                break
            large_files = ray.put([t["file"] for t in large])
            small = driver.run([_Task("components", f"small-{rounds:03d}-{p:05d}", small_star_task,
                                      (rounds, p, large_files, partitions, work_dir), memory)
                                for p in range(partitions)], label=f"components (round {rounds}, small-star)")
            current = ray.put([t["file"] for t in small])
        else:
            raise DedupError(f"connected components did not converge in {MAX_ROUNDS} rounds")

    # 4. finalize, one task per shard; each reads its own block from every members file (one copy of their
    # entries in the object store, not a copy per task in the driver)
    members_ref = ray.put(members)
    final_tasks = [_Task("finalize", f"{i:06d}", finalize_task,
                         (path, i, members_ref, partitions, options, work_dir, output_root, removed, steps,
                          writer),
                         files=_output_entries)
                   for i, path in enumerate(shards)]
    # the finalize steps and writer are part of what finalize's outputs depend on (none given: as before)
    after = ([[s.to_dict() for s in steps], writer.to_dict() if writer else None]
             if steps is not None or writer is not None else [])
    totals = _FinalizeTotals()
    finals = driver.with_fingerprint(options.fingerprint(fingerprint, output_root, *after)).run(final_tasks,
                                                                                               keep=totals.add)

    index = {"fingerprint": fingerprint, "signature_params": options.signature_params(),
             "signature_format": BLOCK_FORMAT, "ranges": ranges, "shards": shards,
             "signature_files": [s["file"] for s in signatures]}
    write_json(fs, posixpath.join(root, INDEX_FILE), index)
    summary = {
        "fingerprint": fingerprint,
        "options": options.to_dict(),
        "shards": len(shards),
        "docs": sum(f["docs"] for f in finals),
        "with_signature": sum(s["with_signature"] for s in signatures),
        "kept": sum(f["kept"] for f in finals),
        "removed": sum(f["removed"] for f in finals),
        "unique": sum(f["unique"] for f in finals),
        "ranges_per_band": ranges,
        "bucket_tasks": len(bucket_tasks),
        "spilled_buckets": sum(1 for b in buckets if b["pieces"] > 1),
        "candidate_pairs": total_edges,
        "partitions": partitions,
        "rounds": rounds,
        "outputs": [o["path"] for f in finals for o in f["outputs"]],
        "final_shards": [o for f in finals for o in f["outputs"]],
        "removed_shards": [f["removed_outputs"][DEDUP_STEP] for f in finals
                           if DEDUP_STEP in f.get("removed_outputs", {})],
        # the steps after dedup: their counters and removed documents, by step, like the process stage's
        "counters": totals.counters.to_dict(),
        "by_language": totals.by_language.to_dict(),
        "steps_removed_shards": {step: [f["removed_outputs"][step] for f in finals
                                        if step in f.get("removed_outputs", {})]
                                 for step in sorted({k for f in finals for k in f.get("removed_outputs", {})}
                                                    - {DEDUP_STEP})},
        "languages": dict(sorted((+totals.languages).items())),
        "histograms": totals.histograms.to_dict(),
        "tasks": driver.meters,
        "seconds": round(time.perf_counter() - started, 3),
    }
    write_json(fs, posixpath.join(root, "summary.json"), summary)
    return summary


class _FinalizeTotals:
    """What the summary needs from the finalize tasks, merged as each arrives: the driver keeps each shard's
    counts and output entries, not its counters, languages and histograms (about 15 KB a shard, measured with
    benchmarks/bench_dedup_driver.py)."""

    KEPT = ("docs", "kept", "removed", "outputs", "removed_outputs")

    def __init__(self) -> None:
        self.counters = TaskCounters()
        self.by_language = LanguageBreakdown()
        self.histograms = HistogramSet()
        self.languages: Counter[str] = Counter()

    def add(self, final: dict[str, Any]) -> dict[str, Any]:
        self.counters.merge(TaskCounters.from_dict(final.get("counters", {})))
        self.by_language.merge(LanguageBreakdown.from_dict(final.get("by_language")))
        self.histograms.merge(HistogramSet.from_dict(final.get("histograms", {})))
        self.languages.update(final.get("languages", {}))
        kept = {key: final[key] for key in self.KEPT if key in final}
        kept["unique"] = final.get("unique", final["docs"] - final["removed"])
        return kept


def _output_entries(summary: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"path": out["path"], "bytes": out["file_bytes"]} for out in summary.get("outputs", [])]
