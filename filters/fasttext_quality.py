"""A fastText quality classifier as a filter, the way DCLM and FineWeb-Edu select documents."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import fasttext

from tamis.batch import DocBatch
from tamis.steps import Filter, register_step


@lru_cache(maxsize=4)
def _load(path: str) -> Any:
    """Once per worker process and model, not once per task."""
    return fasttext.load_model(path)


@register_step("fasttext_quality")
class FastTextQualityFilter(Filter):
    """Keeps documents that a fastText classifier scores at least `threshold` for `label`.

    Adds the score as the `quality_score` column (kept in Parquet only if the writer lists it).
    """

    def __init__(self, model_path: str, label: str = "__label__hq", threshold: float = 0.5):
        """
        Args:
            model_path: a supervised fastText model (.bin or .ftz), e.g. DCLM's fasttext_oh_eli5.bin.
            label: the label whose probability is the quality score.
            threshold: minimum score to keep a document.
        """
        self.model_path = model_path
        self.label = label
        self.threshold = threshold

    def setup(self) -> None:
        _load(self.model_path)

    def filter_batch(self, batch: DocBatch) -> list[str | None]:
        model = _load(self.model_path)
        labels, probabilities = model.predict([t.replace("\n", " ") for t in batch["text"]], k=-1)
        scores = []
        for doc_labels, doc_probabilities in zip(labels, probabilities, strict=True):
            by_label = dict(zip(doc_labels, doc_probabilities, strict=True))
            scores.append(float(by_label.get(self.label, 0.0)))
        batch.set_column("quality_score", scores)
        return [None if score >= self.threshold else "low_quality" for score in scores]
