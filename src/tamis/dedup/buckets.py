"""Bucket tasks: one per (band, hash range). Sort the band keys, emit candidate duplicate pairs.

Documents whose band keys are equal are candidates; each group of equal keys becomes a star of edges
from its smallest node id to every other member (a group of k documents gives k - 1 edges, which is
all the clustering needs). Memory is bounded: when a bucket's rows would not fit `memory_per_task`, its
rows are first split on disk by another part of the key into sub-buckets that do (equal keys always land
in the same sub-bucket), and each is sorted in turn.
"""

from __future__ import annotations

import math
import os
import posixpath
import shutil
import tempfile
from typing import Any

import numpy as np

from tamis.dedup.intermediate import TaskMeter, read_group, write_groups
from tamis.dedup.options import DedupOptions
from tamis.dedup.partition import DOC_MASK, SHARD_SHIFT, group_name, range_interval, range_of
from tamis.io.storage import filesystem

#: bytes of memory per row while sorting: 3 uint64 columns, their sorted copies, lexsort's index, slack
BYTES_PER_ROW = 128
COLUMNS = ["h1", "h2", "node"]


def rows_in_memory(memory: int) -> int:
    return max(16, memory // BYTES_PER_ROW)


def edges_path(work: str, band: int, rng: int) -> str:
    return posixpath.join(work, "edges", f"b{band:03d}-r{rng:05d}.parquet")


def star_edges(h1: np.ndarray, h2: np.ndarray, node: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(u, v) with u < v: for every group of equal (h1, h2), its smallest node to each other member."""
    if len(node) < 2:
        return np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.uint64)
    order = np.lexsort((node, h2, h1))
    h1, h2, node = h1[order], h2[order], node[order]
    same = (h1[1:] == h1[:-1]) & (h2[1:] == h2[:-1])
    positions = np.arange(1, len(node))
    group_start = np.maximum.accumulate(np.where(same, 0, positions))
    u, v = node[group_start[same]], node[1:][same]
    distinct = u != v
    return u[distinct], v[distinct]


class IndexSource:
    """Signature files of a previous run, read by hash interval and renumbered as priority-0 documents."""

    def __init__(self, entries: list[dict[str, Any]], ranges: int, shard_offset: int):
        self.entries = entries
        self.ranges = ranges
        self.shard_offset = shard_offset

    def read(self, fs: Any, band: int, rng: int, ranges: int) -> list[dict[str, np.ndarray]]:
        low, high = range_interval(rng, ranges)
        parts = []
        for their in range(self.ranges):
            t_low, t_high = range_interval(their, self.ranges)
            if t_high <= low or t_low >= high:
                continue
            for entry in self.entries:
                arrays = read_group(fs, entry, group_name(band, their), COLUMNS)
                if not len(arrays["node"]):
                    continue
                keep = range_of(arrays["h2"], ranges) == rng
                node = arrays["node"][keep] & DOC_MASK
                node = node + (np.uint64(self.shard_offset) << SHARD_SHIFT)
                parts.append({"h1": arrays["h1"][keep], "h2": arrays["h2"][keep], "node": node})
        return parts


def bucket_task(band: int, rng: int, ranges: int, signature_entries: list[dict[str, Any]],
                index_sources: list[IndexSource], options: DedupOptions, work: str,
                spill_dir: str | None = None) -> dict[str, Any]:
    """Candidate pairs of one (band, range), written as one edge file; returns its entry and counters."""
    meter = TaskMeter()
    fs, root = filesystem(work)
    name = group_name(band, rng)
    expected = sum(e["groups"].get(name, [0, 0])[1] for e in signature_entries)
    limit = rows_in_memory(options.memory_per_task)
    # index rows are not counted up front; a sub-bucket per extra `limit` rows keeps the estimate honest
    pieces = max(1, math.ceil(expected / limit)) if expected > limit else 1
    if pieces == 1 and not index_sources:
        parts = [read_group(fs, e, name, COLUMNS) for e in signature_entries if name in e["groups"]]
        u, v = star_edges(*_concat(parts))
        spilled = 0
        edge_groups = [("all", {"u": u, "v": v})]
    else:
        edge_groups, spilled = _spilled_buckets(fs, name, band, rng, ranges, signature_entries, index_sources,
                                                pieces, limit, spill_dir)
    entry = write_groups(fs, edges_path(root, band, rng), edge_groups)
    edges = sum(g[1] for g in entry["groups"].values())
    return {"band": band, "range": rng, "rows": expected, "edges": edges, "pieces": pieces,
            "spilled_rows": spilled, "file": entry, "meter": meter.result()}


def _concat(parts: list[dict[str, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not parts:
        empty = np.empty(0, dtype=np.uint64)
        return empty, empty, empty
    return tuple(np.concatenate([p[c] for p in parts]) for c in COLUMNS)  # type: ignore[return-value]


def _spilled_buckets(fs: Any, name: str, band: int, rng: int, ranges: int, entries: list[dict[str, Any]],
                     index_sources: list[IndexSource], pieces: int, limit: int,
                     spill_dir: str | None) -> tuple[list[tuple[str, dict[str, np.ndarray]]], int]:
    """Split the bucket's rows by h1 into `pieces` files on local disk, then sort each piece alone."""
    directory = tempfile.mkdtemp(prefix=f"tamis-{name}-", dir=spill_dir)
    spilled = 0
    try:
        handles = [open(os.path.join(directory, f"{i}.bin"), "wb") for i in range(pieces)]
        try:
            def spill(part: dict[str, np.ndarray]) -> None:
                nonlocal spilled
                piece = part["h1"] % np.uint64(pieces)
                rows = np.stack([part[c] for c in COLUMNS], axis=1)
                for i in range(pieces):
                    chosen = rows[piece == i]
                    if len(chosen):
                        handles[i].write(chosen.tobytes())
                spilled += len(rows)

            for entry in entries:
                if name in entry["groups"]:
                    spill(read_group(fs, entry, name, COLUMNS))
            for source in index_sources:
                for part in source.read(fs, band, rng, ranges):
                    spill(part)
        finally:
            for handle in handles:
                handle.close()
        groups = []
        for i in range(pieces):
            rows = np.fromfile(os.path.join(directory, f"{i}.bin"), dtype=np.uint64).reshape(-1, 3)
            os.unlink(os.path.join(directory, f"{i}.bin"))
            u, v = star_edges(rows[:, 0].copy(), rows[:, 1].copy(), rows[:, 2].copy())
            del rows
            groups.append((f"piece-{i}", {"u": u, "v": v}))
        return groups, spilled
    finally:
        shutil.rmtree(directory, ignore_errors=True)
