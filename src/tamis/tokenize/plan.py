"""The plan of a tokenize run: the token budget and the output shards' cut points, without a record per document.

The rules (docs/tokenize.md): documents are taken in the global order (tamis.tokenize.shuffle) until the
budget N: those whose tokens end at or before N are written whole, and if tokens remain, the next one is cut
to them (its first tokens, then end-of-text), so that exactly N are written. The written documents are then
cut into K output shards of about equal tokens: shard j starts after the first document whose tokens end at
or past j/K of the total (empty shards are dropped, and the others numbered in order).

Each of these is a rank in the running sum of document lengths in the global order: how many documents end
before (or at) a number of tokens. The driver knows each segment's documents and tokens only, which says in
which segment each rank falls; a task lists that segment and answers (`locate`). So the driver holds
O(segments + shards) numbers whatever the number of documents, and the answer is exactly the one a sort of
every document would give (`tests/test_tokenize.py` checks it against that).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

LEFT, RIGHT = "left", "right"


@dataclass(frozen=True)
class Query:
    """How many documents end before (`left`) or at or before (`right`) `threshold` tokens; asked of the segment
    in which that rank falls."""

    segment: int
    threshold: float
    side: str


@dataclass(frozen=True)
class Plan:
    """Which documents of the global order are written, and the [start, end) of each output shard in it."""

    documents_before: np.ndarray  # int64, segments + 1: documents before each segment; the last is all of them
    tokens_before: np.ndarray  # int64, segments + 1: tokens before each segment (end-of-text included)
    kept: int  # documents written: the first `kept` of the order
    last_take: int  # tokens written of the last kept document when the budget cut it, else 0
    bounds: list[tuple[int, int]]  # per output shard, [start, end) in the order
    available: int  # tokens the inputs held

    @property
    def truncated(self) -> int:
        return 1 if self.last_take else 0

    @property
    def documents(self) -> int:
        return self.kept

    def take(self, position: np.ndarray, length: np.ndarray) -> np.ndarray:
        """Tokens written of the documents at these positions of the order, of these lengths."""
        if not self.last_take:
            return length
        return np.where(position == self.kept - 1, self.last_take, length)

    def segments_of(self, start: int, end: int) -> list[int]:
        """The non-empty segments holding positions [start, end) of the order."""
        first = int(np.searchsorted(self.documents_before, start, side="right")) - 1
        found = []
        for segment in range(max(first, 0), len(self.documents_before) - 1):
            if self.documents_before[segment] >= end:
                break
            if self.documents_before[segment + 1] > self.documents_before[segment]:
                found.append(segment)
        return found


def prefixes(counts: Sequence[int]) -> np.ndarray:
    """Running totals with a leading 0: element i is the sum of counts[:i]."""
    return np.concatenate([[0], np.cumsum(np.asarray(counts, dtype=np.int64))]).astype(np.int64)


def _budget_applies(tokens_before: np.ndarray, max_tokens: int | None) -> bool:
    return max_tokens is not None and int(tokens_before[-1]) > max_tokens


def queries(tokens_before: np.ndarray, max_tokens: int | None, shards: int) -> list[Query]:
    """The ranks the plan needs: the budget's (if it cuts), then each inner cut point's, with their segments."""
    available = int(tokens_before[-1])
    segment_ends = tokens_before[1:]
    found = []
    if _budget_applies(tokens_before, max_tokens):
        assert max_tokens is not None
        # the first segment with a document ending after the budget; all before it end at or before
        found.append(Query(int(np.searchsorted(segment_ends, max_tokens, side=RIGHT)), max_tokens, RIGHT))
    total = max_tokens if _budget_applies(tokens_before, max_tokens) else available
    if total:
        for j in range(1, shards):
            threshold = total * j / shards
            # the first segment whose documents reach the threshold: all before it end below it
            found.append(Query(int(np.searchsorted(segment_ends, threshold, side=LEFT)), threshold, LEFT))
    return found


def locate(lengths: np.ndarray, documents_before: int, tokens_before: int,
           asked: Sequence[tuple[float, str]]) -> list[tuple[int, int]]:
    """For each (threshold, side), asked of one segment (its documents' lengths in order): the number of documents
    of the whole order that end before it (`left`) or at or before it (`right`), and where the last of them ends."""
    ends = tokens_before + np.cumsum(lengths.astype(np.int64))
    answers = []
    for threshold, side in asked:
        count = int(np.searchsorted(ends, threshold, side=side))
        answers.append((documents_before + count, int(ends[count - 1]) if count else tokens_before))
    return answers


def make_plan(documents_before: np.ndarray, tokens_before: np.ndarray, max_tokens: int | None, shards: int,
              answers: Sequence[tuple[int, int]]) -> Plan:
    """The plan from the segments' running totals and the answers to `queries(...)`, in its order."""
    available, documents = int(tokens_before[-1]), int(documents_before[-1])
    kept, last_take, answers = documents, 0, list(answers)
    if _budget_applies(tokens_before, max_tokens):
        assert max_tokens is not None
        whole, written = answers.pop(0)
        room = max_tokens - written
        kept, last_take = whole + (1 if room > 0 else 0), max(room, 0)
    bounds: list[tuple[int, int]] = []
    if kept:
        cuts = [0] + [min(count + 1, kept) for count, _ in answers] + [kept]
        bounds = [(a, b) for a, b in zip(cuts[:-1], cuts[1:], strict=True) if b > a]
    return Plan(documents_before, tokens_before, kept, last_take, bounds, available)
