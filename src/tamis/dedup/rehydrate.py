"""Rehydration: FineWeb-2's upsampling of deduplicated documents by the size of their duplicate cluster.

FineWeb-2 keeps one document per MinHash cluster and records the cluster's size in `minhash_cluster_size`;
repeating documents from larger clusters improved results for some languages. The weights are FineWeb-2's
(huggingface/fineweb-2 README): a document is repeated `weight(N)` times, with the weight of the largest
key at most N in {1: 1, 2: 2, 3: 3, 5: 5, 100: 8, 1000: 1} (so N=4 -> 3, 5 <= N < 100 -> 5,
100 <= N < 1000 -> 8, N >= 1000 -> 1: very large clusters are mostly spam or boilerplate).

`rehydrate_shard` writes one shard's rehydrated copy; the row order is a deterministic function of the seed
and the shard's documents, so reruns and any number of workers give the same files.
"""

from __future__ import annotations

import bisect
import hashlib
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tamis.io.storage import atomic_open, filesystem

#: (smallest cluster size, times a document is repeated), by increasing size
UPSAMPLING_WEIGHTS: tuple[tuple[int, int], ...] = ((1, 1), (2, 2), (3, 3), (5, 5), (100, 8), (1000, 1))
CLUSTER_SIZE = "minhash_cluster_size"
_KEYS = [size for size, _ in UPSAMPLING_WEIGHTS]


def upsampling_weight(cluster_size: int | None) -> int:
    """How many times a document of a cluster of `cluster_size` documents appears (1 when unknown)."""
    if cluster_size is None or cluster_size < 1:
        return 1
    return UPSAMPLING_WEIGHTS[bisect.bisect_right(_KEYS, cluster_size) - 1][1]


def upsampling_weights(cluster_sizes: list[int | None]) -> np.ndarray:
    return np.fromiter((upsampling_weight(n) for n in cluster_sizes), dtype=np.int64, count=len(cluster_sizes))


def _unit(seed: int, doc_id: str) -> float:
    digest = hashlib.blake2b(f"{seed}\x00{doc_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def rehydrate_table(table: pa.Table, seed: int | None = None, fraction: float = 1.0,
                    rehydrate: bool = True) -> pa.Table:
    """The table's documents, each kept with probability `fraction` (by a hash of seed and id) and
    repeated by its cluster's weight; with a seed, rows are shuffled (a permutation seeded by the seed and
    the ids, so the same input gives the same order). Without a seed, copies stay next to their original."""
    n = table.num_rows
    ids = table.column("id").to_pylist() if "id" in table.column_names else [str(i) for i in range(n)]
    keep = np.ones(n, dtype=bool)
    if fraction < 1.0:
        keep = np.fromiter((_unit(seed or 0, i or "") < fraction for i in ids), dtype=bool, count=n)
    if rehydrate:
        if CLUSTER_SIZE not in table.column_names:
            raise ValueError(f"rehydration needs a `{CLUSTER_SIZE}` column (dedup with FineWeb-2's writer columns)")
        repeats = upsampling_weights(table.column(CLUSTER_SIZE).to_pylist())
    else:
        repeats = np.ones(n, dtype=np.int64)
    rows = np.repeat(np.arange(n, dtype=np.int64), np.where(keep, repeats, 0))
    if seed is not None and len(rows):
        digest = hashlib.blake2b("\n".join(ids).encode(), digest_size=8, key=str(seed).encode()[:64]).digest()
        rng = np.random.Generator(np.random.PCG64(int.from_bytes(digest, "big")))
        rows = rows[rng.permutation(len(rows))]
    return table.take(pa.array(rows, type=pa.int64()))


def rehydrate_shard(in_path: str, out_path: str, seed: int | None = None, fraction: float = 1.0,
                    rehydrate: bool = True) -> dict[str, Any]:
    """Write the rehydrated copy of one shard (Parquet, same schema, zstd) atomically; returns counts."""
    fs_in, path = filesystem(in_path)
    with fs_in.open(path, "rb") as handle:
        table = pq.read_table(handle)
    out = rehydrate_table(table, seed, fraction, rehydrate)
    fs_out, target = filesystem(out_path)
    with atomic_open(fs_out, target, "wb") as handle:
        pq.write_table(out, handle, compression="zstd")
    tokens = out.column("token_count").to_pylist() if "token_count" in out.column_names else []
    languages: dict[str, int] = {}
    if "language" in out.column_names:
        for lang in out.column("language").to_pylist():
            languages[lang or "unknown"] = languages.get(lang or "unknown", 0) + 1
    return {"input": in_path, "output": out_path, "docs_in": table.num_rows, "docs_out": out.num_rows,
            "tokens_out": sum(t for t in tokens if t is not None), "languages": languages}
