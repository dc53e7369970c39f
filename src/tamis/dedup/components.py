"""Connected components of the candidate-pair graph, on Ray tasks over edge lists in block files.

Alternating large-star and small-star rounds (Kiveris et al., "Connected Components in MapReduce and
Beyond", SoCC 2014). Edges are hash-partitioned by their first endpoint; a task sees all the neighbours of
the nodes of its partition, so every round is one map-and-shuffle over files, with memory per task
bounded by the partition count. Rounds are O(log n) in practice (O(log^2 n) proven), also for long chains.

- large-star(u): m = min(N(u) + u); for every neighbour v > u emit the edge {v, m}.
- small-star(u): with N'(u) its neighbours below u, m = min(N'(u) + u); emit {v, m} for v in N'(u) + u.

The graph has converged when it is a forest of stars, each centred on its smallest node: no node has two
smaller neighbours or both smaller and larger ones. Each large-star task counts such violations in its
input; a round with none means the components are known. Because node ids put the keep rule first, the
centre (the smallest id) is the document kept, and its partition knows every member and the cluster size.
Every round's files have a block per partition; memberships are written in a block per input shard group
(shard mod P) for the finalize tasks.
"""

from __future__ import annotations

import posixpath
from typing import Any

import numpy as np

from tamis.dedup.block_file import all_blocks, read_block, read_located, write_blocks
from tamis.dedup.buckets import PAIR_COLUMNS
from tamis.dedup.intermediate import TaskMeter
from tamis.dedup.partition import shard_of
from tamis.dedup.signatures import mix64
from tamis.io.storage import filesystem

#: bytes of memory per directed edge in a round task: 2 uint64 columns read, sorted copies, index, output
BYTES_PER_EDGE = 96
EDGE_COLUMNS = ("key", "nbr")
MEMBER_COLUMNS = ("node", "rep", "size")


def partitions_for(edges: int, memory: int) -> int:
    """Partitions so that an average partition of directed edges (2 per undirected one) fits in memory/2."""
    return max(1, -(-(2 * edges * BYTES_PER_EDGE) // max(1, memory // 2)))


def partition_of(nodes: np.ndarray, partitions: int) -> np.ndarray:
    return mix64(nodes) % np.uint64(partitions)


def round_path(work: str, round_no: int, kind: str, task: int) -> str:
    return posixpath.join(work, "components", f"round-{round_no:03d}-{kind}", f"part-{task:05d}.blocks")


def _scatter(key: np.ndarray, nbr: np.ndarray, partitions: int) -> list[dict[str, np.ndarray]]:
    """The directed edges in a block per partition of their key."""
    target = partition_of(key, partitions)
    order = np.argsort(target, kind="stable")
    bounds = np.searchsorted(target[order], np.arange(partitions + 1))
    return [{"key": key[order[bounds[p]:bounds[p + 1]]], "nbr": nbr[order[bounds[p]:bounds[p + 1]]]}
            for p in range(partitions)]


def scatter_task(task: int, edge_entries: list[dict[str, Any]], partitions: int, work: str) -> dict[str, Any]:
    """Round 0: candidate pairs from bucket files, as directed edges both ways, partitioned by key."""
    meter = TaskMeter()
    fs, root = filesystem(work)
    keys, nbrs = [], []
    for entry in edge_entries:
        for arrays in read_located(fs, all_blocks(fs, entry, PAIR_COLUMNS), PAIR_COLUMNS):
            keys += [arrays["u"], arrays["v"]]
            nbrs += [arrays["v"], arrays["u"]]
    key = np.concatenate(keys) if keys else np.empty(0, dtype=np.uint64)
    nbr = np.concatenate(nbrs) if nbrs else np.empty(0, dtype=np.uint64)
    entry = write_blocks(fs, round_path(root, 0, "scatter", task), _scatter(key, nbr, partitions), EDGE_COLUMNS)
    return {"task": task, "edges": len(key), "file": entry, "meter": meter.result()}


def _read_partition(fs: Any, entries: list[dict[str, Any]], p: int) -> tuple[np.ndarray, np.ndarray]:
    """Directed edges of partition p (block p of every file), sorted by (key, nbr), duplicates and self-loops
    removed."""
    parts = read_block(fs, entries, p, EDGE_COLUMNS)
    if not parts:
        return np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.uint64)
    key = np.concatenate([a["key"] for a in parts])
    nbr = np.concatenate([a["nbr"] for a in parts])
    del parts
    order = np.lexsort((nbr, key))
    key, nbr = key[order], nbr[order]
    keep = key != nbr
    keep[1:] &= (key[1:] != key[:-1]) | (nbr[1:] != nbr[:-1])
    return key[keep], nbr[keep]


def _groups(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end offsets of the runs of equal keys in a sorted key array."""
    starts = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1])))
    ends = np.concatenate((starts[1:], [len(key)]))
    return starts, ends


def large_star_task(round_no: int, p: int, entries: list[dict[str, Any]], partitions: int,
                    work: str) -> dict[str, Any]:
    """One partition's large-star; also counts star-forest violations and, when it has none, writes the
    memberships of the stars centred in this partition (used only if the whole round has none)."""
    meter = TaskMeter()
    fs, root = filesystem(work)
    key, nbr = _read_partition(fs, entries, p)
    starts, ends = _groups(key)
    sizes = ends - starts
    first_nbr = nbr[starts] if len(key) else nbr[:0]
    last_nbr = nbr[ends - 1] if len(key) else nbr[:0]
    group_keys = key[starts] if len(key) else key[:0]
    smaller = np.add.reduceat((nbr < key).astype(np.int64), starts) if len(key) else np.empty(0, np.int64)
    violations = int(((smaller >= 2) | ((smaller >= 1) & (last_nbr > group_keys))).sum())
    minimum = np.minimum(first_nbr, group_keys)
    per_edge_min = np.repeat(minimum, sizes)
    larger = nbr > key
    out = write_blocks(fs, round_path(root, round_no, "large", p),
                       _scatter(nbr[larger], per_edge_min[larger], partitions), EDGE_COLUMNS)
    members = None
    if violations == 0:
        centres = smaller == 0
        center_of_edge = np.repeat(centres, sizes)
        member_nodes = np.concatenate((group_keys[centres], nbr[center_of_edge]))
        reps = np.concatenate((group_keys[centres], key[center_of_edge]))
        cluster_size = (sizes[centres] + 1).astype(np.uint64)
        size_col = np.concatenate((cluster_size, np.repeat(cluster_size, sizes[centres])))
        members = write_blocks(fs, posixpath.join(root, "components", f"members-{round_no:03d}",
                                                  f"part-{p:05d}.blocks"),
                               _by_shard_group(member_nodes, reps, size_col, partitions), MEMBER_COLUMNS)
    return {"round": round_no, "partition": p, "edges_in": len(key), "edges_out": int(larger.sum()),
            "violations": violations, "file": out, "members": members, "meter": meter.result()}


def small_star_task(round_no: int, p: int, entries: list[dict[str, Any]], partitions: int,
                    work: str) -> dict[str, Any]:
    """One partition's small-star; its input holds, for each key, only neighbours below the key."""
    meter = TaskMeter()
    fs, root = filesystem(work)
    key, nbr = _read_partition(fs, entries, p)
    starts, ends = _groups(key)
    sizes = ends - starts
    if len(key):
        minimum = np.minimum(nbr[starts], key[starts])  # sorted: the first neighbour is the smallest
        group_keys = key[starts]
        per_edge_min = np.repeat(minimum, sizes)
        others = nbr != per_edge_min
        v = np.concatenate((nbr[others], group_keys[group_keys != minimum]))
        m = np.concatenate((per_edge_min[others], minimum[group_keys != minimum]))
    else:
        v = m = np.empty(0, dtype=np.uint64)
    out = write_blocks(fs, round_path(root, round_no, "small", p),
                       _scatter(np.concatenate((v, m)), np.concatenate((m, v)), partitions), EDGE_COLUMNS)
    return {"round": round_no, "partition": p, "edges_in": len(key), "edges_out": 2 * len(v), "file": out,
            "meter": meter.result()}


def _by_shard_group(node: np.ndarray, rep: np.ndarray, size: np.ndarray,
                    groups: int) -> list[dict[str, np.ndarray]]:
    """The memberships in a block per group of shards (shard mod `groups`)."""
    target = shard_of(node) % np.uint64(groups)
    order = np.argsort(target, kind="stable")
    bounds = np.searchsorted(target[order], np.arange(groups + 1))
    return [{"node": node[order[bounds[g]:bounds[g + 1]]], "rep": rep[order[bounds[g]:bounds[g + 1]]],
             "size": size[order[bounds[g]:bounds[g + 1]]]} for g in range(groups)]


def members_of_shard(fs: Any, member_entries: list[dict[str, Any] | None], shard: int,
                     groups: int) -> dict[str, np.ndarray]:
    """(node, rep, size) of the documents of one shard that are in a duplicate cluster (None entries: the
    partitions that wrote no memberships)."""
    parts = read_block(fs, member_entries, shard % groups, MEMBER_COLUMNS)
    if not parts:
        return {c: np.empty(0, dtype=np.uint64) for c in MEMBER_COLUMNS}
    arrays = {c: np.concatenate([p[c] for p in parts]) for c in MEMBER_COLUMNS}
    mine = shard_of(arrays["node"]) == np.uint64(shard)
    return {c: a[mine] for c, a in arrays.items()}
