"""The word memo's shortcut past spaCy (tamis.text.whole_chunks) gives spaCy's tokens, and its proof is sound.

- Differential: every distinct chunk of letters (`str.isalpha`: ASCII, accented, Cyrillic, CJK...) in every
  real page of ../shared/data (the WARC samples' HTML responses and both extraction benchmarks, markup
  included: more odd chunks than text alone) is tokenised with the shortcut and by spaCy itself, for every
  spaCy language datatrove assigns whose rules the proof accepts. Any difference fails.
- Soundness: for thousands of random expressions, whenever the proof says "cannot match letters alone",
  no string of letters matches (brute force, ASCII and non-ASCII letters); and the proof is not vacuous.
- Expressions that can match letters, case-insensitive ones, and tokenizers that are not plain `re` patterns
  turn the shortcut off.
"""

from __future__ import annotations

import gzip
import itertools
import random
import re

import pytest
from conftest import SHARED, WARC_DIR

from tamis.readers.warc import WarcReader
from tamis.stats.counters import StepCounters
from tamis.text import languages, words
from tamis.text.whole_chunks import Alphabet, all_letters, ascii_letters, can_match_within, words_kept_whole


@pytest.fixture(scope="module")
def letter_chunks() -> list[str]:
    """Every distinct whitespace-delimited chunk of letters in every real HTML page we have."""
    chunks: set[str] = set()
    pages = 0
    for path in sorted(WARC_DIR.glob("*.warc.gz")):
        for batch in WarcReader().iter_batches(str(path), StepCounters()):
            for html in batch["html"]:
                if html:
                    chunks.update(html.split())
                    pages += 1
    for folder in ("extraction/scrapinghub_aeb/html", "extraction/readability_testpages/html"):
        for path in sorted((SHARED / folder).glob("*.html.gz")):
            chunks.update(gzip.decompress(path.read_bytes()).decode("utf-8", "replace").split())
            pages += 1
    assert pages >= 500, f"only {pages} pages found under {SHARED}"
    letters = sorted(chunk for chunk in chunks if chunk.isalpha())
    assert len(letters) > 20_000 and sum(not chunk.isascii() for chunk in letters) > 3_000
    return letters


def _spacy_codes() -> list[str]:
    """The spaCy languages with a rule-based tokenizer that datatrove assigns (FineWeb-2), English included."""
    from spacy.tokenizer import Tokenizer

    codes = sorted({code for cls, code in languages._assignments().values() if cls == "SpaCyTokenizer"} | {"en"})
    return [code for code in codes if code not in ("ja", "zh", "vi")
            and isinstance(languages._spacy_blank(code).tokenizer, Tokenizer)]


def _with_and_without_shortcut(nlp, chunks: list[str]) -> tuple[dict, dict]:
    fast: dict[str, tuple[str, ...]] = {}
    plain: dict[str, tuple[str, ...]] = {}
    for lo in range(0, len(chunks), 4000):
        words.memoise_chunk_tokens(nlp, fast, chunks[lo:lo + 4000])
        words.memoise_chunk_tokens(nlp, plain, chunks[lo:lo + 4000], shortcut=False)
    return fast, plain


def test_english_shortcut_gives_spacys_tokens_on_every_real_page(letter_chunks):
    nlp = words.english_nlp()
    whole = words_kept_whole(nlp.tokenizer)
    assert whole is not None and whole.any_letters, "the proof no longer holds for English: slower, still exact"
    specials = whole.special_cases
    special_letters = [chunk for chunk in letter_chunks if chunk in specials]
    # Special cases made of letters alone ("dont", "cannot", "Im"...): these are the chunks spaCy does split.
    probes = sorted(key for key in specials if key.isalpha())
    fast, plain = _with_and_without_shortcut(nlp, letter_chunks + probes)
    assert fast == plain
    assert any(len(plain[key]) > 1 for key in probes), "no special case splits a word: the probes test nothing"
    assert len(special_letters) < len(letter_chunks) / 100
    # and split_words, the memo's user, against spaCy's own Doc on page-like text
    text = " ".join(letter_chunks[::7] + probes)
    assert words.split_words(text) == [token.text for token in nlp.tokenizer(text) if not token.is_space]


def _rules_of(tokenizer) -> str | None:
    """What a spaCy tokenizer's output depends on: its class, its affix, token and URL expressions (source and
    flags) and its special cases. Two tokenizers with the same rules split every text alike, so one stands
    for both. None (never the same as another) where a rule is not a compiled expression's bound method."""
    parts: list = [type(tokenizer).__qualname__, tokenizer.faster_heuristics]
    for name in ("prefix_search", "suffix_search", "infix_finditer", "token_match", "url_match"):
        rule = getattr(tokenizer, name)
        pattern = getattr(rule, "__self__", None)
        if rule is not None and not isinstance(pattern, re.Pattern):
            return None
        parts.append(None if rule is None else (rule.__name__, pattern.pattern, pattern.flags))
    parts.append(sorted((key, [dict(sorted(token.items())) for token in tokens])
                        for key, tokens in tokenizer.rules.items()))
    return repr(parts)


@pytest.mark.slow
def test_every_spacy_language_gives_spacys_tokens_with_the_shortcut(letter_chunks):
    """All of datatrove's spaCy languages (FineWeb-2), on the same chunks; most of them prove the shortcut.
    Languages whose tokenizers have the same rules (15 share the multi-language defaults) are compared once."""
    proved = []
    compared: set[str] = set()
    for code in _spacy_codes():
        nlp = languages._spacy_blank(code)
        whole = words_kept_whole(nlp.tokenizer)
        if whole is None:
            continue
        proved.append(code)
        rules = _rules_of(nlp.tokenizer)
        if rules in compared:
            continue
        if rules is not None:
            compared.add(rules)
        chunks = letter_chunks if whole.any_letters else [chunk for chunk in letter_chunks if chunk.isascii()]
        probes = sorted(key for key in whole.special_cases if key.isalpha())
        fast, plain = _with_and_without_shortcut(nlp, chunks + probes)
        assert fast == plain, code
    assert {"en", "de", "fr", "ru", "el", "ar", "xx"} <= set(proved), proved
    assert len(compared) >= 30, "fewer distinct tokenizers than spaCy's languages have: are the rules read?"


def test_tokenizers_with_the_same_rules_split_alike_and_others_do_not():
    """The grouping above: a language's tokenizer built twice has the same rules; English's and German's,
    which split "don't" differently, do not; a tokenizer whose special cases change is no longer the same."""
    from spacy.lang.de import German
    from spacy.lang.en import English

    english, again, german = English().tokenizer, English().tokenizer, German().tokenizer
    assert english is not again and _rules_of(english) == _rules_of(again) is not None
    assert _rules_of(english) != _rules_of(german)
    assert [t.text for t in english("don't")] != [t.text for t in german("don't")]
    again.add_special_case("tamis", [{"ORTH": "ta"}, {"ORTH": "mis"}])
    assert _rules_of(again) != _rules_of(english)


# --- the proof ---------------------------------------------------------------------------------------------------

_PIECES = ["a", "b", "k", "Z", "é", "Ж", "1", "9", ".", "-", "'", "[a-c]", "[^0-9]", "[^a-zA-Z]", "[0-9]", r"\d",
           r"\w", r"\W", r"\s", r"\S", "[^a-z]", "[A-Z]", "[à-ÿ]", "[А-я]", "[^à-ÿ]", r"[^\W\d_]", "[ée]",
           ".", r"\.", "[.,;]", "$", "^", r"\b"]


def _random_expression(rng: random.Random, depth: int = 0) -> str:
    kind = rng.random()
    if depth > 2 or kind < 0.35:
        return rng.choice(_PIECES)
    if kind < 0.5:
        return _random_expression(rng, depth + 1) + rng.choice(["*", "+", "?", "{2}", "{0,2}"])
    if kind < 0.65:
        return "(?:" + "|".join(_random_expression(rng, depth + 1) for _ in range(rng.randint(2, 3))) + ")"
    if kind < 0.8:
        look = rng.choice(["(?<=", "(?<!", "(?=", "(?!"])
        inner = rng.choice(_PIECES[:26])  # lookbehinds need a fixed width
        return look + inner + ")" + _random_expression(rng, depth + 1)
    return "".join(_random_expression(rng, depth + 1) for _ in range(rng.randint(2, 3)))


@pytest.mark.parametrize(("alphabet", "letters"), [(ascii_letters, "abkZq"), (all_letters, "aZéЖª")],
                         ids=["ascii", "any-letter"])
def test_the_proof_is_sound_on_random_expressions(alphabet, letters: str):
    """'Cannot match letters alone' is never wrong: brute force over every string of 5 letters up to length 4."""
    rng = random.Random(11)
    strings = ["".join(p) for n in range(5) for p in itertools.product(letters, repeat=n)]
    proved = 0
    for _ in range(1500):
        source = _random_expression(rng)
        try:
            pattern = re.compile(source)
        except re.error:
            continue
        if can_match_within(pattern, alphabet()):
            continue
        proved += 1
        matched = next((s for s in strings if pattern.search(s)), None)
        assert matched is None, f"{source!r} was proved unable to match letters, but matches {matched!r}"
    assert proved > 250, f"only {proved} expressions proved: the test says little"


def test_an_alphabet_counts_its_letters():
    letters = all_letters()
    assert letters.count(ord("a"), ord("z")) == 26 and letters.count(ord("0"), ord("9")) == 0
    assert letters.size == sum(chr(point).isalpha() for point in range(0x110000))
    assert ascii_letters() == Alphabet.of(lambda char: char.isascii() and char.isalpha())
    with pytest.raises(ValueError, match="not alphabetic"):
        Alphabet.of(lambda char: char in "a1")


@pytest.mark.parametrize(("source", "may_match"), [
    (r"(?<=[0-9])km", False),          # a unit after a digit: the kind of rule spaCy's suffixes have
    (r"'s|\.\.\.|[,;:!?]", False),
    (r"(?<=[a-z])\.(?=[A-Z])", False),
    (r"ing$", True),                   # a suffix made of letters: the shortcut must go off
    (r"[^0-9]", True),
    (r"\w", True),
    (r"(?i)\u212a", True),             # the Kelvin sign matches "k" when case is ignored
    (r"(?i:\u017f)", True),            # and the long s matches "s"
    (r"(x)\1", True),                  # back references are not modelled: taken to match
    (r"a*", True),                     # matches the empty string anywhere
])
def test_the_proof_on_known_expressions(source, may_match):
    assert can_match_within(re.compile(source)) is may_match
    assert can_match_within(re.compile(source), all_letters()) is may_match


@pytest.mark.parametrize(("source", "ascii_may_match", "any_may_match"), [
    ("[à-ÿ]", False, True),
    ("\u0640", False, True),            # Arabic tatweel is a letter (Lm) to str.isalpha
    (r"[^\W\d_]", True, True),
    ("[^a-zA-Z]", False, True),         # an accented letter is not in a-z
    (r"(?a:\w)", True, True),           # ASCII-only classes are not modelled
])
def test_the_proof_on_letters_beyond_ascii(source, ascii_may_match, any_may_match):
    assert can_match_within(re.compile(source)) is ascii_may_match
    assert can_match_within(re.compile(source), all_letters()) is any_may_match


def test_a_tokenizer_whose_rules_can_match_letters_gets_no_shortcut():
    import spacy

    nlp = spacy.blank("en")
    assert words_kept_whole(nlp.tokenizer).any_letters
    nlp.tokenizer.suffix_search = re.compile(r"(?:ing)$").search
    assert words_kept_whole(nlp.tokenizer) is None
    nlp.tokenizer.suffix_search = re.compile(r"(?:ß)$").search  # a letter beyond ASCII: ASCII words only
    assert words_kept_whole(nlp.tokenizer).any_letters is False
    nlp.tokenizer.suffix_search = lambda text: None  # not a compiled expression: nothing can be proved
    assert words_kept_whole(nlp.tokenizer) is None
    memo: dict[str, tuple[str, ...]] = {}
    nlp.tokenizer.suffix_search = re.compile(r"(?:ing)$").search
    words.memoise_chunk_tokens(nlp, memo, ["walking", "talk"])
    assert memo == {"walking": ("walk", "ing"), "talk": ("talk",)}
