"""The global document order of a tokenize run, as segments that a task can list on its own.

The order depends only on the documents, never on which worker encoded what: without shuffling it is the
input order (shards sorted by path, rows in file order); with `--shuffle`, documents are sorted by a 64-bit
hash of (seed, document id), ties broken by input position (input, then row).

Why segments: the driver must not hold a record per document (a dump has billions), so the order is cut
into segments whose documents one task can list without the others:
- in input order, a segment is an input shard: its documents are its rows, in order;
- shuffled, a segment is a *bucket*, the documents whose key starts with the same bits. Keys are uniform,
  so buckets are about equal; every document of bucket b sorts before every document of bucket b + 1, so
  the order is bucket after bucket, each bucket sorted by (key, input, row). Each encode task writes its
  rows bucket by bucket (a block file, `KEY_COLUMNS`), and a task lists bucket b by reading block b of
  every input's file.
The driver keeps only each segment's documents and tokens (tamis.tokenize.plan).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from tamis.tokenize.plan import prefixes

#: the columns of an input's key file (block b: its documents of bucket b, sorted by key then row)
KEY_COLUMNS = ("key", "document", "offset", "length")
#: buckets at most: a table of 32 bytes per bucket in each input's key file (2 MiB)
MAX_BUCKETS = 1 << 16


def shuffle_key(seed: int, doc_id: str) -> int:
    """A uniform 64-bit key from (seed, id)."""
    return int.from_bytes(hashlib.sha256(f"{seed}\x00{doc_id}".encode()).digest()[:8], "big")


def bucket_count(input_bytes: int, bucket_bytes: int) -> int:
    """How many buckets a shuffled run uses: a power of two, about one per `bucket_bytes` of input (so that a
    bucket's rows fit a task's memory whatever the data's size), at least 1 and at most MAX_BUCKETS."""
    wanted = max(1, -(-input_bytes // max(1, bucket_bytes)))
    return min(MAX_BUCKETS, 1 << (wanted - 1).bit_length())


def bucket_of(keys: np.ndarray, buckets: int) -> np.ndarray:
    """The bucket of each key: its first log2(buckets) bits."""
    bits = buckets.bit_length() - 1
    if bits == 0:
        return np.zeros(len(keys), dtype=np.int64)
    return (keys.astype(np.uint64) >> np.uint64(64 - bits)).astype(np.int64)


def key_order(keys: np.ndarray) -> np.ndarray:
    """An input's rows sorted by (key, row): the order of its key file and of its tokens when shuffled."""
    return np.lexsort((np.arange(len(keys)), keys))


def key_blocks(keys: np.ndarray, lengths: np.ndarray, buckets: int, order: np.ndarray) -> list[dict[str, np.ndarray]]:
    """One input's documents as `buckets` blocks of KEY_COLUMNS, each sorted by (key, row): what its encode
    task writes. `order` is `key_order(keys)`; `offset` is where the document's tokens start in the input's
    token file, which holds them in that order."""
    sorted_lengths = lengths[order].astype(np.uint64)
    columns = {"key": keys[order].astype(np.uint64), "document": order.astype(np.uint64),
               "offset": prefixes(sorted_lengths)[:-1].astype(np.uint64), "length": sorted_lengths}
    # sorted by key, so sorted by bucket: bucket b is one contiguous run
    edges = np.searchsorted(bucket_of(columns["key"], buckets), np.arange(buckets + 1), side="left")
    return [{name: column[edges[b]:edges[b + 1]] for name, column in columns.items()} for b in range(buckets)]


@dataclass
class Segment:
    """A segment's documents in output order: input index, row in it, where its tokens start, tokens."""

    source: np.ndarray  # int64
    document: np.ndarray  # int64
    offset: np.ndarray  # int64
    length: np.ndarray  # int64

    def __len__(self) -> int:
        return len(self.length)


def input_segment(source: int, lengths: np.ndarray) -> Segment:
    """An input shard's documents, in row order (the unshuffled order)."""
    lengths = lengths.astype(np.int64)
    return Segment(np.full(len(lengths), source, dtype=np.int64), np.arange(len(lengths), dtype=np.int64),
                   prefixes(lengths)[:-1], lengths)


def bucket_segment(blocks: list[tuple[int, dict[str, np.ndarray]]]) -> Segment:
    """A bucket's documents from each input's block of it, (input, block), sorted by (key, input, row)."""
    if not blocks:
        empty = np.empty(0, np.int64)
        return Segment(empty, empty, empty, empty)
    key = np.concatenate([block["key"] for _, block in blocks])
    source = np.concatenate([np.full(len(block["key"]), s, dtype=np.int64) for s, block in blocks])
    document = np.concatenate([block["document"] for _, block in blocks]).astype(np.int64)
    order = np.lexsort((document, source, key))  # last is primary
    return Segment(source[order], document[order],
                   np.concatenate([block["offset"] for _, block in blocks]).astype(np.int64)[order],
                   np.concatenate([block["length"] for _, block in blocks]).astype(np.int64)[order])
