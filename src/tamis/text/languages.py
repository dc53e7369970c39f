"""Word splitting per language, with the tokenizer datatrove 0.10.1 assigns to each FineWeb-2 language.

Which tokenizer a language gets is read at run time from the installed datatrove package
(`datatrove.utils.word_tokenizers.load_tokenizer_assignments`, built from its `assets/tokenizer_assignment.csv`),
so tamis follows datatrove's table and its lookup rules (a `code_3_Script` label, a bare `code_3`, an ISO 639-1
`code_1`...) without a copy of either. The splitting itself is tamis's: each assigned kind maps to the library
datatrove calls (spaCy's blank pipeline for a code, pythainlp, kiwipiepy, sudachipy, jieba through spaCy,
khmer-nltk, laonlp, pyidaungsu, indic-nlp-library), and words are that library's tokens stripped, without the
blank ones, as datatrove returns them.

English is `tamis.text.words.split_words` itself (the memoised spaCy path the English recipe's parity and speed
rest on). Every other spaCy language whose tokenizer is spaCy's rule-based one gets the same chunk memo; spaCy
languages with a segmenter of their own (Chinese, Vietnamese) are tokenized whole.

Fallbacks, where datatrove's tokenizer cannot run offline (see docs/fineweb2.md, "Word tokenizers"):
  - Stanza languages (Welsh, Galician, Belarusian...): Stanza downloads its models at run time. They get spaCy's
    multi-language blank tokenizer (`xx`), which is what datatrove's own WhitespaceTokenizer uses.
  - Tibetan (botok): botok downloads its dialect pack on first use; unless that pack is already on disk
    (`~/Documents/pybo/dialect_packs/general`) Tibetan falls back to `xx` too.
  - A language datatrove assigns no tokenizer (or does not know): `xx`, where datatrove would raise.
`tokenizer_name_for` says which is used, so callers count documents split by a fallback.
"""

from __future__ import annotations

import importlib
import re
import threading
from collections.abc import Callable
from functools import cache, lru_cache
from itertools import chain
from pathlib import Path
from typing import Any, ClassVar

from tamis.text.library_files import release_crf_model_file, use_private_jieba_cache
from tamis.text.spacy_import import import_spacy
from tamis.text.words import memoised_chunk_tokens, split_words, words_of_chunks

#: the names `tokenizer_name_for` returns start with this for a fallback tokenizer
FALLBACK_PREFIX = "fallback:"
#: whitespace chunk -> tokens, for every spaCy language but English (tamis.text.words has its own): the memos
#: of all languages together are emptied past this many chunks (about 230 bytes each)
_MAX_CACHED_CHUNKS = 2_000_000
_ENGLISH_CODES = frozenset({"en", "eng", "en_Latn", "eng_Latn"})



def _strip(tokens: Any) -> list[str]:
    """Tokens stripped of surrounding whitespace, blank ones dropped (datatrove's word list)."""
    return [stripped for token in tokens if (stripped := token.strip())]


@lru_cache(maxsize=1)
def _assignments() -> dict[str, tuple[str, str]]:
    """datatrove's lookup table: language key -> (tokenizer class name, its code argument).

    Read from the installed datatrove: its factories are `functools.partial(wrapper, class_name, code)`.
    """
    from datatrove.utils.word_tokenizers import load_tokenizer_assignments

    table = {}
    for key, factory in load_tokenizer_assignments().items():
        class_name, code = factory.args
        table[key] = (class_name, code or "")
    return table


def assignment_for(language: str) -> tuple[str, str] | None:
    """(datatrove tokenizer class, code) for a language label or code, or None where datatrove has none."""
    return _assignments().get(language)


def _botok_pack_present() -> bool:
    return (Path.home() / "Documents" / "pybo" / "dialect_packs" / "general").is_dir()


def tokenizer_name_for(language: str) -> str:
    """Which word tokenizer `split_words_for(text, language)` uses, e.g. `spacy:de`, `pythainlp`,
    `fallback:spacy:xx (stanza:cy)`; names starting with FALLBACK_PREFIX are not datatrove's tokenizer."""
    return _resolve(language)[0]


def is_fallback(language: str) -> bool:
    return tokenizer_name_for(language).startswith(FALLBACK_PREFIX)


def split_words_for(text: str, language: str) -> list[str]:
    """The words of `text` as datatrove 0.10.1's word tokenizer for `language` gives them.

    `language` is a FineWeb-2 label (`deu_Latn`) or a bare code (`deu`, `de`); English is `split_words`.
    """
    if language in _ENGLISH_CODES:
        return split_words(text)
    return _resolve(language)[1](text)


def word_splitter_for(language: str) -> Callable[[str], list[str]]:
    """The function `split_words_for` uses for `language` (resolve once, call per document)."""
    if language in _ENGLISH_CODES:
        return split_words
    return _resolve(language)[1]


_RESOLVE_LOCK = threading.Lock()


@cache
def _resolve(language: str) -> tuple[str, Callable[[str], list[str]]]:
    if language in _ENGLISH_CODES:
        return "spacy:en", split_words
    assigned = assignment_for(language)
    if assigned is None:
        return f"{FALLBACK_PREFIX}spacy:xx (no tokenizer assigned)", _spacy_splitter("xx")
    class_name, code = assigned
    with _RESOLVE_LOCK:
        return _build(class_name, code)


@cache
def _build(class_name: str, code: str) -> tuple[str, Callable[[str], list[str]]]:
    """One splitter per tokenizer and code, shared by every label that resolves to it (one memo, one model)."""
    if class_name == "SpaCyTokenizer":
        names = {"ja": "sudachipy (spacy:ja)", "zh": "jieba (spacy:zh)", "vi": "pyvi (spacy:vi)"}
        return names.get(code, f"spacy:{code}"), split_words if code == "en" else _spacy_splitter(code)
    if class_name == "WhitespaceTokenizer":
        return "spacy:xx", _spacy_splitter("xx")
    if class_name == "StanzaTokenizer":
        return f"{FALLBACK_PREFIX}spacy:xx (stanza:{code})", _spacy_splitter("xx")
    if class_name == "TibetanTokenizer" and not _botok_pack_present():
        return f"{FALLBACK_PREFIX}spacy:xx (botok: no dialect pack offline)", _spacy_splitter("xx")
    factories: dict[str, tuple[str, Callable[[], Callable[[str], list[str]]]]] = {
        "ThaiTokenizer": ("pythainlp", _thai_splitter),
        "KiwiTokenizer": ("kiwipiepy", _korean_splitter),
        "KhmerTokenizer": ("khmer-nltk", _khmer_splitter),
        "LaoTokenizer": ("laonlp", _lao_splitter),
        "TibetanTokenizer": ("botok", _tibetan_splitter),
        "BurmeseTokenizer": ("pyidaungsu", _burmese_splitter),
    }
    if class_name == "IndicNLPTokenizer":
        return f"indicnlp:{code}", _indic_splitter(code)
    if class_name in factories:
        name, factory = factories[class_name]
        return name, factory()
    raise ValueError(f"datatrove assigns an unknown tokenizer class {class_name!r}")


# --- spaCy ------------------------------------------------------------------------------------------------------

#: spaCy languages whose blank pipeline needs a configured segmenter, as datatrove builds them
_SPACY_CONFIGS: dict[str, dict] = {"zh": {"nlp": {"tokenizer": {"segmenter": "jieba"}}}}


@cache
def _spacy_blank(code: str) -> Any:
    spacy = import_spacy()
    if code == "zh":
        use_private_jieba_cache()
    config = _SPACY_CONFIGS.get(code)
    nlp = spacy.blank(code) if config is None else spacy.blank(code, config=config)
    if code == "vi":
        from pyvi import ViTokenizer  # the module spaCy's Vietnamese tokenizer imported

        release_crf_model_file(ViTokenizer.ViTokenizer.model)
    # lexical attributes are computed for every new word and never read here (as for English)
    nlp.vocab.lex_attr_getters = {}
    return nlp


@cache
def _spacy_splitter(code: str) -> Callable[[str], list[str]]:
    if code == "ja":
        return _japanese_splitter()
    import_spacy()
    from spacy.tokenizer import Tokenizer

    nlp = _spacy_blank(code)
    if isinstance(nlp.tokenizer, Tokenizer):
        return _ChunkMemoSplitter(nlp)
    return _WholeTextSplitter(nlp)


class _ChunkMemoSplitter:
    """spaCy's rule-based tokenizer never crosses whitespace: memoise each chunk's tokens (see tamis.text.words).

    One bound covers the memos of every language together: a worker on a FineWeb-2 dump meets dozens of
    spaCy languages, and a bound per memo would let their sum grow with the number of languages.
    """

    #: the memo of every splitter of this process, for the shared bound
    memos: ClassVar[list[dict[str, tuple[str, ...]]]] = []

    def __init__(self, nlp: Any):
        self.nlp = nlp
        self.memo: dict[str, tuple[str, ...]] = {}
        self.memos.append(self.memo)

    def __call__(self, text: str) -> list[str]:
        chunks = text.split()
        if sum(map(len, self.memos)) > _MAX_CACHED_CHUNKS:
            for memo in self.memos:  # before finding the unseen chunks: every chunk of `text` must be there after
                memo.clear()
        return words_of_chunks(self.nlp, text, memoised_chunk_tokens(self.nlp, self.memo, chunks))


class _WholeTextSplitter:
    """spaCy languages with their own segmenter (jieba for Chinese, pyvi for Vietnamese): the whole text at once."""

    def __init__(self, nlp: Any):
        self.nlp = nlp

    def __call__(self, text: str) -> list[str]:
        with self.nlp.memory_zone():
            try:
                return _strip(token.text for token in self.nlp.tokenizer(text))
            except Exception:
                # datatrove retries once without this string, which breaks spaCy's tokenizers
                if "IS_ALPHA" not in text:
                    raise
                return _strip(token.text for token in self.nlp.tokenizer(text.replace("IS_ALPHA", "")))


# --- dedicated libraries ----------------------------------------------------------------------------------------

#: sudachipy refuses inputs above ~49 KB; datatrove feeds spaCy's Japanese tokenizer pieces of at most this many bytes
_JAPANESE_MAX_BYTES = 40_000
#: datatrove moves each cut by this many characters while looking for it
_JAPANESE_CUT_STEP = 10


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def _japanese_pieces(text: str) -> list[str]:
    """`text` in the pieces datatrove 0.10.1 gives spaCy's Japanese tokenizer, so words at the cuts agree.

    datatrove's rule, for a text over the byte limit: estimate a piece's length in characters from the whole
    text's characters per byte (minus one step); shorten that estimate by a step while the piece it gives is over
    the limit (the estimate stays shortened for later pieces); from there lengthen the piece a step at a time
    until it reaches the limit or the end of the text, and give back the last step if that overshot the limit.
    A text within the limit is one piece.
    """
    n_bytes = _utf8_len(text)
    if n_bytes <= _JAPANESE_MAX_BYTES:
        return [text]
    step = _JAPANESE_CUT_STEP
    estimate = max(int(_JAPANESE_MAX_BYTES * len(text) / n_bytes - step), 1)
    pieces = []
    rest = text
    while rest:
        while _utf8_len(rest[:estimate]) > _JAPANESE_MAX_BYTES:
            estimate = max(estimate - step, 1)
        cut = estimate
        while _utf8_len(rest[:cut]) < _JAPANESE_MAX_BYTES and cut < len(rest):
            cut = min(len(rest), cut + step)
        if _utf8_len(rest[:cut]) > _JAPANESE_MAX_BYTES:
            cut -= step
        pieces.append(rest[:cut])
        rest = rest[cut:]
    return pieces


def _japanese_splitter() -> Callable[[str], list[str]]:
    """sudachipy with its core dictionary in split mode A (what spaCy's Japanese tokenizer runs by default)."""
    from sudachipy import Dictionary, SplitMode

    tokenizer = Dictionary().tokenizer(mode=SplitMode.A)

    def split(text: str) -> list[str]:
        return list(
            chain.from_iterable(
                _strip(m.surface() for m in tokenizer.tokenize(piece)) for piece in _japanese_pieces(text)
            )
        )

    return split


def _thai_splitter() -> Callable[[str], list[str]]:
    from pythainlp.tokenize import word_tokenize

    return lambda text: _strip(word_tokenize(text, keep_whitespace=False, engine="newmm-safe"))


_LONG_NUMBER = re.compile("[0-9,]{20,}")


def _korean_splitter() -> Callable[[str], list[str]]:
    """kiwipiepy's skip-bigram model; runs of 20+ digits or commas are removed first (they upset kiwi).

    As in datatrove, the words are the original text sliced at the offsets kiwi reports on the cleaned text.
    """
    from kiwipiepy import Kiwi

    kiwi = Kiwi(model_type="sbg")

    def split(text: str) -> list[str]:
        return _strip(text[token.start : token.end] for token in kiwi.tokenize(_LONG_NUMBER.sub("", text)))

    return split


def _khmer_splitter() -> Callable[[str], list[str]]:
    import logging

    from khmernltk import word_tokenize

    logging.getLogger("khmer-nltk").setLevel(logging.WARNING)
    word_tokenize("\u1780")  # khmer-nltk loads its model on first use: load it now, to delete its temp file
    release_crf_model_file(importlib.import_module("khmernltk.word_tokenize").crf_model)
    return lambda text: _strip(word_tokenize(text, return_tokens=True))


def _lao_splitter() -> Callable[[str], list[str]]:
    from laonlp.tokenize import word_tokenize

    return lambda text: _strip(word_tokenize(text))


def _tibetan_splitter() -> Callable[[str], list[str]]:
    from botok import WordTokenizer

    tokenizer = WordTokenizer()
    whitespace = re.compile(r"\s+")

    def split(text: str) -> list[str]:
        try:
            tokens = tokenizer.tokenize(text, split_affixes=False)
        except Exception:
            tokens = tokenizer.tokenize(whitespace.sub("", text), split_affixes=False)
        return _strip(token.text for token in tokens)

    return split


def _burmese_splitter() -> Callable[[str], list[str]]:
    import pyidaungsu

    return lambda text: _strip(pyidaungsu.tokenize(text, form="word"))


def _indic_splitter(code: str) -> Callable[[str], list[str]]:
    from indicnlp.tokenize.indic_tokenize import trivial_tokenize

    return lambda text: _strip(trivial_tokenize(text, code))
