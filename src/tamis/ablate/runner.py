"""`tamis ablate`: run every variant, sample the same token budget from each, evaluate, compare.

    <output>/
      stages/<stage>/               one `tamis run` output per pipeline stage (shared prefixes run once)
      samples/<variant>/seed-<n>.parquet   each variant's sampled documents (+ .json: ids hash, tokens)
      samples/holdout.parquet       validation documents, the same for every variant
      tokens/<variant>/seed-<n>/    with `tokenize:`: the sample as token files (tokens/holdout/: the holdout)
      evals/<variant>/seed-<n>/<evaluator>/   each evaluation's work directory
      results.parquet               one row per (variant, seed, evaluator, metric)
      results.json                  the same, plus failures, samples, stages and the summary
      chart.png, report.html        metric per variant, mean and spread over seeds
      ablation.json                 the resolved ablation and its plan

The driver only plans and collects: pipelines, sampling and evaluations are Ray tasks that return paths
and a few numbers. Reruns into the same output reuse committed pipeline stages.
"""

from __future__ import annotations

import gzip
import json
import math
import posixpath
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import ray
from rich.console import Console

from tamis.ablate.evaluator import EvalInput, EvaluatorError
from tamis.ablate.plan import Stage, common_ancestor, plan_stages, variant_stages
from tamis.ablate.report import write_report
from tamis.ablate.sampling import available_tokens, holdout_documents, sample_path, sample_tokens
from tamis.ablate.spec import AblationSpec, EvaluatorSpec
from tamis.ablate.stats import compare, interval
from tamis.display import line, stderr_console
from tamis.engine.ray_runtime import connect, disconnect
from tamis.engine.runner import run_pipeline
from tamis.io.storage import filesystem, write_json
from tamis.tokenize.stage import tokenize_files

RESULT_COLUMNS = ("variant", "seed", "evaluator", "metric", "value")


@dataclass
class AblationResult:
    output: str
    token_budget: int | None = None
    stages: list[dict[str, Any]] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    summary: list[dict[str, Any]] = field(default_factory=list)
    comparisons: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures


def _last_line(exc: BaseException) -> str:
    if isinstance(exc, ray.exceptions.RayTaskError) and exc.cause is not None:
        exc = exc.cause
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[-1] if lines else repr(exc)}"


def _shards(fs: Any, output: str) -> list[str]:
    _, root = filesystem(output)
    return sorted(fs.glob(posixpath.join(root, "data", "*", "*.parquet")))


def _run_stages(spec: AblationSpec, stages: list[Stage], output: str, workers: int | None, limit: int | None,
                console: Console, show_progress: bool, result: AblationResult) -> dict[str, str]:
    """Runs the stages; returns {stage key: why it failed} for stages whose output cannot be used."""
    fs, _ = filesystem(output)
    broken: dict[str, str] = {}
    for stage in stages:
        started = time.perf_counter()
        if stage.parent is not None and stage.parent.key in broken:
            broken[stage.key] = broken[stage.parent.key]
            continue
        inputs = list(spec.inputs) if stage.parent is None else _shards(fs, stage.parent.output(output))
        info = {**stage.describe(), "inputs": len(inputs)}
        what = f"{len(inputs)} shard(s) of {stage.parent.key}" if stage.parent else f"{len(inputs)} input pattern(s)"
        console.print(line(f"stage {stage.key}: {', '.join(info['steps']) or '(no steps)'} on {what}"))
        if inputs:
            run = run_pipeline(stage.spec, inputs, stage.output(output), workers=workers,
                               limit=limit if stage.parent is None else None, console=console,
                               show_progress=show_progress)
            info.update(kept=run.totals.get("kept", 0), tokens=run.totals.get("tokens", 0),
                        skipped_committed=len(run.skipped), failed=run.failed)
            if run.failed:
                broken[stage.key] = f"pipeline stage {stage.key} failed on {len(run.failed)} input(s)"
        else:
            info.update(kept=0, tokens=0)
        info["seconds"] = round(time.perf_counter() - started, 3)
        result.stages.append(info)
    return broken


def _holdout_texts(files: tuple[str, ...]) -> list[str]:
    texts: list[str] = []
    for path in files:
        if path.endswith(".parquet"):
            texts += [t for t in pq.read_table(path, columns=["text"])["text"].to_pylist() if t]
        elif path.endswith((".jsonl", ".jsonl.gz")):
            opener = gzip.open if path.endswith(".gz") else open
            with opener(path, "rt", encoding="utf-8") as handle:
                texts += [json.loads(line)["text"] for line in handle if line.strip()]
        else:
            texts.append(Path(path).read_text(encoding="utf-8"))
    return texts


def _prepare_holdout(spec: AblationSpec, stages: list[Stage], leaves: dict[str, Stage], output: str) -> list[str]:
    fs, root = filesystem(output)
    path = posixpath.join(root, "samples", "holdout.parquet")
    if spec.holdout.files:
        texts = _holdout_texts(spec.holdout.files)
        fs.makedirs(posixpath.dirname(path), exist_ok=True)
        ids = [f"holdout-{i}" for i in range(len(texts))]
        pq.write_table(pa.table({"text": texts, "id": ids}), path)
        return [path]
    if spec.holdout.fraction <= 0 or spec.holdout.max_tokens <= 0:
        return []
    source = common_ancestor(stages) or leaves[spec.variants[0].name]
    shards = _shards(fs, source.output(output))
    if not shards:
        return []
    task = ray.remote(holdout_documents).options(num_cpus=1)
    ray.get(task.remote(shards, spec.holdout.fraction, spec.holdout.max_tokens, path))
    return [path]


def _evaluate(evaluator: EvaluatorSpec, sample: EvalInput) -> dict[str, float]:
    Path(sample.workdir).mkdir(parents=True, exist_ok=True)
    metrics = evaluator.build().evaluate(sample)
    if not isinstance(metrics, dict) or not metrics:
        raise EvaluatorError(f"{evaluator.name} returned {metrics!r}, expected a non-empty {{metric: number}}")
    clean = {}
    for name, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise EvaluatorError(f"{evaluator.name}: metric {name!r} is {value!r}, expected a finite number")
        clean[str(name)] = float(value)
    return clean


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean, standard deviation (over seeds, n-1), the 95% t interval's half-width, min, max and n per
    (variant, evaluator, metric)."""
    groups: dict[tuple[str, str, str], list[float]] = {}
    for row in rows:
        groups.setdefault((row["variant"], row["evaluator"], row["metric"]), []).append(row["value"])
    summary = []
    for (variant, evaluator, metric), values in groups.items():
        summary.append({
            "variant": variant, "evaluator": evaluator, "metric": metric,
            "mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "ci95": interval(values) if len(values) > 1 else None,
            "min": min(values), "max": max(values), "n": len(values),
        })
    return summary


def run_ablation(spec: AblationSpec, output: str, *, address: str | None = None, workers: int | None = None,
                 limit: int | None = None, console: Console | None = None, show_progress: bool = False,
                 on_result: Callable[[dict[str, Any]], None] | None = None) -> AblationResult:
    """Run the ablation into `output` (see the module docstring for the layout)."""
    console = console or stderr_console()
    started = time.perf_counter()
    fs, root = filesystem(output)
    result = AblationResult(output=output)
    stages = plan_stages(spec.name, spec.variants, spec.inputs)
    leaves = variant_stages(stages)
    write_json(fs, posixpath.join(root, "ablation.json"),
               {**spec.to_dict(), "plan": [s.describe() for s in stages]})
    started_ray = connect(address, num_cpus=workers)
    try:
        broken = _run_stages(spec, stages, output, workers, limit, console, show_progress, result)
        runnable = []
        for variant in spec.variants:
            stage = leaves[variant.name]
            if stage.key in broken:
                result.failures.append({"variant": variant.name, "seed": None, "evaluator": None,
                                        "stage": "pipeline", "error": broken[stage.key]})
            else:
                runnable.append((variant.name, _shards(fs, stage.output(output))))
        holdout = _prepare_holdout(spec, stages, leaves, output) if runnable else []
        budget = spec.token_budget
        if budget is None and runnable:
            counting = ray.remote(available_tokens).options(num_cpus=1)
            counts = ray.get([counting.remote(shards, spec.holdout.fraction if not spec.holdout.files else 0.0)
                              for _, shards in runnable])
            budget = min(counts)
            console.print(f"token_budget auto: {budget} tokens (smallest variant output)")
        result.token_budget = budget
        samples = _sample(spec, runnable, budget, root, result, console) if runnable and budget else {}
        tokens = _tokenize(spec, samples, holdout, root, result, console) if spec.tokenize else {}
        _evaluate_all(spec, samples, holdout, budget or 0, root, result, console, on_result, tokens)
    finally:
        if started_ray:
            disconnect()
    result.summary = summarise(result.rows)
    result.comparisons = compare(result.rows, [v.name for v in spec.variants])
    result.seconds = time.perf_counter() - started
    _write_results(spec, result, fs, root)
    return result


def _sample(spec: AblationSpec, runnable: list[tuple[str, list[str]]], budget: int, root: str,
            result: AblationResult, console: Console) -> dict[tuple[str, int], dict[str, Any]]:
    fs, _ = filesystem(root)
    task = ray.remote(sample_tokens).options(num_cpus=1)
    holdout_fraction = 0.0 if spec.holdout.files else spec.holdout.fraction
    pending = {task.remote(shards, budget, seed, sample_path(root, name, seed), holdout_fraction,
                           spec.rehydrate): (name, seed)
               for name, shards in runnable for seed in spec.seeds}
    samples = {}
    for ref, (name, seed) in pending.items():
        try:
            sample = ray.get(ref).to_dict()
        except Exception as exc:  # noqa: BLE001 - one variant's sampling failure must not stop the others
            result.failures.append({"variant": name, "seed": seed, "evaluator": None, "stage": "sampling",
                                    "error": _last_line(exc)})
            console.print(line(("sampling failed", "red"), f" {name} seed {seed}: {_last_line(exc)}"))
            continue
        sample.update(variant=name, seed=seed)
        write_json(fs, sample["path"].replace(".parquet", ".json"), sample)
        samples[(name, seed)] = sample
        result.samples.append(sample)
    return samples


def _tokenize(spec: AblationSpec, samples: dict[tuple[str, int], dict[str, Any]], holdout: list[str], root: str,
              result: AblationResult, console: Console) -> dict[Any, dict[str, Any]]:
    """Each sample, and the holdout, as token files (one Ray task each); {(variant, seed) or 'holdout': info}.

    A sample that cannot be tokenized fails that variant and seed only (it is dropped from `samples`)."""
    options = spec.tokenize
    assert options is not None
    task = ray.remote(tokenize_files).options(num_cpus=1)
    jobs: dict[Any, list[str]] = {key: [sample["path"]] for key, sample in samples.items()}
    if holdout:
        jobs["holdout"] = holdout
    pending = {}
    for key, paths in jobs.items():
        where = ("holdout",) if key == "holdout" else (key[0], f"seed-{key[1]}")
        base = posixpath.join(root, "tokens", *where, "part-00000")
        pending[key] = task.remote(paths, base, options.format, options.tokenizer, options.eos)
    done: dict[Any, dict[str, Any]] = {}
    for key, ref in pending.items():
        try:
            done[key] = ray.get(ref)
        except Exception as exc:  # noqa: BLE001 - one sample's failure must not stop the others
            variant, seed = ("holdout", None) if key == "holdout" else key
            result.failures.append({"variant": variant, "seed": seed, "evaluator": None, "stage": "tokenize",
                                    "error": _last_line(exc)})
            console.print(line(("tokenize failed", "red"), f" {variant} seed {seed}: {_last_line(exc)}"))
            if key != "holdout":
                samples.pop(key)
            continue
        if key != "holdout":
            samples[key]["token_files"] = done[key]["files"]
            samples[key]["token_count"] = done[key]["tokens"]
    if done:
        first = next(iter(done.values()))
        console.print(line(f"tokenized {len(done)} sample(s) ({options.format}, {first['tokenizer']['name']})"))
    return done


def _evaluate_all(spec: AblationSpec, samples: dict[tuple[str, int], dict[str, Any]], holdout: list[str],
                  budget: int, root: str, result: AblationResult, console: Console,
                  on_result: Callable[[dict[str, Any]], None] | None,
                  tokens: dict[Any, dict[str, Any]] | None = None) -> None:
    cluster = {k: float(v) for k, v in ray.cluster_resources().items()}
    pending: dict[ray.ObjectRef, tuple[str, int, str]] = {}
    for evaluator in spec.evaluators:
        resources = evaluator.build().resources(cluster)
        task = ray.remote(_evaluate).options(max_retries=0, **resources)
        for (name, seed), sample in samples.items():
            token_info = (tokens or {}).get((name, seed))
            held = (tokens or {}).get("holdout")
            inputs = EvalInput(
                variant=name, seed=seed, shards=[sample["path"]], token_budget=budget, tokens=sample["tokens"],
                documents=sample["documents"], holdout=holdout, base_dir=spec.base_dir,
                workdir=posixpath.join(root, "evals", name, f"seed-{seed}", evaluator.name),
                **({"token_files": token_info["files"], "token_format": token_info["format"],
                    "token_count": token_info["tokens"], "token_dtype": token_info["dtype"],
                    "tokenizer": token_info["tokenizer"],
                    "holdout_token_files": held["files"] if held else []} if token_info else {}),
            )
            pending[task.remote(evaluator, inputs)] = (name, seed, evaluator.name)
    total = len(pending)
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        name, seed, evaluator_name = pending.pop(ready[0])
        done = total - len(pending)
        try:
            metrics = ray.get(ready[0])
        except Exception as exc:  # noqa: BLE001 - a failing evaluator is reported for its variant only
            failure = {"variant": name, "seed": seed, "evaluator": evaluator_name, "stage": "evaluation",
                       "error": _last_line(exc)}
            result.failures.append(failure)
            console.print(line(f"[{done}/{total}] ", ("failed", "red"),
                               f" {evaluator_name} on {name} seed {seed}: {failure['error']}"))
            if on_result:
                on_result(failure)
            continue
        rows = [{"variant": name, "seed": seed, "evaluator": evaluator_name, "metric": metric, "value": value}
                for metric, value in sorted(metrics.items())]
        result.rows += rows
        shown = ", ".join(f"{r['metric']}={r['value']:.4g}" for r in rows[:6])
        console.print(line(f"[{done}/{total}] {evaluator_name} on {name} seed {seed}: {shown}"))
        if on_result:
            on_result({"variant": name, "seed": seed, "evaluator": evaluator_name, "metrics": metrics})
    order = {v.name: i for i, v in enumerate(spec.variants)}
    result.rows.sort(key=lambda r: (order[r["variant"]], r["seed"], r["evaluator"], r["metric"]))


def _write_results(spec: AblationSpec, result: AblationResult, fs: Any, root: str) -> None:
    columns = {name: [row[name] for row in result.rows] for name in RESULT_COLUMNS}
    schema = pa.schema([("variant", pa.string()), ("seed", pa.int64()), ("evaluator", pa.string()),
                        ("metric", pa.string()), ("value", pa.float64())])
    fs.makedirs(root, exist_ok=True)
    with fs.open(posixpath.join(root, "results.parquet"), "wb") as handle:
        pq.write_table(pa.table(columns, schema=schema), handle)
    write_json(fs, posixpath.join(root, "results.json"), {
        "ablation": spec.name,
        "variants": [{"name": v.name, "changes": list(v.changes)} for v in spec.variants],
        "seeds": list(spec.seeds),
        "token_budget": result.token_budget,
        "stages": result.stages,
        "samples": result.samples,
        "rows": result.rows,
        "summary": result.summary,
        "comparisons": result.comparisons,
        "failures": result.failures,
        "seconds": round(result.seconds, 3),
    })
    write_report(spec, result, fs, root)
