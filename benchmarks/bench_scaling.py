"""Throughput of the process stage with 1 and 2 workers on this machine, and a projection for a cluster.

    python benchmarks/bench_scaling.py [--records 480] [--files 8] [--pipeline pipelines/fineweb.yaml]

Builds a corpus with ../shared/tools/make_warc_corpus.py from the real pages in ../shared/data, then runs the
pipeline on a fresh embedded Ray with 1 CPU and with 2 CPUs. Ray start-up and each worker's one-off set-up
(models, block lists) are excluded by a warm-up pass over every file with --limit 1 into a scratch output;
the timed pass is a full run into a fresh output. Prints documents per second, the 2-vs-1 speed-up, and
documents per core-second, the figure docs/scaling.md projects from.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TAMIS_SHARED_DATA", REPO.parent / "shared" / "data"))


def build_corpus(directory: Path, records: int, files: int) -> list[Path]:
    if not list(directory.glob("*.warc.gz")):
        directory.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, str(SHARED.parent / "tools" / "make_warc_corpus.py"),
                        "--pages", str(SHARED / "extraction" / "scrapinghub_aeb" / "html"),
                        "--out", str(directory / "corpus.warc.gz"), "--records", str(records),
                        "--files", str(files), "--seed", "0"], check=True, capture_output=True)
    return sorted(directory.glob("*.warc.gz"))


def measure(cpus: int, pipeline: str, corpus: str, scratch: Path, no_dedup: bool) -> dict:
    """One fresh Ray with `cpus` CPUs: warm-up pass, then the timed pass (in a child process, for isolation)."""
    code = f"""
import json, os, time, ray
from tamis.engine.runner import run_pipeline
from tamis.pipeline.spec import load_pipeline
ray.init(address="local", num_cpus={cpus}, include_dashboard=False, log_to_driver=False,
         logging_level="WARNING", _temp_dir={str(scratch / 'ray')!r})
spec = load_pipeline({pipeline!r})
if {no_dedup!r}:
    import dataclasses
    spec = dataclasses.replace(spec, dedup=None)
run_pipeline(spec, [{corpus!r}], {str(scratch / 'warm')!r}, limit=1, show_progress=False, max_task_bytes=None)
started = time.perf_counter()
result = run_pipeline(spec, [{corpus!r}], {str(scratch / 'timed')!r}, show_progress=False, max_task_bytes=None)
wall = time.perf_counter() - started
print(json.dumps({{"cpus": {cpus}, "wall": wall, "docs": result.totals["html_docs"], "kept": result.totals["kept"],
                  "task_cpu": result.totals["task_cpu_seconds"], "mb": result.totals["bytes_read"] / 1e6}}))
ray.shutdown()
"""
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled",
           "RAY_USAGE_STATS_ENABLED": "0"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=480)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--pipeline", default=str(REPO / "pipelines" / "fineweb.yaml"))
    parser.add_argument("--no-dedup", action="store_true", help="the process stage alone (drop `dedup:`)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    corpus_dir = REPO / ".bench" / f"scaling-{args.records}-{args.files}"
    files = build_corpus(corpus_dir, args.records, args.files)
    results = []
    for cpus in (1, 2):
        scratch = Path(tempfile.mkdtemp(prefix=f"tsc{cpus}-", dir="/tmp"))
        try:
            results.append(measure(cpus, args.pipeline, str(corpus_dir / "*.warc.gz"), scratch, args.no_dedup))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    one, two = results
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{os.cpu_count()} cores",
        "corpus": {"files": len(files), "records": args.records, "mb": round(one["mb"], 1)},
        "pipeline": args.pipeline,
        "runs": results,
        "docs_per_second": {r["cpus"]: round(r["docs"] / r["wall"], 2) for r in results},
        "speedup_2_vs_1": round(one["wall"] / two["wall"], 3),
        "docs_per_core_second": round(one["docs"] / one["task_cpu"], 2),
    }
    if args.json:
        print(json.dumps(report, indent=1))
        return
    stage = "process stage only" if args.no_dedup else "with dedup"
    print(f"corpus: {len(files)} files, {args.records} pages, {one['mb']:.1f} MB  pipeline: {args.pipeline} ({stage})")
    print(f"{'workers':>8} {'wall s':>8} {'docs':>6} {'docs/s':>8} {'task CPU s':>11}")
    for r in results:
        print(f"{r['cpus']:>8} {r['wall']:>8.2f} {r['docs']:>6} {r['docs'] / r['wall']:>8.2f} {r['task_cpu']:>11.2f}")
    print(f"speed-up 2 vs 1 workers: {report['speedup_2_vs_1']:.2f}x   "
          f"docs per core-second (1 worker): {report['docs_per_core_second']:.1f}")


if __name__ == "__main__":
    main()
