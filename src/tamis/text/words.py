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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain, pairwise
from operator import itemgetter
from typing import Any, TypeVar

from tamis.text.spacy_import import import_spacy
from tamis.text.whole_chunks import WholeWords, words_kept_whole

#: memo of chunk -> its spaCy tokens; emptied past this many chunks (about 230 bytes each: bounded memory)
_MAX_CACHED_CHUNKS = 2_000_000
_CHUNK_TOKENS: dict[str, tuple[str, ...]] = {}
#: what `_once_per_tokenizer` works out from a tokenizer's rules
Ruled = TypeVar("Ruled")


@lru_cache(maxsize=1)
def english_nlp() -> Any:
    """A blank English spaCy pipeline with the rule-based sentencizer, as datatrove builds it."""
    nlp = import_spacy().blank("en")
    # Lexical attributes (shape, like_num, like_url...) are computed for every new word and never read here:
    # without them, the tokens are the same and new words cost ~20% less.
    nlp.vocab.lex_attr_getters = {}
    nlp.add_pipe("sentencizer")
    return nlp


#: per tokenizer (by id, with the tokenizer kept alive, so that a new tokenizer never takes a dead one's id):
#: what was worked out from its rules, by what works it out
_FROM_RULES: dict[tuple[Callable[[Any], Any], int], tuple[Any, Any]] = {}


def _once_per_tokenizer(work_out: Callable[[Any], Ruled], tokenizer: Any) -> Ruled:
    """`work_out(tokenizer)`, worked out once per tokenizer (a spaCy tokenizer is not hashable)."""
    key = (work_out, id(tokenizer))
    entry = _FROM_RULES.get(key)
    if entry is None or entry[0] is not tokenizer:
        entry = (tokenizer, work_out(tokenizer))
        _FROM_RULES[key] = entry
    return entry[1]


def _whole_words(tokenizer: Any) -> WholeWords | None:
    """`tamis.text.whole_chunks.words_kept_whole(tokenizer)`, worked out once per tokenizer."""
    return _once_per_tokenizer(words_kept_whole, tokenizer)


@dataclass(frozen=True)
class Crossings:
    """Where spaCy may match a special case across the space between two chunks, for one tokenizer.

    Why: spaCy applies a special case that holds a prefix, suffix or infix character (the emoticons `):` and
    `:-)`, `Mr.`, `'s`) by matching its pieces over the whole document after splitting on whitespace, and of
    two overlapping matches keeps the longer. In `Irvine): -)`, the match of `:-)` over the last piece of
    `Irvine):` and the next chunk beats the chunk's own `):`, which then stays `)`, `:`: a chunk's tokens can
    depend on its neighbour. Such a match holds two neighbouring pieces of a special case, one each side of
    the space: `pairs`, read from the installed tokenizer's rules (each special case split without special
    cases, as spaCy builds its matcher). A chunk's last piece before that matching is its last token, or the
    last piece of the special case that made its last token (`made_last`); likewise for the first.

    A match across a space changes nothing by itself unless its special case is written with that space
    (`spaced`; spaCy otherwise keeps the pieces as they are): it matters when it beats a special case matched
    inside one of the two chunks, at its edge, which then made the chunk's last (or first) token
    (`made_last`, `made_first`). Between chunks that end and start with plain pieces (`science. Our`,
    `chat: 1)`), the chunks' own tokens stand.

    `pairs`, `spaced`, `made_last` and `made_first` are what `of` reads from the rules; what it keeps is the
    two sets of edges below, which they imply.
    """

    #: (last token of a chunk, first token of the next) where a special case may match across the space
    #: between them and beat one matched inside either chunk, or is written with that space: `any_between`
    crossing: frozenset[tuple[str, str]]
    #: (last token, first token) where any special case may match across the space, whatever it changes (a
    #: superset of `crossing`): a match never reaches across a space whose tokens are not here
    linking: frozenset[tuple[str, str]]

    @classmethod
    def of(cls, tokenizer: Any) -> Crossings:
        """Read from the tokenizer's rules. Each set is built from the rules, not by testing every pair of
        tokens (Dutch has 4,670 special cases): a pair belongs to it exactly when one of the conditions in the
        class's docstring holds for it."""
        from spacy.attrs import ORTH
        from spacy.tokenizer import Tokenizer

        plain = Tokenizer(tokenizer.vocab, rules={}, prefix_search=tokenizer.prefix_search,
                          suffix_search=tokenizer.suffix_search, infix_finditer=tokenizer.infix_finditer,
                          token_match=tokenizer.token_match, url_match=tokenizer.url_match)
        split = [(special, [token.text for token in plain(special)],
                  [sub.get(ORTH, sub.get("ORTH", "")) for sub in subs])
                 for special, subs in tokenizer.rules.items()]
        pairs = {(left, right) for _, pieces, _ in split for left, right in pairwise(pieces)
                 if left.strip() and right.strip()}
        spaced = {(left, right) for special, pieces, _ in split if special.split() != [special]
                  for left, right in pairwise(pieces) if left.strip() and right.strip()}
        made_last: dict[str, set[str]] = {}  # token a special case may leave at a chunk's end -> its last piece
        made_first: dict[str, set[str]] = {}  # token it may leave at a chunk's start -> its first piece
        for _, pieces, tokens in split:
            if len(pieces) > 1 and tokens:
                made_last.setdefault(tokens[-1], set()).add(pieces[-1])
                made_first.setdefault(tokens[0], set()).add(pieces[0])
        rights_of: dict[str, set[str]] = {}
        lefts_of: dict[str, set[str]] = {}
        for left, right in pairs:
            rights_of.setdefault(left, set()).add(right)
            lefts_of.setdefault(right, set()).add(left)
        firsts_made_from: dict[str, set[str]] = {}
        for first, pieces in made_first.items():
            for piece in pieces:
                firsts_made_from.setdefault(piece, set()).add(first)
        crossing = set(spaced)
        for last, pieces in made_last.items():  # a match from the piece that made `last` into the next chunk
            for left in pieces:
                for right in rights_of.get(left, ()):
                    crossing.add((last, right))
                    crossing.update((last, first) for first in firsts_made_from.get(right, ()))
        for first, pieces in made_first.items():  # a match from a chunk's last token into the piece of `first`
            for right in pieces:
                crossing.update((left, first) for left in lefts_of.get(right, ()))
        return cls(frozenset(crossing), frozenset(crossing | pairs))

    def any_between(self, chunk_tokens: list[tuple[str, ...]]) -> bool:
        """Whether a special case may match across two neighbouring chunks and beat one matched inside either,
        given each chunk's own tokens (in order). Any whitespace between them counts, not only one space: the
        answer errs towards spaCy on the whole text, never away from it. One set test over the document's
        edges, in C: on the 447 real pages' texts, 76-93 ms against 158-195 ms for the loop in Python over
        each boundary that it replaced (2026-12-07)."""
        return not self.crossing.isdisjoint(_edges(chunk_tokens))


def _edges(chunk_tokens: list[tuple[str, ...]]) -> Iterator[tuple[str, str]]:
    """(last token of each chunk, first token of the next), lazily."""
    starts = map(itemgetter(0), chunk_tokens)
    next(starts, None)
    return zip(map(itemgetter(-1), chunk_tokens), starts, strict=False)  # `starts` is one shorter


def crossing_words(nlp: Any, text: str, chunk_tokens: list[tuple[str, ...]]) -> list[str]:
    """The words of `text` (whose chunks have these own tokens) where special cases may match across chunks:
    spaCy on each run of chunks that matches may link (`Crossings.linking`), cut from the text as it is
    (its whitespace included); each other chunk's own tokens. No match reaches across the space between two
    runs, so this is spaCy on the whole text, at the cost of the runs alone."""
    links = crossings(nlp.tokenizer)
    linked = [edge in links.linking for edge in _edges(chunk_tokens)]
    places = _CHUNK.finditer(text)
    words: list[str] = []
    start = 0
    for index in range(1, len(chunk_tokens) + 1):
        if index < len(chunk_tokens) and linked[index - 1]:
            continue
        if index - start == 1:
            words += chunk_tokens[start]
            next(places)
        else:
            begin = next(places).start()
            for _ in range(index - start - 2):
                next(places)
            words += spacy_words(nlp, text[begin:next(places).end()])
        start = index
    return words


#: a whitespace-delimited chunk, as `str.split()` finds them (`\s` is `str.isspace`)
_CHUNK = re.compile(r"\S+")


def crossings(tokenizer: Any) -> Crossings:
    """`Crossings.of(tokenizer)`, worked out once per tokenizer."""
    return _once_per_tokenizer(Crossings.of, tokenizer)


def spacy_words(nlp: Any, text: str) -> list[str]:
    """spaCy's tokens of the whole `text`, whitespace tokens dropped (datatrove's word list, its way; not
    `is_space`, a lexical attribute that `english_nlp` turns off)."""
    with nlp.memory_zone():
        return [word for word in (token.text.strip() for token in nlp.tokenizer(text)) if word]


def memoise_chunk_tokens(nlp: Any, memo: dict[str, tuple[str, ...]], chunks: list[str],
                         shortcut: bool = True) -> None:
    """Put each unseen chunk's spaCy tokens in `memo`, as spaCy splits the chunk alone; spaCy runs once,
    over the chunks it must see.

    With `shortcut`, a chunk of letters that is not one of the tokenizer's special cases is its own single
    token, without spaCy, where `tamis.text.whole_chunks` proved from the tokenizer's rules that spaCy would
    keep it whole (about 4 in 10 distinct English chunks; a quarter of spaCy's time on unseen chunks).
    The others are joined by newlines and tokenised in one call: each newline becomes a token of its own,
    which is how we find where each chunk's tokens end, and which no special case can match across. (Joined
    by single spaces, as before 2026-12-07, a special case could match across two unrelated chunks and change
    the tokens memoised for one of them: `Irvine):` was memoised as `Irvine`, `)`, `:` after some neighbours
    and as `Irvine`, `):` after others, so a document's words depended on what its worker had seen before.)
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
        for token in nlp.tokenizer("\n".join(chunks)):
            if token.text == "\n":
                memo[chunks[index]] = tuple(current)
                current = []
                index += 1
            else:
                current.append(token.text)
        memo[chunks[index]] = tuple(current)


def memoised_chunk_tokens(nlp: Any, memo: dict[str, tuple[str, ...]], chunks: list[str]) -> list[tuple[str, ...]]:
    """Each chunk's own tokens (as spaCy splits it alone), from `memo`, filled first with the unseen ones."""
    unseen = set(chunks).difference(memo)
    if unseen:
        memoise_chunk_tokens(nlp, memo, list(unseen))
    return list(map(memo.__getitem__, chunks))


def words_of_chunks(nlp: Any, text: str, chunk_tokens: list[tuple[str, ...]]) -> list[str]:
    """The words of `text`, given its chunks' own tokens: these, in order, unless a special case may match
    across two chunks (`Crossings`), where spaCy on the runs of linked chunks gives datatrove's words."""
    if crossings(nlp.tokenizer).any_between(chunk_tokens):
        return crossing_words(nlp, text, chunk_tokens)
    return list(chain.from_iterable(chunk_tokens))


def _english_chunk_tokens(chunks: list[str]) -> list[tuple[str, ...]]:
    """`memoised_chunk_tokens` for English, with the memo's bound."""
    if len(_CHUNK_TOKENS) > _MAX_CACHED_CHUNKS:
        _CHUNK_TOKENS.clear()  # before finding the unseen chunks: every chunk of `text` must be there after
    return memoised_chunk_tokens(english_nlp(), _CHUNK_TOKENS, chunks)


def split_words(text: str) -> list[str]:
    """The words of `text`: spaCy blank-English tokens without whitespace tokens (datatrove's list)."""
    return words_of_chunks(english_nlp(), text, _english_chunk_tokens(text.split()))


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
    chunks = line.split()
    memoised = _english_chunk_tokens(chunks)
    nlp = english_nlp()
    if crossings(nlp.tokenizer).any_between(memoised):  # only spaCy on the whole line gives its tokens
        with nlp.memory_zone():
            return [token.text for token in nlp.tokenizer(line)]
    if " ".join(chunks) == line:
        return list(chain.from_iterable(memoised))
    tokens: list[str] = []
    gaps = _WHITESPACE_RUN.findall(line)
    for index, chunk_tokens in enumerate(memoised):
        if index:
            gap = gaps[index - 1]
            if gap != " ":
                tokens.append(gap[1:] if gap[0] == " " else gap)
        tokens += chunk_tokens
    return tokens
