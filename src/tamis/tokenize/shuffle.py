"""The global document order of a tokenize run, and how it is cut into output shards and a token budget.

The order depends only on the documents, never on which worker encoded what: without shuffling it is the
input order (shards sorted by path, rows in file order); with `--shuffle`, documents are sorted by a 64-bit
hash of (seed, document id), ties broken by input position. A budget (`--max-tokens N`) keeps documents
in that order until N tokens, end-of-text tokens included, are reached: the last one is cut so that the
total is exactly N (its first N - written - 1 tokens, then its end-of-text). The kept documents are then
cut into output shards of about equal token counts, in order.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np


def shuffle_key(seed: int, doc_id: str) -> int:
    """A uniform 64-bit key from (seed, id)."""
    return int.from_bytes(hashlib.sha256(f"{seed}\x00{doc_id}".encode()).digest()[:8], "big")


@dataclass
class Plan:
    """Documents in output order: which input, which document of it, and how many of its tokens to write."""

    source: np.ndarray  # int32: index of the input shard
    document: np.ndarray  # int64: document number within that input
    take: np.ndarray  # int64: tokens written (its full length, end-of-text included, or fewer for the cut one)
    bounds: list[tuple[int, int]]  # per output shard, [start, end) into the arrays above
    truncated: int  # documents cut by the budget (0 or 1)
    available: int  # tokens the inputs held

    @property
    def tokens(self) -> int:
        return int(self.take.sum())

    @property
    def documents(self) -> int:
        return len(self.take)


def global_order(lengths: list[np.ndarray], keys: list[np.ndarray] | None) -> tuple[np.ndarray, np.ndarray]:
    """(source, document) of every document in output order; `keys` None: input order."""
    source = np.concatenate([np.full(len(x), i, dtype=np.int32) for i, x in enumerate(lengths)] or
                            [np.empty(0, np.int32)])
    document = np.concatenate([np.arange(len(x), dtype=np.int64) for x in lengths] or [np.empty(0, np.int64)])
    if keys is not None:
        flat = np.concatenate(keys or [np.empty(0, np.uint64)])
        # lexsort: last key is primary; input position (source, document) breaks ties
        order = np.lexsort((document, source, flat))
        source, document = source[order], document[order]
    return source, document


def make_plan(lengths: list[np.ndarray], keys: list[np.ndarray] | None, max_tokens: int | None,
              shards: int) -> Plan:
    """The plan for documents of `lengths` (tokens per document, end-of-text included) per input."""
    source, document = global_order(lengths, keys)
    take = _gather(lengths, source, document)
    available = int(take.sum())
    truncated = 0
    if max_tokens is not None and available > max_tokens:
        ends = np.cumsum(take)
        full = int(np.searchsorted(ends, max_tokens, side="right"))  # documents that fit whole
        written = int(ends[full - 1]) if full else 0
        room = max_tokens - written
        keep = full + (1 if room > 0 else 0)
        source, document, take = source[:keep], document[:keep], take[:keep].copy()
        if room > 0:
            take[-1] = room
            truncated = 1
    return Plan(source, document, take, split_bounds(take, shards), truncated, available)


def _gather(lengths: list[np.ndarray], source: np.ndarray, document: np.ndarray) -> np.ndarray:
    if not len(source):
        return np.empty(0, np.int64)
    offsets = np.cumsum([0] + [len(x) for x in lengths])
    flat = np.concatenate(lengths).astype(np.int64)
    return flat[offsets[source] + document]


def split_bounds(take: np.ndarray, shards: int) -> list[tuple[int, int]]:
    """Contiguous [start, end) ranges of about equal tokens; empty ranges dropped."""
    if not len(take):
        return []
    ends = np.cumsum(take)
    total = int(ends[-1])
    cuts = [0] + [int(np.searchsorted(ends, total * j / shards, side="left")) + 1 for j in range(1, shards)]
    cuts = [min(c, len(take)) for c in cuts] + [len(take)]
    return [(a, b) for a, b in zip(cuts[:-1], cuts[1:], strict=True) if b > a]
