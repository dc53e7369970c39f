"""The tiny-lm evaluator (torch): it must tell real text from the same words shuffled, and be reproducible."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import SHARED

from tamis.ablate import EvalInput
from tamis.evaluators.tiny_lm import TinyLMEvaluator

torch = pytest.importorskip("torch", reason="tiny-lm needs torch: pip install '.[proxy]'")
pytestmark = pytest.mark.proxy

ARTICLES = SHARED / "extraction" / "scrapinghub_aeb" / "ground-truth.json"
BENCHMARKS_DIR = SHARED / "benchmarks"
# small enough for a few seconds of CPU per training on 2 cores, large enough to learn word order (vocabulary
# 2,048 and one epoch: real text 0.52 lower validation loss than shuffled, 0.26 fewer bits per byte on its own
# holdout and 0.047 on LAMBADA; two epochs gave 0.54 and 0.09 on LAMBADA, in twice the time)
SMALL = {"reference_docs": 100, "vocab_size": 2048, "d_model": 64, "n_heads": 4, "context": 64, "epochs": 1,
         "batch_size": 8, "lr": 3e-3}


def articles() -> list[str]:
    if not ARTICLES.is_file():
        pytest.skip(f"shared article text not found at {ARTICLES}")
    data = json.loads(ARTICLES.read_text())
    return [data[key]["articleBody"] for key in sorted(data) if len(data[key]["articleBody"]) > 500]


def shuffled_words(text: str, rng: random.Random) -> str:
    words = text.split()
    rng.shuffle(words)
    return " ".join(words)


def write(path: Path, texts: list[str]) -> str:
    ids = [f"doc-{i}" for i in range(len(texts))]
    pq.write_table(pa.table({"text": texts, "id": ids}), path)
    return str(path)


def sample_of(tmp_path: Path, name: str, texts: list[str], holdout: str, seed: int = 0) -> EvalInput:
    return EvalInput(variant=name, seed=seed, shards=[write(tmp_path / f"{name}.parquet", texts)],
                     token_budget=0, tokens=0, documents=len(texts), holdout=[holdout],
                     workdir=str(tmp_path / name / str(seed)), base_dir=str(tmp_path))


@pytest.fixture(scope="module")
def texts() -> tuple[list[str], list[str]]:
    docs = articles()
    return docs[:60], docs[150:165]


@pytest.mark.slow
def test_real_text_scores_better_than_the_same_words_shuffled(tmp_path: Path, texts) -> None:
    train, held = texts
    holdout = write(tmp_path / "holdout.parquet", held)
    rng = random.Random(0)
    evaluator = TinyLMEvaluator(benchmarks_dir=str(BENCHMARKS_DIR), benchmarks=["piqa"], max_items=20, **SMALL)
    good = evaluator.evaluate(sample_of(tmp_path, "good", train, holdout))
    bad = evaluator.evaluate(sample_of(tmp_path, "shuffled", [shuffled_words(t, rng) for t in train], holdout))
    # same words, same amount of text: only word order differs, and the model must have learnt it
    assert good["val_loss"] < bad["val_loss"] - 0.1, (good, bad)
    # and on the shipped LAMBADA passages (fiction, not these articles), in bits per byte
    assert good["ref_bpb"] < bad["ref_bpb"] and good["val_bpb"] < bad["val_bpb"], (good, bad)
    assert 0.0 <= good["acc_piqa"] <= 1.0 and good["acc_avg"] == good["acc_piqa"]
    details = json.loads((tmp_path / "good" / "0" / "tiny-lm.json").read_text())
    assert details["device"] == "cpu" and details["steps"] > 10


def test_same_seed_same_metrics_other_seed_other_metrics(tmp_path: Path, texts) -> None:
    train, held = texts
    holdout = write(tmp_path / "holdout.parquet", held)
    evaluator = TinyLMEvaluator(benchmarks_dir=str(BENCHMARKS_DIR), benchmarks=["arc_easy"], max_items=20,
                                **SMALL)
    first = evaluator.evaluate(sample_of(tmp_path, "a", train[:20], holdout, seed=5))
    again = evaluator.evaluate(sample_of(tmp_path, "a", train[:20], holdout, seed=5))
    other = evaluator.evaluate(sample_of(tmp_path, "a", train[:20], holdout, seed=6))
    assert first.keys() == again.keys() == {"ref_bpb", "val_loss", "val_bpb", "acc_arc_easy", "acc_avg"}
    for key in first:
        assert first[key] == pytest.approx(again[key], abs=1e-6)
    assert first["val_loss"] != pytest.approx(other["val_loss"], abs=1e-6)


def test_zero_shot_scoring_prefers_the_continuation_the_model_has_seen(tmp_path: Path) -> None:
    from tamis.evaluators import transformer as tf

    device = tf.deterministic(0, 1, "cpu")
    config = tf.ModelConfig(n_layers=1, d_model=32, n_heads=2, context=32, vocab_size=1024)
    model = tf.TinyLM(config)
    sentence = "the cat sat on the mat and looked at the garden."
    tf.train(model, tf.token_stream([sentence] * 200, config), seed=0, epochs=2, batch_size=8, lr=1e-2,
             weight_decay=0.0, device=device)
    seen, unseen = tf.choice_scores(model, [("the cat sat on the", " mat"), ("the cat sat on the", " moon")], device)
    assert seen > unseen


def test_bits_per_byte_of_an_untrained_model_is_log2_vocab_per_token() -> None:
    """Near-uniform predictions cost log2(V) bits per token: bpb = log2(V) x predicted tokens / bytes."""
    import math

    from tamis.evaluators import transformer as tf
    from tamis.evaluators.benchmarks import LAMBADA, reference_texts

    device = tf.deterministic(0, 1, "cpu")
    config = tf.ModelConfig(n_layers=1, d_model=32, n_heads=2, context=32, vocab_size=1024)
    texts = reference_texts(LAMBADA, str, 40)
    assert len(texts) == 40 and all(len(t) > 100 for t in texts)
    tokens = sum(len(config.encoding().encode_ordinary(t)) for t in texts)
    expected = math.log2(1024) * tokens / sum(len(t.encode()) for t in texts)
    assert tf.bits_per_byte(tf.TinyLM(config), texts, device) == pytest.approx(expected, rel=0.02)
