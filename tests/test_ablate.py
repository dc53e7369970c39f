"""`tamis ablate`: the ablation file, shared-prefix planning, deterministic sampling, the evaluator contract,
the command hook with a fake trainer, a failing evaluator, and a small ablation end to end on Ray."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from conftest import REPO, SAMPLE_DIR, SHARED
from ray import cloudpickle

from tamis.ablate import EvalInput, Evaluator, EvaluatorError, parse_ablation, register_evaluator, run_ablation
from tamis.ablate.plan import common_ancestor, plan_stages, variant_stages
from tamis.ablate.runner import _evaluate
from tamis.ablate.sampling import NotEnoughTokensError, is_holdout, rank_key, sample_tokens
from tamis.ablate.spec import AblationError, load_ablation
from tamis.annotate.tokens import count_tokens
from tamis.cli.main import cli
from tamis.evaluators.benchmarks import BENCHMARKS, load_items
from tamis.evaluators.command import CommandEvaluator
from tamis.io.parquet import FINEWEB_SCHEMA

# evaluators defined here must reach Ray workers, which cannot import test modules
cloudpickle.register_pickle_by_value(sys.modules[__name__])

BASE = {
    "name": "base",
    "steps": [
        {"step": "trafilatura"},
        {"step": "language_id", "languages": ["en"], "threshold": 0.65},
        {"step": "token_count"},
    ],
}
WORDS = ("the quick brown fox jumps over a lazy dog while seven wizards quietly judge boxing matches near "
         "old river banks under grey autumn skies").split()

FAKE_TRAINER = textwrap.dedent("""
    import json, os, sys
    import pyarrow.parquet as pq
    request = json.load(open(os.environ["TAMIS_ABLATE_REQUEST"]))
    if request["variant"] == sys.argv[1]:
        print("CUDA error: out of memory (simulated)", file=sys.stderr)
        sys.exit(7)
    texts = [t for path in request["shards"] for t in pq.read_table(path)["text"].to_pylist()]
    metrics = {"docs": len(texts), "chars_per_doc": sum(map(len, texts)) / len(texts),
               "budget": request["token_budget"]}
    json.dump({"metrics": metrics}, open(request["metrics_path"], "w"))
""")


@register_evaluator("test-doc-length")
class DocLength(Evaluator):
    """Mean characters per sampled document; raises for `fail_on` (a failing evaluator)."""

    def __init__(self, fail_on: str | None = None):
        self.fail_on = fail_on

    def evaluate(self, sample: EvalInput) -> dict[str, float]:
        if sample.variant == self.fail_on:
            raise EvaluatorError(f"refusing {sample.variant}")
        texts = sample.texts()
        return {"mean_chars": sum(map(len, texts)) / len(texts), "tokens": sample.tokens}


def ablation(**changes) -> dict:
    data = {
        "base": BASE,
        "input": str(SAMPLE_DIR / "*.warc.gz"),
        "token_budget": 1000,
        "seeds": [0, 1],
        "variants": [{"name": "base"}, {"name": "gopher", "add": [{"step": "gopher_quality", "after": "language_id"}]}],
        "evaluators": [{"evaluator": "test-doc-length"}],
    }
    data.update(changes)
    return data


def write_shard(path: Path, docs: list[tuple[str, str]]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    n = len(docs)
    columns = {name: [None] * n for name in FINEWEB_SCHEMA.names}
    columns["id"] = [doc_id for doc_id, _ in docs]
    columns["text"] = [text for _, text in docs]
    columns["token_count"] = count_tokens(columns["text"])
    pq.write_table(pa.table(columns, schema=FINEWEB_SCHEMA), path)
    return str(path)


def documents(n: int, words: int = 60) -> list[tuple[str, str]]:
    return [(f"<urn:doc:{i}>", " ".join(WORDS[(i * 7 + j) % len(WORDS)] for j in range(words)) + ".")
            for i in range(n)]


# -- the ablation file ------------------------------------------------------------------------------------


def test_variants_apply_add_remove_and_set() -> None:
    spec = parse_ablation(ablation(variants=[
        {"name": "base"},
        {"name": "gopher", "add": [{"step": "gopher_quality", "after": "language_id"}]},
        {"name": "first", "add": [{"step": "url_filter", "before": "trafilatura"}]},
        {"name": "no-lid", "remove": ["language_id"]},
        {"name": "strict", "set": {"language_id": {"threshold": 0.9}}},
    ]))
    steps = {v.name: [s.name for s in v.pipeline.steps] for v in spec.variants}
    assert steps["base"] == ["trafilatura", "language_id", "token_count"]
    assert steps["gopher"] == ["trafilatura", "language_id", "gopher_quality", "token_count"]
    assert steps["first"] == ["url_filter", "trafilatura", "language_id", "token_count"]
    assert steps["no-lid"] == ["trafilatura", "token_count"]
    strict = next(v for v in spec.variants if v.name == "strict")
    assert strict.pipeline.steps[1].params["threshold"] == 0.9
    assert strict.changes == ("language_id: threshold=0.9",)
    assert spec.variants[0].pipeline.steps[1].params["threshold"] == 0.65  # the base is not modified


@pytest.mark.parametrize("change, message", [
    ({"variants": [{"name": "x", "remove": ["gopher"]}]},
     "variants[0] (x).remove[0]: no step named 'gopher' in the pipeline (steps: trafilatura, language_id"),
    ({"variants": [{"name": "x", "set": {"language_id": {"threshhold": 0.8}}}]},
     "variants[0] (x): steps[1] (language_id).threshhold: unknown parameter. Did you mean 'threshold'?"),
    ({"variants": [{"name": "x", "add": [{"step": "gopher_qualty"}]}]}, "did you mean 'gopher_quality'?"),
    ({"variants": [{"name": "x", "rmove": ["language_id"]}]}, "variants[0]: unknown key 'rmove'"),
    ({"variants": [{"name": "x"}, {"name": "x"}]}, "variants[1].name: 'x' is used twice"),
    ({"evaluators": [{"evaluator": "tiny_lm"}]}, "evaluators[0].evaluator: unknown evaluator 'tiny_lm'; did you mean"),
    ({"evaluators": [{"evaluator": "command", "comand": "x"}]}, "evaluators[0] (command).comand: unknown parameter"),
    ({"evaluators": [{"evaluator": "command"}]}, "evaluators[0] (command).command: required parameter is missing"),
    ({"token_budget": -5}, "token_budget: expected a positive integer or 'auto'"),
    ({"seeds": [1, 1]}, "seeds: expected a non-empty list of distinct integers"),
    ({"holdout": {"fraction": 2}}, "holdout.fraction: expected a number in [0, 1)"),
    ({"budget": 10}, "unknown top-level key 'budget'"),
])
def test_errors_name_the_field(change: dict, message: str) -> None:
    with pytest.raises(AblationError) as error:
        parse_ablation(ablation(**change), "abl.yaml", ".")
    assert message in str(error.value)
    assert str(error.value).startswith("abl.yaml")


def test_tiny_lm_without_torch_says_how_to_install(monkeypatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    with pytest.raises(AblationError, match=r"evaluators\[0\] \(tiny-lm\): .*pip install 'tamis\[proxy\]'"):
        parse_ablation(ablation(evaluators=[{"evaluator": "tiny-lm"}]))


def test_example_ablation_file_is_valid() -> None:
    pytest.importorskip("torch", reason="the example uses tiny-lm: pip install '.[proxy]'")
    spec = load_ablation(REPO / "pipelines" / "ablation-gopher-quality.yaml")
    assert [v.name for v in spec.variants] == ["fineweb", "no-gopher-quality"]
    assert "gopher_quality" not in [s.name for s in spec.variants[1].pipeline.steps]
    assert Path(spec.evaluators[0].params["benchmarks_dir"]).is_absolute() is False


# -- sharing work --------------------------------------------------------------------------------------------


def test_variants_share_their_common_prefix() -> None:
    spec = parse_ablation(ablation(variants=[
        {"name": "base"},
        {"name": "gopher", "add": [{"step": "gopher_quality", "after": "language_id"}]},
        {"name": "no-lid", "remove": ["language_id"]},
        {"name": "same-as-base"},
    ]))
    stages = plan_stages("t", spec.variants, spec.inputs)
    described = [(s.parent.key if s.parent else None, [x.name for x in s.spec.steps], s.variants) for s in stages]
    shared = stages[0]
    assert described[0] == (None, ["trafilatura"], [])  # extraction runs once for all four variants
    assert shared.spec.reader.step == "warc"
    lid = stages[1]
    assert described[1] == (shared.key, ["language_id"], [])  # language ID once for three of them
    assert lid.spec.reader.step == "parquet_input"
    assert (lid.key, ["token_count"], ["base", "same-as-base"]) in described
    assert (lid.key, ["gopher_quality", "token_count"], ["gopher"]) in described
    assert (shared.key, ["token_count"], ["no-lid"]) in described
    assert len(stages) == 5
    assert common_ancestor(stages) is shared
    assert set(variant_stages(stages)) == {"base", "gopher", "no-lid", "same-as-base"}


def test_variants_that_differ_before_extraction_run_from_the_input() -> None:
    spec = parse_ablation(ablation(variants=[
        {"name": "base"},
        {"name": "url", "add": [{"step": "url_filter", "before": "trafilatura"}]},
    ]))
    stages = plan_stages("t", spec.variants, spec.inputs)
    assert [(s.parent, s.spec.reader.step, len(s.spec.steps)) for s in stages] == [(None, "warc", 3), (None, "warc", 4)]
    assert common_ancestor(stages) is None


# -- deterministic sampling ------------------------------------------------------------------------------------


def test_sampling_is_deterministic_and_exact(tmp_path: Path) -> None:
    docs = documents(40)
    shard = write_shard(tmp_path / "a.parquet", docs)
    first = sample_tokens([shard], 1234, 0, str(tmp_path / "s1.parquet"))
    again = sample_tokens([shard], 1234, 0, str(tmp_path / "s2.parquet"))
    other = sample_tokens([shard], 1234, 1, str(tmp_path / "s3.parquet"))
    assert first.tokens == again.tokens == other.tokens == 1234
    assert first.ids_sha256 == again.ids_sha256 != other.ids_sha256
    table = pq.read_table(first.path)
    assert sum(count_tokens(table["text"].to_pylist())) == 1234  # re-counted, not trusted
    assert table["token_count"].to_pylist() == count_tokens(table["text"].to_pylist())
    assert table.schema.equals(FINEWEB_SCHEMA, check_metadata=False)
    original = dict(docs)
    texts = table["text"].to_pylist()
    assert all(original[i] == t for i, t in zip(table["id"].to_pylist()[:-1], texts[:-1], strict=True))
    assert original[table["id"][-1].as_py()].startswith(texts[-1]) and texts[-1] != original[table["id"][-1].as_py()]


def test_sample_depends_on_documents_not_on_shards(tmp_path: Path) -> None:
    docs = documents(30)
    whole = write_shard(tmp_path / "whole.parquet", docs)
    parts = [write_shard(tmp_path / "p1.parquet", docs[20:]), write_shard(tmp_path / "p2.parquet", docs[:20])]
    a = sample_tokens([whole], 700, 3, str(tmp_path / "a.parquet"))
    b = sample_tokens(parts, 700, 3, str(tmp_path / "b.parquet"))
    assert a.ids_sha256 == b.ids_sha256
    # a document's rank depends only on its id and the seed: a filtered variant's sample is the same ranking
    # with the removed documents left out
    kept = [d for i, d in enumerate(docs) if i % 3]
    c = sample_tokens([write_shard(tmp_path / "kept.parquet", kept)], 700, 3, str(tmp_path / "c.parquet"))
    ranked_kept = [doc_id for doc_id in sorted((d[0] for d in docs), key=lambda i: rank_key(3, i))
                   if doc_id in dict(kept)]
    ids_c = pq.read_table(c.path)["id"].to_pylist()
    assert ids_c == ranked_kept[:len(ids_c)]


def test_rehydrated_sample_repeats_documents_by_cluster_size(tmp_path: Path) -> None:
    # FineWeb-2's upsampling: cluster size N -> 1, 2, 3, 3 (N=4), 5 (5 <= N < 100), 8 (100 <= N < 1000), 1 (N >= 1000)
    sizes = [1, 2, 3, 4, 7, 150, 2000]
    docs = documents(len(sizes), words=20)
    table = pq.read_table(write_shard(tmp_path / "plain.parquet", docs))
    shard = tmp_path / "clusters.parquet"
    pq.write_table(table.append_column("minhash_cluster_size", pa.array(sizes, pa.int64())), shard)
    weights = [1, 2, 3, 3, 5, 8, 1]
    budget = sum(w * c for w, c in zip(weights, table["token_count"].to_pylist(), strict=True))
    sample = sample_tokens([str(shard)], budget, 5, str(tmp_path / "s.parquet"), rehydrate=True)
    ids = pq.read_table(sample.path)["id"].to_pylist()
    assert sample.tokens == budget
    assert [ids.count(doc_id) for doc_id, _ in docs] == weights
    assert ids != sorted(ids, key=[d for d, _ in docs].index)  # copies are spread by rank, not grouped in order
    with pytest.raises(ValueError, match="minhash_cluster_size"):
        sample_tokens([str(tmp_path / "plain.parquet")], 10, 5, str(tmp_path / "t.parquet"), rehydrate=True)
    assert parse_ablation(ablation(rehydrate=True)).rehydrate is True
    with pytest.raises(AblationError, match="rehydrate"):
        parse_ablation(ablation(rehydrate="yes"))


def test_holdout_documents_are_never_sampled_and_budget_is_enforced(tmp_path: Path) -> None:
    docs = documents(50)
    shard = write_shard(tmp_path / "a.parquet", docs)
    held = {doc_id for doc_id, _ in docs if is_holdout(doc_id, 0.3)}
    assert 0 < len(held) < 50
    sample = sample_tokens([shard], 1500, 0, str(tmp_path / "s.parquet"), holdout_fraction=0.3)
    assert not held & set(pq.read_table(sample.path)["id"].to_pylist())
    with pytest.raises(NotEnoughTokensError, match="fewer than the budget of 100000"):
        sample_tokens([shard], 100_000, 0, str(tmp_path / "t.parquet"))


# -- evaluators --------------------------------------------------------------------------------------------------


def eval_input(tmp_path: Path, variant: str = "v", docs: int = 5) -> EvalInput:
    shard = write_shard(tmp_path / f"{variant}.parquet", documents(docs))
    return EvalInput(variant=variant, seed=0, shards=[shard], token_budget=300, tokens=300, documents=docs,
                     workdir=str(tmp_path / "work" / variant), base_dir=str(tmp_path))


def test_evaluator_contract(tmp_path: Path) -> None:
    spec = parse_ablation(ablation(evaluators=[{"evaluator": "test-doc-length", "name": "len"}])).evaluators[0]
    assert spec.name == "len" and spec.params == {"fail_on": None}
    metrics = _evaluate(spec, eval_input(tmp_path))
    assert metrics == {"mean_chars": pytest.approx(sum(len(t) for _, t in documents(5)) / 5), "tokens": 300.0}
    failing = parse_ablation(ablation(evaluators=[{"evaluator": "test-doc-length", "fail_on": "v"}])).evaluators[0]
    with pytest.raises(EvaluatorError, match="refusing v"):
        _evaluate(failing, eval_input(tmp_path))


@pytest.mark.parametrize("returned", [{}, {"loss": "low"}, {"loss": float("nan")}, [1.0]])
def test_evaluate_rejects_what_is_not_metrics(tmp_path: Path, returned) -> None:
    @register_evaluator("test-bad-metrics")
    class Bad(Evaluator):
        def evaluate(self, sample: EvalInput):
            return returned

    spec = parse_ablation(ablation(evaluators=["test-bad-metrics"])).evaluators[0]
    spec = type(spec)(spec.evaluator, spec.name, spec.params, Bad)
    with pytest.raises(EvaluatorError):
        _evaluate(spec, eval_input(tmp_path))


def test_command_hook_passes_shards_and_reads_metrics(tmp_path: Path) -> None:
    script = tmp_path / "fake_trainer.py"
    script.write_text(FAKE_TRAINER)
    evaluator = CommandEvaluator(f"{sys.executable} {script} nobody --tag {{variant}}-{{seed}}")
    sample = eval_input(tmp_path, docs=4)
    metrics = evaluator.evaluate(sample)
    assert metrics == {"docs": 4, "chars_per_doc": sum(len(t) for _, t in documents(4)) / 4, "budget": 300}
    request = json.loads((Path(sample.workdir) / "request.json").read_text())
    assert request["shards"] == sample.shards and request["token_budget"] == 300


def test_command_hook_reports_failures(tmp_path: Path) -> None:
    script = tmp_path / "fake_trainer.py"
    script.write_text(FAKE_TRAINER)
    with pytest.raises(EvaluatorError, match=r"exited with status 7: CUDA error: out of memory \(simulated\)"):
        CommandEvaluator([sys.executable, str(script), "v"]).evaluate(eval_input(tmp_path))
    with pytest.raises(EvaluatorError, match="wrote no metrics file"):
        CommandEvaluator([sys.executable, "-c", "pass"]).evaluate(eval_input(tmp_path))
    with pytest.raises(EvaluatorError, match="command not found"):
        CommandEvaluator("no-such-trainer-binary").evaluate(eval_input(tmp_path))
    with pytest.raises(EvaluatorError, match="timed out"):
        CommandEvaluator([sys.executable, "-c", "import time; time.sleep(5)"], timeout=0.5).evaluate(
            eval_input(tmp_path))


@pytest.mark.parametrize("name", BENCHMARKS)
def test_every_benchmark_file_parses(name: str) -> None:
    directory = SHARED / "benchmarks"
    if not directory.is_dir():
        pytest.skip(f"benchmarks not found at {directory}")
    items = load_items(directory, name, 50)
    assert len(items) == 50
    for item in items:
        assert len(item.requests) >= 2 and 0 <= item.gold < len(item.requests)
        assert all(context and continuation.strip() for context, continuation in item.requests)


# -- end to end ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_ablation(ray_session, tmp_path_factory):
    root = tmp_path_factory.mktemp("ablate")
    script = root / "fake_trainer.py"
    script.write_text(FAKE_TRAINER)
    data = ablation(evaluators=[
        {"evaluator": "command", "name": "trainer", "command": [sys.executable, str(script), "gopher"]},
        {"evaluator": "test-doc-length", "name": "length"},
    ], holdout={"fraction": 0.2, "max_tokens": 2000})
    spec = parse_ablation(data, str(root / "abl.yaml"), root)
    first = run_ablation(spec, str(root / "out"), limit=12)
    second = run_ablation(spec, str(root / "out"), limit=12)
    return root / "out", first, second


@pytest.mark.slow
def test_ablation_runs_every_variant_and_keeps_going_after_a_failure(small_ablation) -> None:
    output, result, _ = small_ablation
    assert result.token_budget == 1000
    stages = {s["stage"].split("-")[0]: s for s in result.stages}
    assert stages["shared"]["steps"] == ["trafilatura", "language_id"]
    assert stages["gopher"]["steps"] == ["gopher_quality", "token_count"] and stages["gopher"]["inputs"] >= 1
    # the command evaluator fails for `gopher` (simulated), on both seeds; everything else has metrics
    assert sorted((f["variant"], f["seed"], f["evaluator"]) for f in result.failures) == [
        ("gopher", 0, "trainer"), ("gopher", 1, "trainer")]
    assert all("exited with status 7" in f["error"] for f in result.failures)
    got = {(r["variant"], r["seed"], r["evaluator"], r["metric"]) for r in result.rows}
    assert ("gopher", 1, "length", "mean_chars") in got and ("base", 0, "trainer", "docs") in got
    assert all(r["value"] == 1000 for r in result.rows if r["metric"] in ("budget", "tokens"))
    table = pq.read_table(output / "results.parquet")
    assert table.column_names == ["variant", "seed", "evaluator", "metric", "value"]
    assert table.num_rows == len(result.rows)
    saved = json.loads((output / "results.json").read_text())
    assert len(saved["failures"]) == 2 and saved["token_budget"] == 1000
    assert {(s["variant"], s["metric"]) for s in saved["summary"]} >= {("base", "mean_chars"), ("gopher", "mean_chars")}
    html = (output / "report.html").read_text()
    assert "<table>" in html and "exited with status 7" in html
    if (output / "chart.png").exists():
        assert (output / "chart.png").read_bytes()[:4] == b"\x89PNG" and "data:image/png;base64," in html
    assert "| base |" in (output / "summary.md").read_text()


def test_same_seeds_give_the_same_samples_and_metrics(small_ablation) -> None:
    _, first, second = small_ablation
    assert [s["ids_sha256"] for s in first.samples] == [s["ids_sha256"] for s in second.samples]
    by_variant: dict[str, set[str]] = {}
    for sample in first.samples:
        by_variant.setdefault(sample["variant"], set()).add(sample["ids_sha256"])
    assert {name: len(ids) for name, ids in by_variant.items()} == {"base": 2, "gopher": 2}  # seeds differ
    assert first.rows == second.rows
    assert all(s.get("skipped_committed") for s in second.stages)  # the rerun reused every committed stage


def test_holdout_is_shared_and_excluded(small_ablation) -> None:
    output, result, _ = small_ablation
    holdout = set(pq.read_table(output / "samples" / "holdout.parquet")["id"].to_pylist())
    assert holdout
    for sample in result.samples:
        assert not holdout & set(pq.read_table(sample["path"])["id"].to_pylist())


def test_cli_rejects_a_bad_ablation_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(json.dumps(ablation(variants=[{"name": "x", "remove": ["nothing"]}])))
    result = CliRunner().invoke(cli, ["ablate", str(path), "--output", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "no step named 'nothing'" in result.output


def test_parquet_input_reads_every_row_once_across_byte_ranges(tmp_path: Path) -> None:
    from tamis.readers.parquet_input import ParquetInputReader
    from tamis.stats.counters import StepCounters

    docs = documents(50, words=5)
    path = tmp_path / "shard.parquet"
    columns = {name: [None] * 50 for name in FINEWEB_SCHEMA.names}
    columns.update(id=[d[0] for d in docs], text=[d[1] for d in docs], dump=["CC-MAIN-2024-22"] * 50)
    pq.write_table(pa.table(columns, schema=FINEWEB_SCHEMA), path, row_group_size=7)
    reader = ParquetInputReader(batch_size=4)
    whole = [i for b in reader.iter_batches(str(path), StepCounters()) for i in b["id"]]
    assert whole == [d[0] for d in docs]
    size = path.stat().st_size
    edges = [0, size // 3, 2 * size // 3, size]
    parts = [i for k in range(3) for b in reader.iter_batches(str(path), StepCounters(), None, (edges[k], edges[k + 1]))
             for i in b["id"]]
    assert parts == whole
    counters = StepCounters()
    limited = [b for b in reader.iter_batches(str(path), counters, 10)]
    assert sum(len(b) for b in limited) == 10 == counters.docs_out
    assert limited[0]["dump"][0] == "CC-MAIN-2024-22" and "html" not in limited[0]


def test_an_ablation_file_with_a_key_given_twice_is_refused(tmp_path: Path) -> None:
    text = (REPO / "pipelines" / "ablation-gopher-quality.yaml").read_text()
    assert "\nbase:" in text
    path = tmp_path / "twice.yaml"
    path.write_text(text + "\nbase: pipelines/fineweb.yaml\n")  # the top-level `base` a second time
    with pytest.raises(AblationError, match=r"key 'base' is given twice \(first on line \d+\)"):
        load_ablation(path)
