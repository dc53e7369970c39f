"""Drops documents identified as given languages: FineWeb-2 is FineWeb's complement, so it removed the
pages lid.176 gives English with a score above 0.65 (exactly the documents FineWeb keeps)."""

from __future__ import annotations

from tamis.batch import DocBatch
from tamis.steps.base import Filter
from tamis.steps.registry import register_step

EXCLUDED = "excluded_language"


@register_step("exclude_languages")
class ExcludeLanguages(Filter):
    """Removes documents whose `language` is one of `languages` with `language_score` above `min_score`
    (reason `excluded_language`); needs language_id before it. An empty list keeps everything."""

    def __init__(self, languages: list[str] | None = None, min_score: float = 0.65):
        """
        Args:
            languages: labels to remove, as language_id writes them (`en` with lid.176's labels, `eng` with
                FineWeb-2's); default English under both names, as FineWeb-2 did.
            min_score: remove only when the language's score is above this (FineWeb-2: 0.65, FineWeb's English
                threshold with its `>` rule, so what is removed is exactly what FineWeb keeps); a negative
                value removes every document of those languages.
        """
        self.languages = languages
        self.min_score = min_score

    def setup(self) -> None:
        self._excluded = frozenset(["en", "eng"] if self.languages is None else self.languages)

    def filter_batch(self, batch: DocBatch) -> list[str | None]:
        if not hasattr(self, "_excluded"):
            self.setup()
        if "language" not in batch:
            raise ValueError("exclude_languages needs a `language` column: put language_id before it")
        scores = batch["language_score"] if "language_score" in batch else [1.0] * len(batch)
        return [EXCLUDED if lang in self._excluded and (score or 0.0) > self.min_score else None
                for lang, score in zip(batch["language"], scores, strict=True)]
