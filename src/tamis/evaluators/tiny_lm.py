"""`tiny-lm`: train a small causal transformer on the variant's sample, report loss and zero-shot accuracy.

Metrics: `ref_bpb`, bits per byte on a fixed reference text (by default 1,000 LAMBADA passages shipped
in the package; the same for every variant, and independent of the tokenizer); `val_loss` (nats per token)
and `val_bpb` on the held-out documents; `acc_<benchmark>` for each benchmark (zero-shot multiple choice by
per-token log-likelihood, the first `max_items` items) and `acc_avg`, their mean. Needs torch:
`pip install 'tamis[proxy]'`. Uses a GPU when Ray has one (device `auto`), in bf16 autocast and with a
larger default shape (CPU: 2 layers, d_model 128, context 128, batch 8; CUDA: 6 layers, d_model 384,
context 256, batch 32); else the CPU.

When the ablation has `tokenize:`, the model trains on the sample's token files (any of the three formats)
instead of tokenizing the text itself; their tokenizer must be GPT-2's (`gpt2`, or `gpt2-<vocab_size>`).
"""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path
from typing import Literal

from tamis.ablate.evaluator import EvalInput, Evaluator, EvaluatorError, register_evaluator
from tamis.evaluators.benchmarks import (
    BENCHMARKS,
    LAMBADA,
    benchmark_file,
    benchmarks_directory,
    load_items,
    reference_texts,
)

INSTALL_HINT = "the tiny-lm evaluator needs torch: pip install 'tamis[proxy]'"
#: default shape and batch per device kind: (n_layers, d_model, n_heads, context, batch_size)
DEFAULT_SHAPES = {"cpu": (2, 128, 4, 128, 8), "cuda": (6, 384, 6, 256, 32)}


@register_evaluator("tiny-lm")
class TinyLMEvaluator(Evaluator):
    """Trains a tiny GPT-2-tokenised transformer on the sample; validation loss and zero-shot accuracy."""

    def __init__(self, benchmarks_dir: str | None = None, benchmarks: list[str] | None = None,
                 max_items: int = 200, reference: str | None = LAMBADA, reference_docs: int = 1000,
                 n_layers: int | None = None, d_model: int | None = None, n_heads: int | None = None,
                 context: int | None = None, vocab_size: int = 50257,
                 epochs: int = 2, batch_size: int | None = None, lr: float = 2e-3, weight_decay: float = 0.1,
                 device: Literal["auto", "cpu", "cuda"] = "auto", threads: int = 1):
        """
        Args:
            benchmarks_dir: folder of benchmark files (`hellaswag*.jsonl.gz`, ...), or `packaged` for the subsets
                shipped with tamis; none: no accuracies.
            benchmarks: which benchmarks (default: every one found among hellaswag, arc_easy, arc_challenge,
                piqa, winogrande, openbookqa, siqa, commonsense_qa, sciq).
            max_items: items per benchmark (the first ones, the same for every variant).
            reference: text scored in bits per byte (`ref_bpb`): `lambada` (1,000 shipped LAMBADA passages), a
                Parquet, JSONL or text file, or none.
            reference_docs: at most this many reference documents (the first ones).
            n_layers, d_model, n_heads, context: the transformer's shape (default: by device, see above).
            vocab_size: 50257 is GPT-2's tokenizer; smaller keeps GPT-2's first `vocab_size - 1` BPE ranks (a
                complete byte-level BPE that encodes into more, cheaper tokens: 8192 trains about 4x faster).
            epochs, batch_size, lr, weight_decay: training (AdamW, warm-up then cosine decay).
            device: `auto` uses a GPU when the Ray task has one.
            threads: torch CPU threads (and Ray CPUs reserved); fixed so results do not depend on the machine.
        """
        self.benchmarks_dir = benchmarks_dir
        self.benchmarks = benchmarks
        self.max_items = max_items
        self.reference = reference
        self.reference_docs = reference_docs
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
        for kind in DEFAULT_SHAPES:
            _, d_model, n_heads, _, _ = self.shape(kind)
            if d_model % n_heads:
                raise ValueError(f"d_model ({d_model}) must be a multiple of n_heads ({n_heads}) (on {kind})")
        for name in self.benchmarks or []:
            if name not in BENCHMARKS:
                raise ValueError(f"benchmarks: unknown benchmark {name!r} (known: {', '.join(BENCHMARKS)})")
        if self.benchmarks and not self.benchmarks_dir:
            raise ValueError("benchmarks: given without benchmarks_dir")

    def shape(self, kind: str) -> tuple[int, int, int, int, int]:
        """(n_layers, d_model, n_heads, context, batch_size): the parameters given, else the device's defaults."""
        given = (self.n_layers, self.d_model, self.n_heads, self.context, self.batch_size)
        return tuple(g if g is not None else d for g, d in zip(given, DEFAULT_SHAPES[kind], strict=True))  # type: ignore[return-value]

    def resources(self, cluster: dict[str, float]) -> dict[str, float]:
        gpu = 1 if self.device in ("auto", "cuda") and cluster.get("GPU", 0) >= 1 else 0
        return {"num_cpus": self.threads, "num_gpus": gpu}

    def _benchmarks(self, base: EvalInput) -> list[str]:
        if not self.benchmarks_dir:
            return []
        directory = benchmarks_directory(self.benchmarks_dir, base.resolve)
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

    def _train_stream(self, sample: EvalInput, config, tf):
        """The training tokens: the sample's token files when there are, else its text tokenized here."""
        if not sample.token_files:
            return tf.token_stream(sample.texts(), config)
        import torch

        tokenizer = sample.tokenizer or {}
        wanted = "gpt2" if config.vocab_size == tf.GPT2_VOCAB else f"gpt2-{config.vocab_size}"
        if tokenizer.get("name") != wanted or tokenizer.get("eos_id") != config.eot:
            raise EvaluatorError(f"the sample's token files use tokenizer {tokenizer.get('name')!r}, but tiny-lm with "
                                 f"vocab_size {config.vocab_size} needs {wanted!r} (set tokenize.tokenizer: {wanted})")
        return torch.from_numpy(sample.token_stream().astype("int64"))

    def evaluate(self, sample: EvalInput) -> dict[str, float]:
        try:
            from tamis.evaluators import transformer as tf
        except ImportError as exc:
            raise EvaluatorError(f"{INSTALL_HINT} ({exc})") from None
        started = time.perf_counter()
        device = tf.deterministic(sample.seed, self.threads, self.device)
        n_layers, d_model, n_heads, context, batch_size = self.shape("cuda" if device.type == "cuda" else "cpu")
        config = tf.ModelConfig(n_layers, d_model, n_heads, context, self.vocab_size)
        model = tf.TinyLM(config).to(device)
        stream = self._train_stream(sample, config, tf)
        losses = tf.train(model, stream, seed=sample.seed, epochs=self.epochs, batch_size=batch_size,
                          lr=self.lr, weight_decay=self.weight_decay, device=device)
        metrics: dict[str, float] = {}
        if self.reference:
            texts = reference_texts(self.reference, sample.resolve, self.reference_docs)
            metrics["ref_bpb"] = tf.bits_per_byte(model, texts, device)
        holdout = sample.holdout_texts()
        if holdout:
            metrics["val_loss"] = tf.mean_loss(model, tf.token_stream(holdout, config), device)
            metrics["val_bpb"] = tf.bits_per_byte(model, holdout, device)
        accuracies = []
        for name in self._benchmarks(sample):
            items = load_items(benchmarks_directory(self.benchmarks_dir, sample.resolve), name, self.max_items)
            metrics[f"acc_{name}"] = tf.accuracy(model, items, device)
            accuracies.append(metrics[f"acc_{name}"])
        if accuracies:
            metrics["acc_avg"] = sum(accuracies) / len(accuracies)
        if not metrics:
            raise EvaluatorError("nothing to report: no reference, no holdout text and no benchmarks_dir")
        tail = losses[-max(1, len(losses) // 10):]
        details = {"metrics": metrics, "train_tokens": len(stream), "steps": len(losses), "device": str(device),
                   "shape": {"n_layers": n_layers, "d_model": d_model, "n_heads": n_heads, "context": context,
                             "batch_size": batch_size, "vocab_size": self.vocab_size},
                   "from_token_files": bool(sample.token_files),
                   "final_train_loss": sum(tail) / len(tail), "seconds": round(time.perf_counter() - started, 2)}
        workdir = Path(sample.workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "tiny-lm.json").write_text(json.dumps(details, indent=1))
        return metrics
