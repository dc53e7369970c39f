"""C4 quality filter (Raffel et al. 2020), as datatrove 0.10.1 applies it: filters lines, rewrites text.

Lines are dropped for a very long word, too few words, "javascript" or a cookie/terms phrase; a document
is dropped on "lorem ipsum", on a curly bracket, or when fewer than `min_num_sentences` sentences remain.
Sentences are counted with spaCy's sentencizer rule over the shared word split, and only until the
minimum is reached (more sentences cannot change the decision).
"""

from __future__ import annotations

import re
from typing import Any

from tamis.batch import DocBatch
from tamis.stats.histograms import feature_column
from tamis.steps.base import Filter
from tamis.steps.registry import register_step
from tamis.text import LINES, count_sentences

CITATION = re.compile(r"\[\d*]|\[edit]|\[citation needed]")
END_PUNCTUATION = (".", "?", "!", '"', "'")
ELLIPSIS = "..."
POLICY_PHRASES = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies")
#: published per document as `feature.<name>` columns, for the run's kept/removed histograms; sentences are
#: counted only up to `min_num_sentences` (more cannot change the decision)
FEATURES = ("kept_lines_ratio", "sentences")


class Reasons:
    LOREM_IPSUM = "lorem_ipsum"
    CURLY_BRACKET = "curly_bracket"
    TOO_FEW_SENTENCES = "too_few_sentences"


@register_step("c4_quality")
class C4QualityFilter(Filter):
    """Keeps prose lines and drops boilerplate documents; kept documents get the filtered text.

    FineWeb runs it with `filter_no_terminal_punct=False` (lines need not end in punctuation).
    """

    def __init__(
        self,
        remove_citations: bool = True,
        filter_no_terminal_punct: bool = False,
        min_num_sentences: int | None = 5,
        min_words_per_line: int | None = 3,
        max_word_length: int | None = 1000,
        filter_lorem_ipsum: bool = True,
        filter_javascript: bool = True,
        filter_curly_bracket: bool = True,
        filter_policy: bool = True,
    ):
        """
        Args:
            remove_citations: remove `[1]`, `[edit]`, `[citation needed]` from lines.
            filter_no_terminal_punct: drop lines not ending in . ? ! " ' (or ending in "...").
            min_num_sentences: drop documents with fewer sentences left; None disables.
            min_words_per_line: drop lines with fewer whitespace-separated words; None disables.
            max_word_length: drop lines with a longer word; None disables.
            filter_lorem_ipsum: drop documents containing "lorem ipsum".
            filter_javascript: drop lines mentioning "javascript".
            filter_curly_bracket: drop documents containing "{".
            filter_policy: drop lines with a cookie/terms/privacy phrase.
        """
        self.remove_citations = remove_citations
        self.filter_no_terminal_punct = filter_no_terminal_punct
        self.min_num_sentences = min_num_sentences
        self.min_words_per_line = min_words_per_line
        self.max_word_length = max_word_length
        self.filter_lorem_ipsum = filter_lorem_ipsum
        self.filter_javascript = filter_javascript
        self.filter_curly_bracket = filter_curly_bracket
        self.filter_policy = filter_policy

    def rewrite(self, lines: list[str]) -> tuple[str | None, str]:
        """(reason to drop or None, the kept lines joined by newlines)."""
        reason, text, _ = self.rewrite_measured(lines)
        return reason, text

    def rewrite_measured(self, lines: list[str]) -> tuple[str | None, str, tuple[float | None, int | None]]:
        """`rewrite`, plus (kept_lines_ratio, sentences); both None when a document-level rule fired."""
        min_sentences = self.min_num_sentences
        max_word = self.max_word_length
        min_words = self.min_words_per_line
        sentences = 0
        kept: list[str] = []
        for line in lines:
            line = line.strip()
            words = line.split()
            if max_word is not None and len(line) > max_word and max(map(len, words)) > max_word:
                continue
            if self.remove_citations and "[" in line:
                line = CITATION.sub("", line)
            if self.filter_no_terminal_punct and (not line.endswith(END_PUNCTUATION) or line.endswith(ELLIPSIS)):
                continue
            if min_words is not None and len(words) < min_words:
                continue
            lower = line.lower()
            if self.filter_lorem_ipsum and "lorem ipsum" in lower:
                return Reasons.LOREM_IPSUM, "", (None, None)
            if self.filter_javascript and "javascript" in lower:
                continue
            if self.filter_curly_bracket and "{" in line:
                return Reasons.CURLY_BRACKET, "", (None, None)
            if self.filter_policy and any(phrase in lower for phrase in POLICY_PHRASES):
                continue
            if min_sentences is not None and sentences < min_sentences:
                sentences += count_sentences(line)
            kept.append(line)
        measured = (len(kept) / len(lines) if lines else None, sentences)
        if min_sentences is not None and sentences < min_sentences:
            return Reasons.TOO_FEW_SENTENCES, "", measured
        return None, "\n".join(kept).strip(), measured

    def filter(self, text: str, metadata: dict[str, Any]) -> bool | tuple[bool, str]:
        """Decision only; `filter_batch` also rewrites the text of kept documents."""
        reason, _ = self.rewrite(text.splitlines())
        return True if reason is None else (False, reason)

    def filter_batch(self, batch: DocBatch) -> list[str | None]:
        reasons: list[str | None] = []
        texts: list[str] = []
        measured: list[tuple[float | None, int | None]] = []
        for text, lines in zip(batch["text"], batch.derived(LINES, str.splitlines), strict=True):
            reason, rewritten, measures = self.rewrite_measured(lines)
            reasons.append(reason)
            measured.append(measures)
            texts.append(text if reason is not None else rewritten)
        batch.set_column("text", texts)
        for i, name in enumerate(FEATURES):
            batch.set_column(feature_column(name), [m[i] for m in measured])
        return reasons
