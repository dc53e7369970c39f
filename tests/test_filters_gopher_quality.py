"""Gopher quality: each threshold with a document just inside and just outside it."""

import pytest

from tamis.filters.gopher_quality import GopherQualityFilter, Reasons


def reason(text, **params):
    f = GopherQualityFilter(**params)
    f.setup()
    verdict = f.filter(text, {})
    return None if verdict is True else verdict[1]


def doc(n_words, word="word"):
    """`n_words` words including two stop words (the, and); mean length between 3 and 10."""
    return "the and " + " ".join([word] * (n_words - 2))


def test_word_count_bounds():
    assert reason(doc(50)) is None
    assert reason(doc(49)) == Reasons.SHORT_DOC
    assert reason(doc(100_000)) is None
    assert reason(doc(100_001)) == Reasons.LONG_DOC


def test_symbol_only_tokens_do_not_count_as_words():
    assert reason(doc(49) + " ; ; ; ,") == Reasons.SHORT_DOC


def test_mean_word_length_bounds():
    assert reason("the and " + " ".join(["abc"] * 48)) is None  # mean exactly 3
    assert reason("the and " + " ".join(["abc"] * 47 + ["ab"])) == Reasons.BELOW_AVG_WORD_LENGTH
    long_words = ["a" * 10] * 46 + ["b" * 17] * 2  # 3 + 3 + 494 characters over 50 words: mean exactly 10
    assert reason("the and " + " ".join(long_words)) is None
    assert reason("the and " + " ".join(long_words[:-1] + ["b" * 18])) == Reasons.ABOVE_AVG_WORD_LENGTH


@pytest.mark.parametrize(("symbol", "expected"), [("#", Reasons.TOO_MANY_HASHES), ("…", Reasons.TOO_MANY_ELLIPSIS)])
def test_symbol_to_word_ratio(symbol, expected):
    assert reason(f"{symbol} " * 6 + doc(54)) is None  # 6 symbols for 60 words: 0.1
    assert reason(f"{symbol} " * 7 + doc(54)) == expected  # 7 for 61


def test_bullet_lines():
    lines = ["- the and word word word"] * 9 + ["the and word word word"]
    assert reason("\n".join(lines)) is None  # 0.9
    assert reason("\n".join(["- the and word word word"] * 10)) == Reasons.TOO_MANY_BULLETS


def test_lines_ending_with_ellipsis():
    line = "the and word word word word"
    assert reason("\n".join([line + "..."] * 3 + [line] * 7)) is None  # 0.3
    assert reason("\n".join([line + "..."] * 4 + [line] * 6)) == Reasons.TOO_MANY_END_ELLIPSIS


def test_words_with_a_letter():
    assert reason("the and " + " ".join(["word"] * 38 + ["123"] * 10)) is None  # 40 of 50
    assert reason("the and " + " ".join(["word"] * 37 + ["123"] * 11)) == Reasons.BELOW_ALPHA


def test_stop_words_are_counted_once_each():
    assert reason("the the " + " ".join(["word"] * 48)) == Reasons.FEW_STOP_WORDS
    assert reason("the with " + " ".join(["word"] * 48)) is None
    assert reason(doc(50), min_stop_words=3) == Reasons.FEW_STOP_WORDS


def test_none_disables_a_check():
    assert reason(doc(10), min_doc_words=None) is None
