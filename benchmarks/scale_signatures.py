"""Signatures for N documents with known duplicate clusters, made cheaply from real MinHash signatures.

Used by benchmarks/bench_dedup_scale.py and tests/test_dedup_scale.py.

1. Base: the MinHash signatures (tamis's MinHasher, FineWeb's parameters) of real paragraphs: every paragraph
   of at least 20 words of the article bodies in shared/data/extraction/scrapinghub_aeb/ground-truth.json.
   A paragraph sharing any band with an earlier one is dropped, so base signatures never collide.
2. Clusters: N documents are laid out cluster by cluster (most clusters are singletons; the rest have 2 and
   more members, plus one large random tree and one long chain, which make connected components work).
   Every member after the first has a parent, an earlier member of its cluster; it is an exact copy (all
   bands of its parent) or a near copy (a random non-empty subset of its parent's bands, the rest its own).
3. Values: each band of each document is "owned" by one document (itself, or the ancestor it inherited the
   band from). The band's values are the base signature's (base = owner's cluster mod the base size) with
   the low 20 bits of each value XOR-ed with a hash of (owner, band, row): the magnitudes of real MinHash
   minima are kept, and bands of different owners differ with probability 1 - 2**-160.
4. Positions: documents are shuffled over shards (so a cluster spans shards); the ground truth is each
   position's cluster number. Two documents share a band key only through an inherited band, so the
   connected components of "shares a band" are exactly the clusters.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TAMIS_SHARED_DATA", REPO.parent / "shared" / "data"))
ARTICLES = SHARED / "extraction" / "scrapinghub_aeb" / "ground-truth.json"
LOW_BITS = np.uint64((1 << 20) - 1)


@dataclass
class Layout:
    """N documents: creation-order cluster, owners of each band, and the shuffle to positions."""

    cluster: np.ndarray  # (N,) uint32, by creation index
    owner: np.ndarray  # (N, bands) uint32, by creation index
    position: np.ndarray  # (N,) int64: creation index -> position (shard * docs_per_shard + row)
    clusters: int

    def truth(self) -> np.ndarray:
        """(N,) uint32: the cluster of the document at each position."""
        out = np.empty(len(self.cluster), dtype=np.uint32)
        out[self.position] = self.cluster
        return out


def real_paragraphs(min_words: int = 20) -> list[str]:
    articles = json.loads(ARTICLES.read_text())
    return [p.strip() for key in sorted(articles) for p in articles[key]["articleBody"].split("\n")
            if len(p.split()) >= min_words]


def base_signatures(options, limit: int | None = None) -> np.ndarray:
    """(S, permutations) uint64 signatures of real paragraphs (the first `limit`), no two sharing a band."""
    from tamis.dedup.signatures import MinHasher

    hasher = MinHasher(options)
    per_doc = [s for s in (hasher.shingles(t) for t in real_paragraphs()[:limit]) if len(s)]
    sigs = hasher.signatures_of_shingles(per_doc)
    h1, h2 = hasher.band_keys(sigs)
    keep = np.ones(len(sigs), dtype=bool)
    for band in range(options.bands):
        keys = h1[:, band].astype(object) * (1 << 64) + h2[:, band].astype(object)
        seen: set[int] = set()
        for i, key in enumerate(keys.tolist()):
            if key in seen:
                keep[i] = False
            seen.add(key)
    return sigs[keep]


def layout(n_docs: int, bands: int, seed: int = 0, singleton_rate: float = 0.85, exact_rate: float = 0.4,
           share_rate: float = 0.3) -> Layout:
    """Clusters, band owners and positions of `n_docs` documents (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    tree = max(2, n_docs // 1000)  # one large random tree
    chain = min(2000, max(2, n_docs // 500))  # one long chain of near copies
    sizes = np.where(rng.random(n_docs) < singleton_rate, 1, 1 + rng.geometric(0.35, n_docs))
    sizes = np.concatenate(([tree, chain], sizes))
    ends = np.cumsum(sizes)
    count = int(np.searchsorted(ends, n_docs)) + 1
    sizes = sizes[:count]
    sizes[-1] -= int(ends[count - 1]) - n_docs
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    cluster = np.repeat(np.arange(count, dtype=np.uint32), sizes)
    member = np.arange(n_docs) - np.repeat(starts, sizes)
    owner = np.repeat(np.arange(n_docs, dtype=np.uint32)[:, None], bands, axis=1)
    order = np.argsort(member, kind="stable")
    bounds = np.searchsorted(member[order], np.arange(int(member.max()) + 2))
    for j in range(1, int(member.max()) + 1):
        docs = order[bounds[j]:bounds[j + 1]]
        first = starts[cluster[docs]]
        parent = first + (rng.random(len(docs)) * j).astype(np.int64)
        parent = np.where(cluster[docs] == 1, docs - 1, parent)  # the chain: each one's parent is the one before
        exact = (rng.random(len(docs)) < exact_rate) & (cluster[docs] != 1)
        shared = rng.random((len(docs), bands)) < share_rate
        shared[np.arange(len(docs)), rng.integers(0, bands, len(docs))] = True
        shared |= exact[:, None]
        owner[docs] = np.where(shared, owner[parent], docs[:, None].astype(np.uint32))
    position = rng.permutation(n_docs).astype(np.int64)
    return Layout(cluster, owner, position, count)


def mix(x: np.ndarray) -> np.ndarray:
    from tamis.dedup.signatures import mix64

    return mix64(x.astype(np.uint64))


def signatures_at(lay: Layout, base: np.ndarray, creation: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(len(creation), bands * rows) uint64 signatures of the given documents (creation indexes)."""
    owners = lay.owner[creation].astype(np.uint64)  # (D, bands)
    base_of = (lay.cluster[lay.owner[creation]] % np.uint32(len(base))).astype(np.int64)  # (D, bands)
    out = np.empty((len(creation), bands, rows), dtype=np.uint64)
    shaped = base.reshape(len(base), bands, rows)
    for band in range(bands):
        values = shaped[base_of[:, band], band, :]  # (D, rows)
        salt = owners[:, band:band + 1] * np.uint64(bands * rows) + np.uint64(band * rows) + \
            np.arange(rows, dtype=np.uint64)[None, :] + np.uint64(1)
        out[:, band, :] = values ^ (mix(salt) & LOW_BITS)
    return out.reshape(len(creation), bands * rows)
