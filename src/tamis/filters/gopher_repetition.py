"""Gopher repetition filter (Rae et al. 2021, table A1), as datatrove 0.10.1 computes it.

Duplicate counts use set arithmetic (all elements minus distinct ones, in C) instead of a Python loop;
n-gram counts use `Counter` over `zip` of shifted word lists, also in C. For the duplicated 5..10-grams
datatrove's greedy scan (skip n words after each repeat) is replayed only over positions whose n-gram
occurs more than once, found by rolling hashes shared by the six n of a document and then checked exactly
(tamis.text.span_hashes), which gives the same total and builds few keys.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from tamis.batch import DocBatch
from tamis.fineweb2.configs import LanguageConfig
from tamis.fineweb2.per_language import LanguageConfigured, language_words, off_if_zero
from tamis.stats.histograms import feature_column
from tamis.steps.base import Filter
from tamis.steps.registry import register_step
from tamis.text import WORDS, split_words
from tamis.text.span_hashes import WordSpans, duplicated_n_gram_chars, top_n_gram_chars

_PARAGRAPH_BREAK = re.compile(r"\n{2,}")
_LINE_BREAK = re.compile(r"\n+")


class Reasons:
    EMPTY = "empty"
    DUP_PARA_FRAC = "dup_para_frac"
    DUP_PARA_CHAR_FRAC = "dup_para_char_frac"
    DUP_LINE_FRAC = "dup_line_frac"
    DUP_LINE_CHAR_FRAC = "dup_line_char_frac"

    @staticmethod
    def top_n_gram(n: int) -> str:
        return f"top_{n}_gram"

    @staticmethod
    def duplicated_n_grams(n: int) -> str:
        return f"duplicated_{n}_n_grams"

#: published per document as `feature.<name>` columns, for the run's kept/removed histograms
FEATURES = ("dup_para_frac", "dup_para_char_frac", "dup_line_frac", "dup_line_char_frac", "top_2_gram_frac",
            "dup_5_gram_frac")


def duplicates(items: list[str]) -> tuple[int, int]:
    """(number of repeated elements, characters in them), every occurrence after the first counted."""
    distinct = set(items)
    return len(items) - len(distinct), sum(map(len, items)) - sum(map(len, distinct))


@register_step("gopher_repetition")
class GopherRepetitionFilter(LanguageConfigured, Filter):
    """Drops documents dominated by repeated paragraphs, lines or word n-grams. None disables a check.

    With `language_config: fineweb2`, each document's `dup_line_frac`, `top_n_grams` and `dup_n_grams` come from
    FineWeb-2's config for its language, the paragraph and line-character checks are off (FineWeb-2's values),
    and words are split with its language's tokenizer.
    """

    FINEWEB2_FIXED = {"dup_para_frac": None, "dup_line_char_frac": None, "dup_para_char_frac": None}

    def __init__(
        self,
        dup_line_frac: float | None = 0.3,
        dup_para_frac: float | None = 0.3,
        dup_line_char_frac: float | None = 0.2,
        dup_para_char_frac: float | None = 0.2,
        top_n_grams: tuple[tuple[int, float], ...] = ((2, 0.2), (3, 0.18), (4, 0.16)),
        dup_n_grams: tuple[tuple[int, float], ...] = (
            (5, 0.15),
            (6, 0.14),
            (7, 0.13),
            (8, 0.12),
            (9, 0.11),
            (10, 0.10),
        ),
        language_config: Literal["fineweb2"] | None = None,
        config_dir: str | None = None,
    ):
        """
        Args:
            dup_line_frac: max fraction of lines that repeat an earlier line.
            dup_para_frac: max fraction of paragraphs (split on blank lines) that repeat an earlier one.
            dup_line_char_frac: max fraction of characters in repeated lines.
            dup_para_char_frac: max fraction of characters in repeated paragraphs.
            top_n_grams: (n, max fraction of characters covered by the most frequent n-gram).
            dup_n_grams: (n, max fraction of characters in repeated n-grams).
            language_config: `fineweb2`: thresholds per document language from FineWeb-2's configs.
            config_dir: a folder of `<label>.yml` configs searched before the packaged ones.
        """
        self.dup_line_frac = dup_line_frac
        self.dup_para_frac = dup_para_frac
        self.dup_line_char_frac = dup_line_char_frac
        self.dup_para_char_frac = dup_para_char_frac
        self.top_n_grams = top_n_grams
        self.dup_n_grams = dup_n_grams
        self.language_config = language_config
        self.config_dir = config_dir
        self._check_language_params()

    def _build_for_language(self, config: LanguageConfig) -> GopherRepetitionFilter:
        return GopherRepetitionFilter(
            dup_line_frac=off_if_zero(config.dup_line_frac),
            dup_para_frac=None,
            dup_line_char_frac=None,
            dup_para_char_frac=None,
            top_n_grams=config.top_n_grams,
            dup_n_grams=config.dup_n_grams,
        )

    def measure(self, text: str, words: list[str], spans: WordSpans | None = None) -> dict[str, float | None]:
        """The quantities FEATURES names, for any text (None where undefined)."""
        if not text:
            return dict.fromkeys(FEATURES)
        n_chars = len(text)
        paragraphs = _PARAGRAPH_BREAK.split(text.strip())
        para_dup, para_dup_chars = duplicates(paragraphs)
        lines = _LINE_BREAK.split(text)
        line_dup, line_dup_chars = duplicates(lines)
        return {
            "dup_para_frac": para_dup / len(paragraphs),
            "dup_para_char_frac": para_dup_chars / n_chars,
            "dup_line_frac": line_dup / len(lines),
            "dup_line_char_frac": line_dup_chars / n_chars,
            "top_2_gram_frac": top_n_gram_chars(words, 2, spans) / n_chars if len(words) >= 2 else None,
            "dup_5_gram_frac": duplicated_n_gram_chars(words, 5, spans) / n_chars if len(words) > 5 else None,
        }

    def decide(self, text: str, words: list[str], measured: dict[str, float | None],
               spans: WordSpans | None = None) -> str | None:
        """The reason to drop `text`, or None to keep it; n-gram fractions not in `measured` are computed here."""
        if not text:
            return Reasons.EMPTY
        n_chars = len(text)
        if self.dup_para_frac is not None and measured["dup_para_frac"] > self.dup_para_frac:
            return Reasons.DUP_PARA_FRAC
        if self.dup_para_char_frac is not None and measured["dup_para_char_frac"] > self.dup_para_char_frac:
            return Reasons.DUP_PARA_CHAR_FRAC
        if self.dup_line_frac is not None and measured["dup_line_frac"] > self.dup_line_frac:
            return Reasons.DUP_LINE_FRAC
        if self.dup_line_char_frac is not None and measured["dup_line_char_frac"] > self.dup_line_char_frac:
            return Reasons.DUP_LINE_CHAR_FRAC
        for n, max_frac in self.top_n_grams:
            if len(words) >= n:
                frac = measured.get(f"top_{n}_gram_frac")
                if frac is None:
                    frac = top_n_gram_chars(words, n, spans) / n_chars
                if frac > max_frac:
                    return Reasons.top_n_gram(n)
        for n, max_frac in self.dup_n_grams:
            if len(words) > n:
                frac = measured.get(f"dup_{n}_gram_frac")
                if frac is None:
                    frac = duplicated_n_gram_chars(words, n, spans) / n_chars
                if frac > max_frac:
                    return Reasons.duplicated_n_grams(n)
        return None

    def check(self, text: str, words: list[str]) -> str | None:
        """The reason to drop `text`, or None to keep it."""
        return self.measure_and_decide(text, words)[1]

    def measure_and_decide(self, text: str, words: list[str],
                           step: GopherRepetitionFilter | None = None) -> tuple[dict[str, float | None], str | None]:
        """FEATURES of `text` and `step`'s (default this filter's) reason to drop it, sharing one document's
        span hashes between the duplicated n-gram checks (made here and dropped after, to bound memory)."""
        spans = WordSpans(words) if len(words) > 5 else None
        measured = self.measure(text, words, spans)
        return measured, (step or self).decide(text, words, measured, spans)

    def filter(self, text: str, metadata: dict[str, Any]) -> bool | tuple[bool, str]:
        reason = self.check(text, split_words(text))
        return True if reason is None else (False, reason)

    def filter_batch(self, batch: DocBatch) -> list[str | None]:
        if self.language_config is not None:
            return self._filter_batch_per_language(batch)
        words = batch.derived(WORDS, split_words)
        return _publish(batch, [self.measure_and_decide(text, doc_words)
                                for text, doc_words in zip(batch["text"], words, strict=True)])

    def _filter_batch_per_language(self, batch: DocBatch) -> list[str | None]:
        _, steps = self._language_steps(batch)
        words = language_words(batch)
        return _publish(batch, [self.measure_and_decide(text, doc_words, step)
                                for step, text, doc_words in zip(steps, batch["text"], words, strict=True)])


def _publish(batch: DocBatch, results: list[tuple[dict[str, float | None], str | None]]) -> list[str | None]:
    """Set each FEATURES column of `batch` from the measured values; the reasons to drop, in batch order."""
    for name in FEATURES:
        batch.set_column(feature_column(name), [measured[name] for measured, _ in results])
    return [reason for _, reason in results]
