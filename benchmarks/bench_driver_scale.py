"""The driver at dump scale: many tiny inputs, so that per-input costs of the driver dominate.

    python benchmarks/bench_driver_scale.py --inputs 90000 --workdir /tmp/driver-scale [--s3]

Builds N one-record WARC files from real pages (the HTML records of ../shared/data/warc/dolma_sample-0000, cycled),
then, each in a fresh child process with a fresh embedded Ray of 2 CPUs:

1. a full run of the first N - LEFT inputs (pipeline: warc reader, resiliparse, gopher_quality, parquet writer);
   its newest commit-index segment is then deleted, as if the driver had been killed before its last flush, so
   the resume also has units found by their marker only;
2. `tamis stats --json` on that output marked running (the commits path: listings and index segments);
3. a resume over all N inputs: LEFT to do, N - LEFT committed (time to the first task is the resume check);
4. `tamis stats --json` on the finished run (stats.json) and with --no-merged-equivalent load_run(prefer_merged=False).

Reports for each: wall seconds, seconds to the first task, the driver's peak RSS (ru_maxrss of the child, and its
RSS after ray.init as a baseline), files read by the resume check. With --s3 the output goes to a local moto
server (loopback) and every request it serves is counted, by phase and by method.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TAMIS_SHARED_DATA", REPO.parent / "shared" / "data"))
SOURCE = SHARED / "warc" / "dolma_sample-0000.warc.gz"
PIPELINE = {"name": "driver-scale", "steps": [{"step": "resiliparse"}, {"step": "gopher_quality"}]}
PER_DIR = 1000


def one_record_warcs(source: Path) -> list[bytes]:
    """Each HTML response record of `source` as a complete gzipped one-record WARC file (its own bytes)."""
    from warcio.archiveiterator import ArchiveIterator
    from warcio.warcwriter import WARCWriter

    found = []
    with open(source, "rb") as handle:
        for record in ArchiveIterator(handle):
            content_type = record.http_headers.get_header("Content-Type", "") if record.http_headers else ""
            if record.rec_type != "response" or "html" not in content_type:
                continue
            out = io.BytesIO()
            WARCWriter(out, gzip=True).write_record(record)
            found.append(out.getvalue())
    return found


def build_inputs(directory: Path, n: int) -> None:
    if len(list(directory.glob("*/*.warc.gz"))) == n:
        return
    shutil.rmtree(directory, ignore_errors=True)
    records = one_record_warcs(SOURCE)
    for i in range(n):
        sub = directory / f"d{i // PER_DIR:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"page-{i:06d}.warc.gz").write_bytes(records[i % len(records)])
    gzip.decompress(records[0])  # a valid gzip member


CHILD = r"""
import json, os, resource, sys, time
import ray
ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING",
         object_store_memory=512 * 2**20, _temp_dir=os.environ["BENCH_RAY_TMP"])
from tamis.engine.runner import run_pipeline
from tamis.pipeline.spec import parse_pipeline
baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
spec = parse_pipeline(json.loads(os.environ["BENCH_PIPELINE"]))
inputs = json.loads(os.environ["BENCH_INPUTS"])
started = time.perf_counter()
result = run_pipeline(spec, inputs, os.environ["BENCH_OUTPUT"], show_progress=False, max_task_bytes=None)
wall = time.perf_counter() - started
print("RESULT " + json.dumps({"wall_seconds": round(wall, 2), "first_task_seconds": result.first_task_seconds,
      "committed": len(result.completed), "skipped": len(result.skipped), "failed": len(result.failed),
      "commit_reads": result.commit_reads, "kept": result.totals["kept"],
      "driver_rss_after_ray_init_mib": round(baseline / 2**20, 1),
      "driver_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
ray.shutdown()
"""

STATS = r"""
import json, os, resource, sys, time
started = time.perf_counter()
from tamis.stats.load import load_run, to_json
imported = time.perf_counter()
run = load_run(os.environ["BENCH_OUTPUT"], prefer_merged=os.environ["BENCH_MERGED"] == "1")
text = json.dumps(to_json(run), default=str)
done = time.perf_counter()
print("RESULT " + json.dumps({"seconds": round(done - started, 3), "load_seconds": round(done - imported, 3),
      "source": run.source, "committed": run.committed, "reads": run.reads, "label": run.label,
      "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
"""


def child(code: str, env: dict[str, str], timeout: float = 7200) -> dict:
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=timeout)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        raise RuntimeError(f"child failed ({done.returncode}): {done.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


class Moto:
    """A moto S3 server on loopback whose request log is counted per phase."""

    def __init__(self, log: Path) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.log_path = log
        self.log = open(log, "w")  # noqa: SIM115 - lives as long as the server
        self.server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                       stdout=self.log, stderr=subprocess.STDOUT)
        self.endpoint = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        self.offset = 0

    def env(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
                "FSSPEC_S3_ENDPOINT_URL": self.endpoint}

    def requests(self) -> dict[str, int]:
        """Requests served since the last call, by method (and LIST for listings)."""
        self.log.flush()
        text = self.log_path.read_text()
        new, self.offset = text[self.offset:], len(text)
        counts: Counter[str] = Counter()
        for match in re.finditer(r'"(GET|PUT|POST|HEAD|DELETE) (\S+)', new):
            method, target = match.groups()
            counts["LIST" if method == "GET" and ("list-type=" in target or "prefix=" in target) else method] += 1
        counts["total"] = sum(counts.values())
        return dict(counts)

    def stop(self) -> None:
        self.server.terminate()
        try:
            self.server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.server.kill()
            self.server.wait()
        self.log.close()


def newest_segment_removed(output: str, env: dict[str, str]) -> str:
    code = r"""
import os, posixpath
from tamis.engine import layout
from tamis.io.storage import filesystem
fs, root = filesystem(os.environ["BENCH_OUTPUT"])
segments = sorted(p for p in fs.ls(layout.index_dir(root), detail=False) if p.endswith(".json"))
fs.rm(segments[-1])
print("RESULT " + '{"removed": "%s", "segments": %d}' % (posixpath.basename(segments[-1]), len(segments)))
"""
    return json.dumps(child(code, {**env, "BENCH_OUTPUT": output}))


def set_status(output: str, env: dict[str, str], status: str) -> None:
    code = r"""
import json, os
from tamis.engine import layout
from tamis.io.storage import filesystem, read_json, write_json
fs, root = filesystem(os.environ["BENCH_OUTPUT"])
manifest = read_json(fs, layout.manifest_path(root))
write_json(fs, layout.manifest_path(root), {**manifest, "status": os.environ["BENCH_STATUS"]})
print("RESULT {}")
"""
    child(code, {**env, "BENCH_OUTPUT": output, "BENCH_STATUS": status})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=3000)
    parser.add_argument("--left", type=int, default=1000, help="inputs left to do when the run resumes")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/tamis-driver-scale"))
    parser.add_argument("--s3", action="store_true", help="output on a local moto S3 server, requests counted")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    inputs_dir = args.workdir / f"inputs-{args.inputs}"
    t0 = time.perf_counter()
    build_inputs(inputs_dir, args.inputs)
    files = sorted(str(p) for p in inputs_dir.glob("*/*.warc.gz"))
    print(f"{len(files)} one-record inputs in {inputs_dir} ({time.perf_counter() - t0:.1f} s)", flush=True)
    first = files[: len(files) - args.left]
    # globs, as a user would pass them (one per directory of 1,000): the planner lists, it does not stat each file
    dirs_first = sorted({str(Path(f).parent) for f in first})
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled",
           "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "BENCH_PIPELINE": json.dumps(PIPELINE),
           "BENCH_RAY_TMP": str(args.workdir / "ray")}
    moto = None
    if args.s3:
        moto = Moto(args.workdir / "moto.log")
        env.update(moto.env())
        subprocess.run([sys.executable, "-c", "import s3fs; s3fs.S3FileSystem().mkdir('bench')"], env=env, check=True)
        output = f"s3://bench/run-{args.inputs}"
        moto.requests()
    else:
        output = str(args.workdir / f"out-{args.inputs}")
        shutil.rmtree(output, ignore_errors=True)
    env["BENCH_OUTPUT"] = output
    results: dict = {"inputs": len(files), "left": args.left, "output": output, "pipeline": PIPELINE}

    def phase(name: str, value: dict) -> None:
        if moto is not None:
            value["requests"] = moto.requests()
        results[name] = value
        print(name, json.dumps(value), flush=True)

    if len(dirs_first) * PER_DIR == len(first):
        patterns = [f"{d}/*.warc.gz" for d in dirs_first]
    else:
        patterns = first
    phase("run_first", child(CHILD, {**env, "BENCH_INPUTS": json.dumps(patterns)}))
    results["crash_simulated"] = newest_segment_removed(output, env)
    if moto is not None:
        moto.requests()
    set_status(output, env, "running")
    if moto is not None:
        moto.requests()
    phase("stats_running", child(STATS, {**env, "BENCH_MERGED": "1"}))
    all_patterns = [f"{d}/*.warc.gz" for d in sorted({str(Path(f).parent) for f in files})]
    phase("resume", child(CHILD, {**env, "BENCH_INPUTS": json.dumps(all_patterns)}))
    phase("stats_finished", child(STATS, {**env, "BENCH_MERGED": "1"}))
    phase("stats_finished_from_commits", child(STATS, {**env, "BENCH_MERGED": "0"}))
    phase("rerun_nothing_to_do", child(CHILD, {**env, "BENCH_INPUTS": json.dumps(all_patterns)}))
    if moto is not None:
        moto.stop()
    print(json.dumps(results, indent=1))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
