"""FineWeb quality: each ratio just inside and just outside its threshold."""

from tamis.filters.fineweb_quality import FineWebQualityFilter, Reasons

LONG = "this line has many words and is longer than thirty characters"  # no final punctuation


def reason(text, **params):
    verdict = FineWebQualityFilter(**params).filter(text, {})
    return None if verdict is True else verdict[1]


def numbered(lines):
    """Make every line unique so the duplicate rule stays quiet."""
    return "\n".join(f"{line} {i}" if not line.endswith(".") else f"{i} {line}" for i, line in enumerate(lines))


def test_line_punctuation_ratio():
    assert reason(numbered([LONG + "."] * 12 + [LONG] * 88)) is None  # 0.12
    assert reason(numbered([LONG + "."] * 11 + [LONG] * 89)) == Reasons.LINE_PUNCT_RATIO
    assert reason(numbered([LONG] * 10), line_punct_exclude_zero=True) is None


def test_short_line_ratio():
    short = "short line."
    assert reason(numbered([short] * 67 + [LONG + "."] * 33)) is None  # 0.67
    assert reason(numbered([short] * 68 + [LONG + "."] * 32)) == Reasons.SHORT_LINE_RATIO


def test_duplicated_line_characters():
    unique = [f"{i} {LONG}." for i in range(99)]
    chars = sum(map(len, unique))
    repeated = "a" * (chars // 100 - 2) + "."  # about 1% of the characters once repeated
    assert reason("\n".join(unique + [repeated] * 2)) is None
    assert reason("\n".join(unique + [repeated + "aaaa"] * 2)) == Reasons.CHAR_DUP_RATIO


def test_newlines_per_word():
    # 3 lines of 10 words: 2 newlines / 30 words. Blank lines add newlines but no lines.
    body = "\n".join(["one two three four five six seven eight nine ten."] * 3)
    params = {"char_duplicates_ratio": 1.0}
    assert reason(body + "\n" * 7, **params) is None  # 9 / 30 = 0.3
    assert reason(body + "\n" * 8, **params) == Reasons.LIST_RATIO  # 10 / 30


def test_empty():
    assert reason(" \n \n") == Reasons.EMPTY
