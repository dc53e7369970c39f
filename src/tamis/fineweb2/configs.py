"""FineWeb-2's per-language filter configurations, shipped with tamis (tamis/resources/fineweb2/configs).

One YAML file per language label (`deu_Latn.yml`, `cmn_Hani.yml`...), as published by FineWeb-2
(huggingface/fineweb-2, Apache-2.0; see resources/NOTICE.md). A folder given as `override_dir` is searched
first, so a user can retune a language or add one without touching the package.

A language with no file gets `default_config(label)`: datatrove 0.10.1's own filter defaults (what FineWeb-2's
filters would do with the argument left out, i.e. FineWeb English's values), language score 0.65 (FineWeb's
lid.176 threshold), and no stop words, so the stop-word check is off (English stop words would drop every
other language; English itself keeps Gopher's eight). Callers count every document handled that way.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from tamis.resources import resource_path

CONFIG_KEYS = ("language_score", "dup_line_frac", "dup_n_grams", "top_n_grams", "line_punct_thr", "new_line_ratio",
               "max_avg_word_length", "min_avg_word_length", "max_non_alpha_words_ratio", "stopwords")
#: Gopher's stop words (datatrove's default), the default for English only
ENGLISH_STOP_WORDS = ("the", "be", "to", "of", "and", "that", "have", "with")
_ENGLISH_LABELS = frozenset({"eng_Latn", "eng", "en"})


@dataclass(frozen=True)
class LanguageConfig:
    """One language's thresholds, with FineWeb-2's key names and meanings (datatrove's filter arguments)."""

    label: str
    language_score: float
    dup_line_frac: float
    dup_n_grams: tuple[tuple[int, float], ...]
    top_n_grams: tuple[tuple[int, float], ...]
    line_punct_thr: float
    new_line_ratio: float
    max_avg_word_length: float
    min_avg_word_length: float
    max_non_alpha_words_ratio: float
    stopwords: tuple[str, ...]
    #: True for `default_config` (the language has no file)
    is_default: bool = False


def packaged_config_dir() -> Path:
    return resource_path("fineweb2") / "configs"


def _pairs(value: Any, field: str, source: str) -> tuple[tuple[int, float], ...]:
    try:
        return tuple((int(n), float(frac)) for n, frac in value)
    except (TypeError, ValueError):
        raise ValueError(f"{source}: {field} must be a list of [n, fraction] pairs, got {value!r}") from None


def parse_config(label: str, data: Any, source: str) -> LanguageConfig:
    """A LanguageConfig from a YAML mapping; a missing or malformed key is an error naming it and the file."""
    if not isinstance(data, dict):
        raise ValueError(f"{source}: expected a mapping of {', '.join(CONFIG_KEYS)}")
    missing = [key for key in CONFIG_KEYS if key not in data]
    if missing:
        raise ValueError(f"{source}: missing {', '.join(missing)}")
    unknown = sorted(set(data) - set(CONFIG_KEYS))
    if unknown:
        raise ValueError(f"{source}: unknown field(s) {', '.join(unknown)}")
    numbers = {}
    for key in ("language_score", "dup_line_frac", "line_punct_thr", "new_line_ratio", "max_avg_word_length",
                "min_avg_word_length", "max_non_alpha_words_ratio"):
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{source}: {key} must be a number, got {value!r}")
        numbers[key] = value
    stopwords = data["stopwords"] or []
    if not isinstance(stopwords, list) or not all(isinstance(word, str) for word in stopwords):
        raise ValueError(f"{source}: stopwords must be a list of strings")
    return LanguageConfig(
        label=label,
        dup_n_grams=_pairs(data["dup_n_grams"], "dup_n_grams", source),
        top_n_grams=_pairs(data["top_n_grams"], "top_n_grams", source),
        stopwords=tuple(stopwords),
        **numbers,
    )


@lru_cache(maxsize=4096)
def _load(path: str, label: str) -> LanguageConfig:
    with open(path, encoding="utf-8") as f:
        return parse_config(label, yaml.safe_load(f), path)


def config_path(label: str, override_dir: str | None = None) -> Path | None:
    """The file that configures `label`: in `override_dir` first, else the packaged one; None if neither."""
    if not label or "/" in label or "\\" in label or label.startswith("."):
        return None
    for folder in ([Path(override_dir)] if override_dir else []) + [packaged_config_dir()]:
        path = folder / f"{label}.yml"
        if path.is_file():
            return path
    return None


def language_config(label: str, override_dir: str | None = None) -> LanguageConfig | None:
    """FineWeb-2's config for a `code_3_Script` label (e.g. `deu_Latn`), or None if there is none."""
    path = config_path(label, override_dir)
    return None if path is None else _load(str(path), label)


def default_config(label: str) -> LanguageConfig:
    """The documented defaults for a language without a config (see the module docstring)."""
    return LanguageConfig(
        label=label,
        language_score=0.65,
        dup_line_frac=0.3,
        dup_n_grams=((5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10)),
        top_n_grams=((2, 0.2), (3, 0.18), (4, 0.16)),
        line_punct_thr=0.12,
        new_line_ratio=0.3,
        max_avg_word_length=10,
        min_avg_word_length=3,
        max_non_alpha_words_ratio=0.8,
        stopwords=ENGLISH_STOP_WORDS if label in _ENGLISH_LABELS else (),
        is_default=True,
    )


def config_or_default(label: str, override_dir: str | None = None) -> LanguageConfig:
    """`language_config(label)`, or `default_config(label)` (`is_default` True) where there is none."""
    return language_config(label, override_dir) or default_config(label)


def check_config_dir(override_dir: str) -> None:
    """Fail early, naming the file and field, if a folder of configs has a bad file or is not a folder."""
    folder = Path(override_dir)
    if not folder.is_dir():
        raise ValueError(f"config_dir {override_dir!r} is not a folder")
    for path in sorted(folder.glob("*.yml")):
        _load(str(path), path.stem)
