"""Requests and seconds of the resume check and of `tamis stats` on S3 (a local moto server), at 10,000 inputs.

    python benchmarks/bench_resume_s3.py --inputs 10000 --left 1000 --workdir /tmp/resume-s3

moto serves about 3 tasks a second on a shared 2-core machine (each task's commit is about 20 requests), so the
N - LEFT tasks run on local disk (as in bench_driver_scale.py, newest index segment removed as if the driver had
been killed), and their commit state (markers, stats files, index segments, manifest: everything the resume check
and `tamis stats` read; not the shards) is uploaded to moto. Then, each in a fresh process, with every request
moto serves counted: the runner's resume check (`load_commits` over all N planned inputs, what precedes the first
task), and `tamis stats` on the run marked running. bench_driver_scale.py --s3 runs whole jobs on moto (smaller).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_driver_scale import CHILD, PER_DIR, PIPELINE, REPO, STATS, Moto, build_inputs, child  # noqa: E402

CHECK = r"""
import json, os, time
started = time.perf_counter()
from tamis.engine.commits import load_commits
from tamis.io.storage import filesystem, read_json
from tamis.engine import layout
imported = time.perf_counter()
fs, root = filesystem(os.environ["BENCH_OUTPUT"])
manifest = read_json(fs, layout.manifest_path(root))
state = load_commits(fs, root, manifest["fingerprint"], set(manifest["inputs"]))
done = time.perf_counter()
print("RESULT " + json.dumps({"seconds": round(done - imported, 3), "committed": len(state.units),
      "unindexed": len(state.unindexed), "segments": len(state.segments), "reads": state.reads}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=10000)
    parser.add_argument("--left", type=int, default=1000)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/tamis-resume-s3"))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    inputs_dir = args.workdir / f"inputs-{args.inputs}"
    build_inputs(inputs_dir, args.inputs)
    files = sorted(str(p) for p in inputs_dir.glob("*/*.warc.gz"))
    first_dirs = sorted({str(Path(f).parent) for f in files[: len(files) - args.left]})
    assert len(first_dirs) * PER_DIR == len(files) - args.left, "--left must be a multiple of 1,000"
    local = args.workdir / "local"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled",
           "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "BENCH_PIPELINE": json.dumps(PIPELINE),
           "BENCH_RAY_TMP": str(args.workdir / "ray"), "BENCH_OUTPUT": str(local)}
    results: dict = {"inputs": len(files), "left": args.left}
    if not (local / "stats.json").exists():
        shutil.rmtree(local, ignore_errors=True)
        results["local_run"] = child(CHILD, {**env, "BENCH_INPUTS": json.dumps([f"{d}/*.warc.gz" for d in first_dirs])})
    segments = sorted((local / "_index" / "process").glob("*.json"))
    kept_aside = [s for s in segments if s.name.startswith("_")]
    assert not kept_aside
    # the manifest of the resumed run lists all N inputs (the runner writes it before the check)
    manifest = json.loads((local / "manifest.json").read_text())
    manifest.update(status="running", inputs=dict.fromkeys(files), units=len(files))
    moto = Moto(args.workdir / "moto.log")
    env.update(moto.env())
    upload = r"""
import json, os, sys
import s3fs
fs = s3fs.S3FileSystem()
fs.mkdir("bench")
local, manifest, newest = sys.argv[1], sys.argv[2], sys.argv[3]
for sub in ("_commits", "stats", "_index"):
    fs.put(os.path.join(local, sub), f"bench/run/{sub}", recursive=True)
fs.rm(f"bench/run/_index/process/{newest}")
fs.pipe("bench/run/manifest.json", open(manifest, "rb").read())
print("RESULT {}")
"""
    manifest_path = args.workdir / "manifest-running.json"
    manifest_path.write_text(json.dumps(manifest))
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", upload, str(local), str(manifest_path), segments[-1].name], env=env,
                          capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    results["upload_seconds"] = round(time.perf_counter() - started, 1)
    results["segments_uploaded"] = len(segments) - 1
    moto.requests()
    env["BENCH_OUTPUT"] = "s3://bench/run"
    for name, code, extra in (("resume_check", CHECK, {}), ("stats_running", STATS, {"BENCH_MERGED": "1"})):
        value = child(code, {**env, **extra})
        value["requests"] = moto.requests()
        results[name] = value
        print(name, json.dumps(value), flush=True)
    moto.stop()
    print(json.dumps(results, indent=1))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
