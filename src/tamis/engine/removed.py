"""Documents removed by each step, written beside the output with the reason, for inspection."""

from __future__ import annotations

import hashlib
from typing import Any

import pyarrow as pa
from fsspec import AbstractFileSystem

from tamis.batch import DocBatch
from tamis.engine import layout
from tamis.io.parquet import ShardWriter, WrittenShard

REMOVED_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("url", pa.string()),
        ("dump", pa.string()),
        ("date", pa.string()),
        ("file_path", pa.string()),
        ("reason", pa.string()),
        ("text", pa.string()),
        ("language", pa.string()),
        ("language_score", pa.float64()),
    ]
)
MODES = ("none", "sample", "full")
#: Arrow bytes all of a task's removed-document writers may buffer together: one per step that drops, so a
#: budget per writer would multiply with the number of steps; the largest buffer is written out first
REMOVED_BUFFER_BYTES = 16 * 2**20
REMOVED_ROW_GROUP_ROWS = 100_000


def validate_removed_options(options: dict[str, Any], source: str) -> dict[str, Any]:
    """`removed: {mode: none|sample|full, rate: 0.1}` from the pipeline file, checked."""
    unknown = set(options) - {"mode", "rate"}
    if unknown:
        raise ValueError(f"{source}: removed.{sorted(unknown)[0]}: unknown key (accepted: mode, rate)")
    mode = options.get("mode", "none")
    if mode not in MODES:
        raise ValueError(f"{source}: removed.mode: expected one of {', '.join(MODES)}, got {mode!r}")
    rate = options.get("rate", 0.1)
    if not isinstance(rate, (int, float)) or not 0 < rate <= 1:
        raise ValueError(f"{source}: removed.rate: expected a number in (0, 1], got {rate!r}")
    return {"mode": mode, "rate": float(rate)}


def _sampled(doc_id: str, rate: float) -> bool:
    """Deterministic by id, so reruns and different worker counts sample the same documents."""
    digest = hashlib.blake2b(doc_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") < rate * 2**64


class RemovedWriter:
    """Per-task sink for removed documents: one Parquet file per step, committed with the task."""

    def __init__(self, fs: AbstractFileSystem, root: str, ident: str, mode: str, rate: float):
        self.fs = fs
        self.root = root
        self.ident = ident
        self.mode = mode
        self.rate = rate
        self._writers: dict[str, ShardWriter] = {}

    def __call__(self, step: str, removed: DocBatch, reasons: list[str]) -> None:
        if self.mode == "none" or not len(removed):
            return
        rows = range(len(removed))
        if self.mode == "sample":
            rows = [i for i in rows if _sampled(removed["id"][i], self.rate)]
            if not rows:
                return
            removed = removed.take(list(rows))
            reasons = [reasons[i] for i in rows]
        removed.set_column("reason", reasons)
        if "text" not in removed:
            # before extraction there is no text yet: the slot stays empty rather than storing raw HTML
            removed.set_column("text", [None] * len(removed))
        writer = self._writers.get(step)
        if writer is None:
            path = layout.removed_path(self.root, step, self.ident)
            writer = self._writers[step] = ShardWriter(self.fs, path, REMOVED_SCHEMA, "zstd", 3,
                                                       REMOVED_BUFFER_BYTES, REMOVED_ROW_GROUP_ROWS)
        writer.write(removed)
        while sum(w.pending_bytes for w in self._writers.values()) >= REMOVED_BUFFER_BYTES:
            max(self._writers.values(), key=lambda w: w.pending_bytes).flush()

    def commit(self) -> dict[str, WrittenShard]:
        written = {}
        for step, writer in self._writers.items():
            shard = writer.commit()
            if shard is not None:
                written[step] = shard
        return written

    def abort(self) -> None:
        for writer in self._writers.values():
            writer.abort()
