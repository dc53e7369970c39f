"""`tamis stats` on a run of many shards: seconds to load and print, from commit markers and from stats.json.

Makes a synthetic run of N committed tasks (default 1,000) by copying one real task summary (with the
FineWeb recipe's histograms) under N input ids, then times `tamis stats` end to end in a fresh process, the
way a user runs it: once while the manifest says "running" (every commit marker is read and merged) and once
"complete" (the merged stats.json is read). With --s3 the same run is also served by a local moto server
(moto answers one request at a time, so the commit-marker figure there is moto's speed, not S3's).

    python benchmarks/bench_stats.py --summary OUT/stats/process/<id>.json [--shards 1000] [--s3]

(The stats file, not the commit marker: markers no longer carry the histograms, see engine/commits.py.)
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tamis.engine import layout
from tamis.stats.merge import merge_summaries


def make_run(summary: dict, root: Path, shards: int) -> None:
    inputs = [f"s3://crawl/CC-MAIN-2024-22/segment-{i:05d}.warc.gz" for i in range(shards)]
    summaries = []
    for path in inputs:
        one = copy.deepcopy(summary)
        ident = layout.input_id(path)
        one.update(input=path, input_id=ident)
        if one.get("shard"):
            one["shard"]["path"] = layout.shard_path(str(root), "CC-MAIN-2024-22", ident)
        one["removed"] = {step: {**s, "path": layout.removed_path(str(root), step, ident)}
                          for step, s in one.get("removed", {}).items()}
        summaries.append(one)
        for target in (layout.commit_path(str(root), ident), layout.task_stats_path(str(root), ident)):
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            Path(target).write_text(json.dumps(one, indent=1, sort_keys=True))
    manifest = {"fingerprint": summary["fingerprint"], "inputs": inputs, "status": "complete",
                "pipeline": {"name": "fineweb", "reader": {"name": "warc"}, "steps": [
                    {"name": name} for name in summary["counters"] if name not in ("warc", "write")]}}
    Path(layout.manifest_path(str(root))).write_text(json.dumps(manifest))
    merged = merge_summaries(summaries)
    Path(layout.merged_stats_path(str(root))).write_text(json.dumps({
        "fingerprint": summary["fingerprint"], "complete": True, "inputs": shards, "committed": shards,
        "failed": {}, "totals": {}, **merged.to_dict()}))


def set_status(url_root: Path, status: str) -> None:
    path = Path(layout.manifest_path(str(url_root)))
    manifest = json.loads(path.read_text())
    manifest["status"] = status
    path.write_text(json.dumps(manifest))


def time_stats(url: str, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tamis.cli.main", "stats", url, "--json"], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--summary", type=Path, required=True, help="one real task summary (stats/process/<id>.json)")
    parser.add_argument("--shards", type=int, default=1000)
    parser.add_argument("--s3", action="store_true", help="also time the run served by a local moto S3 server")
    args = parser.parse_args()
    summary = json.loads(args.summary.read_text())
    root = Path(tempfile.mkdtemp(prefix="bench_stats_")) / "run"
    make_run(summary, root, args.shards)
    size = sum(p.stat().st_size for p in root.glob("_commits/process/*.json"))
    print(f"{args.shards} committed tasks, {size / 1e6:.1f} MB of commit markers")
    env = dict(os.environ)
    baseline = subprocess.run([sys.executable, "-c", "import tamis.cli.main"], env=env)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import tamis.cli.main"], env=env, check=baseline.returncode == 0)
    startup = time.perf_counter() - start
    print(f"{'':38}{'seconds':>8}")
    print(f"{'python + tamis import (included below)':38}{startup:8.2f}")
    for status in ("running", "complete"):
        set_status(root, status)
        what = "commit markers" if status == "running" else "stats.json"
        print(f"{'local, ' + what:38}{time_stats(str(root), env):8.2f}")
    if args.s3:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(3)
            import s3fs

            endpoint = f"http://127.0.0.1:{port}"
            env.update(AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x", AWS_DEFAULT_REGION="us-east-1",
                       FSSPEC_S3_ENDPOINT_URL=endpoint)
            fs = s3fs.S3FileSystem(endpoint_url=endpoint, key="x", secret="x")
            fs.mkdir("bench")
            set_status(root, "running")
            fs.put(str(root), "bench/run", recursive=True)
            for status in ("running", "complete"):
                set_status(root, status)
                fs.put_file(layout.manifest_path(str(root)), "bench/run/manifest.json")
                what = "commit markers" if status == "running" else "stats.json"
                print(f"{'S3 (moto), ' + what:38}{time_stats('s3://bench/run', env):8.2f}")
        finally:
            server.terminate()


if __name__ == "__main__":
    main()
