"""`tiny-lm`: train a small causal transformer on the variant's sample, report loss and zero-shot accuracy.

Metrics: `val_loss` (nats per token on the held-out documents, the same for every variant),
`acc_<benchmark>` for each benchmark (zero-shot multiple choice by per-token log-likelihood, the first
`max_items` items) and `acc_avg`, their mean. Needs torch: `pip install 'tamis[proxy]'`. Uses a GPU when
Ray has one (device `auto`), else the CPU.
"""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path
from typing import Literal

from tamis.ablate.evaluator import EvalInput, Evaluator, EvaluatorError, register_evaluator
from tamis.evaluators.benchmarks import BENCHMARKS, benchmark_file, load_items

INSTALL_HINT = "the tiny-lm evaluator needs torch: pip install 'tamis[proxy]'"


@register_evaluator("tiny-lm")
class TinyLMEvaluator(Evaluator):
    """Trains a tiny GPT-2-tokenised transformer on the sample; validation loss and zero-shot accuracy."""

    def __init__(self, benchmarks_dir: str | None = None, benchmarks: list[str] | None = None,
                 max_items: int = 200, n_layers: int = 2, d_model: int = 128, n_heads: int = 4, context: int = 128,
                 vocab_size: int = 50257,
                 epochs: int = 2, batch_size: int = 8, lr: float = 2e-3, weight_decay: float = 0.1,
                 device: Literal["auto", "cpu", "cuda"] = "auto", threads: int = 1):
        """
        Args:
            benchmarks_dir: folder of benchmark files (`hellaswag*.jsonl.gz`, ...); none: validation loss only.
            benchmarks: which benchmarks (default: every one found among hellaswag, arc_easy, arc_challenge,
                piqa, winogrande, openbookqa, siqa, commonsense_qa, sciq).
            max_items: items per benchmark (the first ones, the same for every variant).
            n_layers, d_model, n_heads, context: the transformer's shape.
            vocab_size: 50257 is GPT-2's tokenizer; smaller keeps GPT-2's first `vocab_size - 1` BPE ranks (a
                complete byte-level BPE that encodes into more, cheaper tokens: 8192 trains about 4x faster).
            epochs, batch_size, lr, weight_decay: training (AdamW, warm-up then cosine decay).
            device: `auto` uses a GPU when the Ray task has one.
            threads: torch CPU threads (and Ray CPUs reserved); fixed so results do not depend on the machine.
        """
        self.benchmarks_dir = benchmarks_dir
        self.benchmarks = benchmarks
        self.max_items = max_items
        self.n_layers = n_layers
        self.d_model = d_model
        self.n_heads = n_heads
        self.context = context
        self.vocab_size = vocab_size
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.device = device
        self.threads = threads

    def check(self) -> None:
        if importlib.util.find_spec("torch") is None:
            raise ImportError(INSTALL_HINT)
        if not 257 <= self.vocab_size <= 50257:
            raise ValueError(f"vocab_size: expected 257 to 50257, got {self.vocab_size}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be a multiple of n_heads ({self.n_heads})")
        for name in self.benchmarks or []:
            if name not in BENCHMARKS:
                raise ValueError(f"benchmarks: unknown benchmark {name!r} (known: {', '.join(BENCHMARKS)})")
        if self.benchmarks and not self.benchmarks_dir:
            raise ValueError("benchmarks: given without benchmarks_dir")

    def resources(self, cluster: dict[str, float]) -> dict[str, float]:
        gpu = 1 if self.device in ("auto", "cuda") and cluster.get("GPU", 0) >= 1 else 0
        return {"num_cpus": self.threads, "num_gpus": gpu}

    def _benchmarks(self, base: EvalInput) -> list[str]:
        if not self.benchmarks_dir:
            return []
        directory = base.resolve(self.benchmarks_dir)
        if self.benchmarks:
            return list(self.benchmarks)
        found = []
        for name in BENCHMARKS:
            try:
                benchmark_file(directory, name)
            except FileNotFoundError:
                continue
            found.append(name)
        if not found:
            raise EvaluatorError(f"no benchmark files in {directory}")
        return found

    def evaluate(self, sample: EvalInput) -> dict[str, float]:
        try:
            from tamis.evaluators import transformer as tf
        except ImportError as exc:
            raise EvaluatorError(f"{INSTALL_HINT} ({exc})") from None
        started = time.perf_counter()
        device = tf.deterministic(sample.seed, self.threads, self.device)
        config = tf.ModelConfig(self.n_layers, self.d_model, self.n_heads, self.context, self.vocab_size)
        model = tf.TinyLM(config).to(device)
        stream = tf.token_stream(sample.texts(), config)
        losses = tf.train(model, stream, seed=sample.seed, epochs=self.epochs, batch_size=self.batch_size,
                          lr=self.lr, weight_decay=self.weight_decay, device=device)
        metrics: dict[str, float] = {}
        holdout = sample.holdout_texts()
        if holdout:
            metrics["val_loss"] = tf.mean_loss(model, tf.token_stream(holdout, config), device)
        accuracies = []
        for name in self._benchmarks(sample):
            items = load_items(sample.resolve(self.benchmarks_dir), name, self.max_items)
            metrics[f"acc_{name}"] = tf.accuracy(model, items, device)
            accuracies.append(metrics[f"acc_{name}"])
        if accuracies:
            metrics["acc_avg"] = sum(accuracies) / len(accuracies)
        if not metrics:
            raise EvaluatorError("nothing to report: no holdout text and no benchmarks_dir")
        tail = losses[-max(1, len(losses) // 10):]
        details = {"metrics": metrics, "train_tokens": len(stream), "steps": len(losses), "device": str(device),
                   "final_train_loss": sum(tail) / len(tail), "seconds": round(time.perf_counter() - started, 2)}
        workdir = Path(sample.workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "tiny-lm.json").write_text(json.dumps(details, indent=1))
        return metrics
