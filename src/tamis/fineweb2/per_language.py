"""What the quality filters share when their thresholds follow each document's language (FineWeb-2).

A filter with `language_config: fineweb2` reads each document's label from its `language` (and, where present,
`language_script`) columns, builds one configured copy of itself per label from FineWeb-2's config for it (or
the documented defaults, counted), and splits each document into words once with that language's tokenizer; the
words are shared by every such filter through the batch's derived features.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from tamis.batch import DocBatch
from tamis.fineweb2.configs import LanguageConfig, check_config_dir, config_or_default
from tamis.fineweb2.labels import document_labels
from tamis.text.languages import FALLBACK_PREFIX, tokenizer_name_for, word_splitter_for

#: the value of a filter's `language_config` parameter that selects FineWeb-2's per-language configs
FINEWEB2 = "fineweb2"
#: derived-feature key of the per-language word split (see DocBatch.derived_by_language)
LANGUAGE_WORDS = "words_by_language"


class Events:
    #: documents whose language has no FineWeb-2 config (the documented defaults were used); also `.<label>`
    DEFAULT_CONFIG = "default_config"
    #: documents split into words by a fallback tokenizer (not datatrove's); also `.<label>`
    FALLBACK_TOKENIZER = "fallback_tokenizer"


def check_language_config(language_config: str | None, config_dir: str | None) -> None:
    """Fail at pipeline load (naming the field) on a bad `language_config` or `config_dir`."""
    if language_config not in (None, FINEWEB2):
        raise ValueError(f"language_config: expected null or {FINEWEB2!r}, got {language_config!r}")
    if config_dir is not None:
        if language_config is None:
            raise ValueError("config_dir: only used with language_config: fineweb2")
        check_config_dir(config_dir)


def batch_labels(batch: DocBatch) -> list[str]:
    """Each document's language label (`deu_Latn`, or `de` without a script column); '' where unknown."""
    if "language" not in batch:
        raise ValueError("language_config: fineweb2 needs a `language` column: put language_id before this filter")
    scripts = batch["language_script"] if "language_script" in batch else None
    return document_labels(batch["language"], scripts)


def language_words(batch: DocBatch) -> list[list[str]]:
    """Each document's words, split with its language's tokenizer, computed once per batch and shared."""
    labels = batch_labels(batch)
    return batch.derived_by_language(LANGUAGE_WORDS, labels, _split)


def _split(text: str, label: str) -> list[str]:
    return word_splitter_for(label or "xx")(text)


def count_languages(labels: list[str], configs: dict[str, LanguageConfig], events: Counter[str]) -> None:
    """Count documents handled with default configs and with fallback tokenizers."""
    for label, n in Counter(labels).items():
        if configs[label].is_default:
            events[Events.DEFAULT_CONFIG] += n
            events[f"{Events.DEFAULT_CONFIG}.{label or 'unknown'}"] += n
        if tokenizer_name_for(label or "xx").startswith(FALLBACK_PREFIX):
            events[Events.FALLBACK_TOKENIZER] += n
            events[f"{Events.FALLBACK_TOKENIZER}.{label or 'unknown'}"] += n


class PerLanguageFilters:
    """One configured filter per language label, built on first sight of the label and kept for the worker."""

    def __init__(self, build: Callable[[LanguageConfig], Any], config_dir: str | None):
        self.build = build
        self.config_dir = config_dir
        self.configs: dict[str, LanguageConfig] = {}
        self.filters: dict[str, Any] = {}

    def for_labels(self, labels: list[str]) -> list[Any]:
        out = []
        for label in labels:
            step = self.filters.get(label)
            if step is None:
                config = config_or_default(label, self.config_dir)
                self.configs[label] = config
                step = self.build(config)
                step.setup()
                self.filters[label] = step
            out.append(step)
        return out


def off_if_zero(value: float) -> float | None:
    """datatrove skips a check whose threshold is 0 (falsy); tamis's filters disable a check with None."""
    return None if value == 0 else value


class PendingEvents:
    """Mixin of filters that count events in `filter_batch` (which has no counters): they are kept here and added
    to the step's counters when `process` returns."""

    def _pending(self) -> Counter[str]:
        pending = getattr(self, "_pending_events", None)
        if pending is None:
            pending = self._pending_events = Counter()
        return pending

    def process(self, batch: DocBatch, ctx: Any) -> DocBatch:
        result = super().process(batch, ctx)  # type: ignore[misc]
        pending = getattr(self, "_pending_events", None)
        if pending:
            for name, n in pending.items():
                ctx.counters.event(name, n)
            pending.clear()
        return result


class LanguageConfigured(PendingEvents):
    """Mixin of the filters with `language_config` / `config_dir` parameters.

    The subclass implements `_build_for_language(config)` (a copy of itself with that language's thresholds and
    FineWeb-2's global values) and names in `FINEWEB2_FIXED` the parameters FineWeb-2 sets for every language; a
    pipeline that sets one of those to something else as well as `language_config: fineweb2` is rejected.
    """

    FINEWEB2_FIXED: dict[str, Any] = {}
    language_config: str | None
    config_dir: str | None

    def _check_language_params(self) -> None:
        import inspect

        check_language_config(self.language_config, self.config_dir)
        if self.language_config is None:
            return
        signature = inspect.signature(type(self).__init__)
        for name, fineweb2_value in self.FINEWEB2_FIXED.items():
            value = getattr(self, name)
            if value != signature.parameters[name].default and value != fineweb2_value:
                raise ValueError(f"{name}: set to {fineweb2_value!r} by language_config: fineweb2; leave it out")

    def _build_for_language(self, config: LanguageConfig) -> Any:
        raise NotImplementedError

    def _per_language(self) -> PerLanguageFilters:
        filters = getattr(self, "_per_language_filters", None)
        if filters is None:
            filters = self._per_language_filters = PerLanguageFilters(self._build_for_language, self.config_dir)
        return filters

    def _language_steps(self, batch: DocBatch) -> tuple[list[str], list[Any]]:
        """Each document's label and the configured filter for it; counts defaults and fallbacks."""
        labels = batch_labels(batch)
        per_language = self._per_language()
        steps = per_language.for_labels(labels)
        count_languages(labels, per_language.configs, self._pending())
        return labels, steps
