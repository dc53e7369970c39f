"""MinHash signatures, vectorised with numpy, and their LSH band keys.

A permutation is `(a * x + b) mod (2**61 - 1)` over the shingle hash x, with the uint64 product wrapping
around as in datatrove and datasketch, and (a, b) drawn from numpy's legacy RandomState(seed): the same
parameters as datatrove 0.10.1's MinhashConfig(seed), so signatures are bit-identical to its own. For 32-bit
hashes the permuted value is masked to 32 bits (datasketch's convention).

Instead of datatrove's per-document (shingles x permutations) matrix, the shingles of a whole batch of
documents are concatenated and processed in blocks of a few thousand rows; `np.minimum.reduceat` takes the
per-document minimum. A band of `rows_per_band` values is reduced to a 128-bit key (two 64-bit lanes of a
splitmix64-style mixer): equal bands give equal keys, and two different bands collide with probability
about 2**-128, so bucket tasks sort 16 bytes per document and band instead of 64.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import cached_property

import numpy as np

from tamis.dedup.options import DedupOptions
from tamis.dedup.shingles import shingle_hasher, shingles

MERSENNE_61 = np.uint64((1 << 61) - 1)
#: rows of the (shingles x permutations) block computed at once: 4096 x 112 x 8 bytes = 3.7 MB
BLOCK_ROWS = 4096
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_LANE_SEEDS = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xD1B54A32D192ED03))


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijection of uint64 that spreads every input bit over the output."""
    with np.errstate(over="ignore"):
        x = x.copy()
        x ^= x >> np.uint64(30)
        x *= _M1
        x ^= x >> np.uint64(27)
        x *= _M2
        x ^= x >> np.uint64(31)
    return x


class MinHasher:
    """Signatures and band keys for the options' parameters; cheap to build, safe to pickle."""

    def __init__(self, options: DedupOptions):
        self.options = options

    @cached_property
    def parameters(self) -> tuple[np.ndarray, np.ndarray]:
        """(a, b), each of shape (1, permutations), as datatrove and datasketch draw them."""
        gen = np.random.RandomState(self.options.seed)
        n = self.options.permutations
        a = gen.randint(1, MERSENNE_61, dtype=np.uint64, size=(1, n))
        b = gen.randint(0, MERSENNE_61, dtype=np.uint64, size=(1, n))
        return a, b

    @cached_property
    def _hasher(self):
        return shingle_hasher(self.options.hash_function, self.options.hash_bits)

    def shingles(self, text: str, language: str | None = None) -> np.ndarray:
        return shingles(text, self.options.n_grams, self._hasher, language)

    def signatures_of_shingles(self, per_doc: Sequence[np.ndarray]) -> np.ndarray:
        """(documents, permutations) uint64 minima; every array in `per_doc` must be non-empty."""
        a, b = self.parameters
        n_docs = len(per_doc)
        out = np.empty((n_docs, self.options.permutations), dtype=np.uint64)
        if not n_docs:
            return out
        lengths = np.fromiter((len(s) for s in per_doc), dtype=np.int64, count=n_docs)
        if (lengths == 0).any():
            raise ValueError("a document without shingles has no signature")
        values = np.concatenate(per_doc).reshape(-1, 1)
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        mask = np.uint64(0xFFFFFFFF) if self.options.hash_bits == 32 else None
        # process whole documents per block so each reduceat segment lies inside one block
        doc = 0
        while doc < n_docs:
            end_doc = doc + 1
            budget = max(BLOCK_ROWS, int(lengths[doc]))
            rows = int(lengths[doc])
            while end_doc < n_docs and rows + lengths[end_doc] <= budget:
                rows += int(lengths[end_doc])
                end_doc += 1
            first = int(starts[doc])
            with np.errstate(over="ignore"):
                block = (values[first:first + rows] * a + b) % MERSENNE_61
            if mask is not None:
                block &= mask
            out[doc:end_doc] = np.minimum.reduceat(block, starts[doc:end_doc] - first, axis=0)
            doc = end_doc
        return out

    def band_keys(self, signatures: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Two (documents, bands) uint64 arrays: the 128-bit key of each band of each signature."""
        n_docs = signatures.shape[0]
        bands = signatures.reshape(n_docs, self.options.bands, self.options.rows_per_band)
        lanes = []
        for seed in _LANE_SEEDS:
            h = np.full((n_docs, self.options.bands), seed, dtype=np.uint64)
            for row in range(self.options.rows_per_band):
                h = mix64(h ^ bands[:, :, row])
            lanes.append(h)
        return lanes[0], lanes[1]


def label_keys(labels: Sequence[str]) -> np.ndarray:
    """(documents, 1) uint64: a 64-bit hash of each document's group label (its language, for per-language
    dedup), mixed into its band keys so documents of different labels never share a bucket."""
    digests = b"".join(hashlib.blake2b(label.encode("utf-8"), digest_size=8).digest() for label in labels)
    return np.frombuffer(digests, dtype="<u8").reshape(-1, 1).astype(np.uint64)


def keyed_by_label(h1: np.ndarray, h2: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Band keys made specific to each document's label: equal bands with equal labels still give equal
    keys; with different labels, equal keys happen with probability about 2**-128."""
    return mix64(h1 ^ labels), mix64(h2 ^ mix64(labels))


def content_keys(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Exact dedup: the 128-bit BLAKE2b digest of each text's UTF-8 bytes, as two uint64 lanes (docs, 1)."""
    digests = b"".join(hashlib.blake2b(t.encode("utf-8"), digest_size=16).digest() for t in texts)
    both = np.frombuffer(digests, dtype="<u8").reshape(-1, 2)
    return both[:, :1].copy(), both[:, 1:].copy()
