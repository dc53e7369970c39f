"""Distributions of what each step kept and removed, recorded into a task's HistogramSet."""

from __future__ import annotations

from collections import Counter

import numpy as np

from tamis.batch import DocBatch
from tamis.stats.histograms import FEATURE_PREFIX, HistogramSet

OUTPUT_SCOPE = "output"


def observe(histograms: HistogramSet, scope: str, outcome: str, batch: DocBatch) -> None:
    """Text length, and every `feature.<name>` column a filter published, of kept or removed documents."""
    if len(batch):
        _observe(histograms, scope, outcome, batch, _texts(batch))


def _observe(histograms: HistogramSet, scope: str, outcome: str, batch: DocBatch, texts: list[str]) -> None:
    """`observe` given the batch's texts (so that observe_output filters them once for both of its uses)."""
    if texts:
        histograms.add(scope, outcome, "text_chars", [len(t) for t in texts])
    for column, values in batch.columns.items():
        if column.startswith(FEATURE_PREFIX):
            metric = column[len(FEATURE_PREFIX):]
            histograms.add(scope, outcome, metric, [np.nan if v is None else v for v in values])


def _texts(batch: DocBatch) -> list[str]:
    """The documents' texts, leaving out those without one: a pipeline with no extractor (`steps: []`, or WARC
    HTML records before extraction) writes documents whose text is None, and they have no length to count."""
    if "text" not in batch:
        return []
    return [text for text in batch["text"] if text is not None]


def observe_output(histograms: HistogramSet, languages: Counter[str], batch: DocBatch) -> None:
    """What was written: as `observe` for kept documents, plus words, tokens and languages where known."""
    texts = _texts(batch)
    if len(batch):
        _observe(histograms, OUTPUT_SCOPE, "kept", batch, texts)
    if texts:
        histograms.add(OUTPUT_SCOPE, "kept", "words", [len(t.split()) for t in texts])
    if "token_count" in batch:
        histograms.add(OUTPUT_SCOPE, "kept", "tokens", batch["token_count"])
    if "language" in batch:
        languages.update(batch["language"])
        histograms.add(OUTPUT_SCOPE, "kept", "language_score", batch["language_score"])
