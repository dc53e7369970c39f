"""Gopher quality filter (Rae et al. 2021), as datatrove 0.10.1 computes it.

Per-word properties (symbols only? contains a letter?) are memoised per distinct word for the worker's
lifetime, so a document costs a few C-level passes (`map`, `compress`, `sum`) over its words instead of
a Python loop with a character loop inside.
"""

from __future__ import annotations

from itertools import compress
from typing import Any, Literal

from tamis.batch import DocBatch
from tamis.fineweb2.configs import LanguageConfig
from tamis.fineweb2.per_language import LanguageConfigured, language_words, off_if_zero
from tamis.stats.histograms import feature_column
from tamis.steps.base import Filter
from tamis.steps.registry import register_step
from tamis.text import LINES, WORDS, split_words
from tamis.text.punctuation import PUNCTUATION_CHARS

#: FineWeb-2's min_stop_words for every language
FINEWEB2_MIN_STOP_WORDS = 2
STOP_WORDS = ("the", "be", "to", "of", "and", "that", "have", "with")
_BULLETS = ("•", "-")
_ELLIPSES = ("...", "…")

#: published per document as `feature.<name>` columns (the order of `measure`), for the kept/removed histograms
FEATURES = ("doc_words", "mean_word_length", "symbol_word_ratio", "ellipsis_word_ratio", "bullet_lines_ratio",
            "ellipsis_lines_ratio", "alpha_words_ratio", "stop_words")

_MAX_MEMO_WORDS = 2_000_000
_SYMBOLS_ONLY: dict[str, bool] = {}
_HAS_LETTER: dict[str, bool] = {}


def _memoise(words: list[str]) -> None:
    """Record the properties of words not seen before in this process."""
    unseen = set(words).difference(_SYMBOLS_ONLY)
    if not unseen:
        return
    if len(_SYMBOLS_ONLY) > _MAX_MEMO_WORDS:
        _SYMBOLS_ONLY.clear()
        _HAS_LETTER.clear()
        unseen = set(words)
    for word in unseen:
        _SYMBOLS_ONLY[word] = not word.strip(PUNCTUATION_CHARS)
        _HAS_LETTER[word] = any(ch.isalpha() for ch in word)


class Reasons:
    SHORT_DOC = "gopher_short_doc"
    LONG_DOC = "gopher_long_doc"
    BELOW_AVG_WORD_LENGTH = "gopher_below_avg_threshold"
    ABOVE_AVG_WORD_LENGTH = "gopher_above_avg_threshold"
    TOO_MANY_HASHES = "gopher_too_many_hashes"
    TOO_MANY_ELLIPSIS = "gopher_too_many_ellipsis"
    TOO_MANY_BULLETS = "gopher_too_many_bullets"
    TOO_MANY_END_ELLIPSIS = "gopher_too_many_end_ellipsis"
    BELOW_ALPHA = "gopher_below_alpha_threshold"
    FEW_STOP_WORDS = "gopher_enough_stop_words"


@register_step("gopher_quality")
class GopherQualityFilter(LanguageConfigured, Filter):
    """Drops documents whose length, word shapes or line shapes are unlike prose. None disables a check.

    Word counts and mean length are over words with at least one non-punctuation character; the symbol
    and alphabetic ratios are over all words (datatrove's definitions).

    With `language_config: fineweb2`, each document's word-length bounds, alphabetic-word ratio and stop words
    come from FineWeb-2's config for its language, `min_stop_words` is 2 (FineWeb-2's value; the check is off
    for a language without a config, which has no stop words), and words are split with its language's tokenizer.
    """

    FINEWEB2_FIXED = {"min_stop_words": FINEWEB2_MIN_STOP_WORDS}

    def __init__(
        self,
        min_doc_words: int | None = 50,
        max_doc_words: int | None = 100_000,
        min_avg_word_length: float | None = 3,
        max_avg_word_length: float | None = 10,
        max_symbol_word_ratio: float | None = 0.1,
        max_bullet_lines_ratio: float | None = 0.9,
        max_ellipsis_lines_ratio: float | None = 0.3,
        min_alpha_words_ratio: float | None = 0.8,
        min_stop_words: int | None = 2,
        stop_words: list[str] | None = None,
        language_config: Literal["fineweb2"] | None = None,
        config_dir: str | None = None,
    ):
        """
        Args:
            min_doc_words, max_doc_words: bounds on the number of non-symbol words.
            min_avg_word_length, max_avg_word_length: bounds on their mean length in characters.
            max_symbol_word_ratio: max `#` per word, and max ellipses per word.
            max_bullet_lines_ratio: max fraction of lines starting with `•` or `-`.
            max_ellipsis_lines_ratio: max fraction of lines ending with `...` or `…`.
            min_alpha_words_ratio: min fraction of words with a letter (datatrove calls it
                max_non_alpha_words_ratio).
            min_stop_words: min number of distinct stop words present.
            stop_words: default the/be/to/of/and/that/have/with.
            language_config: `fineweb2`: thresholds per document language from FineWeb-2's configs.
            config_dir: a folder of `<label>.yml` configs searched before the packaged ones.
        """
        self.min_doc_words = min_doc_words
        self.max_doc_words = max_doc_words
        self.min_avg_word_length = min_avg_word_length
        self.max_avg_word_length = max_avg_word_length
        self.max_symbol_word_ratio = max_symbol_word_ratio
        self.max_bullet_lines_ratio = max_bullet_lines_ratio
        self.max_ellipsis_lines_ratio = max_ellipsis_lines_ratio
        self.min_alpha_words_ratio = min_alpha_words_ratio
        self.min_stop_words = min_stop_words
        self.stop_words = stop_words
        self.language_config = language_config
        self.config_dir = config_dir
        self._check_language_params()
        if language_config is not None and stop_words is not None:
            raise ValueError("stop_words: set per language by language_config: fineweb2; leave it out")

    def _build_for_language(self, config: LanguageConfig) -> GopherQualityFilter:
        return GopherQualityFilter(
            min_doc_words=self.min_doc_words,
            max_doc_words=self.max_doc_words,
            min_avg_word_length=off_if_zero(config.min_avg_word_length),
            max_avg_word_length=off_if_zero(config.max_avg_word_length),
            max_symbol_word_ratio=self.max_symbol_word_ratio,
            max_bullet_lines_ratio=self.max_bullet_lines_ratio,
            max_ellipsis_lines_ratio=self.max_ellipsis_lines_ratio,
            min_alpha_words_ratio=off_if_zero(config.max_non_alpha_words_ratio),
            min_stop_words=None if config.is_default and not config.stopwords else FINEWEB2_MIN_STOP_WORDS,
            stop_words=list(config.stopwords),
        )

    def setup(self) -> None:
        self._stop_words = frozenset(STOP_WORDS if self.stop_words is None else self.stop_words)

    def measure(self, text: str, words: list[str], lines: list[str]) -> tuple:
        """Every quantity the checks compare, in FEATURES order; None where undefined (no words, no lines)."""
        if not hasattr(self, "_stop_words"):
            self.setup()
        _memoise(words)
        n_words = len(words)
        symbols_only = list(map(_SYMBOLS_ONLY.__getitem__, words))
        n_content_words = n_words - sum(symbols_only)
        mean_length = None
        if n_content_words:
            content_chars = sum(map(len, words)) - sum(map(len, compress(words, symbols_only)))
            mean_length = content_chars / n_content_words
        hashes = ellipses = alpha = None
        if n_words:
            hashes = text.count("#") / n_words
            ellipses = (text.count("...") + text.count("…")) / n_words
            alpha = sum(map(_HAS_LETTER.__getitem__, words)) / n_words
        bullet_lines = ellipsis_lines = None
        if lines:
            bullet_lines = sum(line.lstrip().startswith(_BULLETS) for line in lines) / len(lines)
            ellipsis_lines = sum(line.rstrip().endswith(_ELLIPSES) for line in lines) / len(lines)
        stop_words = len(self._stop_words.intersection(words))
        return n_content_words, mean_length, hashes, ellipses, bullet_lines, ellipsis_lines, alpha, stop_words

    def decide(self, measured: tuple) -> str | None:
        """The reason to drop a document with these measures, or None to keep it (checked in datatrove's order)."""
        n_content_words, mean_length, hashes, ellipses, bullet_lines, ellipsis_lines, alpha, stop_words = measured
        if self.min_doc_words is not None and n_content_words < self.min_doc_words:
            return Reasons.SHORT_DOC
        if self.max_doc_words is not None and n_content_words > self.max_doc_words:
            return Reasons.LONG_DOC
        if mean_length is not None:
            if self.min_avg_word_length is not None and mean_length < self.min_avg_word_length:
                return Reasons.BELOW_AVG_WORD_LENGTH
            if self.max_avg_word_length is not None and mean_length > self.max_avg_word_length:
                return Reasons.ABOVE_AVG_WORD_LENGTH
        if hashes is not None and self.max_symbol_word_ratio is not None:
            if hashes > self.max_symbol_word_ratio:
                return Reasons.TOO_MANY_HASHES
            if ellipses > self.max_symbol_word_ratio:
                return Reasons.TOO_MANY_ELLIPSIS
        if bullet_lines is not None:
            if self.max_bullet_lines_ratio is not None and bullet_lines > self.max_bullet_lines_ratio:
                return Reasons.TOO_MANY_BULLETS
            if self.max_ellipsis_lines_ratio is not None and ellipsis_lines > self.max_ellipsis_lines_ratio:
                return Reasons.TOO_MANY_END_ELLIPSIS
        if alpha is not None and self.min_alpha_words_ratio is not None and alpha < self.min_alpha_words_ratio:
            return Reasons.BELOW_ALPHA
        if self.min_stop_words is not None and stop_words < self.min_stop_words:
            return Reasons.FEW_STOP_WORDS
        return None

    def check(self, text: str, words: list[str], lines: list[str]) -> str | None:
        """The reason to drop `text`, or None to keep it."""
        return self.decide(self.measure(text, words, lines))

    def filter(self, text: str, metadata: dict[str, Any]) -> bool | tuple[bool, str]:
        reason = self.check(text, split_words(text), text.splitlines())
        return True if reason is None else (False, reason)

    def filter_batch(self, batch: DocBatch) -> list[str | None]:
        if self.language_config is not None:
            return self._filter_batch_per_language(batch)
        words = batch.derived(WORDS, split_words)
        lines = batch.derived(LINES, str.splitlines)
        measured = [self.measure(*doc) for doc in zip(batch["text"], words, lines, strict=True)]
        for i, name in enumerate(FEATURES):
            batch.set_column(feature_column(name), [m[i] for m in measured])
        return [self.decide(m) for m in measured]

    def _filter_batch_per_language(self, batch: DocBatch) -> list[str | None]:
        """As filter_batch, each document measured and decided by its language's configured copy (stop words
        differ per language, so the measure is the copy's too)."""
        _, steps = self._language_steps(batch)
        words = language_words(batch)
        lines = batch.derived(LINES, str.splitlines)
        measured = [step.measure(*doc) for step, *doc in zip(steps, batch["text"], words, lines, strict=True)]
        for i, name in enumerate(FEATURES):
            batch.set_column(feature_column(name), [m[i] for m in measured])
        return [step.decide(m) for step, m in zip(steps, measured, strict=True)]
