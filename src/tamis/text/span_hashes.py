"""Which word n-grams of a document can repeat, found with rolling hashes in numpy, then checked exactly.

Gopher's duplicated n-gram check (n = 5..10) keys an n-gram by its words concatenated without separator,
so two different word sequences can share a key ("ab" "c" and "a" "bc"). Building every key as a Python
string, six times per document, was most of the filter's time. Here the document's words are laid end to
end as code points once, with a polynomial hash of every prefix (mod 2**64, odd base, so every power is
invertible); the hash of any span is then two lookups and a multiplication, vectorised over all positions.
Equal strings always have equal hashes, so every position whose key really repeats is among the positions
whose (hash, length) repeats; only those candidates get their key built and compared exactly, which keeps
the answer exact whatever the collisions (they only cost time).

The top 2-, 3- and 4-gram checks (keys: the n words themselves) group positions by the same span hash
mixed with a rolling hash of the words' lengths, so equal word sequences always share a group; only the
groups of the largest size are checked word by word, and a collision there falls back to counting every
n-gram, so that answer is exact too.
"""

from __future__ import annotations

from collections import Counter
from functools import cached_property
from operator import itemgetter

import numpy as np

#: odd base of the polynomial hash; its inverse mod 2**64 exists because it is odd
_BASE = 0x9E3779B97F4A7C15
_BASE_INVERSE = pow(_BASE, -1, 1 << 64)
#: mixes the span length into its hash (odd, so distinct lengths stay distinct for a fixed hash)
_LENGTH_MIX = np.uint64(0xC2B2AE3D27D4EB4F)
#: mixes the hash of a span's word lengths into its text hash, for keys that are word sequences
_WORD_LENGTHS_MIX = np.uint64(0x165667B19E3779F9)

#: powers kept for the process, enough for documents of up to this many characters (8 MiB per table);
#: a longer document gets tables of its own size, dropped with it, so memory stays bounded
_CACHED_POWERS = 1 << 20
_powers = np.ones(1, dtype=np.uint64)
_inverse_powers = np.ones(1, dtype=np.uint64)


def _tables(size: int) -> tuple[np.ndarray, np.ndarray]:
    """BASE**t and BASE**-t mod 2**64 for t < size."""
    with np.errstate(over="ignore"):
        powers = np.cumprod(np.full(size, _BASE, dtype=np.uint64), dtype=np.uint64)
        inverse = np.cumprod(np.full(size, _BASE_INVERSE, dtype=np.uint64), dtype=np.uint64)
    # cumprod starts at BASE**1: shift to start at BASE**0
    one = np.ones(1, dtype=np.uint64)
    return np.concatenate((one, powers[:-1])), np.concatenate((one, inverse[:-1]))


def _power_tables(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Tables of at least `size` powers: the process's (grown geometrically up to _CACHED_POWERS) or, for
    a longer document, its own."""
    global _powers, _inverse_powers
    if size > _CACHED_POWERS:
        return _tables(size)
    if len(_powers) < size:
        _powers, _inverse_powers = _tables(min(_CACHED_POWERS, max(size, 2 * len(_powers))))
    return _powers, _inverse_powers


class WordSpans:
    """The words of one document, end to end, with prefix hashes for O(1) hashes of n-word spans."""

    def __init__(self, words: list[str]) -> None:
        self.words = words
        lengths = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
        self._lengths = lengths
        self.offsets = np.concatenate(([0], np.cumsum(lengths)))
        text = "".join(words)
        points = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.uint64)
        powers, self._inverse = _power_tables(len(points) + 1)
        with np.errstate(over="ignore"):
            self._prefix = np.concatenate(([np.uint64(0)], np.cumsum(points * powers[: len(points)],
                                                                     dtype=np.uint64)))

    def span_hashes(self, n: int) -> np.ndarray:
        """For each start position, a hash of its n words concatenated, mixed with their total length."""
        starts = self.offsets[: len(self.words) - n + 1]
        ends = self.offsets[n:]
        with np.errstate(over="ignore"):
            hashes = (self._prefix[ends] - self._prefix[starts]) * self._inverse[starts]
            hashes += (ends - starts).astype(np.uint64) * _LENGTH_MIX
        return hashes

    @cached_property
    def _length_prefix(self) -> tuple[np.ndarray, np.ndarray]:
        """Prefix hashes of the word lengths and the inverse powers to shift them: built once per document,
        for the three n of the top n-gram checks."""
        count = len(self.words)
        powers, inverse = _power_tables(count + 1)
        with np.errstate(over="ignore"):
            prefix = np.concatenate(([np.uint64(0)], np.cumsum(self._lengths.astype(np.uint64) * powers[:count],
                                                               dtype=np.uint64)))
        return prefix, inverse

    def sequence_hashes(self, n: int) -> np.ndarray:
        """For each start position, a hash equal for equal sequences of n words (texts and word lengths)."""
        count = len(self.words)
        prefix, inverse = self._length_prefix
        with np.errstate(over="ignore"):
            by_lengths = (prefix[n:] - prefix[: count - n + 1]) * inverse[: count - n + 1]
            return self.span_hashes(n) ^ (by_lengths * _WORD_LENGTHS_MIX)

    def candidates(self, n: int) -> np.ndarray:
        """Start positions (ascending) of n-word spans whose (hash, length) occurs more than once.

        Every position whose concatenated key occurs more than once is included; a few others may be.
        """
        hashes = self.span_hashes(n)
        ordered = np.sort(hashes)
        repeated = ordered[1:][ordered[1:] == ordered[:-1]]
        if not len(repeated):  # every key once: most n of most documents
            return _NO_POSITIONS
        return positions_of(hashes, repeated)


_FIRST = np.zeros(1, dtype=np.intp)
_NO_POSITIONS = np.zeros(0, dtype=np.intp)


def positions_of(hashes: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Positions (ascending) of `hashes` whose value is in `values` (sorted ascending, repeats allowed).

    Called for several n of every document. Why no argsort of all the hashes: numpy's plain `sort` of 64-bit
    values is vectorised, 4-14 times faster than a stable argsort at a few thousand values, and the sorted
    values alone tell which repeat (most calls: none). A binary search per position then finds those few.
    Why not np.isin: for 64-bit values it falls back to a stable argsort of both arrays.
    """
    found = values.searchsorted(hashes)
    found[found == len(values)] = 0
    return (values[found] == hashes).nonzero()[0]


def duplicated_n_gram_chars(words: list[str], n: int, spans: WordSpans | None = None) -> int:
    """Characters in repeated n-grams, keys being the n words concatenated (datatrove's definition).

    Scanning left to right, an n-gram already seen adds its length and the scan jumps n words ahead; an
    n-gram occurring once never counts and never matters to later positions, so only positions whose key
    repeats are visited. Pass `spans` to share the prefix hashes between several n of one document.
    """
    if len(words) < n:
        return 0
    positions = (spans or WordSpans(words)).candidates(n).tolist()
    if not positions:
        return 0
    keys = {i: "".join(words[i : i + n]) for i in positions}
    counts = Counter(keys.values())
    seen: set[str] = set()
    chars = 0
    resume = 0
    for i in positions:
        key = keys[i]
        if i < resume or counts[key] < 2:
            continue
        if key in seen:
            chars += len(key)
            resume = i + n
        else:
            seen.add(key)
    return chars


def top_n_gram_chars(words: list[str], n: int, spans: WordSpans | None = None) -> int:
    """Characters of the most frequent word n-gram (its words joined by spaces) times its count; ties go to
    the n-gram seen first (as `Counter.most_common(1)` gives them). Needs len(words) >= n.

    With `spans`, positions are grouped by `sequence_hashes`: equal n-grams always share a group, so the
    largest true count is at most the largest group's size, and equal to it when one of the largest groups
    holds a single n-gram. Each largest group is checked word by word; any collision among them sends the
    document to `counted_top_n_gram_chars`, which counts every n-gram.
    """
    if spans is None:
        return counted_top_n_gram_chars(words, n)
    hashes = spans.sequence_hashes(n)
    ordered = np.sort(hashes)
    group_starts = np.concatenate((_FIRST, (ordered[1:] != ordered[:-1]).nonzero()[0] + 1))
    sizes = np.empty_like(group_starts)  # slicing, not np.diff: numpy's per-call cost dominates at this size
    sizes[:-1] = group_starts[1:] - group_starts[:-1]
    sizes[-1] = len(ordered) - group_starts[-1]
    top = int(sizes.max())
    if top == 1:  # every n-gram occurs once: the first one wins the tie
        first = 0
    else:
        # the members of the largest groups, grouped by hash; a stable argsort of just these keeps each
        # group's positions ascending, and every group here has `top` members
        members = positions_of(hashes, ordered[group_starts[sizes == top]])
        members = members[hashes[members].argsort(kind="stable")].reshape(-1, top)
        first = len(words)
        for group in members.tolist():
            gram = words[group[0]: group[0] + n]
            if any(words[p: p + n] != gram for p in group[1:]):
                return counted_top_n_gram_chars(words, n)
            first = min(first, group[0])
    return (sum(map(len, words[first: first + n])) + n - 1) * top


def counted_top_n_gram_chars(words: list[str], n: int) -> int:
    """`top_n_gram_chars` by counting every n-gram (`Counter` over shifted word lists, in C)."""
    counts = Counter(zip(*(words[k:] for k in range(n)), strict=False))
    gram, count = max(counts.items(), key=itemgetter(1))
    return (sum(map(len, gram)) + n - 1) * count
