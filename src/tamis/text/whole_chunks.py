"""Chunks that spaCy's rule-based tokenizer provably keeps whole, so the word memo can skip spaCy for them.

spaCy splits a whitespace-delimited chunk only where one of its rules applies: a special case (an exception
such as "dont" -> "do", "nt"), a prefix, a suffix or an infix expression. A chunk that is not a special case
and in which none of the three expressions finds anything is one token, the chunk itself; `token_match` and
`url_match` only ever keep a chunk whole, so they cannot change that answer.

Running the three searches per chunk costs about what spaCy spends on such a chunk (tried and dropped, see
docs/extraction.md). Instead, the tokenizer's expressions are read once, when the tokenizer is first used,
and we prove that none of them can match anywhere in a string made only of ASCII letters: every match would
have to consume, or look at, at least one other character. For English, lookbehinds such as "a digit before
`km`" are what makes that true. After the proof, a chunk of ASCII letters that is not a special case is
known to be one token with a `str.isalpha()` and a set lookup. About 4 in 10 of the distinct chunks of real
English text are of that kind.

The proof walks the expression's parse tree (Python's own `re` parser) and errs on the safe side: anything
it does not understand counts as "may match", which turns the shortcut off for that tokenizer, never on.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Iterable
from typing import Any

try:  # Python 3.11+
    from re import _parser as sre_parser
except ImportError:  # pragma: no cover - Python 3.10
    import sre_parse as sre_parser  # type: ignore[no-redef]

#: the alphabet of the chunks the shortcut covers
ASCII_LETTERS = frozenset(map(ord, string.ascii_letters))

_CATEGORY_SOURCES = {
    "CATEGORY_DIGIT": r"\d", "CATEGORY_NOT_DIGIT": r"\D", "CATEGORY_SPACE": r"\s",
    "CATEGORY_NOT_SPACE": r"\S", "CATEGORY_WORD": r"\w", "CATEGORY_NOT_WORD": r"\W",
}


class _Unknown(Exception):
    """A construct the proof does not model: the expression is then taken to possibly match."""


def can_match_within(pattern: re.Pattern[str], alphabet: frozenset[int] = ASCII_LETTERS) -> bool:
    """False only if `pattern` provably finds no match, anywhere, in any string of characters from `alphabet`.

    A match consumes characters of the string and its lookarounds look at characters of the string, so each
    element of a matching path must be satisfiable by characters of the alphabet. Case-insensitive matching
    (which lets e.g. the Kelvin sign match "k") and every construct not modelled answer True.
    """
    if pattern.flags & re.IGNORECASE:
        return True
    try:
        parsed = sre_parser.parse(pattern.pattern, pattern.flags)
        return _sequence_can_match(parsed, alphabet, pattern.flags)
    except (_Unknown, RecursionError, re.error, TypeError, ValueError):
        return True


def _sequence_can_match(items: Iterable[tuple[Any, Any]], alphabet: frozenset[int], flags: int) -> bool:
    return all(_item_can_match(op, av, alphabet, flags) for op, av in items)


def _item_can_match(op: Any, av: Any, alphabet: frozenset[int], flags: int) -> bool:
    name = str(op)
    if name == "LITERAL":
        return av in alphabet
    if name == "NOT_LITERAL":
        return any(char != av for char in alphabet)
    if name == "ANY":
        return bool(alphabet)
    if name == "IN":
        return any(_class_contains(av, char, flags) for char in alphabet)
    if name == "BRANCH":
        return any(_sequence_can_match(branch, alphabet, flags) for branch in av[1])
    if name == "SUBPATTERN":
        _group, add_flags, _del_flags, inner = av
        if add_flags & re.IGNORECASE:
            return True
        return _sequence_can_match(inner, alphabet, flags | add_flags)
    if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
        low, _high, inner = av
        return low == 0 or _sequence_can_match(inner, alphabet, flags)
    if name == "ATOMIC_GROUP":
        return _sequence_can_match(av, alphabet, flags)
    if name == "ASSERT":  # a lookahead or lookbehind: what it looks at is part of the string
        _direction, inner = av
        return _sequence_can_match(inner, alphabet, flags)
    if name in ("AT", "ASSERT_NOT", "GROUPREF", "GROUPREF_EXISTS"):
        return True  # anchors and negative lookarounds consume nothing; back references are not modelled
    raise _Unknown(name)


def _class_contains(items: list[tuple[Any, Any]], char: int, flags: int) -> bool:
    """Whether the character class `[...]` (parsed as `items`) matches the character `char`."""
    negate = False
    found = False
    for op, av in items:
        name = str(op)
        if name == "NEGATE":
            negate = True
        elif name == "LITERAL":
            found = found or av == char
        elif name == "RANGE":
            found = found or av[0] <= char <= av[1]
        elif name == "CATEGORY":
            source = _CATEGORY_SOURCES.get(str(av))
            if source is None:
                raise _Unknown(str(av))
            found = found or re.fullmatch(source, chr(char), flags & (re.ASCII | re.UNICODE)) is not None
        else:
            raise _Unknown(name)
    return found != negate


def _pattern_of(search: Callable[..., Any] | None) -> re.Pattern[str] | None:
    """The compiled expression behind a tokenizer's `prefix_search`-style attribute (a bound method of it)."""
    owner = getattr(search, "__self__", None)
    if isinstance(owner, re.Pattern) and isinstance(owner.pattern, str):
        return owner
    raise _Unknown(type(search).__name__)


def ascii_words_kept_whole(tokenizer: Any) -> frozenset[str] | None:
    """The tokenizer's special cases, if a chunk of ASCII letters that is none of them is provably one token.

    None when the proof fails for this tokenizer (an expression that could match letters alone, or one that
    is not a plain compiled `re` pattern): then every chunk goes through spaCy, as before. The special cases
    are read now; a tokenizer changed later (`add_special_case`) needs a fresh call.
    """
    try:
        for search in (tokenizer.prefix_search, tokenizer.suffix_search, tokenizer.infix_finditer):
            if search is None:
                continue
            if can_match_within(_pattern_of(search)):
                return None
        return frozenset(tokenizer.rules or ())
    except (_Unknown, AttributeError):
        return None



__all__ = ["ASCII_LETTERS", "ascii_words_kept_whole", "can_match_within"]
