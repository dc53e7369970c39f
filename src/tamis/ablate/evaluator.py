"""The evaluator contract: given one variant's sampled shards and the token budget, return named metrics.

An evaluator is a small class registered by name, like a step. Its constructor stores its parameters (they
are the YAML under `evaluators:`, checked against the signature before anything runs); `evaluate()` runs in
a Ray task, once per variant and seed, and returns `{metric name: number}`. Whatever it raises is recorded
as that variant's failure; the other variants go on.

    from tamis.ablate import EvalInput, Evaluator, register_evaluator

    @register_evaluator("doc-length")
    class DocLength(Evaluator):
        \"\"\"Mean characters per sampled document (a toy: it trains nothing).\"\"\"

        def __init__(self, scale: float = 1.0):
            self.scale = scale

        def evaluate(self, sample: EvalInput) -> dict[str, float]:
            texts = sample.texts()
            return {"mean_chars": self.scale * sum(map(len, texts)) / len(texts)}
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pyarrow.parquet as pq

from tamis.registry import Registry, UnknownNameError

_BUILTINS = ("tamis.evaluators.tiny_lm", "tamis.evaluators.command")

E = TypeVar("E", bound="type[Evaluator]")


class EvaluatorError(RuntimeError):
    """An evaluator could not produce metrics for one variant (the message says why)."""


@dataclass(frozen=True)
class EvalInput:
    """What an evaluator gets for one variant and seed.

    `shards` hold the sampled documents (FineWeb columns; `token_count` is each document's share of the
    budget, the last one truncated); `holdout` holds held-out documents, the same for every variant, for
    validation loss. `workdir` is this evaluation's own directory; `base_dir` is where relative paths in
    the ablation file are resolved from.
    """

    variant: str
    seed: int
    shards: list[str]
    token_budget: int
    tokens: int
    documents: int
    holdout: list[str] = field(default_factory=list)
    workdir: str = "."
    base_dir: str = "."
    #: with `tokenize:` in the ablation file: the sample as token files (see docs/ablate.md)
    token_files: list[str] = field(default_factory=list)
    token_format: str | None = None
    token_count: int = 0
    token_dtype: str | None = None
    tokenizer: dict[str, Any] | None = None
    holdout_token_files: list[str] = field(default_factory=list)

    def texts(self) -> list[str]:
        """The sampled documents' text, in sampling order."""
        return [text for path in self.shards for text in pq.read_table(path, columns=["text"])["text"].to_pylist()]

    def holdout_texts(self) -> list[str]:
        return [text for path in self.holdout for text in pq.read_table(path, columns=["text"])["text"].to_pylist()]

    def token_stream(self, holdout: bool = False):
        """The sample's (or the holdout's) tokens, every file's in order, as one numpy array."""
        import numpy as np

        from tamis.tokenize.formats import read_stream

        files = self.holdout_token_files if holdout else self.token_files
        parts = [np.asarray(read_stream(path, self.token_format or "numpy")) for path in files]
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.uint32)

    def resolve(self, path: str) -> str:
        """A path from the ablation file, relative to that file's directory unless absolute or a URL."""
        if "://" in path or Path(path).is_absolute():
            return path
        return str(Path(self.base_dir) / path)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Evaluator:
    """Trains and/or scores a proxy on one variant's sample; subclass it and register it."""

    #: registry name, set by @register_evaluator
    evaluator_name: ClassVar[str] = ""

    def check(self) -> None:
        """Runs on the driver before any work starts: raise with a clear message if this cannot work here
        (a missing package, a missing file)."""

    def resources(self, cluster: dict[str, float]) -> dict[str, float]:
        """Ray resources of one evaluation (`num_cpus`, `num_gpus`), given the cluster's totals."""
        return {"num_cpus": 1}

    def evaluate(self, sample: EvalInput) -> dict[str, float]:
        raise NotImplementedError

    def get_params(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in inspect.signature(type(self).__init__).parameters
                if name not in ("self", "args", "kwargs")}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_params().items())})"


class UnknownEvaluatorError(UnknownNameError):
    kind = "evaluator"


def register_evaluator(name: str):
    """Class decorator: make an Evaluator subclass available under `name` in ablation files."""

    def decorate(cls: E) -> E:
        return _EVALUATORS.register(name, cls)

    return decorate


def _load_builtins() -> None:
    for module in _BUILTINS:
        importlib.import_module(module)


_EVALUATORS: Registry[type[Evaluator]] = Registry("evaluator", Evaluator, "evaluator_name", UnknownEvaluatorError,
                                                  _load_builtins)


def get_evaluator_class(name: str) -> type[Evaluator]:
    return _EVALUATORS.get(name)


def available_evaluators() -> dict[str, type[Evaluator]]:
    return _EVALUATORS.all()
