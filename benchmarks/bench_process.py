"""Process-stage throughput per core: tamis against datatrove 0.10.1 on the same WARC corpus, in one run.

    python benchmarks/bench_process.py [--recipe basic|fineweb|fineweb-all] [--records 600] [--files 1]
                                       [--repeat N] [--datatrove-python PATH] [--json]

1. Builds (or reuses, cached under .bench/corpus/ by its parameters) a Common-Crawl-shaped WARC corpus from
   the real pages in shared/data with shared/tools/make_warc_corpus.py.
2. Runs tamis's process stage with one worker, twice:
   - in-process: tamis.engine.task.process_input per input file in this process (the pure per-core figure);
   - via Ray: run_pipeline(workers=1) on an embedded loopback Ray started with num_cpus=1 (Ray's start-up
     is reported apart and not counted in the run's wall time).
3. Runs datatrove's same steps (benchmarks/datatrove_process.py) with LocalPipelineExecutor(tasks=1,
   workers=1) on the same files, in a subprocess of a separate venv (benchmarks/setup_datatrove_venv.sh; the
   fineweb recipes also need spaCy, tldextract and pyahocorasick there, installed on first use).
4. Prints a side-by-side table: documents, docs per CPU second and per wall second, MB/s of WARC input,
   seconds per step and, for the fineweb recipes, the documents out of each step, and the ratio.

Recipes (--recipe):
- basic (default): warc -> trafilatura -> language_id [en] 0.65 -> token_count -> parquet zstd on both sides
  (--pipeline FILE for another tamis pipeline);
- fineweb: FineWeb's whole process stage: tamis pipelines/fineweb.yaml (warc -> url_filter -> trafilatura ->
  language_id [en] 0.65 -> gopher_repetition -> gopher_quality -> c4_quality -> fineweb_quality -> pii ->
  token_count -> parquet) against datatrove's WarcReader -> URLFilter -> Trafilatura -> LanguageFilter ->
  GopherRepetitionFilter -> GopherQualityFilter -> C4QualityFilter(filter_no_terminal_punct=False) ->
  FineWebQualityFilter -> PIIFormatter -> token count -> ParquetWriter;
- fineweb-all: the same with every language kept (tamis `languages: null`, datatrove languages=None), the
  best language's score above 0.65. Both sides split words with the blank English spaCy tokenizer for every
  language (datatrove 0.10.1's filters take their `language` argument, default English, not the document's).

CPU seconds are user+system of the process doing the work plus its extraction child on both sides (tamis's
task summary counts its sandbox; the datatrove side adds RUSAGE_CHILDREN after its extractor has exited).
Per-step seconds are each framework's own timers; "other" is wall time outside them (set-up such as model
loading and the extractor child's start, generator and batching overhead, committing).
By default tamis writes no removed-documents files (`removed: none`), as datatrove's filters without an
exclusion writer do; --removed pipeline keeps what the pipeline file says.
One-off set-up (fineweb recipes): both sides keep a per-machine on-disk cache of the URL block lists (tamis
the parsed domain hashes under TAMIS_CACHE_DIR, datatrove the lists extracted from its tar into
HF_HOME/assets). Both point at scratch folders of the run; a warm-up loads the lists twice per side, timing
the cold and the warm load, so that the measured runs are warm. The warm load stays in the measured runs (it
is paid by every task); the table also shows the CPU figures without it.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import inspect
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TAMIS_SHARED", REPO.parent / "shared"))
DEFAULT_TOOL = SHARED / "tools" / "make_warc_corpus.py"
DEFAULT_PAGES = SHARED / "data" / "extraction" / "scrapinghub_aeb" / "html"
DEFAULT_DT_PYTHON = REPO / ".bench" / "dtvenv" / "bin" / "python"
RESOURCES = REPO / "src" / "tamis" / "resources"
CATEGORIES = ("reading", "extraction", "language ID", "tokens", "writing")
RECIPE_CATEGORIES = ("reading", "URL filter", "extraction", "language ID", "Gopher repetition", "Gopher quality",
                     "C4 quality", "FineWeb quality", "PII", "tokens", "writing")
#: datatrove / tamis step name fragments (upper case) -> category, first match wins
_STEP_CATEGORIES = (("READER", "reading"), ("WARC", "reading"), ("URL", "URL filter"), ("EXTRAC", "extraction"),
                    ("TRAFILATURA", "extraction"), ("RESILIPARSE", "extraction"), ("LANG", "language ID"),
                    ("REPETITION", "Gopher repetition"), ("GOPHER", "Gopher quality"), ("C4", "C4 quality"),
                    ("FINEWEB", "FineWeb quality"), ("PII", "PII"), ("TOKEN", "tokens"), ("WRITER", "writing"),
                    ("PARQUET", "writing"))


# ---------------------------------------------------------------- corpus

def build_corpus(args: argparse.Namespace, bench_dir: Path) -> list[Path]:
    """The corpus's WARC files, built once per parameter set and cached."""
    tool = Path(args.corpus_tool)
    params = {
        "pages": [str(Path(p).resolve()) for p in args.pages], "records": args.records, "files": args.files,
        "exact_dup_rate": args.exact_dup_rate, "near_dup_rate": args.near_dup_rate, "seed": args.seed,
        "tool": hashlib.sha256(tool.read_bytes()).hexdigest()[:12],
    }
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
    directory = bench_dir / "corpus" / f"r{args.records}-f{args.files}-{key}"
    done = directory / "params.json"
    if not done.exists():
        if directory.exists():
            shutil.rmtree(directory)
        directory.mkdir(parents=True)
        command = [sys.executable, str(tool), "--out", str(directory / "corpus.warc.gz"),
                   "--records", str(args.records), "--files", str(args.files), "--seed", str(args.seed),
                   "--exact-dup-rate", str(args.exact_dup_rate), "--near-dup-rate", str(args.near_dup_rate)]
        for pages in args.pages:
            command += ["--pages", str(pages)]
        log(f"building corpus in {directory} ...")
        subprocess.run(command, check=True, stdout=sys.stderr)
        done.write_text(json.dumps(params, indent=1))
    files = sorted(directory.glob("*.warc.gz"))
    if not files:
        raise SystemExit(f"no WARC files in {directory}")
    return files


# ---------------------------------------------------------------- tamis

def category_of(name: str) -> str:
    upper = name.upper().replace("_", " ")
    return next((category for fragment, category in _STEP_CATEGORIES if fragment in upper), "other steps")


def _categorise_tamis(spec: Any, steps: dict[str, dict[str, Any]]) -> tuple[dict[str, float], dict[str, int]]:
    """Seconds per category, and documents out of each category (what the step kept)."""
    from tamis.engine.task import WRITER_STEP

    seconds = dict.fromkeys(CATEGORIES, 0.0)
    kept: dict[str, int] = {}
    seconds["reading"] = steps.get(spec.reader.name, {}).get("seconds", 0.0)
    kept["reading"] = steps.get(spec.reader.name, {}).get("docs_out", 0)
    for step in spec.steps:
        category = category_of(step.step)
        seconds[category] = seconds.get(category, 0.0) + steps.get(step.name, {}).get("seconds", 0.0)
        kept[category] = steps.get(step.name, {}).get("docs_out", 0)
    seconds["writing"] = steps.get(WRITER_STEP, {}).get("seconds", 0.0)
    kept["writing"] = steps.get(WRITER_STEP, {}).get("docs_out", 0)
    return seconds, kept


def _tamis_result(label: str, spec: Any, summaries: list[dict[str, Any]], wall: float,
                  extra: dict[str, Any]) -> dict[str, Any]:
    from tamis.stats.counters import TaskCounters

    counters = TaskCounters()
    for summary in summaries:
        counters.merge(TaskCounters.from_dict(summary["counters"]))
    steps = counters.to_dict()
    step_seconds, step_kept = _categorise_tamis(spec, steps)
    return {
        "name": label,
        "docs_read": sum(s["docs_read"] for s in summaries),
        "docs_kept": sum(s["docs_kept"] for s in summaries),
        "tokens": sum(s["tokens"] for s in summaries),
        "bytes_read": sum(s["bytes_read"] for s in summaries),
        "wall_seconds": wall,
        "cpu_seconds": sum(s["cpu_seconds"] for s in summaries),
        "step_seconds": step_seconds,
        "step_kept": step_kept,
        "steps": steps,
        **extra,
    }


# --recipe basic: the steps datatrove_process.py runs by default, with FineWeb's settings (the
# extraction/language-ID/token-count core of the process stage). --recipe fineweb runs pipelines/fineweb.yaml,
# the whole recipe; fineweb-all the same with `languages: null`.
FINEWEB_PIPELINE = REPO / "pipelines" / "fineweb.yaml"
BENCH_PIPELINE = {
    "name": "bench-process",
    "reader": {"step": "warc"},
    "steps": [
        {"step": "trafilatura", "favor_precision": True, "include_comments": False, "deduplicate": True,
         "timeout": 1.0},
        {"step": "language_id", "languages": ["en"], "threshold": 0.65},
        {"step": "token_count"},
    ],
    "writer": {"step": "parquet", "compression": "zstd"},
    "removed": {"mode": "none"},
}


def recipe_pipeline(recipe: str) -> tuple[dict[str, Any], str]:
    """The tamis pipeline (as a mapping) and its source for --recipe."""
    if recipe == "basic":
        return BENCH_PIPELINE, "<bench_process.py>"
    import yaml

    data = yaml.safe_load(FINEWEB_PIPELINE.read_text())
    # the process stage as datatrove's side runs it: PII and token counting in it, no deduplication (with a
    # `dedup:` section tamis moves those two steps to its finalize stage, after dedup)
    data.pop("dedup", None)
    if recipe == "fineweb-all":
        language = [s for s in data["steps"] if s["step"] == "language_id"]
        if len(language) != 1:
            raise SystemExit(f"{FINEWEB_PIPELINE}: expected one language_id step")
        language[0]["languages"] = None  # every language, when the best one scores above the threshold
        data["name"] = f"{data.get('name', 'fineweb')}-all-languages"
    return data, str(FINEWEB_PIPELINE)


def _load_spec(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    from tamis.engine.removed import validate_removed_options
    from tamis.pipeline.spec import load_pipeline, parse_pipeline

    spec = load_pipeline(args.pipeline) if args.pipeline else parse_pipeline(*recipe_pipeline(args.recipe))
    if args.removed == "none":
        spec = dataclasses.replace(spec, removed={"mode": "none"})
    return spec, validate_removed_options(spec.removed, spec.source)


def reset_tamis_process_state() -> None:
    """Make this process look like a fresh worker: steps rebuilt, extractor child restarted, and tamis's
    in-memory caches emptied (models, block lists, spaCy word memo) so that a repeat is not helped by the
    previous run. On-disk caches (the URL domain list under TAMIS_CACHE_DIR) are kept: they are warm."""
    from tamis.engine import task
    from tamis.extract import steps as extract_steps

    task._BUILT.clear()
    for sandbox in extract_steps._SANDBOXES.values():
        sandbox.close()
    extract_steps._SANDBOXES.clear()
    for name, module in list(sys.modules.items()):
        if not name.startswith("tamis.") or module is None:
            continue
        for attr, value in list(vars(module).items()):
            if callable(getattr(value, "cache_clear", None)) and getattr(value, "__module__", None) == name:
                value.cache_clear()  # functools.lru_cache'd loaders and memos defined in tamis
            elif (isinstance(value, dict) and attr.startswith("_") and attr.isupper() and attr != "_REGISTRY"
                  and attr != "_BUILT" and attr != "_SANDBOXES"):
                value.clear()  # module-level memo dicts (e.g. tamis.text.words._CHUNK_TOKENS)


def run_tamis_inprocess(args: argparse.Namespace, files: list[Path], workdir: Path) -> dict[str, Any]:
    from tamis.engine.task import TaskOptions, process_input

    # start cold each time, as a fresh Ray worker or datatrove does
    reset_tamis_process_state()
    spec, removed = _load_spec(args)
    output = workdir / "tamis-inprocess"
    options = TaskOptions(output=str(output), fingerprint=spec.fingerprint(limit=None, removed=removed),
                          removed=removed)
    log("tamis in-process (one core) ...")
    started = time.perf_counter()
    try:  # a file is processed as one work unit (tamis >= byte-range splitting), or by its path (before)
        from tamis.engine.plan import WorkUnit
    except ImportError:
        units: list[Any] = [str(path) for path in files]
    else:
        units = [WorkUnit(str(path)) for path in files]
    summaries = [process_input(spec, unit, options) for unit in units]
    wall = time.perf_counter() - started
    return _tamis_result("tamis in-process", spec, summaries, wall, {})


def run_tamis_ray(args: argparse.Namespace, files: list[Path], workdir: Path) -> dict[str, Any]:
    for name, value in (("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0"), ("RAY_AUTH_MODE", "disabled"),
                        ("RAY_USAGE_STATS_ENABLED", "0"), ("RAY_DEDUP_LOGS", "0"), ("RAY_COLOR_PREFIX", "0")):
        os.environ[name] = value
    os.environ.pop("RAY_ADDRESS", None)
    import ray

    from tamis.engine.runner import run_pipeline

    spec, _ = _load_spec(args)
    temp_dir = tempfile.mkdtemp(prefix="tbray-", dir="/tmp")
    log("tamis via Ray (embedded, num_cpus=1, workers=1) ...")
    started = time.perf_counter()
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False,
             object_store_memory=256 * 2**20, logging_level="WARNING", _temp_dir=temp_dir)
    ray_start = time.perf_counter() - started
    try:
        extra = {"max_task_bytes": None} if "max_task_bytes" in inspect.signature(run_pipeline).parameters else {}
        result = run_pipeline(spec, [str(p) for p in files], str(workdir / "tamis-ray"), workers=1,
                              overwrite=True, show_progress=False, **extra)  # one task per file, as in-process
    finally:
        ray.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)
    if result.failed:
        raise RuntimeError(f"tamis run failed: {result.failed}")
    # the per-input summaries stay in storage (the driver keeps only merged counts)
    stats_dir = workdir / "tamis-ray" / "stats" / "process"
    summaries = [json.loads(p.read_text()) for p in sorted(stats_dir.glob("*.json"))]
    return _tamis_result("tamis via Ray", spec, summaries, result.seconds, {"ray_start_seconds": ray_start})


# ---------------------------------------------------------------- datatrove

def _categorise_datatrove(steps: list[dict[str, Any]]) -> tuple[dict[str, float], dict[str, int]]:
    seconds = dict.fromkeys(CATEGORIES, 0.0)
    kept: dict[str, int] = {}
    for step in steps:
        category = category_of(f"{step['name']} {step.get('type', '')}")
        seconds[category] = seconds.get(category, 0.0) + step["seconds"]
        kept[category] = step["docs_out"]
    return seconds, kept


# What the fineweb recipes need in the datatrove venv beyond setup_datatrove_venv.sh's list: spaCy (datatrove's
# English word tokenizer is spacy.blank("en")), tldextract and pyahocorasick (URLFilter); the tamis dev
# environment's versions.
DT_FINEWEB_PACKAGES = {"spacy": "spacy==3.8.18", "tldextract": "tldextract==5.4.0",
                       "ahocorasick": "pyahocorasick==2.3.1"}


def datatrove_python(args: argparse.Namespace) -> Path:
    """The datatrove venv's python, made (setup script) or completed (fineweb packages) when needed."""
    python = Path(args.datatrove_python)
    if not python.exists():
        if Path(args.datatrove_python) != DEFAULT_DT_PYTHON:
            raise SystemExit(f"{python} not found")
        log("no datatrove venv yet: running benchmarks/setup_datatrove_venv.sh ...")
        subprocess.run(["bash", str(REPO / "benchmarks" / "setup_datatrove_venv.sh"),
                        str(DEFAULT_DT_PYTHON.parents[1])], check=True, stdout=sys.stderr)
    if args.recipe != "basic":
        probe = "import importlib.util, sys; sys.exit(any(importlib.util.find_spec(m) is None for m in sys.argv[1:]))"
        if subprocess.run([str(python), "-c", probe, *DT_FINEWEB_PACKAGES]).returncode:
            log(f"installing {', '.join(DT_FINEWEB_PACKAGES.values())} into the datatrove venv ...")
            subprocess.run([str(python), "-m", "pip", "install", "--quiet", *DT_FINEWEB_PACKAGES.values()],
                           check=True, stdout=sys.stderr)
    return python


def datatrove_env(args: argparse.Namespace) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "PYTHONPATH", "VIRTUAL_ENV"))}
    # offline; URLFilter extracts its block lists into HF_HOME/assets: a scratch folder, not ~/.cache
    env.update({"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(args.hf_home)})
    env.pop("HF_ASSETS_CACHE", None)
    return env


def datatrove_command(args: argparse.Namespace, directory: Path, dt_work: Path) -> list[str]:
    return [str(datatrove_python(args)), str(REPO / "benchmarks" / "datatrove_process.py"), "--input", str(directory),
            "--glob", "*.warc.gz", "--workdir", str(dt_work), "--recipe", args.recipe,
            "--lid-model", str(args.lid_model), "--gpt2-ranks", str(RESOURCES / "gpt2.tiktoken")]


def run_datatrove(args: argparse.Namespace, files: list[Path], workdir: Path) -> dict[str, Any]:
    directory = files[0].parent
    if any(p.parent != directory for p in files):
        raise SystemExit("the datatrove side needs all WARC files in one folder")
    dt_work = workdir / "datatrove"
    command = datatrove_command(args, directory, dt_work)
    log(f"datatrove 0.10.1 ({args.recipe}; LocalPipelineExecutor, tasks=1, workers=1) in its own venv ...")
    dt_work.mkdir(parents=True)
    env = datatrove_env(args)
    with open(dt_work / "stderr.log", "w") as stderr:
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env)
    if done.returncode:
        tail = (dt_work / "stderr.log").read_text()[-3000:]
        raise SystemExit(f"datatrove side failed ({done.returncode}):\n{tail}")
    data = json.loads(done.stdout.strip().splitlines()[-1])
    steps = data["steps"]
    reader = next((s for s in steps if "READER" in s["name"].upper()), steps[0])
    writer = next((s for s in steps if "WRITER" in s["name"].upper()), steps[-1])
    token_stats = next((s["stats"].get("tokens", 0) for s in steps if "TOKEN" in s["name"].upper()), 0)
    step_seconds, step_kept = _categorise_datatrove(steps)
    return {
        "name": "datatrove",
        "docs_read": reader["docs_out"],
        "docs_kept": writer["docs_out"],
        "tokens": token_stats,
        "bytes_read": sum(p.stat().st_size for p in files),
        "wall_seconds": data["wall_seconds"],
        "cpu_seconds": data["cpu_seconds"],
        "cpu_seconds_children": data["cpu_seconds_children"],
        "step_seconds": step_seconds,
        "step_kept": step_kept,
        "steps": steps,
        "versions": data["versions"],
        "substitutions": data["substitutions"],
    }


# ---------------------------------------------------------------- one-off set-up (warm-up)

_TAMIS_URL_PROBE = """
import json, resource, sys, time
from tamis.filters.url import datatrove_assets, load_block_lists
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
path = sys.argv[1] or str(datatrove_assets())
c, w = cpu(), time.perf_counter()
lists = load_block_lists(path)
print(json.dumps({"wall_seconds": time.perf_counter() - w, "cpu_seconds": cpu() - c, "domains": len(lists.domains)}))
"""


def warm_up(args: argparse.Namespace, files: list[Path]) -> dict[str, Any]:
    """Build the on-disk caches each side makes once per machine, timing the first (cold) and second (warm)
    load: tamis's parsed URL domain hashes under TAMIS_CACHE_DIR, datatrove's block lists extracted from its
    tar into HF_HOME/assets. Only the fineweb recipes have a URL filter."""
    if args.recipe == "basic" or args.pipeline:
        return {}
    report: dict[str, Any] = {}
    sides = []
    if not (args.no_inprocess and args.no_ray):
        sides.append(("tamis", [sys.executable, "-c", _TAMIS_URL_PROBE, ""], dict(os.environ)))
    if not args.no_datatrove:
        command = datatrove_command(args, files[0].parent, Path(args.hf_home) / "unused") + ["--warm-url-lists"]
        sides.append(("datatrove", command, datatrove_env(args)))
    for side, command, env in sides:
        for phase in ("first", "second"):
            log(f"warm-up: {side} URL block lists, {phase} load ...")
            done = subprocess.run(command, capture_output=True, text=True, env=env)
            if done.returncode:
                raise SystemExit(f"warm-up of {side} failed:\n{done.stderr[-3000:]}")
            report.setdefault(side, {})[phase] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


# ---------------------------------------------------------------- report

def machine_cpu_seconds() -> float:
    """Busy CPU seconds of the whole machine so far (all processes, all cores), from /proc/stat."""
    try:
        with open("/proc/stat") as handle:
            fields = [int(x) for x in handle.readline().split()[1:]]
    except OSError:
        return float("nan")
    # user nice system [idle iowait] irq softirq steal
    return sum(fields[i] for i in (0, 1, 2, 5, 6, 7) if i < len(fields)) / os.sysconf("SC_CLK_TCK")


def measured(run: Any, *args: Any) -> dict[str, Any]:
    """Run one side, noting the machine-wide CPU it overlapped with (Ray's daemons, or other users)."""
    before = machine_cpu_seconds()
    result = run(*args)
    result["machine_cpu_seconds"] = machine_cpu_seconds() - before
    return result


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def derived(result: dict[str, Any]) -> dict[str, float]:
    mb = result["bytes_read"] / 1e6
    steps = result["step_seconds"]
    return {
        "docs_per_cpu_second": result["docs_read"] / result["cpu_seconds"],
        "docs_per_wall_second": result["docs_read"] / result["wall_seconds"],
        "mb_per_wall_second": mb / result["wall_seconds"],
        "mb_per_cpu_second": mb / result["cpu_seconds"],
        "ms_per_doc_cpu": 1000 * result["cpu_seconds"] / result["docs_read"],
        "other_seconds": result["wall_seconds"] - sum(steps.values()),
    }


def table(results: list[dict[str, Any]]) -> str:
    """Rows of figures, one column per run, and tamis/datatrove ratios (>1: tamis faster)."""
    for result in results:
        result["derived"] = derived(result)
    baseline = next((r for r in results if r["name"] == "datatrove"), None)
    others = [r for r in results if r is not baseline]
    head = ["", *(r["name"] for r in results)]
    if baseline:
        head += [f"{r['name'].replace('tamis ', '')} vs dt" for r in others]
    rows: list[list[str]] = []

    def row(label: str, getter: Any, fmt: str, higher_is_better: bool | None = None) -> None:
        values = [getter(r) for r in results]
        cells = [label, *(format(v, fmt) if v is not None else "-" for v in values)]
        if baseline:
            base = getter(baseline)
            for r in others:
                value = getter(r)
                if higher_is_better is None or not value or not base:
                    cells.append("")
                else:
                    cells.append(f"{(value / base if higher_is_better else base / value):.2f}x")
        rows.append(cells)

    row("documents read (HTML responses)", lambda r: r["docs_read"], "d")
    row("documents kept", lambda r: r["docs_kept"], "d")
    row("tokens (GPT-2)", lambda r: r["tokens"], "d")
    row("WARC input, MB", lambda r: r["bytes_read"] / 1e6, ".1f")
    row("wall seconds", lambda r: r["wall_seconds"], ".2f", False)
    row("CPU seconds (incl. extractor child)", lambda r: r["cpu_seconds"], ".2f", False)
    row("docs / core-second (CPU)", lambda r: r["derived"]["docs_per_cpu_second"], ".1f", True)
    row("docs / wall-second", lambda r: r["derived"]["docs_per_wall_second"], ".1f", True)
    row("MB/s WARC input (per CPU second)", lambda r: r["derived"]["mb_per_cpu_second"], ".2f", True)
    row("MB/s WARC input (wall)", lambda r: r["derived"]["mb_per_wall_second"], ".2f", True)
    row("CPU ms / document", lambda r: r["derived"]["ms_per_doc_cpu"], ".2f", False)
    if any(r.get("url_lists_load_cpu_seconds") is not None for r in results):
        # the per-task load of the URL block lists, timed apart in the warm-up (second load): a fixed cost per
        # task, large next to a small corpus, small next to a Common Crawl WARC file (~40k documents)
        def steady(r: dict[str, Any]) -> float:
            return r["cpu_seconds"] - (r.get("url_lists_load_cpu_seconds") or 0.0)

        row("  URL lists' per-task load (warm), CPU s", lambda r: r.get("url_lists_load_cpu_seconds"), ".2f")
        row("CPU seconds less that load", steady, ".2f", False)
        row("docs / core-second less that load", lambda r: r["docs_read"] / steady(r), ".1f", True)
    present = {k for r in results for k in r["step_seconds"]}
    known = CATEGORIES if present <= set(CATEGORIES) else RECIPE_CATEGORIES
    categories = [c for c in known if c in present or c in CATEGORIES] + sorted(present - set(known))
    for category in categories:
        row(f"  {category}, s", lambda r, c=category: r["step_seconds"].get(c, 0.0), ".3f", False)
    row("  other (outside step timers), s", lambda r: r["derived"]["other_seconds"], ".3f", False)
    if known is RECIPE_CATEGORIES:
        for category in categories:
            if any(category in r.get("step_kept", {}) for r in results):
                row(f"  documents out of {category}", lambda r, c=category: r.get("step_kept", {}).get(c), "d")
    row("machine CPU s in that time (all processes)", lambda r: r.get("machine_cpu_seconds"), ".2f")
    if any("ray_start_seconds" in r for r in results):
        row("Ray start (not in wall), s", lambda r: r.get("ray_start_seconds"), ".2f")

    widths = [max(len(line[i]) for line in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths, strict=True)))
             for line in [head, *rows]]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=600, help="HTML response records in the corpus (default 600)")
    ap.add_argument("--files", type=int, default=1, help="WARC files the records are split into (default 1)")
    ap.add_argument("--exact-dup-rate", type=float, default=0.0)
    ap.add_argument("--near-dup-rate", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pages", action="append", default=None,
                    help=f"folder of real HTML pages (repeatable; default {DEFAULT_PAGES})")
    ap.add_argument("--corpus-tool", default=str(DEFAULT_TOOL))
    ap.add_argument("--recipe", choices=("basic", "fineweb", "fineweb-all"), default="basic",
                    help="basic (default): warc -> trafilatura -> language_id [en] -> token_count -> parquet on both "
                         "sides; fineweb: FineWeb's whole process stage (tamis pipelines/fineweb.yaml, datatrove's "
                         "steps of examples/fineweb.py); fineweb-all: the same with every language kept")
    ap.add_argument("--pipeline", default=None,
                    help="tamis pipeline file (default: the built-in warc -> trafilatura -> language_id [en] 0.65 "
                         "-> token_count -> parquet(zstd), the steps the datatrove side runs)")
    ap.add_argument("--removed", choices=("none", "pipeline"), default="none",
                    help="tamis removed-documents output: none (default, like datatrove here) or as --pipeline says")
    ap.add_argument("--lid-model", default=str(RESOURCES / "lid.176.ftz"),
                    help="fastText model for datatrove's LanguageFilter (default: tamis's own copy)")
    ap.add_argument("--datatrove-python", default=str(DEFAULT_DT_PYTHON),
                    help="python of the datatrove venv (default .bench/dtvenv, made by setup_datatrove_venv.sh)")
    ap.add_argument("--bench-dir", default=str(REPO / ".bench"), help="corpus cache and run outputs")
    ap.add_argument("--no-inprocess", action="store_true", help="skip tamis in-process")
    ap.add_argument("--no-ray", action="store_true", help="skip tamis via Ray")
    ap.add_argument("--no-datatrove", action="store_true", help="skip datatrove")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run the sides N times, alternating, and report each side's run with the least CPU")
    ap.add_argument("--keep", action="store_true", help="keep the run's outputs under --bench-dir/runs")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = ap.parse_args()
    args.pages = args.pages or [str(DEFAULT_PAGES)]

    bench_dir = Path(args.bench_dir)
    files = build_corpus(args, bench_dir)
    (bench_dir / "runs").mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=datetime.now().strftime("%Y%m%d-%H%M%S-"), dir=bench_dir / "runs"))
    # scratch caches, so that the warm-up's first load is cold on both sides and nothing lands in ~/.cache
    os.environ["TAMIS_CACHE_DIR"] = str(workdir / "cache" / "tamis")
    args.hf_home = workdir / "cache" / "hf"
    sides = [(run, label) for run, label, skip in (
        (run_tamis_inprocess, "tamis in-process", args.no_inprocess),
        (run_tamis_ray, "tamis via Ray", args.no_ray),
        (run_datatrove, "datatrove", args.no_datatrove)) if not skip]
    runs: dict[str, list[dict[str, Any]]] = {label: [] for _, label in sides}
    try:
        setup = warm_up(args, files)
        for attempt in range(args.repeat):
            for run, label in sides:
                side_dir = workdir / f"{attempt}"
                side_dir.mkdir(exist_ok=True)
                try:
                    runs[label].append(measured(run, args, files, side_dir))
                except Exception as exc:  # noqa: BLE001 - one failed repeat must not lose the others
                    if args.repeat == 1:
                        raise
                    log(f"{label}, run {attempt + 1}: failed: {exc}")
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    # best of --repeat: the run with the least CPU, the one least disturbed by anything else on the machine
    results = []
    for _, label in sides:
        if not runs[label]:
            raise SystemExit(f"every run of {label} failed")
        best = min(runs[label], key=lambda r: r["cpu_seconds"])
        best["repeats"] = [{"cpu_seconds": r["cpu_seconds"], "wall_seconds": r["wall_seconds"],
                            "machine_cpu_seconds": r["machine_cpu_seconds"]} for r in runs[label]]
        side = "datatrove" if label == "datatrove" else "tamis"
        best["url_lists_load_cpu_seconds"] = setup.get(side, {}).get("second", {}).get("cpu_seconds")
        results.append(best)

    from importlib import metadata

    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "processor": platform.processor() or platform.machine()},
        "corpus": {"files": [str(p) for p in files], "records": args.records, "warc_files": args.files,
                   "exact_dup_rate": args.exact_dup_rate, "near_dup_rate": args.near_dup_rate, "seed": args.seed,
                   "pages": args.pages, "bytes": sum(p.stat().st_size for p in files)},
        "tamis_versions": {p: metadata.version(p) for p in ("tamis", "trafilatura", "lxml", "warcio",
                                                             "fasttext-numpy2-wheel", "tiktoken", "pyarrow", "ray")},
        "recipe": args.recipe,
        "pipeline": args.pipeline,
        "tamis_removed_mode": args.removed,
        "one_off_setup": setup,
        "repeat": args.repeat,
        "results": results,
    }
    text = table(results)  # also adds the derived figures to each result
    if args.json:
        print(json.dumps(report, indent=1, default=str))
        return
    corpus = report["corpus"]
    what = args.pipeline or f"recipe {args.recipe}"
    print(f"process stage ({what}), one core each  |  {report['date']}  |  {report['machine']['cpus']} CPUs, "
          f"{report['machine']['platform']}")
    print(f"corpus: {corpus['records']} records in {corpus['warc_files']} WARC file(s), "
          f"{corpus['bytes'] / 1e6:.1f} MB, exact-dup {corpus['exact_dup_rate']}, near-dup {corpus['near_dup_rate']}, "
          f"seed {corpus['seed']}")
    print()
    print(text)
    print()
    print("ratios: >1x means tamis is faster (time rows: datatrove/tamis; rate rows: tamis/datatrove)")
    dt = next((r for r in results if r["name"] == "datatrove"), None)
    if dt:
        print("datatrove", dt["versions"]["datatrove"], "| trafilatura", dt["versions"]["trafilatura"],
              "(tamis:", report["tamis_versions"]["trafilatura"] + ")")
        for note in dt["substitutions"]:
            print("datatrove side:", note)
    print(f"tamis removed-documents output: {args.removed}")
    for side, loads in setup.items():
        first, second = loads["first"], loads["second"]
        print(f"one-off set-up, not in the table: {side} URL block lists, first load (cold caches) "
              f"{first['cpu_seconds']:.2f} CPU s / {first['wall_seconds']:.2f} wall s, second load (warm) "
              f"{second['cpu_seconds']:.2f} CPU s / {second['wall_seconds']:.2f} wall s "
              f"({first['domains']} domains); the measured runs load them warm")
    if args.repeat > 1:
        print(f"best of {args.repeat} runs per side (least CPU); CPU seconds of every run: "
              + "; ".join(f"{r['name']} " + ", ".join(f"{x['cpu_seconds']:.2f}" for x in r["repeats"])
                          for r in results))
    for r in results:
        extra = r.get("machine_cpu_seconds", 0) - r["cpu_seconds"]
        if r["name"] != "tamis via Ray" and extra > 0.15 * r["cpu_seconds"] + 1:
            print(f"WARNING: {extra:.1f} CPU seconds of other processes ran during '{r['name']}': the machine was "
                  "not idle, wall-clock figures are unreliable (CPU-second figures less so)")


if __name__ == "__main__":
    main()
