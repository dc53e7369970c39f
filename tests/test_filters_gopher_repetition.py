"""Gopher repetition: each check with a document just inside and just outside its threshold."""

import random

import pytest

from tamis.filters.gopher_repetition import GopherRepetitionFilter, Reasons, duplicated_n_gram_chars


def reason(text, **params):
    verdict = GopherRepetitionFilter(**params).filter(text, {})
    return None if verdict is True else verdict[1]


def prose(n_words, seed=0):
    """Words that never repeat (random letters), so no n-gram check fires."""
    rng = random.Random(seed)
    return " ".join("".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(7)) for _ in range(n_words))


def paragraphs(n_unique, n_repeats, sep="\n\n"):
    repeated = "same short line"
    parts = [prose(30, seed=i) for i in range(n_unique)] + [repeated] * (n_repeats + 1)
    return sep.join(parts)


def test_duplicate_paragraph_fraction():
    assert reason(paragraphs(6, 3)) != Reasons.DUP_PARA_FRAC  # 3 of 10 paragraphs repeat: 0.3
    assert reason(paragraphs(5, 4)) == Reasons.DUP_PARA_FRAC  # 4 of 10


def test_duplicate_line_fraction():
    assert reason(paragraphs(6, 3, sep="\n")) != Reasons.DUP_LINE_FRAC
    assert reason(paragraphs(5, 4, sep="\n")) == Reasons.DUP_LINE_FRAC


def _char_doc(repeat_chars, total_chars, sep):
    """One unique block and a block repeated once, sized so repeats are `repeat_chars` of the text."""
    block = "x" * repeat_chars
    filler = prose(total_chars)[: total_chars - 2 * repeat_chars - 3 * len(sep)]
    text = sep.join([filler, block, block]) + sep
    assert len(text) == total_chars
    return text


def test_duplicate_paragraph_characters():
    # 199 / 1000 and 201 / 1000 of the characters are in the repeated paragraph (threshold 0.2)
    assert reason(_char_doc(199, 1000, "\n\n"), dup_para_frac=None) != Reasons.DUP_PARA_CHAR_FRAC
    assert reason(_char_doc(201, 1000, "\n\n"), dup_para_frac=None) == Reasons.DUP_PARA_CHAR_FRAC


def test_duplicate_line_characters():
    assert reason(_char_doc(199, 1000, "\n"), dup_line_frac=None) != Reasons.DUP_LINE_CHAR_FRAC
    assert reason(_char_doc(201, 1000, "\n"), dup_line_frac=None) == Reasons.DUP_LINE_CHAR_FRAC


def test_top_2_gram_boundary():
    base = prose(200)
    for k in range(1, 200):
        text = base + " " + " z ".join(["ab cd"] * k)
        if 5 * k / len(text) > 0.2:
            break
    under = base + " " + " z ".join(["ab cd"] * (k - 1))
    over = base + " " + " z ".join(["ab cd"] * k)
    assert reason(under) != Reasons.top_n_gram(2)
    assert reason(over) == Reasons.top_n_gram(2)


def test_duplicated_5_grams_boundary():
    base = prose(400)
    gram = "ab cd ef gh ij"  # counted without spaces: 10 characters per repeat
    params = {"top_n_grams": ()}
    for k in range(2, 400):
        text = base + " " + " ".join([gram] * k)
        if 10 * (k - 1) / len(text) > 0.15:
            break
    under = base + " " + " ".join([gram] * (k - 1))
    over = base + " " + " ".join([gram] * k)
    assert reason(under, **params) != Reasons.duplicated_n_grams(5)
    assert reason(over, **params) == Reasons.duplicated_n_grams(5)


def test_duplicated_n_grams_skip_after_a_repeat():
    # a b c a b c a b c, n=3: "abc" at 0; positions 1, 2 new; "abc" at 3 repeats (skip to 6); "abc" at 6 repeats
    assert duplicated_n_gram_chars(list("abcabcabc"), 3) == 6
    # n-grams are keyed without separators, as datatrove does: "ab"+"c" equals "a"+"bc"
    assert duplicated_n_gram_chars(["ab", "c", "x", "a", "bc"], 2) == 3


def test_empty_document():
    assert reason("") == Reasons.EMPTY


def _reference_duplicated_chars(words: list[str], n: int) -> int:
    """The definition, written out: datatrove's greedy left-to-right scan over concatenated n-word keys."""
    seen, chars, i = set(), 0, 0
    while i < len(words) - n + 1:
        key = "".join(words[i : i + n])
        if key in seen:
            chars += len(key)
            i += n
        else:
            seen.add(key)
            i += 1
    return chars


def _thue_morse_words(count: int) -> list[str]:
    """Words from the Thue-Morse sequence: the classic input on which polynomial hashes mod 2**64 collide."""
    bits = [bin(i).count("1") % 2 for i in range(count * 3)]
    return ["".join("ab"[b] for b in bits[i : i + 3]) for i in range(0, len(bits), 3)]


@pytest.mark.parametrize("words", [
    ["ab", "c", "x", "a", "bc", "y", "ab", "c", "x", "a", "bc"],          # equal keys from different words
    list("abcabcabcabcabcabcabc"),
    ["é", "😀", "\ud800", "naïve", "😀", "é", "😀", "\ud800", "naïve", "😀", "é", "😀"],  # astral, lone surrogate
    _thue_morse_words(4096),
    [f"w{i % 37}" for i in range(5000)],                                # periodic: many repeats, long skips
    [f"w{i}" for i in range(3000)],                                     # nothing repeats
    ["the"] * 400,
])
def test_duplicated_n_gram_chars_matches_the_definition(words):
    from tamis.text.span_hashes import WordSpans

    spans = WordSpans(words)
    for n in range(1, 12):
        assert duplicated_n_gram_chars(words, n, spans) == _reference_duplicated_chars(words, n), n
        assert duplicated_n_gram_chars(words, n) == _reference_duplicated_chars(words, n), n


def test_duplicated_n_gram_chars_random_words_with_collisions():
    """Random documents over a tiny alphabet, where concatenations of different words often coincide."""
    from tamis.text.span_hashes import WordSpans

    rng = random.Random(7)
    for _ in range(300):
        words = ["".join(rng.choice("ab") for _ in range(rng.randint(1, 3))) for _ in range(rng.randint(0, 60))]
        spans = WordSpans(words)
        for n in range(5, 11):
            assert duplicated_n_gram_chars(words, n, spans) == _reference_duplicated_chars(words, n), (words, n)


def test_duplicated_n_gram_chars_exact_when_every_position_collides(monkeypatch):
    """Hash collisions only add candidates: with every position a candidate the count is still exact."""
    import numpy as np

    from tamis.text.span_hashes import WordSpans

    monkeypatch.setattr(WordSpans, "candidates", lambda self, n: np.arange(len(self.words) - n + 1))
    rng = random.Random(3)
    for _ in range(200):
        words = [rng.choice(["a", "b", "ab", "ba", "aab"]) for _ in range(rng.randint(6, 80))]
        for n in range(5, 11):
            assert duplicated_n_gram_chars(words, n) == _reference_duplicated_chars(words, n), (words, n)


def test_span_hashes_long_document_gets_its_own_tables(monkeypatch):
    """Documents longer than the cached power tables get tables of their own; the process's stay small."""
    from tamis.text import span_hashes

    monkeypatch.setattr(span_hashes, "_CACHED_POWERS", 64)
    monkeypatch.setattr(span_hashes, "_powers", span_hashes._powers[:1])
    monkeypatch.setattr(span_hashes, "_inverse_powers", span_hashes._inverse_powers[:1])
    words = [f"w{i % 23}" for i in range(400)]  # about 1,500 characters
    for n in range(5, 11):
        assert duplicated_n_gram_chars(words, n) == _reference_duplicated_chars(words, n)
    assert len(span_hashes._powers) <= 64


def _reference_top_chars(words: list[str], n: int) -> int:
    """The definition: n-grams as space-joined strings, the most frequent (first seen on ties) times its count."""
    counts: dict[str, int] = {}
    for i in range(len(words) - n + 1):
        key = " ".join(words[i : i + n])
        counts[key] = counts.get(key, 0) + 1
    best = max(counts, key=lambda key: counts[key])  # max keeps the first of equal counts, in insertion order
    return len(best) * counts[best]


@pytest.mark.parametrize("words", [
    ["aa", "b", "c", "aa", "b", "c", "d", "eee", "d", "eee"],          # a tie at 2: the first bigram wins
    ["ab", "c", "x", "a", "bc", "y", "ab", "c", "x", "a", "bc"],          # equal concatenations, other words
    list("abcabcabcabcabcabcabc"),
    ["é", "😀", "\ud800", "naïve", "😀", "é", "😀", "\ud800", "naïve", "😀", "é", "😀"],  # astral, lone surrogate
    _thue_morse_words(4096),
    [f"w{i % 37}" for i in range(5000)],
    [f"w{i}" for i in range(3000)],                                     # nothing repeats: the first n-gram
    ["the"] * 400,
])
def test_top_n_gram_chars_matches_the_definition(words):
    from tamis.text.span_hashes import WordSpans, counted_top_n_gram_chars, top_n_gram_chars

    spans = WordSpans(words)
    for n in range(1, min(12, len(words)) + 1):
        expected = _reference_top_chars(words, n)
        assert top_n_gram_chars(words, n, spans) == expected, n
        assert counted_top_n_gram_chars(words, n) == expected, n


def test_top_n_gram_chars_tie_goes_to_the_first_seen():
    from tamis.text.span_hashes import WordSpans, top_n_gram_chars

    words = ["aa", "b", "c", "aa", "b", "c", "d", "eee", "d", "eee"]
    assert top_n_gram_chars(words, 2, WordSpans(words)) == len("aa b") * 2  # not "d eee", seen later


def test_top_n_gram_chars_random_words():
    """Random documents over a tiny alphabet: many ties, and word sequences with equal concatenations."""
    from tamis.text.span_hashes import WordSpans, top_n_gram_chars

    rng = random.Random(11)
    for _ in range(400):
        words = ["".join(rng.choice("ab") for _ in range(rng.randint(1, 3))) for _ in range(rng.randint(6, 70))]
        spans = WordSpans(words)
        for n in (2, 3, 4):
            assert top_n_gram_chars(words, n, spans) == _reference_top_chars(words, n), (words, n)


@pytest.mark.parametrize("buckets", [1, 3])
def test_top_n_gram_chars_exact_when_hashes_collide(monkeypatch, buckets):
    """Collisions merge groups: the largest groups are checked word by word and the count falls back."""
    from tamis.text.span_hashes import WordSpans, top_n_gram_chars

    real = WordSpans.sequence_hashes
    monkeypatch.setattr(WordSpans, "sequence_hashes", lambda self, n: real(self, n) % buckets)
    rng = random.Random(5)
    for _ in range(200):
        words = [rng.choice(["a", "b", "ab", "ba", "aab"]) for _ in range(rng.randint(6, 80))]
        spans = WordSpans(words)
        for n in (2, 3, 4):
            assert top_n_gram_chars(words, n, spans) == _reference_top_chars(words, n), (words, n)
