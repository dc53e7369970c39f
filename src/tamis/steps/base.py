"""Base classes of pipeline steps.

Following scikit-learn, a step's constructor only stores its arguments under the same names: those
arguments *are* the step's YAML, its fingerprint, and what is pickled to Ray workers. Anything heavy
(models, word lists) is loaded in `setup()`, which runs once per worker process for each distinct
configuration, not once per task.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import pyarrow as pa

from tamis.batch import DocBatch
from tamis.stats.counters import StepCounters

RemovedSink = Callable[[str, DocBatch, list[str]], None]
"""Receives (step name, removed documents, their reasons) so they can be written to `removed/<step>/`."""


@dataclass
class StepContext:
    """What a step gets besides the batch: its counters and where removed documents go."""

    name: str
    counters: StepCounters
    removed: RemovedSink | None = None


def drop_documents(batch: DocBatch, reasons: list[str | None], ctx: StepContext) -> DocBatch:
    """The documents whose reason is None; the others are counted by reason and sent to `ctx.removed`."""
    keep = [reason is None for reason in reasons]
    if all(keep):
        return batch
    kept, removed = batch.split(keep)
    removed_reasons = [reason for reason in reasons if reason is not None]
    for reason in removed_reasons:
        ctx.counters.drop(reason)
    if ctx.removed is not None:
        ctx.removed(ctx.name, removed, removed_reasons)
    return kept


class Step:
    """A stage of the process pipeline: takes a batch, returns a batch."""

    kind: ClassVar[str] = "step"
    #: registry name, set by @register_step
    step_name: ClassVar[str] = ""
    #: parameter -> file in tamis/resources the step reads when that parameter is empty (hashed into the
    #: fingerprint, like any file a parameter names)
    default_resources: ClassVar[dict[str, str]] = {}

    def setup(self) -> None:
        """Load what the step needs on the worker (models, lists). Called before the first batch."""

    def start_input(self) -> None:
        """Called at the start of each input, and of each of its reader's state blocks (Reader.state_block_bytes):
        steps that keep state across documents reset it here, so a document's result never depends on
        documents before its block, and a byte range cut on block edges gives what the whole file gives."""

    def process(self, batch: DocBatch, ctx: StepContext) -> DocBatch:
        raise NotImplementedError

    def get_params(self) -> dict[str, Any]:
        """The constructor arguments, as given (scikit-learn's contract)."""
        params = {}
        for name in inspect.signature(type(self).__init__).parameters:
            if name in ("self", "args", "kwargs"):
                continue
            params[name] = getattr(self, name)
        return params

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


class OverlappedStep(Step):
    """A step whose work runs in another process (the extraction sandbox), so it can overlap this one's.

    The task hands `compute` one batch in a background thread while its own thread runs the other steps
    on the batches before and after it (engine.chain); batches still go through `compute` one at a time
    and in order, so a stateful engine (trafilatura's `deduplicate` cache) sees what it would see
    without the overlap, and the output is the same. `apply` then counts and drops, in the task's thread.
    """

    def compute(self, batch: DocBatch) -> Any:
        """The work on one batch. Runs in a background thread: it reads the batch and changes nothing
        else (no counters, no removed documents, no columns); what it returns goes to `apply`."""
        raise NotImplementedError

    def apply(self, batch: DocBatch, result: Any, ctx: StepContext) -> DocBatch:
        """`compute`'s result applied to its batch (new columns, drops), in the task's thread."""
        raise NotImplementedError

    def process(self, batch: DocBatch, ctx: StepContext) -> DocBatch:
        return self.apply(batch, self.compute(batch), ctx)


class Reader(Step):
    """Turns one input (a file, or a byte range of it) into bounded batches of documents."""

    kind: ClassVar[str] = "reader"
    #: a reader that cuts its input into fixed blocks of this many bytes never lets a batch span two, and marks
    #: each batch with its block (DocBatch.block): steps' state is reset at every block edge, and byte ranges
    #: are cut on those edges (engine.plan), so split and unsplit runs give identical output; None: not blocked
    state_block_bytes: int | None = None

    def iter_batches(self, path: str, counters: StepCounters, limit: int | None = None,
                     byte_range: tuple[int, int] | None = None) -> Iterator[DocBatch]:
        raise NotImplementedError


class Filter(Step):
    """Keeps or drops documents, with a reason for each drop.

    Implement one of:
      - `filter(text, metadata)` per document, returning True to keep, or False / `(False, reason)`;
      - `filter_table(table)`, vectorised over a `pyarrow.Table` of the batch, returning one verdict per
        row: True/None to keep, False or a reason string to drop (a list or an Arrow array);
      - `filter_batch(batch)` over the DocBatch, returning one reason per document (None to keep); built-in
        filters use it to share derived features, and may add columns (language ID adds `language`).
    Counters, timing and removed-document output come from the framework.
    """

    kind: ClassVar[str] = "filter"
    #: the reason used when `filter` returns a bare False
    default_reason: ClassVar[str] = "filtered"

    def filter(self, text: str, metadata: dict[str, Any]) -> bool | tuple[bool, str]:
        raise NotImplementedError(f"{type(self).__name__} implements neither filter() nor filter_batch()")

    def filter_table(self, table: pa.Table) -> Sequence[bool | str | None] | pa.Array:
        raise NotImplementedError

    def filter_batch(self, batch: DocBatch) -> list[str | None]:
        if type(self).filter_table is not Filter.filter_table:
            return self._reasons_from_table(batch)
        reasons: list[str | None] = []
        texts = batch["text"]
        for i, text in enumerate(texts):
            verdict = self.filter(text, batch.row(i))
            if isinstance(verdict, tuple):
                keep, reason = verdict
                reasons.append(None if keep else str(reason))
            else:
                reasons.append(None if verdict else self.default_reason)
        return reasons

    def _reasons_from_table(self, batch: DocBatch) -> list[str | None]:
        verdicts = self.filter_table(batch.to_arrow())
        if isinstance(verdicts, (pa.Array, pa.ChunkedArray)):
            verdicts = verdicts.to_pylist()
        reasons: list[str | None] = []
        for verdict in verdicts:
            if verdict is None or verdict is True:
                reasons.append(None)
            elif verdict is False:
                reasons.append(self.default_reason)
            else:
                reasons.append(str(verdict))
        return reasons

    def process(self, batch: DocBatch, ctx: StepContext) -> DocBatch:
        reasons = self.filter_batch(batch)
        if len(reasons) != len(batch):
            raise ValueError(f"{ctx.name}: filter_batch returned {len(reasons)} reasons for {len(batch)} documents")
        return drop_documents(batch, reasons, ctx)


class Extractor(Step):
    """Turns the `html` column into a `text` column; documents with no text are dropped and counted."""

    kind: ClassVar[str] = "extractor"


class Formatter(Step):
    """Rewrites the `text` column (e.g. PII replacement); never drops documents."""

    kind: ClassVar[str] = "formatter"

    def format(self, text: str) -> str:
        raise NotImplementedError

    def process(self, batch: DocBatch, ctx: StepContext) -> DocBatch:
        batch.set_column("text", [self.format(text) for text in batch["text"]])
        return batch


class Annotator(Step):
    """Adds columns (e.g. `token_count`); never drops documents."""

    kind: ClassVar[str] = "annotator"
