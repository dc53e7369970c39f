"""The dedup scale benchmark's small version: 20,000 signatures replicated from real ones with known clusters
(benchmarks/scale_signatures.py) go through tamis's buckets, components and finalize on the session's Ray,
and the clusters and kept documents must be the ground truth's exactly."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_dedup_scale import check_tamis, generate, run_tamis  # noqa: E402
from scale_signatures import ARTICLES, layout  # noqa: E402


def test_layout_owners_follow_parents_and_clusters_cover_every_document():
    lay = layout(5000, 14, seed=3)
    sizes = np.bincount(lay.cluster)
    assert sizes.sum() == 5000 and (sizes >= 1).all() and (sizes > 1).sum() > 100
    # every band is owned by a document of the same cluster: bands never cross clusters
    assert (lay.cluster[lay.owner] == lay.cluster[:, None]).all()
    # a member after the first shares at least one band with an earlier member
    first = np.concatenate(([True], lay.cluster[1:] != lay.cluster[:-1]))
    inherited = (lay.owner != np.arange(5000)[:, None]).any(axis=1)
    assert (inherited == ~first).all()
    assert sorted(lay.position.tolist()) == list(range(5000))


def test_twenty_thousand_replicated_signatures_give_the_truths_clusters(ray_session, tmp_path):
    if not ARTICLES.exists():
        pytest.skip(f"shared data not found at {ARTICLES}")
    meta = generate(tmp_path, 20_000, 16 * 2**20, docs_per_shard=5000, seed=1, base_limit=600)
    assert meta["shards"] == 4 and meta["duplicate_docs"] > 5000 and meta["largest_cluster"] >= 40
    # datatrove's signature files: 8 uint64 + 1 uint32 per document, sorted, every row once
    records = np.fromfile(tmp_path / "dtsigs" / "bucket_003" / "00002.minhash.sig",
                          dtype=np.dtype([(f"h{i}", "<u8") for i in range(8)] + [("doc", "<u4")]))
    assert len(records) == 5000 and sorted(records["doc"].tolist()) == list(range(5000))
    assert (np.sort(records, order=list(records.dtype.names)) == records).all()

    result = run_tamis(tmp_path, cpus=2, keep_files=True)
    check = result["check"]
    assert check["exact"], check
    assert check["members"] == meta["duplicate_docs"] and result["kept"] == check["expected_kept"]
    assert result["rounds"] >= 2 and result["stages"]["finalize"]["tasks"] == 4

    # the check can fail: merge two clusters in the truth and it must see the difference
    truth = np.load(tmp_path / "truth.npy")
    sizes = np.bincount(truth)
    a, b = np.flatnonzero(sizes > 1)[:2]
    truth[truth == b] = a
    np.save(tmp_path / "truth.npy", truth)
    summary = {"rounds": result["rounds"]}
    assert not check_tamis(tmp_path, json.loads((tmp_path / "meta.json").read_text()), summary)["exact"]
