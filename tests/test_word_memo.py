"""The per-process memos (chunk -> spaCy tokens, word -> Gopher properties) stay exact when they reach their bound.

A worker on a dump goes past the bound (two million chunks) after some tens of thousands of documents; the
memo is then emptied before a document whose chunks are partly known, and every chunk of that document must
still be tokenised. The bound is made small here so that it is crossed on every few texts.
"""

from __future__ import annotations

import pytest

from tamis.text import languages, words

pytest.importorskip("datatrove", reason="datatrove==0.10.1 (the oracle) is not installed: pip install -e '.[test]'")

from datatrove.utils.word_tokenizers import load_word_tokenizer  # noqa: E402

PARAGRAPH = (
    "The committee's report (published in 2015) didn't say much; e.g. it noted that U.S. rates rose 3.5% "
    "year-on-year, and that the St. Louis office—unlike New York's—hadn't hired anyone since Jan. 1st! "
    "Who knew? Visit https://example.com/a?b=c or mail info@example.com for the full 40-page text..."
)


def _overlapping_texts(paragraph: str, width: int = 12, step: int = 5) -> list[str]:
    """Windows of the paragraph's chunks, each sharing some chunks with the one before and adding new ones."""
    chunks = paragraph.split()
    return [" ".join(chunks[lo : lo + width]) for lo in range(0, len(chunks), step)]


def test_english_memo_stays_exact_past_its_bound(monkeypatch):
    monkeypatch.setattr(words, "_MAX_CACHED_CHUNKS", 6)
    monkeypatch.setattr(words, "_CHUNK_TOKENS", {})
    theirs = load_word_tokenizer("en")
    texts = _overlapping_texts(PARAGRAPH) * 2
    for text in texts:
        assert words.split_words(text) == theirs.word_tokenize(text), text
        assert len(words._CHUNK_TOKENS) <= 6 + len(set(text.split())), "the memo grew past its bound"


def test_multilingual_memos_share_one_bound(monkeypatch):
    """The memos of all languages together stay under one bound, and stay exact when emptied."""
    monkeypatch.setattr(languages, "_MAX_CACHED_CHUNKS", 10)
    monkeypatch.setattr(languages._ChunkMemoSplitter, "memos", [])
    french = languages._ChunkMemoSplitter(languages._spacy_blank("fr"))
    german = languages._ChunkMemoSplitter(languages._spacy_blank("de"))
    theirs = {french: load_word_tokenizer("fr"), german: load_word_tokenizer("de")}
    texts = _overlapping_texts("L'été dernier, l'équipe n'a pas gagné : c'est-à-dire qu'aujourd'hui " + PARAGRAPH)
    emptied = 0
    for text in texts * 2:
        for splitter in (french, german):
            before = len(french.memo) + len(german.memo)
            assert splitter(text) == theirs[splitter].word_tokenize(text), text
            after = len(french.memo) + len(german.memo)
            assert after <= 10 + len(set(text.split())), "the memos together grew past their bound"
            emptied += after < before
    assert emptied >= 3, "the bound was never crossed"
    assert german.memo and french.memo


def test_gopher_quality_word_memo_stays_exact_past_its_bound(monkeypatch):
    from tamis.filters import gopher_quality

    texts = _overlapping_texts(PARAGRAPH, width=30, step=7)
    step = gopher_quality.GopherQualityFilter()
    step.setup()

    def measures() -> list[tuple]:
        return [step.measure(text, words.split_words(text), text.splitlines()) for text in texts * 2]

    unbounded = measures()
    monkeypatch.setattr(gopher_quality, "_MAX_MEMO_WORDS", 5)
    monkeypatch.setattr(gopher_quality, "_SYMBOLS_ONLY", {})
    monkeypatch.setattr(gopher_quality, "_HAS_LETTER", {})
    assert measures() == unbounded
    assert len(gopher_quality._SYMBOLS_ONLY) <= 5 + 30 * 3
