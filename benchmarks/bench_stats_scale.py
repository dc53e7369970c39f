"""`tamis stats` on a running job of N inputs, without running N tasks: a real run's commit state, cloned.

    python benchmarks/bench_stats_scale.py --source OUT-OF-A-REAL-RUN --units 90000 --workdir /tmp/stats-scale

`--source` is the output of a finished real run (e.g. bench_driver_scale.py's `out-5000`). Its committed units'
records (commit markers) and task stats files (500 of each) are cloned, round robin, under N synthetic inputs: the
first N - TAIL are indexed in segments of 1,000, written by the real `CommitIndex` as a driver writes them; the
last TAIL have their marker and stats file only (committed since the driver's last flush, the most a running
driver leaves: it flushes every 1,000 commits). Every unit has its marker. The manifest says "running".

Then, each in a fresh process, as a user runs them: `tamis stats --json`, `tamis stats` (the terminal report),
and `load_run` alone with the files it read. Prints wall and CPU seconds of each. Building 90,000 units writes
about 100 MB of markers and takes a minute or two; it is kept (`--keep`) for reruns.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOAD = r"""
import json, os, time
started = time.perf_counter(); cpu = time.process_time()
from tamis.stats.load import load_run
imported = time.perf_counter()
run = load_run(os.environ["BENCH_OUTPUT"])
print("RESULT " + json.dumps({"seconds": round(time.perf_counter() - started, 3),
      "load_seconds": round(time.perf_counter() - imported, 3), "cpu_seconds": round(time.process_time() - cpu, 3),
      "reads": run.reads, "committed": run.committed, "label": run.label}))
"""


def build(source: Path, output: Path, units: int, tail: int) -> None:
    from tamis.engine import commits, layout
    from tamis.engine.commits import CommitIndex, CommitState
    from tamis.io.storage import filesystem
    from tamis.stats.histograms import HistogramSet

    manifest = json.loads((source / "manifest.json").read_text())
    markers = sorted((source / "_commits" / "process").glob("*.json"))[:500]
    templates = [json.loads(marker.read_text()) for marker in markers]
    stats = {t["input_id"]: json.loads((source / "stats" / "process" / f"{t['input_id']}.json").read_text())
             for t in templates}
    histograms = {unit: HistogramSet.from_dict(summary.get("histograms", {})) for unit, summary in stats.items()}
    shutil.rmtree(output, ignore_errors=True)
    fs, root = filesystem(str(output))
    for sub in ("_commits/process", "stats/process", "_index/process"):
        (output / sub).mkdir(parents=True, exist_ok=True)
    paths = [f"/synthetic/d{i // 1000:03d}/page-{i:06d}.warc.gz" for i in range(units)]
    fingerprint = manifest["fingerprint"]
    index = CommitIndex(fs, root, CommitState(fingerprint))
    for i, path in enumerate(paths):
        template = templates[i % len(templates)]
        ident = layout.input_id(path)
        record = copy.deepcopy(template)
        record.update(input=path, input_id=ident, fingerprint=fingerprint)
        if record.get("shard"):
            record["shard"]["path"] = layout.shard_path(root, "unknown", ident)
        record["removed"] = {step: {**shard, "path": layout.removed_path(root, step, ident)}
                             for step, shard in record.get("removed", {}).items()}
        (output / "_commits" / "process" / f"{ident}.json").write_text(json.dumps(record))
        summary = stats[template["input_id"]]
        if i >= units - tail:
            (output / "stats" / "process" / f"{ident}.json").write_text(json.dumps({**summary, **record}))
        else:
            index._pend(record, histograms[template["input_id"]])
            if len(index._open) >= commits.FLUSH_UNITS:
                index.flush()
    index.flush()
    (output / "manifest.json").write_text(json.dumps({**manifest, "inputs": dict.fromkeys(paths), "units": units,
                                                      "status": "running"}))


def timed(argv: list[str], env: dict[str, str]) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        raise RuntimeError(f"{argv} failed ({done.returncode}): {done.stderr[-3000:]}")
    result = {"wall_seconds": round(wall, 3),
              "cpu_seconds": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 3),
              "stdout_bytes": len(done.stdout)}
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if lines:
        result.update(json.loads(lines[-1][len("RESULT "):]))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, required=True, help="output of a finished real run")
    parser.add_argument("--units", type=int, default=90000)
    parser.add_argument("--tail", type=int, default=1000, help="committed units not yet in a segment")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/tamis-stats-scale"))
    parser.add_argument("--keep", action="store_true", help="reuse the synthetic run if it is there")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    output = args.workdir / f"run-{args.units}-tail-{args.tail}"
    started = time.perf_counter()
    if not (args.keep and (output / "manifest.json").exists()):
        build(args.source, output, args.units, args.tail)
    results: dict = {"units": args.units, "tail": args.tail, "output": str(output),
                     "build_seconds": round(time.perf_counter() - started, 1), "load_average": os.getloadavg()}
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "BENCH_OUTPUT": str(output)}
    tamis = [sys.executable, "-m", "tamis.cli.main", "stats"]
    results["stats_json"] = timed([*tamis, "--json", str(output)], env)
    results["stats_report"] = timed([*tamis, str(output)], env)
    results["load_run"] = timed([sys.executable, "-c", LOAD], env)
    results["load_average_after"] = os.getloadavg()
    print(json.dumps(results, indent=1))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
