"""FineWeb's own quality filter (Penedo et al. 2024), as datatrove 0.10.1 computes it.

Catches list-like and boilerplate pages the Gopher and C4 rules miss: few lines ending in punctuation,
mostly short lines, duplicated lines, many newlines per word.
"""

from __future__ import annotations

import math
from itertools import repeat
from typing import Any, Literal

from tamis.batch import DocBatch
from tamis.filters.gopher_repetition import duplicates
from tamis.fineweb2.configs import LanguageConfig
from tamis.fineweb2.per_language import LanguageConfigured, language_words
from tamis.stats.histograms import feature_column
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


#: published per document as `feature.<name>` columns, for the run's kept/removed histograms
FEATURES = ("line_punct_ratio", "short_line_ratio", "char_dup_ratio", "new_line_ratio")


@register_step("fineweb_quality")
class FineWebQualityFilter(LanguageConfigured, Filter):
    """Drops list-like or repetitive documents. Ratios are over non-blank lines.

    With `language_config: fineweb2`, each document's `line_punct_thr` and `new_line_ratio` come from FineWeb-2's
    config for its language, the short-line check is off (`short_line_thr` 999), `char_duplicates_ratio` is 0.1
    (FineWeb-2's values), and words are split with its language's tokenizer.
    """

    FINEWEB2_FIXED = {"short_line_thr": 999, "char_duplicates_ratio": 0.1}

    def __init__(
        self,
        line_punct_thr: float = 0.12,
        line_punct_exclude_zero: bool = False,
        stop_chars: list[str] | None = None,
        short_line_thr: float = 0.67,
        short_line_length: int = 30,
        char_duplicates_ratio: float = 0.01,
        new_line_ratio: float = 0.3,
        language_config: Literal["fineweb2"] | None = None,
        config_dir: str | None = None,
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
            language_config: `fineweb2`: thresholds per document language from FineWeb-2's configs.
            config_dir: a folder of `<label>.yml` configs searched before the packaged ones.
        """
        self.line_punct_thr = line_punct_thr
        self.line_punct_exclude_zero = line_punct_exclude_zero
        self.stop_chars = stop_chars
        self.short_line_thr = short_line_thr
        self.short_line_length = short_line_length
        self.char_duplicates_ratio = char_duplicates_ratio
        self.new_line_ratio = new_line_ratio
        self.language_config = language_config
        self.config_dir = config_dir
        self._check_language_params()

    def _build_for_language(self, config: LanguageConfig) -> FineWebQualityFilter:
        return FineWebQualityFilter(
            line_punct_thr=config.line_punct_thr,
            line_punct_exclude_zero=self.line_punct_exclude_zero,
            stop_chars=self.stop_chars,
            short_line_thr=self.FINEWEB2_FIXED["short_line_thr"],
            short_line_length=self.short_line_length,
            char_duplicates_ratio=self.FINEWEB2_FIXED["char_duplicates_ratio"],
            new_line_ratio=config.new_line_ratio,
        )

    def setup(self) -> None:
        self._stop_chars = tuple(TERMINAL_PUNCTUATION if self.stop_chars is None else self.stop_chars)

    def measure(self, text: str, words: list[str]) -> tuple[float, float, float, float] | None:
        """(line_punct_ratio, short_line_ratio, char_dup_ratio, new_line_ratio), or None for a blank text."""
        if not hasattr(self, "_stop_chars"):
            self.setup()
        lines = list(filter(str.strip, text.split("\n")))
        if not lines:
            return None
        n_lines = len(lines)
        punct = sum(map(str.endswith, lines, repeat(self._stop_chars))) / n_lines
        short = sum(map(self.short_line_length.__ge__, map(len, lines))) / n_lines
        newlines = text.count("\n")
        dup = duplicates(lines)[1] / (len(text) - newlines)
        return punct, short, dup, newlines / len(words) if words else math.inf

    def decide(self, measured: tuple[float, float, float, float] | None) -> str | None:
        """The reason to drop a document with these measures, or None to keep it (checked in datatrove's order)."""
        if measured is None:
            return Reasons.EMPTY
        punct, short, dup, new_line = measured
        if punct < self.line_punct_thr and not (punct == 0 and self.line_punct_exclude_zero):
            return Reasons.LINE_PUNCT_RATIO
        if short > self.short_line_thr:
            return Reasons.SHORT_LINE_RATIO
        if dup > self.char_duplicates_ratio:
            return Reasons.CHAR_DUP_RATIO
        if new_line > self.new_line_ratio:
            return Reasons.LIST_RATIO
        return None

    def check(self, text: str, words: list[str]) -> str | None:
        """The reason to drop `text`, or None to keep it."""
        return self.decide(self.measure(text, words))

    def filter(self, text: str, metadata: dict[str, Any]) -> bool | tuple[bool, str]:
        reason = self.check(text, split_words(text))
        return True if reason is None else (False, reason)

    def filter_batch(self, batch: DocBatch) -> list[str | None]:
        if self.language_config is not None:
            _, steps = self._language_steps(batch)
            words = language_words(batch)
        else:
            steps = None
            words = batch.derived(WORDS, split_words)
        measured = [self.measure(text, doc_words) for text, doc_words in zip(batch["text"], words, strict=True)]
        for i, name in enumerate(FEATURES):
            batch.set_column(feature_column(name), [None if m is None or math.isinf(m[i]) else m[i] for m in measured])
        if steps is None:
            return [self.decide(m) for m in measured]
        return [step.decide(m) for step, m in zip(steps, measured, strict=True)]
