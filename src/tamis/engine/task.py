"""The process stage for one input file, as it runs inside a Ray task.

Reads the file in bounded batches, pushes each batch through the steps, writes kept documents, removed
documents and counters, and commits them with a marker file written last. Returns to the driver the
marker's compact record (counters, shard; a few KB) and the task's histograms, which the driver merges into
its open commit-index segment and does not keep. Everything a task writes is keyed by its input, so a
retried or rerun task overwrites its own files and never anyone else's.
"""

from __future__ import annotations

import logging
import posixpath
import resource
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tamis.batch import DocBatch
from tamis.engine import layout
from tamis.engine.chain import StepChain
from tamis.engine.commits import compact_record
from tamis.engine.memory import TaskMemoryExceeded, memory_ceiling, release_free_memory
from tamis.engine.metrics import MetricsReporter
from tamis.engine.plan import WorkUnit
from tamis.engine.removed import RemovedWriter
from tamis.extract.steps import sandbox_cpu_seconds
from tamis.io.errors import error_chain
from tamis.io.parquet import ParquetWriter, PartitionedShards, ShardWriter
from tamis.io.redact import has_secrets, redact_text
from tamis.io.retry import with_retries
from tamis.io.storage import filesystem, write_json
from tamis.pipeline.spec import PipelineSpec
from tamis.stats.counters import TaskCounters
from tamis.stats.histograms import HistogramSet
from tamis.stats.languages import LanguageBreakdown
from tamis.stats.observe import observe, observe_output
from tamis.steps.base import Reader, Step, StepContext

log = logging.getLogger(__name__)
WRITER_STEP = "write"
# Steps built once per worker process and pipeline fingerprint: models and lists load once, not per task.
_BUILT: dict[str, tuple[Reader, list[tuple[str, Step]], ParquetWriter]] = {}


@dataclass
class TaskOptions:
    output: str
    fingerprint: str
    limit: int | None = None
    removed: dict[str, Any] = field(default_factory=lambda: {"mode": "none", "rate": 0.1})
    progress_every: float = 2.0  # seconds between a task's reports to the progress actor (display only)
    #: kept documents go to <output>/<shard_subdir>/data/... (the dedup stage's input) instead of <output>/data
    shard_subdir: str = ""
    #: attempts for a unit that fails with a transient storage error (throttling, timeouts)
    io_attempts: int = 4
    io_retry_delay: float = 1.0
    #: bytes this task may add to its worker's memory (None: no ceiling); see tamis.engine.memory
    memory_limit: int | None = None
    #: export live counters as Ray metrics (engine.metrics): the runner turns it on for its Ray tasks; a direct
    #: call of `process_input` outside a Ray worker has nothing to export them from
    ray_metrics: bool = False


def _built_steps(spec: PipelineSpec, fingerprint: str) -> tuple[Reader, list[tuple[str, Step]], ParquetWriter]:
    built = _BUILT.get(fingerprint)
    if built is None:
        reader = spec.reader.build()
        steps = [(s.name, s.build()) for s in spec.steps]
        writer = spec.writer.build()
        for _, step in steps:
            step.setup()
        assert isinstance(reader, Reader) and isinstance(writer, ParquetWriter)
        built = _BUILT[fingerprint] = (reader, steps, writer)
    return built


def _cpu_seconds() -> float:
    """CPU of this worker, its finished children and its live extraction sandboxes."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime + sandbox_cpu_seconds()


def process_input(spec: PipelineSpec, unit: WorkUnit, options: TaskOptions, progress: Any = None) -> dict[str, Any]:
    """Run the process stage on one unit and commit its outputs; returns its compact record, plus "histograms".

    A transient storage error restarts the unit after a backoff (it is idempotent: everything it writes is
    keyed by the unit and committed last); other errors fail it, and the driver reports it by input.
    """
    if progress is not None:
        progress.started.remote(unit.unit_id)
    retries: list[str] = []

    def note_retry(attempt: int, exc: BaseException) -> None:
        message = redact_text(str(exc), unit.path)
        retries.append(f"{type(exc).__name__}: {message}"[:300])
        log.warning("%s: transient error (%s), retrying (attempt %d)", unit.label(), message, attempt + 1)

    out_of_memory = False
    try:
        with memory_ceiling(options.memory_limit):
            summary = with_retries(lambda: _process_unit(spec, unit, options, progress, retries),
                                   options.io_attempts, options.io_retry_delay, note_retry)
    except MemoryError:
        out_of_memory = True  # raised below, outside this block, so the failed frames are freed first
    except Exception as exc:
        if not _leaks(exc, unit.path):
            raise
        raise _redacted(exc, unit.path) from None
    release_free_memory()  # what this unit freed goes back before the worker takes the next one
    if out_of_memory:
        limit = f"its ceiling of {options.memory_limit / 2**20:.0f} MiB" if options.memory_limit else "memory"
        raise TaskMemoryExceeded(f"{unit.label()}: out of memory: the task went past {limit} "
                                 "(raise it with --task-memory); the input is skipped")
    return summary


def _leaks(exc: BaseException, url: str) -> bool:
    """Would this error, traceback and causes included, show a secret of the input URL to the driver?"""
    return has_secrets(url) or any(redact_text(str(error), url) != str(error) for error in error_chain(exc))


def _redacted(exc: Exception, url: str) -> Exception:
    """The same kind of error with the input URL's secrets removed from its message (and no chained causes,
    whose messages would carry them too)."""
    message = redact_text(str(exc), url)
    try:
        clean = type(exc)(message)
        if str(clean) == message:
            return clean
    except Exception:  # noqa: BLE001 - an exception class that takes other arguments
        pass
    return RuntimeError(f"{type(exc).__name__}: {message}")


def _process_unit(spec: PipelineSpec, unit: WorkUnit, options: TaskOptions, progress: Any,
                  retries: list[str]) -> dict[str, Any]:
    started, cpu_started = time.perf_counter(), _cpu_seconds()
    input_path = unit.path
    ident = unit.unit_id
    fs, root = filesystem(options.output)
    reader, steps, writer_step = _built_steps(spec, options.fingerprint)
    for _, step in steps:
        step.start_input()
    counters = TaskCounters()
    reader_counters = counters.for_step(spec.reader.name)
    step_counters = [counters.for_step(name) for name, _ in steps]
    write_counters = counters.for_step(WRITER_STEP)
    removed = RemovedWriter(fs, root, ident, options.removed["mode"], options.removed["rate"])
    histograms = HistogramSet()
    languages: Counter[str] = Counter()
    metrics = MetricsReporter(counters, spec.reader.name, enabled=options.ray_metrics)
    by_language = LanguageBreakdown()

    def on_removed(step: str, docs: DocBatch, reasons: list[str]) -> None:
        observe(histograms, step, "removed", docs)
        by_language.dropped(step, docs, reasons)
        removed(step, docs, reasons)

    contexts = [StepContext(name, c, on_removed) for (name, _), c in zip(steps, step_counters, strict=True)]
    shard: ShardWriter | PartitionedShards | None = None
    # FineWeb-2's data/<language>/ layout, for final shards only: dedup's input is one shard per input
    partitioned = writer_step.partition_by != "dump" and not options.shard_subdir
    last_report, reported_docs, reported_bytes = time.monotonic(), 0, 0
    block = None
    chain = StepChain(steps, step_counters, contexts, histograms, by_language)

    def write(batch: DocBatch) -> None:
        nonlocal shard
        observe_output(histograms, languages, batch)
        by_language.output(batch)
        with write_counters.timed():
            if shard is None and partitioned:
                shard = PartitionedShards(writer_step, fs, root, f"part-{ident}.parquet")
            elif shard is None:
                shard_root = posixpath.join(root, options.shard_subdir) if options.shard_subdir else root
                shard = writer_step.open(fs, layout.shard_path(shard_root, batch["dump"][0], ident))
            write_counters.docs_in += len(batch)
            shard.write(batch)
            write_counters.docs_out += len(batch)

    try:
        for batch in reader.iter_batches(input_path, reader_counters, options.limit, unit.byte_range):
            if block is not None and batch.block != block:
                for finished in chain.drain():
                    write(finished)
                for _, step in steps:
                    step.start_input()  # a new state block (Reader.state_block_bytes) starts afresh
                release_free_memory()
            block = batch.block
            for finished in chain.feed(batch):
                write(finished)
            if time.monotonic() - last_report >= options.progress_every:
                if progress is not None:
                    docs = reader_counters.docs_out
                    read = reader_counters.events.get("bytes_read", 0)
                    progress.add.remote(docs - reported_docs, read - reported_bytes)
                    reported_docs, reported_bytes = docs, read
                last_report = time.monotonic()
                metrics.report()
        for finished in chain.drain():
            write(finished)
        with write_counters.timed():
            committed = shard.commit() if shard is not None else None
            parts = committed if isinstance(committed, list) else []
            written = None if isinstance(committed, list) else committed
            removed_written = removed.commit()
    except BaseException:
        chain.close()
        if shard is not None:
            shard.abort()
        removed.abort()
        raise
    summary = {
        "input": unit.public_path,
        "input_id": ident,
        "byte_range": list(unit.byte_range) if unit.byte_range else None,
        "fingerprint": options.fingerprint,
        "shard": written.to_dict() if written else None,
        **({"shards": [p.to_dict() for p in parts]} if partitioned else {}),
        "removed": {step: s.to_dict() for step, s in removed_written.items()},
        "counters": counters.to_dict(),
        "languages": dict(sorted(languages.items())),
        "by_language": by_language.to_dict(),
        "histograms": histograms.to_dict(),
        "wall_seconds": round(time.perf_counter() - started, 6),
        "cpu_seconds": round(_cpu_seconds() - cpu_started, 6),
        "docs_read": reader_counters.docs_out,
        "docs_kept": written.rows if written else sum(p.rows for p in parts),
        "tokens": written.tokens if written else sum(p.tokens for p in parts),
        "bytes_read": reader_counters.events.get("bytes_read", 0),
        "io_retries": list(retries),
    }
    with_retries(lambda: write_json(fs, layout.task_stats_path(root, ident), summary), options.io_attempts)
    record = compact_record(summary)
    # the marker is written last: its presence is what makes this input's outputs committed
    with_retries(lambda: write_json(fs, layout.commit_path(root, ident), record), options.io_attempts)
    if progress is not None:
        progress.add.remote(reader_counters.docs_out - reported_docs, summary["bytes_read"] - reported_bytes,
                            finished=ident)
    metrics.report()
    return {**record, "histograms": summary["histograms"]}
