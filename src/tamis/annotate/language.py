"""fastText language identification (lid.176 or any fastText LID model), as FineWeb and FineWeb-2 do it."""

from __future__ import annotations

import json
from collections import Counter
from functools import lru_cache
from typing import Any, Literal

import fasttext

from tamis.batch import DocBatch
from tamis.fineweb2.configs import check_config_dir, config_or_default
from tamis.fineweb2.labels import fineweb2_label, iso_to_fineweb2, split_label
from tamis.fineweb2.per_language import Events, PendingEvents
from tamis.resources import resource_path
from tamis.steps.base import Filter
from tamis.steps.registry import register_step

# fastText prints a deprecation warning on every load_model; it says nothing useful to our users.
fasttext.FastText.eprint = lambda *args, **kwargs: None


@lru_cache(maxsize=4)
def load_model(path: str) -> Any:
    """One model per worker process and path, shared by every task the worker runs."""
    return fasttext.load_model(path)


class Reasons:
    BELOW_THRESHOLD = "below_threshold"
    OTHER_LANGUAGE = "other_language"
    #: min_score: per_language, below the language's FineWeb-2 `language_score`
    BELOW_LANGUAGE_SCORE = "below_language_score"
    #: one of `exclude_languages` scores above `exclude_threshold`
    EXCLUDED_LANGUAGE = "excluded_language"


_LABEL_PREFIX = "__label__"


@register_step("language_id")
class LanguageFilter(PendingEvents, Filter):
    """Adds `language` and `language_score`; drops documents not in `languages` above `threshold`.

    A document is kept when one of `languages` scores above `threshold` (datatrove's rule); `language`
    is the best-scoring language overall. With `languages` null every language is kept when the best
    one scores above `threshold`.

    FineWeb-2 (docs/fineweb2.md): `labels: fineweb2` writes ISO 639-3 `language` and `language_script`
    (GlotLID-style `xxx_Scrp` labels directly; lid.176's ISO codes through datatrove's tokenizer_assignment.csv);
    `top_langs` writes the labels above `top_langs_threshold` as a JSON string; `min_score: per_language` keeps
    a document whose best score is at least its language's FineWeb-2 `language_score` (documented default where
    there is no config, counted); `exclude_languages` drops documents where one of them scores above
    `exclude_threshold` (FineWeb-2 left English out).
    """

    def __init__(
        self,
        languages: list[str] | None = None,
        threshold: float = 0.65,
        model_path: str | None = None,
        label_only: bool = False,
        labels: Literal["iso", "fineweb2"] = "iso",
        top_langs: bool = False,
        top_langs_threshold: float = 0.01,
        min_score: Literal["per_language"] | None = None,
        config_dir: str | None = None,
        exclude_languages: list[str] | None = None,
        exclude_threshold: float = 0.65,
    ):
        """
        Args:
            languages: ISO codes to keep, e.g. [en] (FineWeb); null keeps all. With `labels: fineweb2` a code
                matches the model's label, the FineWeb-2 label (`deu_Latn`) or its ISO 639-3 code (`deu`).
            threshold: minimum score (FineWeb: 0.65); not used with `min_score: per_language`.
            model_path: a fastText LID model; default the lid.176.ftz shipped with tamis (use lid.176.bin
                for the uncompressed model, or GlotLID's model_v3.bin).
            label_only: only annotate, never drop.
            labels: `iso` writes the model's label as `language`; `fineweb2` writes ISO 639-3 `language` and
                the script as `language_script`.
            top_langs: add a `top_langs` column, JSON {"<label>_score": score} of the labels scoring above
                `top_langs_threshold` (FineWeb-2's published format).
            top_langs_threshold: see above (FineWeb-2: 0.01).
            min_score: `per_language`: keep a document if its best score >= its language's FineWeb-2
                `language_score` (0.65 where the language has no config).
            config_dir: a folder of `<label>.yml` configs searched before the packaged FineWeb-2 ones.
            exclude_languages: drop documents where one of these languages scores above `exclude_threshold`
                (FineWeb-2: [en] with lid.176); null keeps every language.
            exclude_threshold: see above (FineWeb's English threshold 0.65).
        """
        self.languages = languages
        self.threshold = threshold
        self.model_path = model_path
        self.label_only = label_only
        self.labels = labels
        self.top_langs = top_langs
        self.top_langs_threshold = top_langs_threshold
        self.min_score = min_score
        self.config_dir = config_dir
        self.exclude_languages = exclude_languages
        self.exclude_threshold = exclude_threshold
        if labels not in ("iso", "fineweb2"):
            raise ValueError(f"labels: expected 'iso' or 'fineweb2', got {labels!r}")
        if min_score not in (None, "per_language"):
            raise ValueError(f"min_score: expected null or 'per_language', got {min_score!r}")
        if config_dir is not None:
            if min_score is None:
                raise ValueError("config_dir: only used with min_score: per_language")
            check_config_dir(config_dir)

    def setup(self) -> None:
        self._model()

    def _model(self) -> Any:
        return load_model(self.model_path or str(resource_path("lid.176.ftz")))

    def _predict(self, texts: list[str]) -> tuple[list[Any], list[Any]]:
        # Scores are probabilities, so above a threshold of 0.5 only the best label can pass: k=1 gives
        # the same decisions as scoring every language, at a fraction of the cost.
        lowest = []
        if self.languages is not None and self.min_score is None and not self.label_only:
            lowest.append(self.threshold)
        if self.exclude_languages and not self.label_only:
            lowest.append(self.exclude_threshold)
        if self.top_langs:
            lowest.append(self.top_langs_threshold)
        if not lowest or min(lowest) >= 0.5:
            return self._model().predict(texts, k=1)
        # every label scoring at least the lowest threshold asked for (fastText keeps probabilities >= it)
        return self._model().predict(texts, k=-1, threshold=max(0.0, min(lowest)))

    def filter_batch(self, batch: DocBatch) -> list[str | None]:
        texts = [text.replace("\n", " ") for text in batch["text"]]
        labels, scores = self._predict(texts)
        fineweb2 = self.labels == "fineweb2"
        languages: list[str] = []
        scripts: list[str | None] = []
        best_scores: list[float] = []
        tops: list[str] = []
        reasons: list[str | None] = []
        wanted = set(self.languages) if self.languages is not None else None
        excluded = set(self.exclude_languages or ())
        pending = self._pending()
        for i, (doc_labels, doc_scores) in enumerate(zip(labels, scores, strict=True)):
            pairs = {label[len(_LABEL_PREFIX):]: float(score) for label, score in zip(doc_labels, doc_scores,
                                                                                         strict=True)}
            if not pairs:  # no label reaches the lowest threshold asked for: the best one is still needed
                best_labels, best_score = self._model().predict(texts[i], k=1)
                pairs = {best_labels[0][len(_LABEL_PREFIX):]: float(best_score[0])}
            best = max(pairs, key=pairs.__getitem__)
            code, script = _fineweb2_code(best) if fineweb2 else (best, None)
            languages.append(code)
            scripts.append(script)
            best_scores.append(pairs[best])
            if self.top_langs:
                tops.append(json.dumps({f"{_top_key(label, fineweb2)}_score": score for label, score in pairs.items()
                                        if score > self.top_langs_threshold}))
            reasons.append(None if self.label_only else self._reason(best, pairs, wanted, excluded, pending))
        batch.set_column("language", languages)
        batch.set_column("language_score", best_scores)
        if fineweb2:
            batch.set_column("language_script", scripts)
        if self.top_langs:
            batch.set_column("top_langs", tops)
        return reasons

    def _reason(self, best: str, pairs: dict[str, float], wanted: set[str] | None, excluded: set[str],
                pending: Counter[str]) -> str | None:
        if excluded and any(score > self.exclude_threshold and _names(label) & excluded
                            for label, score in pairs.items()):
            return Reasons.EXCLUDED_LANGUAGE
        if self.min_score == "per_language":
            if wanted is not None and not _names(best) & wanted:
                return Reasons.OTHER_LANGUAGE
            label = fineweb2_label(*_fineweb2_code(best))
            config = config_or_default(label, self.config_dir)
            if config.is_default:
                pending[Events.DEFAULT_CONFIG] += 1
                pending[f"{Events.DEFAULT_CONFIG}.{label}"] += 1
            return None if pairs[best] >= config.language_score else Reasons.BELOW_LANGUAGE_SCORE
        if wanted is None:
            return None if pairs[best] > self.threshold else Reasons.BELOW_THRESHOLD
        if any(score > self.threshold and _names(label) & wanted for label, score in pairs.items()):
            return None
        return Reasons.OTHER_LANGUAGE if not _names(best) & wanted else Reasons.BELOW_THRESHOLD


@lru_cache(maxsize=1 << 14)
def _fineweb2_code(label: str) -> tuple[str, str | None]:
    """(ISO 639-3 code, script) of a model label: `deu_Latn` split, lid.176's `de` mapped."""
    if "_" in label:
        return split_label(label)
    return iso_to_fineweb2(label)


def _top_key(label: str, fineweb2: bool) -> str:
    return fineweb2_label(*_fineweb2_code(label)) if fineweb2 else label


@lru_cache(maxsize=1 << 14)
def _names(label: str) -> frozenset[str]:
    """The names a `languages` entry may use for a model label: itself, its FineWeb-2 label and code_3."""
    code, script = _fineweb2_code(label)
    return frozenset({label, code, fineweb2_label(code, script)})
