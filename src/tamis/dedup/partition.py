"""Signature pass: one task per input shard writes its band keys, partitioned by (band, hash range).

A document is a 64-bit node id: `priority << 44 | shard << 24 | row`, where `shard` is the input's index
in the sorted input list and `row` its row in that shard. The smallest id of a duplicate cluster is the
document kept, so the priority (the keep rule, quantised to 20 bits) decides first and input order breaks
ties. Priority 0 is reserved for the documents of a previous index, which therefore always win.

Each shard's output is one signature file (a block file, tamis.dedup.block_file) with a block per (band,
range): the bucket task of (band, range) reads exactly its block from every shard's file. A range is an
interval of the high 32 bits of the band key's second lane, so indexes written with another number of
ranges can still be read by interval.
"""

from __future__ import annotations

import posixpath
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from tamis.dedup.block_file import write_blocks
from tamis.dedup.intermediate import TaskMeter
from tamis.dedup.options import DedupOptions
from tamis.dedup.signatures import MinHasher, content_keys, keyed_by_label, label_keys
from tamis.io.storage import filesystem

ROW_BITS, SHARD_BITS, PRIORITY_BITS = 24, 20, 20
MAX_ROWS, MAX_SHARDS, MAX_PRIORITY = 1 << ROW_BITS, 1 << SHARD_BITS, (1 << PRIORITY_BITS) - 1
ROW_MASK = np.uint64(MAX_ROWS - 1)
DOC_MASK = np.uint64((1 << (ROW_BITS + SHARD_BITS)) - 1)
SHARD_SHIFT = np.uint64(ROW_BITS)
PRIORITY_SHIFT = np.uint64(ROW_BITS + SHARD_BITS)
#: hours since 2000-01-01 for the `oldest` rule (2**20 hours is 119 years)
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
BATCH_ROWS = 2048
SIGNATURE_COLUMNS = ("h1", "h2", "node")


def range_of(h2: np.ndarray, ranges: int) -> np.ndarray:
    """The hash range of each key: an interval of the high 32 bits of the second lane."""
    return ((h2 >> np.uint64(32)) * np.uint64(ranges)) >> np.uint64(32)


def range_interval(rng: int, ranges: int) -> tuple[int, int]:
    """[low, high) of the high 32 bits of h2 covered by range `rng` of `ranges`."""
    low = -(-(rng << 32) // ranges)
    high = -(-((rng + 1) << 32) // ranges)
    return low, high


def shard_of(nodes: np.ndarray) -> np.ndarray:
    return (nodes >> SHARD_SHIFT) & np.uint64(MAX_SHARDS - 1)


def priorities(keep: str, texts: list[str], dates: list[str | None]) -> np.ndarray:
    """1..MAX_PRIORITY per document (smaller is kept first)."""
    n = len(texts)
    if keep == "lowest_id":
        return np.ones(n, dtype=np.uint64)
    if keep == "longest":
        lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=n)
        return (1 + (MAX_PRIORITY - 1) - np.minimum(lengths, MAX_PRIORITY - 1)).astype(np.uint64)
    hours = np.full(n, MAX_PRIORITY - 1, dtype=np.int64)  # undated documents come last
    for i, value in enumerate(dates):
        if value:
            try:
                moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
                if moment.tzinfo is None:
                    moment = moment.replace(tzinfo=UTC)
                hours[i] = int((moment - _EPOCH).total_seconds() // 3600)
            except ValueError:
                pass
    return (1 + np.clip(hours, 0, MAX_PRIORITY - 2)).astype(np.uint64)


def language_labels(batch: Any, names: list[str]) -> list[str]:
    """`<language>_<language_script>` of each row (the label FineWeb-2 deduplicates within)."""
    n = batch.num_rows
    languages = batch.column("language").to_pylist() if "language" in names else [None] * n
    scripts = batch.column("language_script").to_pylist() if "language_script" in names else [None] * n
    return [f"{lang}_{script}" if script else (lang or "") for lang, script in zip(languages, scripts, strict=True)]


def signature_block(band: int, rng: int, ranges: int) -> int:
    """The block of (band, range) in a signature file written with `ranges` ranges per band."""
    return band * ranges + rng


def signature_path(work: str, shard: int) -> str:
    return posixpath.join(work, "signatures", f"part-{shard:06d}.blocks")


def signature_task(shard_path: str, shard: int, ranges: int, options: DedupOptions, work: str) -> dict[str, Any]:
    """Band keys of every document of one shard, written by (band, range); returns the file's entry."""
    if shard >= MAX_SHARDS:
        raise ValueError(f"{shard_path}: more than {MAX_SHARDS} input shards in one dedup run")
    hasher = MinHasher(options)
    hasher.shingles("load the word splitter and tables once per worker, outside the task's memory meter")
    meter = TaskMeter()
    fs_in, path_in = filesystem(shard_path)
    h1_parts, h2_parts, node_parts = [], [], []
    rows = with_signature = 0
    with fs_in.open(path_in, "rb") as handle:
        parquet = pq.ParquetFile(handle)
        if parquet.metadata.num_rows > MAX_ROWS:
            raise ValueError(f"{shard_path}: {parquet.metadata.num_rows} rows, at most {MAX_ROWS} per shard")
        names = parquet.schema_arrow.names
        columns = ["text", "date"] if "date" in names else ["text"]
        if options.per_language:
            if "language" not in names:
                raise ValueError(f"{shard_path}: per-language dedup needs a `language` column (run language_id "
                                 "before dedup)")
            columns += [c for c in ("language", "language_script") if c in names]
        for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=columns):
            texts = [t or "" for t in batch.column("text").to_pylist()]
            labels = language_labels(batch, columns) if options.per_language else None
            dates = batch.column("date").to_pylist() if "date" in columns else [None] * len(texts)
            row_ids = np.arange(rows, rows + len(texts), dtype=np.uint64)
            rows += len(texts)
            if options.kind == "exact":
                h1, h2 = content_keys(texts)
                keep = np.ones(len(texts), dtype=bool)
            else:
                # FineWeb-2 splits each document's words with its own language's tokenizer
                per_doc = [hasher.shingles(t, labels[i] if labels else None) for i, t in enumerate(texts)]
                keep = np.fromiter((len(s) > 0 for s in per_doc), dtype=bool, count=len(per_doc))
                sigs = hasher.signatures_of_shingles([s for s, k in zip(per_doc, keep, strict=True) if k])
                h1, h2 = hasher.band_keys(sigs)
            if labels is not None:
                h1, h2 = keyed_by_label(h1, h2, label_keys([lab for lab, k in zip(labels, keep, strict=True) if k]))
            prio = priorities(options.keep, texts, dates)[keep]
            nodes = (prio << PRIORITY_SHIFT) | (np.uint64(shard) << SHARD_SHIFT) | row_ids[keep]
            with_signature += int(keep.sum())
            h1_parts.append(h1)
            h2_parts.append(h2)
            node_parts.append(nodes)
    h1 = np.concatenate(h1_parts) if h1_parts else np.empty((0, options.bands), dtype=np.uint64)
    h2 = np.concatenate(h2_parts) if h2_parts else np.empty((0, options.bands), dtype=np.uint64)
    nodes = np.concatenate(node_parts) if node_parts else np.empty(0, dtype=np.uint64)
    entry = write_signature_file(work, shard, h1, h2, nodes, ranges)
    return {"shard": shard, "input": shard_path, "rows": rows, "with_signature": with_signature,
            "ranges": ranges, "file": entry, "meter": meter.result()}


def write_signature_file(work: str, shard: int, h1: np.ndarray, h2: np.ndarray, nodes: np.ndarray,
                         ranges: int) -> dict[str, Any]:
    """One shard's band keys ((documents, bands) lanes h1, h2 and their node ids) as the signature file the
    bucket tasks read, a block per (band, range) in that order; returns its entry. Separate from
    signature_task so that a benchmark can write signatures it made itself in exactly this format."""
    groups = []
    for band in range(h1.shape[1]):
        band_ranges = range_of(h2[:, band], ranges)
        order = np.argsort(band_ranges, kind="stable")
        bounds = np.searchsorted(band_ranges[order], np.arange(ranges + 1))
        for rng in range(ranges):
            sel = order[bounds[rng]:bounds[rng + 1]]
            groups.append({"h1": h1[sel, band], "h2": h2[sel, band], "node": nodes[sel]})
    fs, root = filesystem(work)
    return write_blocks(fs, signature_path(root, shard), groups, SIGNATURE_COLUMNS)
