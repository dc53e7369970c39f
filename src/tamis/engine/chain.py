"""Running a task's steps on its batches, with the extraction step overlapped with the others.

The extractor runs in its own process (the sandbox), and on a machine with more cores than input files
the task's process would otherwise sit idle while the child extracts, and the child while the task runs
its reader and filters. `StepChain` gives each batch's extraction to a background thread, which only
waits on the child, and meanwhile runs the steps after extraction on the batch before and the reader and
the steps before extraction on the batch after. Batches are extracted one at a time and in order, and
come out in order, so the output is the same as running the steps one batch at a time; the extra memory
is at most two batches in flight.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from tamis.batch import DocBatch
from tamis.stats.counters import StepCounters
from tamis.stats.histograms import FEATURE_PREFIX, HistogramSet
from tamis.stats.languages import LanguageBreakdown
from tamis.stats.observe import observe
from tamis.steps.base import Annotator, Formatter, OverlappedStep, Step, StepContext

# One background thread per worker process: one overlapped batch at a time, whichever task it belongs to.
_EXECUTOR: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor:
    global _EXECUTOR
    if _EXECUTOR is None:
        _EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tamis-extraction")
    return _EXECUTOR


def _timed_compute(step: OverlappedStep, batch: DocBatch) -> tuple[Any, float]:
    started = time.perf_counter()
    result = step.compute(batch)
    return result, time.perf_counter() - started


class StepBookkeeping:
    """What surrounds every step's work: documents in and out, per-language counts, histograms of what it
    kept, and the step's feature columns dropped after it."""

    def __init__(self, histograms: HistogramSet, by_language: LanguageBreakdown | None):
        self.histograms = histograms
        self.by_language = by_language

    def before(self, name: str, batch: DocBatch, counters: StepCounters) -> bool:
        counters.docs_in += len(batch)
        labelled = "language" in batch
        if self.by_language is not None and labelled:
            self.by_language.step_in(name, batch)
        return labelled

    def after(self, name: str, step: Step, batch: DocBatch, counters: StepCounters, labelled: bool) -> None:
        counters.docs_out += len(batch)
        if self.by_language is not None:
            self.by_language.step_out(name, batch)
            if not labelled and "language" in batch:
                self.by_language.labelled_by(name)
        if not isinstance(step, (Annotator, Formatter)):
            observe(self.histograms, name, "kept", batch)
        for column in [c for c in batch.columns if c.startswith(FEATURE_PREFIX)]:
            batch.drop_column(column)


def run_steps(batch: DocBatch, steps: list[tuple[str, Step]], counters: list[StepCounters],
              contexts: list[StepContext], histograms: HistogramSet,
              by_language: LanguageBreakdown | None = None) -> DocBatch:
    """The batch through every step, one after the other, in this thread."""
    books = StepBookkeeping(histograms, by_language)
    for (name, step), step_counters, ctx in zip(steps, counters, contexts, strict=True):
        labelled = books.before(name, batch, step_counters)
        with step_counters.timed():
            batch = step.process(batch, ctx)
        books.after(name, step, batch, step_counters, labelled)
        if not len(batch):
            break
    return batch


class StepChain:
    """A task's steps, fed batch after batch, with the first OverlappedStep run in the background thread.

    `feed` returns the batches finished so far (in input order), `drain` the rest; `close` waits for the
    background work, and must be called however the task ends, so that the next task never shares the
    extractor with a batch still in flight.
    """

    def __init__(self, steps: list[tuple[str, Step]], counters: list[StepCounters], contexts: list[StepContext],
                 histograms: HistogramSet, by_language: LanguageBreakdown | None = None):
        self.histograms = histograms
        self.by_language = by_language
        split = next((i for i, (_, step) in enumerate(steps) if isinstance(step, OverlappedStep)), len(steps))
        self._head = (steps[:split], counters[:split], contexts[:split])
        self._tail = (steps[split + 1:], counters[split + 1:], contexts[split + 1:])
        self._overlapped = (steps[split], counters[split], contexts[split]) if split < len(steps) else None
        self._pending: tuple[DocBatch, Future[tuple[Any, float]]] | None = None

    def feed(self, batch: DocBatch) -> list[DocBatch]:
        """Start the batch; the batches finished meanwhile (none, or the one fed before), in order."""
        batch = run_steps(batch, *self._head, self.histograms, self.by_language)
        if self._overlapped is None:
            return [batch] if len(batch) else []
        if not len(batch):
            return []
        (_, step), _, _ = self._overlapped
        assert isinstance(step, OverlappedStep)
        future = _executor().submit(_timed_compute, step, batch)
        finished = self._finish_pending()
        self._pending = (batch, future)
        return finished

    def drain(self) -> list[DocBatch]:
        """The batch still in flight, finished; call it before a step's state is reset (Step.start_input)."""
        return self._finish_pending()

    def close(self) -> None:
        """Wait for the batch in flight, if any, and forget it (the task is failing)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            try:
                pending[1].result()
            except BaseException:  # noqa: BLE001 - the task is already failing with its own error
                pass

    def _finish_pending(self) -> list[DocBatch]:
        pending, self._pending = self._pending, None
        if pending is None:
            return []
        batch, future = pending
        assert self._overlapped is not None
        (name, step), step_counters, ctx = self._overlapped
        assert isinstance(step, OverlappedStep)
        result, seconds = future.result()
        books = StepBookkeeping(self.histograms, self.by_language)
        labelled = books.before(name, batch, step_counters)
        started = time.perf_counter()
        batch = step.apply(batch, result, ctx)
        step_counters.seconds += seconds + time.perf_counter() - started
        books.after(name, step, batch, step_counters, labelled)
        if not len(batch):
            return []
        batch = run_steps(batch, *self._tail, self.histograms, self.by_language)
        return [batch] if len(batch) else []
