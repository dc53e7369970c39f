"""Seconds from launching a resumed run to its first new commit, and the driver's memory then.

    python benchmarks/bench_resume_start.py --output OUT --dirs 'INPUTS/d0[0-5]?' [--kill]

Launches the runner (fresh process, fresh embedded Ray of 2 CPUs, bench_driver_scale.py's pipeline) on one glob
per directory matched by --dirs, watches OUT/_commits/process for the first marker that was not there before, and
reports the seconds to it (planning, the resume check over every committed input, Ray start, one task), the
driver's RSS at that moment, and the files its resume check read (from the index segment it writes). With --kill
the driver is then killed (SIGKILL), as an interrupted job; otherwise the run is left to finish.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_driver_scale import CHILD, PIPELINE, REPO  # noqa: E402


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--dirs", required=True, action="append", help="a glob of input directories (repeatable)")
    parser.add_argument("--kill", action="store_true")
    parser.add_argument("--ray-tmp", default="/tmp/tamis-resume-start-ray")
    args = parser.parse_args()
    dirs = sorted({d for pattern in args.dirs for d in glob.glob(pattern)})
    patterns = [f"{d}/*.warc.gz" for d in dirs]
    markers = args.output / "_commits" / "process"
    before = set(os.listdir(markers)) if markers.exists() else set()
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled",
           "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "BENCH_PIPELINE": json.dumps(PIPELINE),
           "BENCH_RAY_TMP": args.ray_tmp, "BENCH_OUTPUT": str(args.output), "BENCH_INPUTS": json.dumps(patterns)}
    started = time.perf_counter()
    driver = subprocess.Popen([sys.executable, "-c", CHILD], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, start_new_session=True)
    first, rss = None, 0
    while driver.poll() is None:
        with os.scandir(markers) as entries:
            if any(e.name not in before for e in entries if e.name.endswith(".json")):
                first, rss = time.perf_counter() - started, rss_kib(driver.pid)
                break
        time.sleep(0.2)
    result = {"inputs": sum(len(glob.glob(p)) for p in patterns), "committed_before": len(before),
              "seconds_to_first_new_commit": round(first, 2) if first else None,
              "driver_peak_rss_mib_then": round(rss / 1024, 1)}
    if args.kill and driver.poll() is None:
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
        result["killed"] = True
    else:
        out, err = driver.communicate()
        lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
        result["run"] = json.loads(lines[-1][7:]) if lines else err[-2000:]
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
