"""English word and sentence splitting with the decisions of datatrove 0.10.1 (a blank spaCy tokenizer).

spaCy tokenises every whitespace-delimited chunk of a text on its own (prefixes, suffixes, infixes and
special cases never cross whitespace), so the words of a document are the concatenation of the tokens
of its chunks. Web text is Zipfian: most chunks of a document were already seen in earlier documents.
We therefore split on whitespace in C (`str.split`) and look each chunk up in a per-process memo of
spaCy's answer; only unseen chunks go through spaCy, in one call per document. The result is exactly
spaCy's token list (whitespace tokens dropped and tokens stripped, as datatrove does), at the cost of a
dict lookup per chunk instead of building a spaCy `Doc` per document.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from itertools import chain
from typing import Any

from tamis.text.spacy_import import import_spacy
from tamis.text.whole_chunks import WholeWords, words_kept_whole

#: memo of chunk -> its spaCy tokens; emptied past this many chunks (about 230 bytes each: bounded memory)
_MAX_CACHED_CHUNKS = 2_000_000
_CHUNK_TOKENS: dict[str, tuple[str, ...]] = {}


@lru_cache(maxsize=1)
def english_nlp() -> Any:
    """A blank English spaCy pipeline with the rule-based sentencizer, as datatrove builds it."""
    nlp = import_spacy().blank("en")
    # Lexical attributes (shape, like_num, like_url...) are computed for every new word and never read here:
    # without them, the tokens are the same and new words cost ~20% less.
    nlp.vocab.lex_attr_getters = {}
    nlp.add_pipe("sentencizer")
    return nlp


#: per tokenizer (by id, with the tokenizer kept alive): what the whole-word proof allows, if anything
_WHOLE_WORD_PROOFS: dict[int, tuple[Any, WholeWords | None]] = {}


def _whole_words(tokenizer: Any) -> WholeWords | None:
    """`tamis.text.whole_chunks.words_kept_whole(tokenizer)`, worked out once per tokenizer."""
    entry = _WHOLE_WORD_PROOFS.get(id(tokenizer))
    if entry is None or entry[0] is not tokenizer:
        entry = (tokenizer, words_kept_whole(tokenizer))
        _WHOLE_WORD_PROOFS[id(tokenizer)] = entry
    return entry[1]


def memoise_chunk_tokens(nlp: Any, memo: dict[str, tuple[str, ...]], chunks: list[str],
                         shortcut: bool = True) -> None:
    """Put each unseen chunk's spaCy tokens in `memo`; spaCy runs once, over the chunks it must see.

    With `shortcut`, a chunk of letters that is not one of the tokenizer's special cases is its own single
    token, without spaCy, where `tamis.text.whole_chunks` proved from the tokenizer's rules that spaCy would
    keep it whole (about 4 in 10 distinct English chunks; a quarter of spaCy's time on unseen chunks).
    The others are joined by single spaces and tokenised in one call: a single space between chunks never
    becomes a token, spaCy records it as the trailing whitespace of the chunk's last token, which is how we
    find where each chunk's tokens end.
    """
    whole = _whole_words(nlp.tokenizer) if shortcut else None
    if whole is not None:
        others = []
        for chunk in chunks:
            if whole.keeps_whole(chunk):
                memo[chunk] = (chunk,)
            else:
                others.append(chunk)
        if not others:
            return
        chunks = others
    with nlp.memory_zone():
        current: list[str] = []
        index = 0
        for token in nlp.tokenizer(" ".join(chunks)):
            current.append(token.text)
            if token.whitespace_:
                memo[chunks[index]] = tuple(current)
                current = []
                index += 1
        memo[chunks[index]] = tuple(current)


def split_words(text: str) -> list[str]:
    """The words of `text`: spaCy blank-English tokens without whitespace tokens (datatrove's list)."""
    chunks = text.split()
    if len(_CHUNK_TOKENS) > _MAX_CACHED_CHUNKS:
        _CHUNK_TOKENS.clear()  # before finding the unseen chunks: every chunk of `text` must be there after
    unseen = set(chunks).difference(_CHUNK_TOKENS)
    if unseen:
        memoise_chunk_tokens(english_nlp(), _CHUNK_TOKENS, list(unseen))
    return list(chain.from_iterable(map(_CHUNK_TOKENS.__getitem__, chunks)))


@lru_cache(maxsize=1)
def _sentence_punct() -> frozenset[str]:
    import_spacy()
    from spacy.pipeline import Sentencizer

    return frozenset(Sentencizer.default_punct_chars)


@lru_cache(maxsize=1 << 16)
def _is_punct(token: str) -> bool:
    """spaCy's IS_PUNCT lexical attribute: every character is Unicode punctuation (P*)."""
    return all(unicodedata.category(ch)[0] == "P" for ch in token)


def count_sentences(line: str) -> int:
    """How many sentences spaCy's sentencizer finds in a stripped line (datatrove's C4 sentence count).

    A new sentence starts at the first token that is neither punctuation nor a sentence-final character
    after a sentence-final character. With single spaces between chunks the tokens are those of
    `split_words`. Any other run of whitespace between two chunks becomes a token of its own in spaCy (a
    run that starts with a space loses that space, and only a lone space leaves no token): a token that is
    neither punctuation nor sentence-final, which `_line_tokens` puts in the same place.
    """
    punct = _sentence_punct()
    sentences = 1
    seen_period = False
    for token in _line_tokens(line):
        in_punct = token in punct
        if seen_period and not in_punct and not _is_punct(token):
            sentences += 1
            seen_period = False
        elif in_punct:
            seen_period = True
    return sentences


#: a run of whitespace as spaCy's tokenizer sees it (`str.isspace`, the same test as `\s` on a str)
_WHITESPACE_RUN = re.compile(r"(\s+)")


def _line_tokens(line: str) -> list[str]:
    """spaCy's tokens of a stripped line, whitespace tokens included."""
    words = split_words(line)
    if " ".join(line.split()) == line:
        return words
    tokens: list[str] = []
    parts = _WHITESPACE_RUN.split(line)
    for i in range(0, len(parts), 2):
        if i:
            gap = parts[i - 1]
            if gap != " ":
                tokens.append(gap[1:] if gap[0] == " " else gap)
        tokens += _CHUNK_TOKENS[parts[i]]
    return tokens
