"""The tokenize plan from segment totals and located ranks equals the one a sort of every document gives.

The reference here holds every document's length in one array and applies the rules of docs/tokenize.md
directly (take documents until the budget, cut the last; cut the rest into shards of about equal tokens);
the plan under test sees only each segment's totals and answers `locate` for the segments it asks about.
"""

from __future__ import annotations

import numpy as np
import pytest

from tamis.tokenize.plan import locate, make_plan, prefixes, queries


def reference(lengths: np.ndarray, max_tokens: int | None, shards: int) -> tuple[list[int], list[tuple[int, int]]]:
    """(tokens written per document, [start, end) per output shard), from the whole array."""
    take = [int(x) for x in lengths]
    if max_tokens is not None and sum(take) > max_tokens:
        written, kept = 0, []
        for length in take:
            if written + length <= max_tokens:
                kept.append(length)
                written += length
            else:
                if max_tokens > written:
                    kept.append(max_tokens - written)
                break
        take = kept
    if not take:
        return take, []
    ends = np.cumsum(take)
    total = int(ends[-1])
    starts = [0]
    for j in range(1, shards):  # shard j starts after the first document ending at or past j/K of the total
        starts.append(min(int(np.sum(ends < total * j / shards)) + 1, len(take)))
    starts.append(len(take))
    return take, [(a, b) for a, b in zip(starts[:-1], starts[1:], strict=True) if b > a]


def planned(segments: list[np.ndarray], max_tokens: int | None, shards: int) -> tuple[list[int], list[tuple[int, int]]]:
    documents_before = prefixes([len(s) for s in segments])
    tokens_before = prefixes([int(s.sum()) for s in segments])
    asked = queries(tokens_before, max_tokens, shards)
    answers = []
    for query in asked:  # each answered from its own segment alone, as a locate task does
        segment = query.segment
        answers += locate(segments[segment], int(documents_before[segment]), int(tokens_before[segment]),
                          [(query.threshold, query.side)])
    plan = make_plan(documents_before, tokens_before, max_tokens, shards, answers)
    lengths = np.concatenate(segments) if segments else np.empty(0, np.int64)
    take = plan.take(np.arange(plan.kept), lengths[:plan.kept]).tolist()
    assert plan.documents_before.size == len(segments) + 1  # nothing per document
    return take, plan.bounds


@pytest.mark.parametrize("seed", range(40))
def test_plan_equals_the_whole_array_rules(seed: int) -> None:
    rng = np.random.default_rng(seed)
    sizes = rng.integers(0, 6, size=rng.integers(1, 9))  # empty segments included
    segments = [rng.integers(1, 50, size=n) for n in sizes]
    lengths = np.concatenate(segments)
    total = int(lengths.sum())
    ends = np.cumsum(lengths).tolist()
    budgets = [None, 1, total, total + 7, max(total - 1, 1), int(rng.integers(1, total + 1)) if total else None]
    budgets += ends[: 3]  # budgets that end exactly on a document's last token
    for max_tokens in budgets:
        for shards in (1, 2, 3, 7, 40):
            assert planned(segments, max_tokens, shards) == reference(lengths, max_tokens, shards), \
                (sizes.tolist(), max_tokens, shards)


def test_no_documents_gives_no_shards() -> None:
    assert planned([np.empty(0, np.int64)] * 3, 10, 4) == ([], [])
