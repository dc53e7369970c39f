"""The whole English FineWeb recipe, dedup included: `tamis run` against datatrove 0.10.1, in one command.

    python benchmarks/bench_recipe.py [--pages all|mix|DIR] [--records 2400] [--workers 1] [--repeat 1]
                                      [--pipeline pipelines/fineweb.yaml] [--removed full|none] [--json]

1. Pages: `all` (default) is every real HTML page of ../shared/data (benchmarks/mix_pages.real_pages), `mix`
   the 45%-English selection of mix_pages.py, or a folder of your own. From them make_warc_corpus.py builds a
   Common-Crawl-shaped corpus of `--records` responses with 5% exact and 5% near duplicates (cached under
   .bench/corpus/), and a small warm-up corpus (`--warm-records`).
2. Warm-up: both sides run once on the warm-up corpus, in their own scratch caches (tamis's URL block-list
   cache TAMIS_CACHE_DIR, datatrove's HF_HOME), so that the timed runs are warm (a cold first run is much
   slower on both sides).
3. Timed runs, alternating, `--repeat` times each:
   - tamis: the CLI as a user runs it, `tamis run PIPELINE --input ... --output ... --workers N`, in a clean
     environment (no RAY_* variables): embedded loopback Ray, process stage, MinHash dedup, finalize;
   - datatrove 0.10.1: the stages of its examples/fineweb.py (benchmarks/datatrove_fineweb.py) with
     LocalPipelineExecutor(workers=N): process, signatures, buckets, cluster, filter + PII + tokens.
   Wall time; CPU time of the side's process tree (wait4's rusage: every descendant that was reaped) and of
   the whole machine over the same interval (/proc/stat; Ray's daemons are in it); seconds per step from
   each side's own timers (and tamis's extraction children's CPU, which the share of everything but
   extraction is taken from: datatrove's from its extractor's timer); documents kept and tokens, and how
   many kept ids the two sides share.
4. The limit: plain `trafilatura.extract` (FineWeb's settings) on the corpus's HTML pages in one process,
   and tamis's fast path on the same pages (bench_extraction.compare: interleaved, byte-identical check).
5. Per extra document (skip with --no-marginal): each side runs once more, warm, on the warm-up corpus. The
   difference between the two runs' machine CPU, per document, is what a job pays per document once its
   fixed cost (Ray's start, the workers' set-up, datatrove's pool) is paid; the share of it outside
   extraction is what remains at dump scale, and the intercept is the fixed cost of a job. Both corpora are
   drawn from the same pages, so per-document costs agree up to the draw.

Ratios are datatrove / tamis (>1x: tamis is faster). Timing goals live here, never in the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_process  # noqa: E402
from bench_process import REPO, RESOURCES, log, machine_cpu_seconds  # noqa: E402
from shared_libraries import SHARED_LIBRARIES, installed_versions  # noqa: E402

TAMIS = Path(sys.executable).with_name("tamis")


# ---------------------------------------------------------------- inputs

def pages_dir(choice: str, bench_dir: Path) -> Path:
    """The folder of HTML pages the corpus is built from (written once per choice)."""
    if choice not in ("all", "mix"):
        return Path(choice)
    directory = bench_dir / "pages" / choice
    if (directory / ".done").exists():
        return directory
    import mix_pages

    shutil.rmtree(directory, ignore_errors=True)
    if choice == "mix":
        subprocess.run([sys.executable, str(REPO / "benchmarks" / "mix_pages.py"), str(directory)], check=True,
                       stdout=sys.stderr)
    else:
        directory.mkdir(parents=True)
        for name, payload in mix_pages.real_pages():
            (directory / name).write_bytes(payload)
    (directory / ".done").write_text("")
    return directory


def corpus(args: argparse.Namespace, pages: Path, records: int) -> list[Path]:
    corpus_args = argparse.Namespace(pages=[str(pages)], records=records, files=args.files,
                                     exact_dup_rate=args.exact_dup_rate, near_dup_rate=args.near_dup_rate,
                                     seed=args.seed, corpus_tool=args.corpus_tool)
    return bench_process.build_corpus(corpus_args, args.bench_dir)


# ---------------------------------------------------------------- one side, measured

def become_subreaper() -> None:
    """Orphaned descendants (Ray's daemons, datatrove's pool workers) are re-parented to this process, so that
    reaping them adds their CPU to RUSAGE_CHILDREN (Linux prctl PR_SET_CHILD_SUBREAPER)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(36, 1, 0, 0, 0) != 0:
        log("warning: PR_SET_CHILD_SUBREAPER refused; CPU of orphaned descendants is not counted")


def reap_orphans(seconds: float = 15.0) -> int:
    """Reap descendants left behind by a finished run (waiting up to `seconds`); how many were still alive."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return 0
        if pid:
            continue
        if time.monotonic() > deadline:
            return len([p for p in Path("/proc").iterdir() if p.name.isdigit() and _is_child(p)])
        time.sleep(0.1)


def _is_child(proc: Path) -> bool:
    try:
        return int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1]) == os.getpid()
    except (OSError, ValueError, IndexError):
        return False


def run_measured(command: list[str], env: dict[str, str], log_path: Path) -> dict[str, Any]:
    """Run `command`; wall seconds (until the command exits), the CPU seconds of its whole process tree
    (RUSAGE_CHILDREN after every descendant is reaped) and the machine's busy CPU seconds over the run."""
    tree, machine, wall = children_cpu_seconds(), machine_cpu_seconds(), time.perf_counter()
    with open(log_path, "w") as out:
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=out, env=env, text=True)
        stdout, _ = child.communicate()
    wall = time.perf_counter() - wall
    left = reap_orphans()
    machine = machine_cpu_seconds() - machine
    if child.returncode:
        raise SystemExit(f"{command[0]} failed ({child.returncode}); see {log_path}:\n"
                         f"{log_path.read_text()[-3000:]}")
    if left:
        log(f"warning: {left} descendant(s) of {command[0]} still running 15 s after it exited; not counted")
    return {"wall_seconds": wall, "machine_cpu_seconds": machine, "cpu_seconds": children_cpu_seconds() - tree,
            "stdout": stdout}


def children_cpu_seconds() -> float:
    """CPU seconds of this process's reaped descendants so far (RUSAGE_CHILDREN)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def tamis_env(args: argparse.Namespace) -> dict[str, str]:
    """What a user's shell would give: no RAY_* variables, tamis's one-off caches in the benchmark's scratch."""
    return {"HOME": os.environ.get("HOME", "/root"), "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8", "TAMIS_CACHE_DIR": str(args.bench_dir / "recipe-cache" / "tamis")}


def run_tamis(args: argparse.Namespace, pipeline: Path, files: list[Path], out: Path) -> dict[str, Any]:
    shutil.rmtree(out, ignore_errors=True)
    command = [str(TAMIS), "run", str(pipeline), "--output", str(out), "--workers", str(args.workers), "--no-plugins"]
    for path in files:
        command += ["--input", str(path)]
    log(f"tamis run {pipeline.name} --workers {args.workers} ...")
    run = run_measured(command, tamis_env(args), out.with_suffix(".log"))
    stats = json.loads((out / "stats.json").read_text())
    import pyarrow.parquet as pq

    ids = sorted(i for path in sorted((out / "data").rglob("*.parquet"))
                 for i in pq.read_table(path, columns=["id"]).column("id").to_pylist())
    steps = {name: stats["steps"][name]["seconds"] for name in stats["steps_order"] if name in stats["steps"]}
    # the extraction children's CPU (stats since 2026-12-06): with several children on one file the step's
    # seconds are the time the task waited for them, not what they cost
    extraction_cpu = stats["steps"].get("trafilatura", {}).get("child_cpu_seconds") or None
    return {"name": f"tamis {pipeline.stem}", "wall_seconds": run["wall_seconds"], "cpu_seconds": run["cpu_seconds"],
            "machine_cpu_seconds": run["machine_cpu_seconds"], "task_cpu_seconds": stats["totals"]["task_cpu_seconds"],
            "docs_read": stats["totals"]["html_docs"], "kept": len(ids), "tokens": stats["totals"]["tokens"],
            "steps": steps, "extraction_seconds": steps.get("trafilatura", 0.0),
            "extraction_cpu_seconds": extraction_cpu, "ids": ids}


def run_datatrove(args: argparse.Namespace, files: list[Path], work: Path) -> dict[str, Any]:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    command = [str(args.datatrove_python), str(REPO / "benchmarks" / "datatrove_fineweb.py"),
               "--input", str(files[0].parent), "--workdir", str(work), "--tasks", str(max(args.workers, len(files))),
               "--workers", str(args.workers), "--removed", args.removed,
               "--lid-model", str(RESOURCES / "lid.176.ftz"), "--gpt2-ranks", str(RESOURCES / "gpt2.tiktoken")]
    log(f"datatrove 0.10.1 FineWeb stages --workers {args.workers} ...")
    env = bench_process.datatrove_env(argparse.Namespace(hf_home=args.bench_dir / "recipe-cache" / "hf"))
    run = run_measured(command, env, work / "stderr.log")
    data = json.loads(run["stdout"].strip().splitlines()[-1])
    steps: dict[str, float] = {}
    for stage in data["stages"]:
        for step in stage["steps"]:
            key = f"{stage['stage']}: {step['name']}"
            steps[key] = steps.get(key, 0.0) + step["seconds"]
    reader = data["stages"][0]["steps"][0]
    return {"name": "datatrove", "wall_seconds": run["wall_seconds"], "cpu_seconds": run["cpu_seconds"],
            "machine_cpu_seconds": run["machine_cpu_seconds"], "docs_read": reader["stats"].get("documents", 0),
            "kept": data["kept"], "tokens": data["tokens"], "steps": steps, "ids": data["ids"],
            "extraction_seconds": sum(v for k, v in steps.items() if "EXTRAC" in k),
            "stages": {s["stage"]: {"wall_seconds": s["wall_seconds"], "cpu_seconds": s["cpu_seconds"]}
                       for s in data["stages"]},
            "versions": data["versions"]}


def shared_versions(datatrove_versions: dict[str, str]) -> str:
    """`trafilatura 2.3.1, lxml 6.2.1, spacy 3.8.18 on both sides`, or the libraries whose versions differ
    between this environment (the tamis side's) and the datatrove venv, flagged in the report's header."""
    ours_all = installed_versions()
    same, differ = [], []
    for package in SHARED_LIBRARIES:
        ours, theirs = ours_all.get(package), datatrove_versions.get(package)
        if ours == theirs:
            same.append(f"{package} {ours}")
        else:
            differ.append(f"{package} {ours} (tamis) against {theirs} (datatrove)")
    text = ", ".join(same) + " on both sides"
    if differ:
        text += "; VERSIONS DIFFER: " + ", ".join(differ) + " (rerun benchmarks/setup_datatrove_venv.sh)"
    return text


def limit(files: list[Path]) -> dict[str, Any]:
    """Plain trafilatura and the fast path on the corpus's HTML pages, one process (bench_extraction)."""
    import bench_extraction

    pages = bench_extraction.corpus_pages(files)
    log(f"the limit: plain trafilatura.extract and the fast path on {len(pages)} pages, one process ...")
    return bench_extraction.compare(pages, repeat=1)


# ---------------------------------------------------------------- report

def best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return min(runs, key=lambda r: r["wall_seconds"])


def _cell(value: Any, fmt: str = "{:.2f}") -> str:
    if value is None or value == "":
        return ""
    return fmt.format(value) if isinstance(value, float | int) else str(value)


def _extraction_cpu(side: dict[str, Any]) -> float:
    """tamis's extraction children's CPU; datatrove's extractor timer (its extraction runs in its process)."""
    return side.get("extraction_cpu_seconds") or side["extraction_seconds"]


def table(sides: list[dict[str, Any]], the_limit: dict[str, Any] | None, header: str) -> str:
    """One column per tamis pipeline and one for datatrove (the last side); ratios are datatrove / tamis."""
    *ours, theirs = sides
    rows: list[list[str]] = []

    def row(label: str, key: Any, fmt: str = "{:.2f}", ratio: bool = False) -> None:
        values = [key(side) if callable(key) else side.get(key) for side in sides]
        cells = [label] + [_cell(v, fmt) for v in values]
        if ratio:
            cells += [f"{values[-1] / v:.2f}x" if isinstance(v, float | int) and v else "" for v in values[:-1]]
        rows.append(cells)

    row("documents read (HTML responses)", "docs_read", "{}")
    row("documents kept", "kept", "{}")
    row("  kept ids shared with datatrove", lambda side: len(set(side["ids"]) & set(theirs["ids"])), "{}")
    if len(ours) > 1:
        row(f"  kept by {ours[0]['name']} and lost here", lambda side: len(set(ours[0]["ids"]) - set(side["ids"]))
            if side is not theirs else None, "{}")
    row("tokens (GPT-2)", "tokens", "{}")
    row("wall seconds", "wall_seconds", ratio=True)
    row("CPU seconds, whole machine (/proc/stat)", "machine_cpu_seconds", ratio=True)
    row("CPU seconds, reaped process tree", lambda side: side["cpu_seconds"] if side is theirs else None)
    row("CPU seconds in tamis's tasks (its counters)", "task_cpu_seconds")
    row("extraction step, s (each side's timer)", "extraction_seconds")
    row("extraction children's CPU s (tamis)", "extraction_cpu_seconds")

    def non_extraction_share(side: dict[str, Any]) -> str:
        return f"{1 - _extraction_cpu(side) / side['machine_cpu_seconds']:.0%}"

    row("everything but extraction, share of machine CPU", non_extraction_share)
    if all(side.get("small") for side in sides):
        def per_document(side: dict[str, Any], key: str) -> float:
            small = side["small"]
            extra = side["docs_read"] - small["docs_read"]
            return (_extraction_cpu(side) - _extraction_cpu(small) if key == "extraction"
                    else side[key] - small[key]) / extra

        small_records = sides[0]["small"]["docs_read"]
        row(f"small run ({small_records} documents, warm), machine CPU s",
            lambda side: side["small"]["machine_cpu_seconds"])
        row("per extra document: machine CPU ms", lambda side: 1000 * per_document(side, "machine_cpu_seconds"))
        row("per extra document: extraction CPU ms", lambda side: 1000 * per_document(side, "extraction"))
        row("everything but extraction, share per extra document",
            lambda side: f"{1 - per_document(side, 'extraction') / per_document(side, 'machine_cpu_seconds'):.0%}")
        row("fixed cost of a job (machine CPU s at 0 documents)",
            lambda side: side["small"]["machine_cpu_seconds"]
            - side["small"]["docs_read"] * per_document(side, "machine_cpu_seconds"))
    steps = list(dict.fromkeys(name for side in ours for name in side["steps"]))
    for name in steps:
        row(f"  tamis step {name}, s", lambda side, name=name: side["steps"].get(name) if side is not theirs else None)
    for name, stage in theirs.get("stages", {}).items():
        row(f"  datatrove stage {name}: wall / CPU s", lambda side, stage=stage: None if side is not theirs
            else f"{stage['wall_seconds']:.2f} / {stage['cpu_seconds']:.2f}")
    for name in theirs["steps"]:
        row(f"  datatrove {name}, s", lambda side, name=name: theirs["steps"][name] if side is theirs else None)
    if the_limit:
        plain, fast = the_limit["cpu_seconds"]["plain"][0], the_limit["cpu_seconds"]["fast"][0]
        rows.append([f"limit: plain trafilatura.extract, {the_limit['pages']} pages, one process, CPU s",
                     _cell(plain)])
        rows.append(["limit: tamis's fast path on the same pages, CPU s", _cell(fast)])
        rows.append(["  fast path's text identical to plain on every page", str(the_limit["identical"])])
        rows.append(["  fast path speed-up (pages per CPU second)", f"{the_limit['speedup']:.2f}x"])
    names = [side["name"] for side in sides] + [f"vs {side['name']}" for side in ours]
    widths = [max(len(r[0]) for r in rows) + 2] + [max(12, len(n) + 2) for n in names]
    lines = [header, "", "".join(f"{n:>{w}}" for n, w in zip(["", *names], widths, strict=True)),
             "-" * sum(widths)]
    for cells in rows:
        cells = cells + [""] * (len(widths) - len(cells))
        lines.append(f"{cells[0]:<{widths[0]}}" + "".join(f"{c:>{w}}" for c, w in zip(cells[1:], widths[1:],
                                                                                    strict=True)))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", default="all", help="all (every real page of shared/data), mix (45%% English), "
                                                   "or a folder of HTML pages")
    ap.add_argument("--records", type=int, default=2400, help="HTML responses in the corpus (default 2400)")
    ap.add_argument("--files", type=int, default=1, help="WARC files the corpus is split into")
    ap.add_argument("--warm-records", type=int, default=200, help="responses in the warm-up corpus")
    ap.add_argument("--exact-dup-rate", type=float, default=0.05)
    ap.add_argument("--near-dup-rate", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=1, help="workers on both sides (default 1)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="timed runs per side, alternating order; the table shows each side's fastest, and the "
                         "ratios of every repeat's adjacent runs are printed after it")
    ap.add_argument("--pipeline", action="append", default=None,
                    help="tamis pipeline file (repeatable: each gets a column; the first is the reference for "
                         "'lost'); default pipelines/fineweb.yaml")
    ap.add_argument("--removed", choices=("full", "none"), default="full",
                    help="full: tamis's pipeline as written, datatrove with exclusion writers as in its example; "
                         "none: neither writes removed documents")
    ap.add_argument("--no-limit", action="store_true", help="skip the plain-trafilatura limit")
    ap.add_argument("--no-marginal", action="store_true",
                    help="skip the second, warm run of each side on the warm-up corpus (the per-document figures)")
    ap.add_argument("--corpus-tool", default=str(bench_process.DEFAULT_TOOL))
    ap.add_argument("--datatrove-python", default=str(bench_process.DEFAULT_DT_PYTHON))
    ap.add_argument("--bench-dir", type=Path, default=REPO / ".bench")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    ap.add_argument("--json-out", type=Path, help="also write the JSON report (with kept ids) to this file")
    args = ap.parse_args()
    args.recipe = "fineweb"
    become_subreaper()
    args.datatrove_python = bench_process.datatrove_python(args)
    if not (args.datatrove_python.parent / "python").exists():
        raise SystemExit(f"no datatrove venv at {args.datatrove_python}")
    probe = subprocess.run([str(args.datatrove_python), "-c", "import orjson"], capture_output=True)
    if probe.returncode:
        log("installing orjson==3.13.0 (datatrove's JSONL reader and writer) into the datatrove venv ...")
        subprocess.run([str(args.datatrove_python), "-m", "pip", "install", "--quiet", "orjson==3.13.0"], check=True,
                       stdout=sys.stderr)

    pipelines = [Path(p) for p in args.pipeline or [REPO / "pipelines" / "fineweb.yaml"]]
    if len({p.stem for p in pipelines}) < len(pipelines):
        raise SystemExit("--pipeline: give files with different names (each names a column and an output folder)")
    if args.removed == "none":
        import yaml

        written = []
        for pipeline in pipelines:
            spec = yaml.safe_load(pipeline.read_text())
            spec["removed"] = {"mode": "none"}
            copy = args.bench_dir / "recipe-runs" / "pipelines" / pipeline.name
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy.write_text(yaml.safe_dump(spec, sort_keys=False))
            written.append(copy)
        pipelines = written

    pages = pages_dir(args.pages, args.bench_dir)
    files = corpus(args, pages, args.records)
    warm_files = corpus(args, pages, args.warm_records)
    runs = args.bench_dir / "recipe-runs"
    runs.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(args.bench_dir / "recipe-cache", ignore_errors=True)

    log(f"warm-up on {args.warm_records} records (first runs fill each side's one-off caches) ...")
    warm = {f"tamis {p.stem}": run_tamis(args, p, warm_files, runs / f"tamis-warm-{p.stem}") for p in pipelines}
    warm["datatrove"] = run_datatrove(args, warm_files, runs / "datatrove-warm")
    results: dict[str, list[dict[str, Any]]] = {f"tamis {p.stem}": [] for p in pipelines}
    results["datatrove"] = []
    for attempt in range(args.repeat):
        order: list[Path | None] = [*pipelines, None]
        for pipeline in order if attempt % 2 == 0 else order[::-1]:
            if pipeline is None:
                results["datatrove"].append(run_datatrove(args, files, runs / "datatrove"))
            else:
                out = runs / f"tamis-{pipeline.stem}"
                results[f"tamis {pipeline.stem}"].append(run_tamis(args, pipeline, files, out))
    small: dict[str, dict[str, Any]] = {}
    if not args.no_marginal:
        log(f"per extra document: each side once more on the {args.warm_records}-record corpus, warm ...")
        small = {f"tamis {p.stem}": run_tamis(args, p, warm_files, runs / f"tamis-small-{p.stem}") for p in pipelines}
        small["datatrove"] = run_datatrove(args, warm_files, runs / "datatrove-small")
    the_limit = None if args.no_limit else limit(files)
    sides = [{**best(side_runs), "small": small.get(name)} for name, side_runs in results.items()]
    datatrove = sides[-1]
    size = sum(p.stat().st_size for p in files) / 1e6
    header = (f"FineWeb English recipe with MinHash dedup, {args.workers} worker(s) each | "
              f"corpus: {args.records} records from {pages} ({size:.1f} MB in {len(files)} file(s), exact-dup "
              f"{args.exact_dup_rate}, near-dup {args.near_dup_rate}, seed {args.seed}) | removed: {args.removed} | "
              f"{os.cpu_count()} CPUs | datatrove {datatrove.get('versions', {}).get('datatrove')}, "
              f"{shared_versions(datatrove.get('versions', {}))}")
    report = {
        "header": header,
        "warm_up": {side: {k: v for k, v in run.items() if k != "ids"} for side, run in warm.items()},
        "runs": {side: [{k: v for k, v in run.items() if k != "ids"} for run in side_runs]
                 for side, side_runs in results.items()},
        "small_runs": {side: {k: v for k, v in run.items() if k != "ids"} for side, run in small.items()},
        "limit": the_limit,
        "ratio_wall": {side["name"]: datatrove["wall_seconds"] / side["wall_seconds"] for side in sides[:-1]},
        # the machine's speed can drift by tens of percent within minutes: ratios of runs made next to each other
        "ratio_wall_per_repeat": {name: [theirs["wall_seconds"] / ours["wall_seconds"]
                                         for ours, theirs in zip(side_runs, results["datatrove"], strict=True)]
                                  for name, side_runs in results.items() if name != "datatrove"},
    }
    if len(sides) > 2:
        report["lost"] = {side["name"]: sorted(set(sides[0]["ids"]) - set(side["ids"])) for side in sides[1:-1]}
    if args.json_out:
        args.json_out.write_text(json.dumps({**report, "kept_ids": {side["name"]: side["ids"] for side in sides}}))
    if args.json:
        print(json.dumps(report, indent=1))
        return
    print(table(sides, the_limit, header))
    print(f"\nwarm-up runs ({args.warm_records} records), wall s: "
          + ", ".join(f"{side} {run['wall_seconds']:.1f}" for side, run in warm.items()))
    for side, side_runs in results.items():
        print(f"{side} runs, wall s: " + ", ".join(f"{r['wall_seconds']:.2f}" for r in side_runs))
    for name, ratios in report["ratio_wall_per_repeat"].items():
        print(f"datatrove / {name}, wall, run by run (the runs of one repeat are adjacent in time): "
              + ", ".join(f"{r:.2f}x" for r in ratios))
    print("ratios: datatrove / tamis (>1x: tamis is faster); the fastest run of each side is shown")


if __name__ == "__main__":
    main()
