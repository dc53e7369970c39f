"""The resume check of a run, timed alone: what `run_pipeline` does before it starts Ray.

    python benchmarks/bench_resume_check.py --output OUT --dirs 'INPUTS/d0[0-4]?' [--dirs ...]

Calls the real `run_pipeline` (bench_driver_scale.py's pipeline, one glob per input directory) with Ray's start
replaced by a stop: so it times listing the inputs, planning, the manifest, and the commit check (listings, index
segments, markers of unindexed units, and the repaired/new index segment it writes), which is all that precedes
the first task except Ray's own start-up. Used when the shared machine was too loaded for Ray to start (its
metrics agent timed out). Prints seconds, units to do, files read, and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import glob
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_driver_scale import PIPELINE  # noqa: E402


class ReadyToStart(Exception):
    """Raised where the runner would start Ray."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", required=True)
    parser.add_argument("--dirs", required=True, action="append")
    args = parser.parse_args()
    from tamis.engine import runner
    from tamis.pipeline.spec import parse_pipeline

    patterns = [f"{d}/*.warc.gz" for d in sorted({d for p in args.dirs for d in glob.glob(p)})]
    seen = {}
    original = runner.load_commits

    def counting(*a, **k):
        state = original(*a, **k)
        seen.update(committed=len(state.units), reads=state.reads, unindexed=len(state.unindexed),
                    repairs=len(state.repairs), segments=len(state.segments))
        return state

    def stop(*_a, **_k):
        raise ReadyToStart

    runner.load_commits, runner.connect = counting, stop
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started, cpu = time.perf_counter(), time.process_time()
    try:
        runner.run_pipeline(parse_pipeline(PIPELINE), patterns, args.output, show_progress=False, max_task_bytes=None)
    except ReadyToStart:
        pass
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(json.dumps({"inputs_globs": len(patterns), "seconds_before_ray": round(seconds, 2),
                      "cpu_seconds_before_ray": round(cpu, 2), **seen,
                      "rss_after_imports_mib": round(baseline / 1024, 1),
                      "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))


if __name__ == "__main__":
    main()
