"""Ablations on tokens: samples written as token files, the example nanoGPT trainer run through `command`,
tiny-lm training on the same files, and the statistics that say whether a difference is beyond seed noise."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import REPO, SAMPLE_DIR

from tamis.ablate import EvalInput, EvaluatorError, parse_ablation, run_ablation
from tamis.ablate.spec import AblationError
from tamis.ablate.stats import compare, difference, interval, t975
from tamis.evaluators.transformer import encoding_for
from tamis.tokenize.stage import tokenize_files

BASE = {"name": "base", "steps": [{"step": "trafilatura"},
                                  {"step": "language_id", "languages": ["en"], "threshold": 0.65},
                                  {"step": "token_count"}]}
TRAINER = REPO / "examples" / "train_nanogpt.py"


def ablation(**changes) -> dict:
    data = {"base": BASE, "input": str(SAMPLE_DIR / "*.warc.gz"), "token_budget": 1500, "seeds": [0, 1],
            "variants": [{"name": "base"}, {"name": "gopher", "add": [{"step": "gopher_quality",
                                                                        "after": "language_id"}]}],
            "holdout": {"fraction": 0.2, "max_tokens": 2000},
            "tokenize": {"format": "numpy", "tokenizer": "gpt2"},
            "evaluators": [{"evaluator": "command", "name": "nanogpt",
                            "command": [sys.executable, str(TRAINER), "--request", "{request}", "--steps", "15",
                                        "--context", "32", "--width", "32", "--layers", "1"]}]}
    data.update(changes)
    return data


@pytest.mark.slow
def test_the_example_trainer_runs_through_command_on_the_token_files(ray_session, tmp_path) -> None:
    pytest.importorskip("torch")
    spec = parse_ablation(ablation(), str(tmp_path / "abl.yaml"), tmp_path)
    result = run_ablation(spec, str(tmp_path / "out"), limit=12)
    assert not result.failures, result.failures
    metrics = {(r["variant"], r["seed"], r["metric"]): r["value"] for r in result.rows}
    assert {k[:2] for k in metrics} == {("base", 0), ("base", 1), ("gopher", 0), ("gopher", 1)}
    for sample in result.samples:
        key = (sample["variant"], sample["seed"])
        request = json.loads((tmp_path / "out" / "evals" / key[0] / f"seed-{key[1]}" / "nanogpt" /
                              "request.json").read_text())
        assert request["token_format"] == "numpy" and request["token_dtype"] == "uint16"
        stream = np.concatenate([np.fromfile(p, dtype=np.uint16) for p in request["token_files"]])
        # the token files are the sample: its documents, GPT-2 encoded, each followed by end-of-text
        texts = pq.read_table(sample["path"])["text"].to_pylist()
        assert len(stream) == request["token_count"] == sample["token_count"] == 1500 + len(texts)
        encoding = encoding_for(50257)
        assert stream.tolist() == [t for text in texts for t in encoding.encode_ordinary(text) + [50256]]
        assert metrics[(*key, "tokens")] == len(stream)
        assert math.isfinite(metrics[(*key, "val_loss")]) and metrics[(*key, "train_loss")] < math.log(50257)
        assert request["holdout_token_files"] and Path(request["holdout_token_files"][0]).is_file()
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert {c["metric"] for c in saved["comparisons"]} >= {"val_loss", "train_loss"}
    assert "Differences from `base`" in (tmp_path / "out" / "summary.md").read_text()


def test_tokenize_section_is_checked_before_anything_runs(tmp_path) -> None:
    with pytest.raises(AblationError, match=r"tokenize.format: expected one of datatrove, megatron, numpy"):
        parse_ablation(ablation(tokenize={"format": "arrow"}), "abl.yaml", tmp_path)
    with pytest.raises(AblationError, match=r"tokenize.tokenizer: --tokenizer 'nope'"):
        parse_ablation(ablation(tokenize={"tokenizer": "nope"}), "abl.yaml", tmp_path)
    with pytest.raises(AblationError, match=r"tokenize.shuffle: unknown key"):
        parse_ablation(ablation(tokenize={"shuffle": True}), "abl.yaml", tmp_path)


def test_tiny_lm_trains_on_the_token_files_of_any_format(tmp_path) -> None:
    pytest.importorskip("torch")
    from tamis.evaluators.tiny_lm import TinyLMEvaluator

    words = "the quick brown fox jumps over a lazy dog while seven wizards quietly judge boxing".split()
    texts = [" ".join(words[(i + j) % len(words)] for j in range(80)) + "." for i in range(30)]
    shard = tmp_path / "sample.parquet"
    pq.write_table(pa.table({"text": texts, "id": [str(i) for i in range(30)]}), shard)
    small = {"vocab_size": 1024, "d_model": 32, "n_heads": 2, "context": 32, "n_layers": 1, "epochs": 1,
             "reference_docs": 20}
    results = {}
    for fmt in ("numpy", "datatrove", "megatron"):
        info = tokenize_files([str(shard)], str(tmp_path / fmt / "part-00000"), fmt, "gpt2-1024")
        sample = EvalInput(variant=fmt, seed=0, shards=[str(shard)], token_budget=0, tokens=0, documents=30,
                           workdir=str(tmp_path / fmt / "eval"), base_dir=str(tmp_path), token_files=info["files"],
                           token_format=fmt, token_count=info["tokens"], token_dtype=info["dtype"],
                           tokenizer=info["tokenizer"])
        results[fmt] = TinyLMEvaluator(**small).evaluate(sample)
        details = json.loads((tmp_path / fmt / "eval" / "tiny-lm.json").read_text())
        assert details["from_token_files"] and details["train_tokens"] == info["tokens"]
    # the same tokens whatever the file format: the same model, the same metrics
    assert results["numpy"] == results["datatrove"] == results["megatron"]
    assert results["numpy"]["ref_bpb"] > 0
    with pytest.raises(EvaluatorError, match="needs 'gpt2-2048'"):
        TinyLMEvaluator(**{**small, "vocab_size": 2048}).evaluate(sample)


def test_t_quantiles_and_intervals_match_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    for df in [1, 2, 3, 4, 5, 9, 29, 30, 31, 45, 100, 1000]:
        assert t975(df) == pytest.approx(stats.t.ppf(0.975, df), rel=2e-4), df
    for df in (2.5, 7.3, 30.5):  # Welch's fractional df below 31: rounded down, a slightly wider interval
        assert t975(df) == t975(math.floor(df)) >= stats.t.ppf(0.975, df)
    values = [0.31, 0.29, 0.335, 0.30]
    low, high = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
    assert interval(values) == pytest.approx((high - low) / 2, rel=3e-4)  # the table has 3 decimals


def test_paired_difference_and_its_verdict() -> None:
    stats = pytest.importorskip("scipy.stats")
    a = {0: 3.10, 1: 3.30, 2: 3.05, 3: 3.21}
    b = {0: 3.00, 1: 3.22, 2: 2.93, 3: 3.13}  # lower by about 0.1 at every seed, while seeds vary by 0.25
    paired = difference(a, b)
    deltas = [b[s] - a[s] for s in a]
    low, _ = stats.t.interval(0.95, 3, loc=np.mean(deltas), scale=stats.sem(deltas))
    assert paired["method"] == "paired" and paired["difference"] == pytest.approx(np.mean(deltas))
    assert paired["low"] == pytest.approx(low, rel=1e-3) and paired["excludes_zero"]
    welch = difference(a, {5: 3.00, 6: 3.22, 7: 2.93, 8: 3.13})  # other seeds: not paired
    expected = stats.ttest_ind(list(a.values()), [3.00, 3.22, 2.93, 3.13], equal_var=False)
    assert welch["method"] == "welch" and not welch["excludes_zero"] and expected.pvalue > 0.05
    rows = [{"variant": v, "seed": s, "evaluator": "e", "metric": "m", "value": x}
            for v, d in (("a", a), ("b", b)) for s, x in d.items()]
    [row] = compare(rows, ["a", "b"])
    assert row["variant"] == "b" and row["against"] == "a" and row["excludes_zero"]


def test_the_example_ablation_runs_from_the_repository_alone() -> None:
    """Its corpus, benchmarks and reference text ship in the repository or the package: nothing from ../shared."""
    import glob

    from tamis.ablate.spec import load_ablation
    from tamis.evaluators.benchmarks import (
        BENCHMARKS,
        LAMBADA,
        benchmark_file,
        load_items,
        packaged_dir,
        reference_texts,
    )

    pytest.importorskip("torch", reason="the example uses tiny-lm")
    spec = load_ablation(REPO / "pipelines" / "ablation-recipe.yaml")
    for pattern in spec.inputs:
        files = glob.glob(pattern)
        assert files and all(Path(f).resolve().is_relative_to(REPO) for f in files), pattern
    params = spec.evaluators[0].params
    assert params["benchmarks_dir"] == "packaged" and params["reference"] == LAMBADA
    assert spec.tokenize is not None and spec.tokenize.tokenizer == f"gpt2-{params['vocab_size']}"
    shipped = [name for name in BENCHMARKS if name != "sciq"]  # SciQ's licence is non-commercial: not shipped
    for name in shipped:
        items = load_items(packaged_dir(), name, 100)
        assert len(items) == 100 and all(0 <= item.gold < len(item.requests) for item in items)
    with pytest.raises(FileNotFoundError):
        benchmark_file(packaged_dir(), "sciq")
    passages = reference_texts(LAMBADA, str)
    assert len(passages) == 1000 and len(set(passages)) == 1000
    assert (packaged_dir() / "PROVENANCE.md").is_file()
