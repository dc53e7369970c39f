"""Bucket tasks: one per (band, hash range). Sort the band keys, emit candidate duplicate pairs.

Documents whose band keys are equal are candidates; each group of equal keys becomes a star of edges
from its smallest node id to every other member (a group of k documents gives k - 1 edges, which is
all the clustering needs). Memory is bounded: when a bucket's rows would not fit `memory_per_task`, its
rows are first split on disk by another part of the key into sub-buckets that do (equal keys always land
in the same sub-bucket), and each is sorted in turn.
"""

from __future__ import annotations

import itertools
import math
import os
import posixpath
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from tamis.dedup.block_file import BlockLocation, locate_blocks, read_located, write_blocks
from tamis.dedup.intermediate import TaskMeter
from tamis.dedup.options import DedupOptions
from tamis.dedup.partition import DOC_MASK, SHARD_SHIFT, SIGNATURE_COLUMNS, range_interval, range_of, signature_block
from tamis.io.storage import filesystem

#: bytes of memory per row while sorting: 3 uint64 columns, their sorted copies, lexsort's index, slack
BYTES_PER_ROW = 128
COLUMNS = SIGNATURE_COLUMNS
#: the columns of an edge file: each candidate pair (u, v), u < v
PAIR_COLUMNS = ("u", "v")


def rows_in_memory(memory: int) -> int:
    return max(16, memory // BYTES_PER_ROW)


def edges_path(work: str, band: int, rng: int) -> str:
    return posixpath.join(work, "edges", f"b{band:03d}-r{rng:05d}.blocks")


def star_edges(h1: np.ndarray, h2: np.ndarray, node: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(u, v) with u < v: for every group of equal (h1, h2), its smallest node to each other member."""
    return _star_edges([h1, h2, node])


def star_edges_of_parts(parts: list[dict[str, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """star_edges of the rows of `parts`, which it empties: each part's column is released as soon as it
    is concatenated, so the rows are never held twice (the bucket task's peak is what BYTES_PER_ROW bounds)."""
    columns = []
    for name in COLUMNS:
        columns.append(np.concatenate([p.pop(name) for p in parts]) if parts else np.empty(0, dtype=np.uint64))
    parts.clear()
    return _star_edges(columns)


def _star_edges(columns: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """star_edges of [h1, h2, node], taken out of the list one at a time so that an unsorted column is freed
    as its sorted copy is made (when the caller holds no other reference): at most about 56 bytes per row
    live at once (three columns, the sort order and a group-start index) instead of twice the rows."""
    node_count = len(columns[2])
    if node_count < 2:
        columns.clear()
        return np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.uint64)
    order = np.lexsort((columns[2], columns[1], columns[0]))
    h1 = columns.pop(0)[order]
    h2 = columns.pop(0)[order]
    node = columns.pop(0)[order]
    del order
    same = h1[1:] == h1[:-1]
    del h1
    same &= h2[1:] == h2[:-1]
    del h2
    # index of each row's group start: 0 where the key continues, the row's own position where it changes
    group_start = np.arange(1, node_count, dtype=np.int64)
    group_start[same] = 0
    np.maximum.accumulate(group_start, out=group_start)
    u = node[group_start[same]]
    del group_start
    v = node[1:][same]
    del node, same
    distinct = u != v
    return u[distinct], v[distinct]


class IndexSource:
    """Signature files of a previous run, read by hash interval and renumbered as priority-0 documents.

    `directory` is that run's work directory: its entries' paths are inside its filesystem, which need not be
    this run's (an index on S3, this run on local disk)."""

    def __init__(self, entries: list[dict[str, Any]], ranges: int, shard_offset: int, directory: str):
        self.entries = entries
        self.ranges = ranges
        self.shard_offset = shard_offset
        self.directory = directory

    def locate(self, band: int, rng: int, ranges: int) -> tuple[list[BlockLocation], int]:
        """Where the index's blocks that overlap range `rng` of `ranges` are, and about how many of their rows
        fall in it: each block's rows times the share of its range inside this one (the hashes are uniform),
        so that the bucket's pieces are sized for them too (an index can hold many times a run's rows)."""
        fs = filesystem(self.directory)[0]
        low, high = range_interval(rng, ranges)
        locations: list[BlockLocation] = []
        rows = 0.0
        for their in range(self.ranges):
            t_low, t_high = range_interval(their, self.ranges)
            overlap = min(high, t_high) - max(low, t_low)
            if overlap > 0:
                found = locate_blocks(fs, self.entries, signature_block(band, their, self.ranges), COLUMNS)
                rows += sum(loc.rows for loc in found) * overlap / (t_high - t_low)
                locations += found
        return locations, math.ceil(rows)

    def read(self, locations: list[BlockLocation], rng: int, ranges: int) -> Iterator[dict[str, np.ndarray]]:
        """The rows of the located blocks that fall in range `rng` of `ranges`, renumbered."""
        for arrays in read_located(filesystem(self.directory)[0], locations, COLUMNS):
            keep = range_of(arrays["h2"], ranges) == rng
            node = (arrays["node"][keep] & DOC_MASK) + (np.uint64(self.shard_offset) << SHARD_SHIFT)
            yield {"h1": arrays["h1"][keep], "h2": arrays["h2"][keep], "node": node}


def bucket_task(band: int, rng: int, ranges: int, signature_entries: list[dict[str, Any]],
                index_sources: list[IndexSource], options: DedupOptions, work: str,
                spill_dir: str | None = None) -> dict[str, Any]:
    """Candidate pairs of one (band, range), written as one edge file; returns its entry and counters."""
    meter = TaskMeter()
    fs, root = filesystem(work)
    locations = locate_blocks(fs, signature_entries, signature_block(band, rng, ranges), COLUMNS)
    expected = sum(loc.rows for loc in locations)
    located_index = [source.locate(band, rng, ranges) for source in index_sources]
    indexed = sum(rows for _, rows in located_index)
    limit = rows_in_memory(options.memory_per_task)
    pieces = max(1, math.ceil((expected + indexed) / limit))
    parts = itertools.chain(read_located(fs, locations, COLUMNS),
                            *(source.read(found, rng, ranges)
                              for source, (found, _) in zip(index_sources, located_index, strict=True)))
    if pieces == 1:
        held = list(parts)
        spilled, largest = 0, sum(len(p["node"]) for p in held)
        u, v = star_edges_of_parts(held)
        edge_blocks = [{"u": u, "v": v}]
    else:
        edge_blocks, spilled, largest = _spilled_buckets(f"b{band}-r{rng}", parts, pieces, spill_dir)
    entry = write_blocks(fs, edges_path(root, band, rng), edge_blocks, PAIR_COLUMNS)
    edges = sum(len(block["u"]) for block in edge_blocks)
    return {"band": band, "range": rng, "rows": expected, "index_rows": indexed, "edges": edges, "pieces": pieces,
            "spilled_rows": spilled, "largest_piece": largest, "file": entry, "meter": meter.result()}


def _spilled_buckets(name: str, parts: Iterable[dict[str, np.ndarray]], pieces: int,
                     spill_dir: str | None) -> tuple[list[dict[str, np.ndarray]], int, int]:
    """Split the bucket's rows by h1 into `pieces` files on local disk, then sort each piece alone; returns
    the edges, the rows spilled and the rows of the largest piece (the most held in memory at once)."""
    directory = tempfile.mkdtemp(prefix=f"tamis-{name}-", dir=spill_dir)
    spilled = 0
    try:
        handles = [open(os.path.join(directory, f"{i}.bin"), "wb") for i in range(pieces)]
        try:
            for part in parts:
                piece = part["h1"] % np.uint64(pieces)
                rows = np.stack([part[c] for c in COLUMNS], axis=1)
                for i in range(pieces):
                    chosen = rows[piece == i]
                    if len(chosen):
                        handles[i].write(chosen.tobytes())
                spilled += len(rows)
        finally:
            for handle in handles:
                handle.close()
        blocks = []
        largest = 0
        for i in range(pieces):
            rows = np.fromfile(os.path.join(directory, f"{i}.bin"), dtype=np.uint64).reshape(-1, 3)
            largest = max(largest, len(rows))
            os.unlink(os.path.join(directory, f"{i}.bin"))
            columns = [rows[:, c].copy() for c in range(3)]
            del rows
            u, v = _star_edges(columns)
            blocks.append({"u": u, "v": v})
        return blocks, spilled, largest
    finally:
        shutil.rmtree(directory, ignore_errors=True)
