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


def test_a_chunks_memoised_tokens_are_its_own_whatever_it_was_memoised_beside():
    """spaCy matches special cases such as the emoticons `):` and `:)` over the whole text it is given, across
    single spaces. The memo once tokenised its unseen chunks joined by spaces: next to a chunk that starts with
    `)`, `Irvine):` was memoised as `Irvine`, `)`, `:`, and every later document got those words."""
    nlp = words.english_nlp()
    for neighbours in (["Irvine):", "-)"], ["Irvine):", "o)"], ["Irvine):", ")))"], ["x:", "-)", "(:"]):
        memo: dict[str, tuple[str, ...]] = {}
        words.memoise_chunk_tokens(nlp, memo, neighbours, shortcut=False)
        assert memo == {chunk: tuple(t.text for t in nlp.tokenizer(chunk)) for chunk in neighbours}, neighbours


CROSSING = [
    "(University of California, Irvine): -) marks it", "x): o) y", "we said :) and left", "a): ))) b",
    "see: ) or (: here",
    "the students' s and the teachers' ll", "Mr . Smith met Mrs . Jones at 10a.m . sharp", "a :-) b :- ) c : -)",
    "line one\n)x after a newline", "two  spaces :  ) here",
]


def test_words_and_line_tokens_are_spacys_where_a_special_case_spans_two_chunks(monkeypatch):
    monkeypatch.setattr(words, "_CHUNK_TOKENS", {})
    theirs = load_word_tokenizer("en")
    nlp = words.english_nlp()
    for text in CROSSING + [" ".join(CROSSING)]:
        words.split_words(text.replace(" ", "\n"))  # the chunks memoised alone first, then met side by side
        assert words.split_words(text) == theirs.word_tokenize(text), text
        line = " ".join(text.split("\n"))
        assert words._line_tokens(line) == [t.text for t in nlp.tokenizer(line)], line
    # the other spaCy languages' memos (FineWeb-2) the same way, with special cases written with a space, which
    # spaCy applies across two chunks (before: `в`, `т.ч`, `.` for datatrove's one word `в т.ч.`)
    spaced = {("rus_Cyrl", "ru"): ["это в т.ч. и другое", "вед. науч. сотр. института"],
              ("srp_Cyrl", "sr"): ["да л' је тако"], ("spa_Latn", "es"): ["los EE. UU. y la UE"],
              ("deu_Latn", "de"): CROSSING}
    for (label, code), texts in spaced.items():
        theirs = load_word_tokenizer(code)
        for text in texts:
            languages.split_words_for(text.replace(" ", "\n"), label)
            assert languages.split_words_for(text, label) == theirs.word_tokenize(text), (label, text)


def _page_texts() -> list[str]:
    """The main text (resiliparse) of every real HTML page in ../shared/data."""
    import gzip

    from conftest import SHARED, WARC_DIR
    from resiliparse.extract.html2text import extract_plain_text

    from tamis.readers.warc import WarcReader
    from tamis.stats.counters import StepCounters

    pages = [html for path in sorted(WARC_DIR.glob("*.warc.gz"))
             for batch in WarcReader().iter_batches(str(path), StepCounters()) for html in batch["html"] if html]
    for folder in ("extraction/scrapinghub_aeb/html", "extraction/readability_testpages/html"):
        pages += [gzip.decompress(path.read_bytes()).decode("utf-8", "replace")
                  for path in sorted((SHARED / folder).glob("*.html.gz"))]
    assert len(pages) >= 500, f"only {len(pages)} pages found"
    return [text for text in (extract_plain_text(html, main_content=True) for html in pages) if text.strip()]


@pytest.mark.slow
def test_words_are_datatroves_on_every_real_page_and_memo_entries_are_each_chunks_own(monkeypatch):
    """Every real page's words are datatrove's (spaCy on the whole text). Then every distinct chunk of those
    pages is memoised in one batch, each beside a special case that could once reach across the space into
    it (`-)`, `o)`, `:-)`...): its memoised tokens must still be its own."""
    monkeypatch.setattr(words, "_CHUNK_TOKENS", {})
    theirs = load_word_tokenizer("en")
    texts = _page_texts()
    for index, text in enumerate(texts):
        assert words.split_words(text) == theirs.word_tokenize(text), index
    nlp = words.english_nlp()
    chunks = sorted({chunk for text in texts for chunk in text.split()})
    specials = sorted(key for key in nlp.tokenizer.rules if not key.isalpha() and key.split() == [key])
    batch = [piece for i, chunk in enumerate(chunks) for piece in (chunk, specials[i % len(specials)])]
    memo: dict[str, tuple[str, ...]] = {}
    words.memoise_chunk_tokens(nlp, memo, batch, shortcut=False)
    wrong = [chunk for chunk in chunks if memo[chunk] != tuple(t.text for t in nlp.tokenizer(chunk))]
    assert len(chunks) > 30_000 and not wrong, wrong[:20]


@pytest.mark.parametrize("code", ["en", "ru", "es"])
def test_two_chunks_spacy_splits_otherwise_than_alone_meet_at_a_crossing_edge(code):
    """`Crossings.crossing` is built from the tokenizer's rules, not found by trying: check it against spaCy on
    pairs of chunks made where matches across a space happen: a special case cut in two (`:` `-)`, `в` `т.ч.`),
    each half also as the end or start of another special case, alone or in a longer chunk (`Irvine):` `-)`).
    Wherever spaCy splits `A B` otherwise than A and B alone, the edge (A's last token, B's first) is in
    `crossing` and in `linking`; and such pairs exist (the check is not empty)."""
    nlp = words.english_nlp() if code == "en" else languages._spacy_blank(code)
    links = words.crossings(nlp.tokenizer)
    rules = sorted(nlp.tokenizer.rules)
    pairs = set()
    for special in rules:
        cuts = [(special[:i], special[i:]) for i in range(1, len(special)) if not special[i - 1:i + 1].isspace()]
        for left, right in (tuple(special.split(" ", 1)),) if " " in special else cuts:
            befores = [left, *[other for other in rules if other.endswith(left) and " " not in other][:3]]
            afters = [right, *[other for other in rules if other.startswith(right) and " " not in other][:3]]
            befores += ["Irvine" + before for before in befores]  # a chunk that holds a special case
            afters += [after + "s" for after in afters]
            pairs.update((before.strip(), after.strip()) for before in befores for after in afters)
    pairs = {(before, after) for before, after in pairs
             if before and after and len(f"{before} {after}".split()) == 2}
    memo: dict[str, tuple[str, ...]] = {}
    words.memoise_chunk_tokens(nlp, memo, sorted({chunk for pair in pairs for chunk in pair}))
    differ = 0
    for before, after in sorted(pairs):
        if words.spacy_words(nlp, f"{before} {after}") != [*memo[before], *memo[after]]:
            differ += 1
            edge = (memo[before][-1], memo[after][0])
            assert edge in links.crossing and edge in links.linking, (before, after)
    assert differ > 0, len(pairs)
