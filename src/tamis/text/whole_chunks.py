"""Chunks that spaCy's rule-based tokenizer provably keeps whole, so the word memo can skip spaCy for them.

spaCy splits a whitespace-delimited chunk only where one of its rules applies: a special case (an exception
such as "dont" -> "do", "nt"), a prefix, a suffix or an infix expression. A chunk that is not a special case
and in which none of the three expressions finds anything is one token, the chunk itself; `token_match` and
`url_match` only ever keep a chunk whole, so they cannot change that answer.

Running the three searches per chunk costs about what spaCy spends on such a chunk (tried and dropped, see
docs/extraction.md). Instead, the tokenizer's expressions are read once, when the tokenizer is first used,
and we prove that none of them can match anywhere in a string made only of letters: every match would have
to consume, or look at, at least one other character. For English, lookbehinds such as "a digit before
`km`" are what makes that true. After the proof, a chunk of letters that is not a special case is known to
be one token with a `str.isalpha()` and a set lookup. About 4 in 10 of the distinct chunks of real English
text are of that kind.

Two alphabets are tried, the larger first: every alphabetic character (`str.isalpha`: Latin with accents,
Cyrillic, Greek, CJK...), then ASCII letters only. The proof walks the expression's parse tree (Python's own
`re` parser) and errs on the safe side: anything it does not understand counts as "may match", which turns
the shortcut off for that alphabet, never on.
"""

from __future__ import annotations

import re
import sys
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any

try:  # Python 3.11+
    from re import _parser as sre_parser
except ImportError:  # pragma: no cover - Python 3.10
    import sre_parse as sre_parser  # type: ignore[no-redef]


@dataclass(frozen=True)
class Alphabet:
    """A set of alphabetic characters as sorted, disjoint, inclusive code point ranges."""

    starts: tuple[int, ...]
    ends: tuple[int, ...]

    @classmethod
    def of(cls, test: Callable[[str], bool]) -> Alphabet:
        """The characters for which `test` holds; it must imply `str.isalpha` (the categories below rely on it)."""
        starts, ends = [], []
        previous = -2
        for point in range(sys.maxunicode + 1):
            char = chr(point)
            if test(char):
                if not char.isalpha():
                    raise ValueError(f"U+{point:04X} is not alphabetic")
                if point == previous + 1:
                    ends[-1] = point
                else:
                    starts.append(point)
                    ends.append(point)
                previous = point
        return cls(tuple(starts), tuple(ends))

    def count(self, low: int, high: int) -> int:
        """How many characters of the alphabet lie in low..high."""
        total = 0
        for index in range(bisect_right(self.ends, low - 1), bisect_left(self.starts, high + 1)):
            total += min(high, self.ends[index]) - max(low, self.starts[index]) + 1
        return total

    @cached_property
    def size(self) -> int:
        """How many characters the alphabet holds (read at every class and negation of a proof)."""
        return sum(end - start + 1 for start, end in zip(self.starts, self.ends, strict=True))


@cache
def ascii_letters() -> Alphabet:
    return Alphabet((65, 97), (90, 122))


@cache
def all_letters() -> Alphabet:
    """Every character `str.isalpha` accepts (131,756 in 648 ranges with Python 3.11; about 0.06 s to list, once
    per process)."""
    return Alphabet.of(str.isalpha)


class _Unknown(Exception):
    """A construct the proof does not model: the expression is then taken to possibly match."""


#: categories of a class, for an alphabet of letters: (covers every letter, covers none)
_CATEGORIES = {
    "CATEGORY_WORD": True, "CATEGORY_NOT_DIGIT": True, "CATEGORY_NOT_SPACE": True,
    "CATEGORY_NOT_WORD": False, "CATEGORY_DIGIT": False, "CATEGORY_SPACE": False,
}


def can_match_within(pattern: re.Pattern[str], alphabet: Alphabet | None = None) -> bool:
    """False only if `pattern` provably finds no match, anywhere, in any string of characters from `alphabet`
    (default: ASCII letters).

    A match consumes characters of the string and its lookarounds look at characters of the string, so each
    element of a matching path must be satisfiable by characters of the alphabet. Case-insensitive matching
    (which lets e.g. the Kelvin sign match "k"), ASCII-only classes and every construct not modelled answer
    True.
    """
    alphabet = alphabet or ascii_letters()
    if pattern.flags & (re.IGNORECASE | re.ASCII):
        return True
    try:
        parsed = sre_parser.parse(pattern.pattern, pattern.flags)
        return _sequence_can_match(parsed, alphabet)
    except (_Unknown, RecursionError, re.error, TypeError, ValueError):
        return True


def _sequence_can_match(items: Iterable[tuple[Any, Any]], alphabet: Alphabet) -> bool:
    return all(_item_can_match(op, av, alphabet) for op, av in items)


def _item_can_match(op: Any, av: Any, alphabet: Alphabet) -> bool:
    name = str(op)
    if name == "LITERAL":
        return alphabet.count(av, av) > 0
    if name == "NOT_LITERAL":
        return alphabet.size > alphabet.count(av, av)
    if name == "ANY":
        return alphabet.size > 0
    if name == "IN":
        return _class_meets(av, alphabet)
    if name == "BRANCH":
        return any(_sequence_can_match(branch, alphabet) for branch in av[1])
    if name == "SUBPATTERN":
        _group, add_flags, _del_flags, inner = av
        if add_flags & (re.IGNORECASE | re.ASCII):
            return True
        return _sequence_can_match(inner, alphabet)
    if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
        low, _high, inner = av
        return low == 0 or _sequence_can_match(inner, alphabet)
    if name == "ATOMIC_GROUP":
        return _sequence_can_match(av, alphabet)
    if name == "ASSERT":  # a lookahead or lookbehind: what it looks at is part of the string
        _direction, inner = av
        return _sequence_can_match(inner, alphabet)
    if name in ("AT", "ASSERT_NOT", "GROUPREF", "GROUPREF_EXISTS"):
        return True  # anchors and negative lookarounds consume nothing; back references are not modelled
    raise _Unknown(name)


def _class_meets(items: list[tuple[Any, Any]], alphabet: Alphabet) -> bool:
    """Whether the character class `[...]` (parsed as `items`) matches some character of `alphabet`."""
    negate = False
    covers_all = False
    ranges: list[tuple[int, int]] = []
    for op, av in items:
        name = str(op)
        if name == "NEGATE":
            negate = True
        elif name == "LITERAL":
            ranges.append((av, av))
        elif name == "RANGE":
            ranges.append((av[0], av[1]))
        elif name == "CATEGORY" and str(av) in _CATEGORIES:
            covers_all = covers_all or _CATEGORIES[str(av)]
        else:
            raise _Unknown(name)
    if covers_all:
        return not negate and alphabet.size > 0
    covered = sum(alphabet.count(low, high) for low, high in _merged(ranges))
    return covered < alphabet.size if negate else covered > 0


def _merged(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for low, high in sorted(ranges):
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    return merged


def _pattern_of(search: Callable[..., Any] | None) -> re.Pattern[str] | None:
    """The compiled expression behind a tokenizer's `prefix_search`-style attribute (a bound method of it)."""
    owner = getattr(search, "__self__", None)
    if isinstance(owner, re.Pattern) and isinstance(owner.pattern, str):
        return owner
    raise _Unknown(type(search).__name__)


@dataclass(frozen=True)
class WholeWords:
    """What the proof allows for one tokenizer: chunks of letters (any alphabetic character, or ASCII letters
    only) that are not among its special cases are single tokens."""

    special_cases: frozenset[str]
    any_letters: bool

    def keeps_whole(self, chunk: str) -> bool:
        """Whether spaCy provably makes `chunk` (no whitespace in it) one token: the memo's shortcut."""
        return chunk.isalpha() and (self.any_letters or chunk.isascii()) and chunk not in self.special_cases


def words_kept_whole(tokenizer: Any) -> WholeWords | None:
    """The shortcut the tokenizer's rules allow, or None when they allow none (an expression that could match
    ASCII letters alone, or one that is not a plain compiled `re` pattern): then every chunk goes through
    spaCy, as before. The special cases are read now; a tokenizer changed later (`add_special_case`) needs a
    fresh call.
    """
    try:
        patterns = [_pattern_of(search) for search in
                    (tokenizer.prefix_search, tokenizer.suffix_search, tokenizer.infix_finditer) if search is not None]
        special_cases = frozenset(tokenizer.rules or ())
    except (_Unknown, AttributeError):
        return None
    for alphabet, any_letters in ((all_letters(), True), (ascii_letters(), False)):
        if not any(can_match_within(pattern, alphabet) for pattern in patterns):
            return WholeWords(special_cases, any_letters)
    return None


__all__ = ["Alphabet", "WholeWords", "all_letters", "ascii_letters", "can_match_within", "words_kept_whole"]
