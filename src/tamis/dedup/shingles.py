"""Text normalisation and word n-gram shingles, with the decisions of datatrove 0.10.1's MinHash.

A text is lower-cased, every number (digits in any script, with one optional decimal part) becomes `0`,
punctuation becomes a space, whitespace is collapsed and accents are stripped (NFD, combining marks
dropped). Its words are those of our spaCy-compatible splitter (tamis.text.words), and a shingle is the
hash of `n` consecutive words joined by single spaces. A text with fewer than `n` words has no shingles and
is never a near duplicate (as in datatrove).

Punctuation is ASCII and CJK punctuation, the C0/C1 control characters other than tab and newline, and
every Unicode sentence terminator. datatrove lists the terminators of an older Unicode; the 16 added since
(U+2024 "one dot leader", a few vertical presentation forms, Coptic, Balinese...) count as punctuation here.
"""

from __future__ import annotations

import hashlib
import struct
import unicodedata
from collections.abc import Callable
from functools import lru_cache

import numpy as np
import regex

from tamis.text.words import split_words

#: punctuation marks (ASCII and common CJK/typographic ones) that become spaces
_MARKS = (
    "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
    "«»´“”„’–—…►∶"
    "、。「」《》〈〉【】━"
    "！％（），．：；？～１"
)
_CONTROLS = "".join(chr(c) for c in (*range(0, 9), 11, 12, *range(13, 32), *range(127, 160)))
#: Khmer signs datatrove counts as sentence terminators that Unicode does not (any more)
_EXTRA_TERMINALS = "\u17d6\u17d9\u17da"
NUMBER = regex.compile(r"\p{Nd}+(?:[.,،٫⎖⎗⎘]\p{Nd}+)?")
WHITESPACE = regex.compile(r"\s+")
MARKS = regex.compile(r"\p{Mn}+")


@lru_cache(maxsize=1)
def punctuation() -> frozenset[str]:
    # every code point but the surrogates, built in C (a Python loop over 1.1 million code points took 0.45 s
    # of each worker's first text, twice what the rest of a small dedup's signatures cost)
    code_points = np.concatenate((np.arange(0xD800, dtype="<u4"), np.arange(0xE000, 0x110000, dtype="<u4")))
    every = code_points.tobytes().decode("utf-32-le")
    terminals = regex.findall(r"\p{Sentence_Terminal}", every)
    return frozenset(_MARKS + _CONTROLS + _EXTRA_TERMINALS + "".join(terminals))


@lru_cache(maxsize=1)
def _punctuation_table() -> dict[int, str]:
    return {ord(ch): " " for ch in punctuation()}


def normalize(text: str) -> str:
    """Lower case, numbers -> 0, punctuation -> space, whitespace collapsed, accents stripped."""
    text = NUMBER.sub("0", text.lower())
    text = WHITESPACE.sub(" ", text.translate(_punctuation_table()).strip())
    if not text.isascii():
        text = MARKS.sub("", unicodedata.normalize("NFD", text))
    return text.strip()


def _sha1_64(data: str) -> int:
    return struct.unpack("<Q", hashlib.sha1(data.encode("utf-8")).digest()[:8])[0]


def _sha1_32(data: str) -> int:
    return struct.unpack("<I", hashlib.sha1(data.encode("utf-8")).digest()[:4])[0]


def shingle_hasher(function: str, bits: int) -> Callable[[str], int]:
    """The hash of one shingle string: SHA-1's first 8 (or 4) bytes little-endian, or xxHash64/32."""
    if function == "sha1":
        return _sha1_64 if bits == 64 else _sha1_32
    import xxhash  # checked when the options are validated

    # the UTF-8 bytes of the shingle, which is what xxhash 3 hashes for a str (datatrove passes str;
    # xxhash 4 only accepts bytes)
    digest = xxhash.xxh64_intdigest if bits == 64 else xxhash.xxh32_intdigest
    return lambda data: digest(data.encode("utf-8"))


def language_splitter(language: str) -> Callable[[str], list[str]]:
    """The word splitter of a language label (`jpn_Jpan`, `deu`...), as FineWeb-2's MinHash uses it.

    It is tamis.text.languages.split_words_for (datatrove's per-language assignment); until that module is
    available, English's splitter (datatrove's default) is used for every language.
    """
    try:
        from tamis.text.languages import split_words_for
    except ImportError:
        return split_words
    return lambda text: split_words_for(text, language)


def words(text: str, language: str | None = None) -> list[str]:
    """The normalised text's words (datatrove strips tokens and drops empty ones; spaCy's are never empty
    after whitespace tokens are removed, but a token can carry inner whitespace-like characters), split with
    `language`'s tokenizer when given, else English's (FineWeb)."""
    split = split_words if language is None else language_splitter(language)
    return [w for w in (t.strip() for t in split(normalize(text))) if w]


def shingles(text: str, n: int, hasher: Callable[[str], int], language: str | None = None) -> np.ndarray:
    """Hashes of the text's word n-grams, in order, as uint64 (empty when it has fewer than n words)."""
    tokens = words(text, language)
    count = len(tokens) - n + 1
    if count <= 0:
        return np.empty(0, dtype=np.uint64)
    if hasher is _sha1_64:  # the default: digests joined and read at once (no struct call per shingle)
        sha1 = hashlib.sha1
        data = b"".join([sha1(" ".join(tokens[i:i + n]).encode("utf-8")).digest()[:8] for i in range(count)])
        return np.frombuffer(data, dtype="<u8").astype(np.uint64)
    return np.fromiter((hasher(" ".join(tokens[i:i + n])) for i in range(count)), dtype=np.uint64, count=count)
