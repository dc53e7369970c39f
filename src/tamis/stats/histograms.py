"""Distributions with declared, fixed bins, so that merging tasks is an exact sum of counts.

Fixed edges (rather than quantile sketches) make the stats of a relaunched run identical to a clean run's:
each committed task contributes the same integer counts whatever order tasks finish in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np


def _log_edges(top: float, per_decade: int = 8) -> tuple[float, ...]:
    exponents = np.arange(0, np.log10(top) + 1e-9, 1 / per_decade)
    return tuple(float(round(v, 6)) for v in np.unique(np.round(10**exponents)))


def _linear_edges(low: float, high: float, step: float) -> tuple[float, ...]:
    return tuple(float(round(v, 6)) for v in np.arange(low, high + step / 2, step))


#: Filters publish per-document features as batch columns named FEATURE_PREFIX + metric; the engine histograms
#: them for kept and removed documents, then drops the columns.
FEATURE_PREFIX = "feature."


def feature_column(metric: str) -> str:
    return FEATURE_PREFIX + metric


_RATIO = _linear_edges(0.0, 1.0, 0.02)
# thresholds at 0.01 (FineWeb's char_dup_ratio) need finer bins near zero
_SMALL_RATIO = tuple(sorted({*_linear_edges(0.0, 0.05, 0.0025), *_linear_edges(0.05, 0.2, 0.01), *_RATIO}))

#: Declared metrics: name -> (bin edges, description). A value v falls in bin i when edges[i-1] <= v < edges[i];
#: bin 0 holds values below edges[0] and the last bin values >= edges[-1].
METRICS: dict[str, tuple[tuple[float, ...], str]] = {
    "text_chars": (_log_edges(1e7), "characters of text"),
    "words": (_log_edges(1e6), "whitespace-separated words"),
    "tokens": (_log_edges(1e7), "GPT-2 tokens"),
    "language_score": (_RATIO, "fastText score of the best language"),
    # gopher_quality
    "doc_words": (_log_edges(1e6), "words with a non-punctuation character"),
    "mean_word_length": (_linear_edges(0.0, 20.0, 0.5), "mean length of those words"),
    "symbol_word_ratio": (_RATIO, "'#' per word"),
    "ellipsis_word_ratio": (_RATIO, "ellipses per word"),
    "bullet_lines_ratio": (_RATIO, "fraction of lines starting with a bullet"),
    "ellipsis_lines_ratio": (_RATIO, "fraction of lines ending with an ellipsis"),
    "alpha_words_ratio": (_RATIO, "fraction of words with a letter"),
    "stop_words": (_linear_edges(0.0, 10.0, 1.0), "distinct stop words present"),
    # gopher_repetition
    "dup_para_frac": (_RATIO, "fraction of paragraphs repeating an earlier one"),
    "dup_para_char_frac": (_RATIO, "fraction of characters in repeated paragraphs"),
    "dup_line_frac": (_RATIO, "fraction of lines repeating an earlier one"),
    "dup_line_char_frac": (_RATIO, "fraction of characters in repeated lines"),
    "top_2_gram_frac": (_RATIO, "characters covered by the most frequent 2-gram"),
    "dup_5_gram_frac": (_RATIO, "characters in repeated 5-grams"),
    # c4_quality
    "kept_lines_ratio": (_RATIO, "fraction of lines C4 keeps"),
    "sentences": (_linear_edges(0.0, 10.0, 1.0), "sentences kept, counted up to the minimum"),
    # fineweb_quality
    "line_punct_ratio": (_RATIO, "fraction of lines ending in punctuation"),
    "short_line_ratio": (_RATIO, "fraction of short lines"),
    "char_dup_ratio": (_SMALL_RATIO, "fraction of characters in duplicated lines"),
    "new_line_ratio": (_linear_edges(0.0, 2.0, 0.05), "newlines per word"),
}
DEFAULT_RATIO_EDGES = _RATIO


def describe(metric: str) -> str:
    declared = METRICS.get(metric)
    return declared[1] if declared else metric


def edges_for(metric: str) -> tuple[float, ...]:
    """Declared edges; a filter feature not declared here is taken to be a ratio in [0, 1]."""
    declared = METRICS.get(metric)
    return declared[0] if declared else DEFAULT_RATIO_EDGES


#: every finite double is an integer multiple of 2**-1074: scaled by 2**1074, sums of doubles are exact integers
_EXACT_SCALE = 1 << 1074


def _exact(value: float) -> int:
    numerator, denominator = float(value).as_integer_ratio()
    return numerator * (_EXACT_SCALE // denominator)


@dataclass
class Histogram:
    """Counts per bin, and the sum of the values; merged totals are exact sums of the tasks' totals, so that
    they are the same whatever order (or grouping: by index segment, by resume) tasks are merged in."""

    edges: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    exact: int | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * (len(self.edges) + 1)

    def add(self, values: Any) -> None:
        array = np.asarray(values, dtype=np.float64)
        array = array[~np.isnan(array)]
        if not array.size:
            return
        bins = np.searchsorted(np.asarray(self.edges), array, side="right")
        for index, count in zip(*np.unique(bins, return_counts=True), strict=True):
            self.counts[int(index)] += int(count)
        added = float(array.sum())
        self.total += added
        if self.exact is not None:
            self.exact = self.exact + _exact(added) if math.isfinite(added) else None

    @property
    def n(self) -> int:
        return sum(self.counts)

    def merge(self, other: Histogram) -> None:
        if tuple(other.edges) != tuple(self.edges):
            raise ValueError("cannot merge histograms with different bins")
        self.counts = [a + b for a, b in zip(self.counts, other.counts, strict=True)]
        if not (math.isfinite(self.total) and math.isfinite(other.total)):
            self.total, self.exact = self.total + other.total, None
            return
        self.exact = self.exact_total() + other.exact_total()
        self.total = self.exact / _EXACT_SCALE  # int / int: correctly rounded

    def exact_total(self) -> int:
        return self.exact if self.exact is not None else _exact(self.total)

    def to_dict(self, exact: bool = False) -> dict[str, Any]:
        data = {"edges": list(self.edges), "counts": self.counts, "total": self.total}
        if exact and math.isfinite(self.total):
            data["exact"] = hex(self.exact_total())
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Histogram:
        exact = int(data["exact"], 16) if "exact" in data else None
        return cls(tuple(data["edges"]), list(data["counts"]), float(data.get("total", 0.0)), exact)


@dataclass
class HistogramSet:
    """Histograms keyed "<scope>/<outcome>/<metric>", e.g. "gopher_quality/removed/text_chars"."""

    histograms: dict[str, Histogram] = field(default_factory=dict)

    def add(self, scope: str, outcome: str, metric: str, values: Any) -> None:
        key = f"{scope}/{outcome}/{metric}"
        histogram = self.histograms.get(key)
        if histogram is None:
            histogram = self.histograms[key] = Histogram(edges_for(metric))
        histogram.add(values)

    def merge(self, other: HistogramSet) -> None:
        for key, histogram in other.histograms.items():
            if key in self.histograms:
                self.histograms[key].merge(histogram)
            else:
                self.histograms[key] = Histogram(histogram.edges, list(histogram.counts), histogram.total,
                                                 histogram.exact)

    def to_dict(self, exact: bool = False) -> dict[str, Any]:
        """`exact`: with each total's exact sum, for partial merges that are merged again (commit index)."""
        return {key: h.to_dict(exact) for key, h in sorted(self.histograms.items())}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HistogramSet:
        return cls({key: Histogram.from_dict(value) for key, value in data.items()})
