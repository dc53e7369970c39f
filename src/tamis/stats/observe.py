"""Distributions of what each step kept and removed, recorded into a task's HistogramSet."""

from __future__ import annotations

from collections import Counter

import numpy as np

from tamis.batch import DocBatch
from tamis.stats.histograms import FEATURE_PREFIX, HistogramSet

OUTPUT_SCOPE = "output"


def observe(histograms: HistogramSet, scope: str, outcome: str, batch: DocBatch) -> None:
    """Text length, and every `feature.<name>` column a filter published, of kept or removed documents."""
    if not len(batch):
        return
    if "text" in batch and batch["text"] and batch["text"][0] is not None:
        histograms.add(scope, outcome, "text_chars", [len(t) if t is not None else np.nan for t in batch["text"]])
    for column, values in batch.columns.items():
        if column.startswith(FEATURE_PREFIX):
            metric = column[len(FEATURE_PREFIX):]
            histograms.add(scope, outcome, metric, [np.nan if v is None else v for v in values])


def observe_output(histograms: HistogramSet, languages: Counter[str], batch: DocBatch) -> None:
    observe(histograms, OUTPUT_SCOPE, "kept", batch)
    histograms.add(OUTPUT_SCOPE, "kept", "words", [len(t.split()) for t in batch["text"]])
    if "token_count" in batch:
        histograms.add(OUTPUT_SCOPE, "kept", "tokens", batch["token_count"])
    if "language" in batch:
        languages.update(batch["language"])
        histograms.add(OUTPUT_SCOPE, "kept", "language_score", batch["language_score"])
