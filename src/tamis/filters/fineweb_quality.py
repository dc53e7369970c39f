"""FineWeb's own quality filter (Penedo et al. 2024), as datatrove 0.10.1 computes it.

Catches list-like and boilerplate pages the Gopher and C4 rules miss: few lines ending in punctuation,
mostly short lines, duplicated lines, many newlines per word.
"""

from __future__ import annotations

from itertools import repeat
from typing import Any

from tamis.batch import DocBatch
from tamis.filters.gopher_repetition import duplicates
from tamis.steps.base import Filter
from tamis.steps.registry import register_step
from tamis.text import WORDS, split_words
from tamis.text.punctuation import TERMINAL_PUNCTUATION


class Reasons:
    EMPTY = "empty"
    LINE_PUNCT_RATIO = "line_punct_ratio"
    SHORT_LINE_RATIO = "short_line_ratio"
    CHAR_DUP_RATIO = "char_dup_ratio"
    LIST_RATIO = "list_ratio"


@register_step("fineweb_quality")
class FineWebQualityFilter(Filter):
    """Drops list-like or repetitive documents. Ratios are over non-blank lines."""

    def __init__(
        self,
        line_punct_thr: float = 0.12,
        line_punct_exclude_zero: bool = False,
        stop_chars: list[str] | None = None,
        short_line_thr: float = 0.67,
        short_line_length: int = 30,
        char_duplicates_ratio: float = 0.01,
        new_line_ratio: float = 0.3,
    ):
        """
        Args:
            line_punct_thr: min fraction of lines ending in one of `stop_chars`.
            line_punct_exclude_zero: keep documents where no line ends in punctuation.
            stop_chars: line-final characters that count as punctuation; default datatrove's Unicode
                sentence terminals.
            short_line_thr: max fraction of lines of at most `short_line_length` characters.
            short_line_length: see above.
            char_duplicates_ratio: max fraction of (non-newline) characters in repeated lines.
            new_line_ratio: max newlines per word.
        """
        self.line_punct_thr = line_punct_thr
        self.line_punct_exclude_zero = line_punct_exclude_zero
        self.stop_chars = stop_chars
        self.short_line_thr = short_line_thr
        self.short_line_length = short_line_length
        self.char_duplicates_ratio = char_duplicates_ratio
        self.new_line_ratio = new_line_ratio

    def setup(self) -> None:
        self._stop_chars = tuple(TERMINAL_PUNCTUATION if self.stop_chars is None else self.stop_chars)

    def check(self, text: str, words: list[str]) -> str | None:
        """The reason to drop `text`, or None to keep it."""
        if not hasattr(self, "_stop_chars"):
            self.setup()
        lines = list(filter(str.strip, text.split("\n")))
        if not lines:
            return Reasons.EMPTY
        n_lines = len(lines)
        ratio = sum(map(str.endswith, lines, repeat(self._stop_chars))) / n_lines
        if ratio < self.line_punct_thr and not (ratio == 0 and self.line_punct_exclude_zero):
            return Reasons.LINE_PUNCT_RATIO
        if sum(map(self.short_line_length.__ge__, map(len, lines))) / n_lines > self.short_line_thr:
            return Reasons.SHORT_LINE_RATIO
        newlines = text.count("\n")
        if duplicates(lines)[1] / (len(text) - newlines) > self.char_duplicates_ratio:
            return Reasons.CHAR_DUP_RATIO
        if newlines / len(words) > self.new_line_ratio:
            return Reasons.LIST_RATIO
        return None

    def filter(self, text: str, metadata: dict[str, Any]) -> bool | tuple[bool, str]:
        reason = self.check(text, split_words(text))
        return True if reason is None else (False, reason)

    def filter_batch(self, batch: DocBatch) -> list[str | None]:
        words = batch.derived(WORDS, split_words)
        return [self.check(text, doc_words) for text, doc_words in zip(batch["text"], words, strict=True)]
