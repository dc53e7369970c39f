"""Deterministic token-budget sampling: the same seed picks the same documents, whatever ran before.

Documents are ordered by a hash of (seed, id) and taken in that order until the budget is reached; the
last one is cut so that every variant gets exactly the same number of GPT-2 tokens (when it has them).
A document's place in the order depends only on its id and the seed, so two variants that kept the same
document rank it the same: their samples differ only where their filters differ.

Held-out validation documents are chosen by a hash of the id alone (no seed) and excluded from every sample.
"""

from __future__ import annotations

import hashlib
import posixpath
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tamis.annotate.tokens import gpt2_encoding
from tamis.io.parquet import FINEWEB_SCHEMA
from tamis.io.storage import atomic_open, filesystem

_HOLDOUT_SALT = "tamis-holdout"


class NotEnoughTokensError(ValueError):
    """A variant's output holds fewer tokens than the budget."""


@dataclass
class Sample:
    path: str
    documents: int
    tokens: int
    token_budget: int
    ids_sha256: str

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _unit(key: str) -> float:
    """A uniform number in [0, 1) from a string."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64


def rank_key(seed: int, doc_id: str) -> str:
    return hashlib.sha256(f"{seed}\x00{doc_id}".encode()).hexdigest()


def is_holdout(doc_id: str, fraction: float) -> bool:
    return fraction > 0 and _unit(f"{_HOLDOUT_SALT}\x00{doc_id}") < fraction


def read_documents(shards: list[str], columns: tuple[str, ...] = ("id", "text")) -> pa.Table:
    tables = []
    for path in shards:
        fs, root = filesystem(path)
        with fs.open(root, "rb") as handle:
            tables.append(pq.read_table(handle, columns=list(columns)))
    if not tables:
        return pa.table({name: pa.array([], type=FINEWEB_SCHEMA.field(name).type) for name in columns})
    return pa.concat_tables(tables)


def available_tokens(shards: list[str], holdout_fraction: float) -> int:
    """GPT-2 tokens a variant's output can offer to sampling (held-out documents excluded)."""
    table = read_documents(shards)
    encoding = gpt2_encoding()
    texts = [t for i, t in zip(table["id"].to_pylist(), table["text"].to_pylist(), strict=True)
             if t and not is_holdout(i, holdout_fraction)]
    return sum(len(tokens) for tokens in encoding.encode_ordinary_batch(texts, num_threads=1))


def _truncate(text: str, tokens: list[int], limit: int) -> tuple[str, int]:
    """The longest prefix of `text` (cut on a token boundary) that re-encodes to at most `limit` tokens."""
    encoding = gpt2_encoding()
    keep = limit
    while keep > 0:
        cut = encoding.decode(tokens[:keep])
        count = len(encoding.encode_ordinary(cut))
        if count <= limit:
            return cut, count
        keep -= count - limit
    return "", 0


def _write(table: pa.Table, path: str) -> None:
    fs, root = filesystem(path)
    with atomic_open(fs, root, "wb") as handle:
        pq.write_table(table, handle, compression="zstd")


def _rehydrated(table: pa.Table) -> pa.Table:
    """Each document repeated by FineWeb-2's weight of its `minhash_cluster_size` (tamis.dedup.rehydrate)."""
    from tamis.dedup.rehydrate import upsampling_weights

    sizes = table["minhash_cluster_size"].to_pylist() if "minhash_cluster_size" in table.column_names else []
    if not sizes:
        raise ValueError("rehydrate: the variant's shards have no minhash_cluster_size column")
    return table.take(pa.array(np.repeat(np.arange(table.num_rows), upsampling_weights(sizes)), type=pa.int64()))


def sample_tokens(shards: list[str], token_budget: int, seed: int, out_path: str,
                  holdout_fraction: float = 0.0, rehydrate: bool = False) -> Sample:
    """Write `token_budget` tokens of documents from `shards` to `out_path` (Parquet, FineWeb columns).

    With `rehydrate`, documents are first repeated by their cluster size's weight (FineWeb-2's upsampling):
    the k-th copy of a document is ranked by (seed, id, k), so copies spread over the order.
    """
    table = read_documents(shards, tuple(FINEWEB_SCHEMA.names) + (("minhash_cluster_size",) if rehydrate else ()))
    copy_of: list[int] = []
    if rehydrate:
        table = _rehydrated(table)
        ids_all = table["id"].to_pylist()
        seen: dict[str, int] = {}
        for doc_id in ids_all:
            copy_of.append(seen.get(doc_id, 0))
            seen[doc_id] = copy_of[-1] + 1
        table = table.drop_columns(["minhash_cluster_size"])
    ids = table["id"].to_pylist()
    texts = table["text"].to_pylist()
    order = sorted((rank_key(seed, f"{doc_id}\x00{copy_of[i]}" if copy_of and copy_of[i] else doc_id), i)
                   for i, doc_id in enumerate(ids) if texts[i] and not is_holdout(doc_id, holdout_fraction))
    encoding = gpt2_encoding()
    chosen: list[int] = []
    cut_texts: list[str] = []
    counts: list[int] = []
    total = 0
    for _, i in order:
        if total >= token_budget:
            break
        tokens = encoding.encode_ordinary(texts[i])
        text, count = texts[i], len(tokens)
        if total + count > token_budget:
            text, count = _truncate(text, tokens, token_budget - total)
            if not count:
                break
        chosen.append(i)
        cut_texts.append(text)
        counts.append(count)
        total += count
    if total < token_budget:
        raise NotEnoughTokensError(
            f"{len(order)} documents hold {total} tokens, fewer than the budget of {token_budget}; lower "
            "token_budget (or use `token_budget: auto`) or give the ablation more input")
    picked = table.take(pa.array(chosen, type=pa.int64()))
    picked = picked.set_column(picked.schema.get_field_index("text"), "text", pa.array(cut_texts, pa.string()))
    picked = picked.set_column(picked.schema.get_field_index("token_count"), "token_count",
                               pa.array(counts, pa.int64()))
    _write(picked, out_path)
    digest = hashlib.sha256("\n".join(picked["id"].to_pylist()).encode()).hexdigest()
    return Sample(out_path, len(chosen), total, token_budget, digest)


def holdout_documents(shards: list[str], fraction: float, max_tokens: int, out_path: str) -> Sample:
    """The held-out documents of `shards` (by id hash), in a fixed order, up to `max_tokens`, to `out_path`."""
    table = read_documents(shards, tuple(FINEWEB_SCHEMA.names))
    ids = table["id"].to_pylist()
    texts = table["text"].to_pylist()
    order = sorted((rank_key(-1, doc_id), i) for i, doc_id in enumerate(ids)
                   if texts[i] and is_holdout(doc_id, fraction))
    encoding = gpt2_encoding()
    chosen, total = [], 0
    for _, i in order:
        count = len(encoding.encode_ordinary(texts[i]))
        if chosen and total + count > max_tokens:
            break
        chosen.append(i)
        total += count
    picked = table.take(pa.array(chosen, type=pa.int64()))
    _write(picked, out_path)
    digest = hashlib.sha256("\n".join(picked["id"].to_pylist()).encode()).hexdigest()
    return Sample(out_path, len(chosen), total, max_tokens, digest)


def sample_path(root: str, variant: str, seed: int) -> str:
    return posixpath.join(root, "samples", variant, f"seed-{seed}.parquet")
