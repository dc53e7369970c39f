"""Gopher repetition: each check with a document just inside and just outside its threshold."""

import random

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
