"""Keyword and regular-expression filters: one vectorised over Arrow, one as a plain function."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from tamis.steps import Filter, register_filter, register_step


@register_step("keyword_filter")
class KeywordFilter(Filter):
    """Drops documents whose text matches any of `patterns` (RE2 regular expressions, via Arrow).

    Vectorised: one Arrow kernel call per batch instead of a Python loop per document.
    """

    def __init__(self, patterns: list[str], ignore_case: bool = True, reason: str = "matched_keyword"):
        """
        Args:
            patterns: regular expressions (RE2 syntax) or plain words; any match drops the document.
            ignore_case: match case-insensitively.
            reason: the reason recorded for dropped documents.
        """
        self.patterns = patterns
        self.ignore_case = ignore_case
        self.reason = reason

    def setup(self) -> None:
        if not self.patterns:
            raise ValueError("keyword_filter: patterns must not be empty")
        self._pattern = "|".join(f"(?:{p})" for p in self.patterns)

    def filter_table(self, table: pa.Table) -> pa.Array:
        if not hasattr(self, "_pattern"):
            self.setup()
        matched = pc.match_substring_regex(table["text"], self._pattern, ignore_case=self.ignore_case)
        return pc.if_else(matched, pa.scalar(self.reason), pa.scalar(None, pa.string()))


@register_filter("min_words", reason="too_few_words")
def min_words(text: str, metadata: dict[str, Any], minimum: int = 50) -> bool:
    """Drops documents with fewer than `minimum` whitespace-separated words."""
    return len(text.split()) >= minimum
