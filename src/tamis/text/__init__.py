"""Text features shared by filters: computed once per document through `DocBatch.derived`.

Each key names one way of splitting the text; filters that need the same split ask for the same key, so
a document is split once however many filters look at it (until a step rewrites the text).
"""

from tamis.text.words import count_sentences, split_words

#: spaCy blank-English words (datatrove's `split_into_words`)
WORDS = "words"
#: `str.splitlines()` (Gopher quality, C4)
LINES = "lines"

__all__ = ["LINES", "WORDS", "count_sentences", "split_words"]
