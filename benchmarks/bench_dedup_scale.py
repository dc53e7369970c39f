"""Dedup at millions of documents: tamis's buckets, components and finalize against N, and datatrove 0.10.1.

    python benchmarks/bench_dedup_scale.py run --docs 1000000 [--docs 3000000 ...] [--memory 256MiB]
        [--cpus 2] [--no-datatrove] [--keep-files] [--json OUT]
    python benchmarks/bench_dedup_scale.py generate|tamis|datatrove --docs N     (one step, for reruns)

For each N (benchmarks/scale_signatures.py says how signatures are made from real ones, with known clusters):

1. generate: input shards of 100,000 documents (FineWeb's columns, a short text: finalize reads and writes
   documents, it does not look at their text), tamis's signature files (the signature stage's format,
   written with tamis.dedup.partition.write_signature_file) and datatrove's (`bucket_XXX/RANK.minhash.sig`:
   per band and rank, records of 8 little-endian uint64 hashes and a uint32 document index, sorted), and
   the ground truth (each position's cluster).
2. tamis: run_dedup on an embedded Ray with `--cpus` CPUs and `memory_per_task`. The signature tasks'
   commit markers are written first, so the run resumes after signatures: buckets, components and finalize
   run (finalize with no steps after dedup). Per stage: wall time (from the driver's progress callback),
   tasks, CPU seconds, the largest peak RSS of a task and its growth over the worker's RSS at task start
   (each task's meter); and the driver's own peak RSS. In its own process.
3. datatrove: MinhashDedupBuckets (14 tasks, `--cpus` workers) and MinhashDedupCluster (its single task),
   each in its own process (benchmarks/datatrove_dedup_scale.py in the venv of setup_datatrove_venv.sh);
   wall, CPU and peak RSS from wait4().
4. check: tamis's final memberships (every duplicate's kept document and cluster size) and its kept
   documents, and datatrove's `.clusters` (a cluster number per duplicate), against the ground truth, exactly.

Everything runs under the caller's nice level; files go under .bench/dedup_scale/ (about 1.1 KB per document
for both formats: 10M documents take about 14 GB).
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

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from scale_signatures import base_signatures, layout, signatures_at  # noqa: E402

DT_PYTHON = Path(os.environ.get("DATATROVE_PYTHON", REPO / ".bench" / "dtvenv" / "bin" / "python"))
CACHE = REPO / ".bench" / "dedup_scale"
DOCS_PER_SHARD = 100_000
CHUNK = 25_000
STAGES = ("buckets", "components", "finalize")
MiB = 2**20
RESULT = "RESULT "

for key, value in {"RAY_USAGE_STATS_ENABLED": "0", "RAY_DEDUP_LOGS": "0"}.items():
    os.environ.setdefault(key, value)


def options_for(memory: int):
    from tamis.dedup.options import DedupOptions

    return DedupOptions(pii=False, token_count=False, memory_per_task=memory)


def _dt_record_dtype(rows: int) -> np.dtype:
    return np.dtype([(f"h{i}", "<u8") for i in range(rows)] + [("doc", "<u4")])


def generate(base_dir: Path, n_docs: int, memory: int, docs_per_shard: int = DOCS_PER_SHARD, seed: int = 0,
             datatrove: bool = True, base_limit: int | None = None) -> dict:
    """Write shards, both signature formats and the truth under base_dir; returns the metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tamis.dedup.partition import PRIORITY_SHIFT, SHARD_SHIFT, write_signature_file
    from tamis.dedup.signatures import MinHasher
    from tamis.dedup.stage import choose_ranges
    from tamis.io.parquet import FINEWEB_SCHEMA

    started = time.perf_counter()
    shutil.rmtree(base_dir, ignore_errors=True)
    (base_dir / "input").mkdir(parents=True)
    options = options_for(memory)
    bands, rows = options.bands, options.rows_per_band
    hasher = MinHasher(options)
    base = base_signatures(options, base_limit)
    lay = layout(n_docs, bands, seed)
    truth = lay.truth()
    np.save(base_dir / "truth.npy", truth)
    creation_at = np.empty(n_docs, dtype=np.int64)
    creation_at[lay.position] = np.arange(n_docs)
    ranges = choose_ranges(n_docs, options)
    shards = -(-n_docs // docs_per_shard)
    work = str(base_dir / "work")
    entries = []
    record = _dt_record_dtype(rows)
    for shard in range(shards):
        first, last = shard * docs_per_shard, min(n_docs, (shard + 1) * docs_per_shard)
        h1s, h2s = [], []
        dt_parts: list[list[np.ndarray]] = [[] for _ in range(bands)]
        for lo in range(first, last, CHUNK):
            creation = creation_at[lo:min(last, lo + CHUNK)]
            sigs = signatures_at(lay, base, creation, bands, rows)
            h1, h2 = hasher.band_keys(sigs)
            h1s.append(h1)
            h2s.append(h2)
            if datatrove:
                for band in range(bands):
                    dt_parts[band].append(sigs[:, band * rows:(band + 1) * rows])
        row_ids = np.arange(last - first, dtype=np.uint64)
        nodes = (np.uint64(1) << PRIORITY_SHIFT) | (np.uint64(shard) << SHARD_SHIFT) | row_ids
        entries.append(write_signature_file(work, shard, np.concatenate(h1s), np.concatenate(h2s), nodes, ranges))
        if datatrove:
            for band in range(bands):
                values = np.concatenate(dt_parts[band])
                out = np.empty(len(values), dtype=record)
                for i in range(rows):
                    out[f"h{i}"] = values[:, i]
                out["doc"] = row_ids.astype(np.uint32)
                order = np.lexsort([out["doc"]] + [values[:, i] for i in reversed(range(rows))])
                folder = base_dir / "dtsigs" / f"bucket_{band:03d}"
                folder.mkdir(parents=True, exist_ok=True)
                out[order].tofile(folder / f"{shard:05d}.minhash.sig")
        ids = [str(p) for p in range(first, last)]
        n = last - first
        table = pa.table({"text": [f"document {p} of the dedup scale benchmark" for p in ids], "id": ids,
                          "dump": ["CC-SCALE"] * n, "url": [f"https://example.com/{p}" for p in ids],
                          "date": ["2024-01-01T00:00:00Z"] * n, "file_path": ["scale.warc.gz"] * n,
                          "language": ["en"] * n, "language_score": [1.0] * n, "token_count": [8] * n},
                         schema=FINEWEB_SCHEMA)
        pq.write_table(table, base_dir / "input" / f"part-{shard:05d}.parquet")
    sizes = np.bincount(truth)
    meta = {"docs": n_docs, "docs_per_shard": docs_per_shard, "shards": shards, "memory_per_task": memory,
            "ranges": ranges, "bands": bands, "rows_per_band": rows, "seed": seed, "clusters": lay.clusters,
            "base_signatures": len(base), "duplicate_docs": int((sizes[truth] > 1).sum()),
            "clusters_of_2_or_more": int((sizes > 1).sum()), "largest_cluster": int(sizes.max()),
            "signature_entries": entries, "datatrove": datatrove,
            "generate_seconds": round(time.perf_counter() - started, 1)}
    (base_dir / "meta.json").write_text(json.dumps(meta))
    return meta


def expected_reps(truth: np.ndarray) -> np.ndarray:
    """The position each document's cluster keeps under `lowest_id`: its smallest position."""
    first = np.full(int(truth.max()) + 1, len(truth), dtype=np.int64)
    np.minimum.at(first, truth, np.arange(len(truth), dtype=np.int64))
    return first[truth]


def check_tamis(base_dir: Path, meta: dict, summary: dict) -> dict:
    """Memberships and kept documents against the truth; every mismatch counted."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from tamis.dedup.block_file import all_blocks, entry_of, read_located
    from tamis.dedup.components import MEMBER_COLUMNS
    from tamis.dedup.partition import ROW_MASK, shard_of
    from tamis.io.storage import filesystem

    truth = np.load(base_dir / "truth.npy")
    sizes = np.bincount(truth)
    per = meta["docs_per_shard"]
    nodes, reps, member_sizes = [], [], []
    folder = base_dir / "work" / "components" / f"members-{summary['rounds']:03d}"
    fs, _ = filesystem(str(folder))
    for path in sorted(folder.glob("*.blocks")) if summary["rounds"] else []:
        entry = entry_of(fs, str(path))
        for block in read_located(fs, all_blocks(fs, entry, MEMBER_COLUMNS), MEMBER_COLUMNS):
            nodes.append(block["node"])
            reps.append(block["rep"])
            member_sizes.append(block["size"])

    def position(ids: np.ndarray) -> np.ndarray:
        return shard_of(ids).astype(np.int64) * per + (ids & ROW_MASK).astype(np.int64)

    node = position(np.concatenate(nodes)) if nodes else np.empty(0, np.int64)
    rep = position(np.concatenate(reps)) if reps else np.empty(0, np.int64)
    size = np.concatenate(member_sizes).astype(np.int64) if member_sizes else np.empty(0, np.int64)
    want = expected_reps(truth)
    dups = np.flatnonzero(sizes[truth] > 1)
    listed = np.zeros(len(truth), dtype=np.int64)
    np.add.at(listed, node, 1)
    kept = []
    for path in sorted((base_dir / "out" / "data").rglob("*.parquet")):
        kept.append(pc.cast(pq.read_table(path, columns=["id"]).column("id"), "int64").to_numpy())
    kept_ids = np.sort(np.concatenate(kept)) if kept else np.empty(0, np.int64)
    want_kept = np.flatnonzero(want == np.arange(len(truth)))
    result = {"members": len(node), "duplicate_docs": len(dups),
              "not_listed_once": int((listed[dups] != 1).sum()) + int((listed[sizes[truth] == 1] != 0).sum()),
              "wrong_rep": int((rep != want[node]).sum()), "wrong_size": int((size != sizes[truth[node]]).sum()),
              "kept": len(kept_ids), "expected_kept": len(want_kept),
              "kept_equal": bool(len(kept_ids) == len(want_kept) and (kept_ids == want_kept).all())}
    result["exact"] = (result["not_listed_once"] == 0 and result["wrong_rep"] == 0 and result["wrong_size"] == 0
                       and result["members"] == len(dups) and result["kept_equal"])
    return result


def check_datatrove(base_dir: Path, meta: dict) -> dict:
    """datatrove's clusters (union-find roots, numbered) must be the truth's, as a partition."""
    truth = np.load(base_dir / "truth.npy")
    sizes = np.bincount(truth)
    per = meta["docs_per_shard"]
    positions, labels = [], []
    for path in sorted((base_dir / "dt" / "remove").glob("*.clusters")):
        pairs = np.fromfile(path, dtype="<u4").reshape(-1, 2)
        positions.append(int(path.name.split(".")[0]) * per + pairs[:, 0].astype(np.int64))
        labels.append(pairs[:, 1].astype(np.int64))
    pos = np.concatenate(positions) if positions else np.empty(0, np.int64)
    lab = np.concatenate(labels) if labels else np.empty(0, np.int64)
    removed = sum(p.stat().st_size // 4 for p in (base_dir / "dt" / "remove").glob("*.remove"))
    dups = np.flatnonzero(sizes[truth] > 1)
    pairs = np.unique(np.stack([truth[pos].astype(np.int64), lab], axis=1), axis=0) if len(pos) else pos
    result = {"members": len(pos), "duplicate_docs": len(dups), "distinct_positions": len(np.unique(pos)),
              "truth_clusters": int((sizes > 1).sum()), "datatrove_clusters": len(np.unique(lab)),
              "label_pairs": len(pairs), "removed": int(removed),
              "expected_removed": len(dups) - int((sizes > 1).sum())}
    result["exact"] = (result["members"] == len(dups) and result["distinct_positions"] == len(dups)
                       and bool(np.isin(pos, dups).all())
                       and result["label_pairs"] == result["truth_clusters"] == result["datatrove_clusters"]
                       and result["removed"] == result["expected_removed"])
    return result


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def run_tamis(base_dir: Path, cpus: int, keep_files: bool = False) -> dict:
    """Resume run_dedup after signatures (their markers written here); per-stage costs and the check."""
    import pyarrow.parquet as pq

    from tamis.dedup.stage import choose_ranges, dedup_fingerprint, run_dedup
    from tamis.io.storage import filesystem, write_json

    meta = json.loads((base_dir / "meta.json").read_text())
    options = options_for(meta["memory_per_task"])
    work, out = base_dir / "work", base_dir / "out"
    for child in work.iterdir():
        if child.name != "signatures":
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    shutil.rmtree(out, ignore_errors=True)
    shards = sorted(str(p) for p in (base_dir / "input").glob("*.parquet"))
    rows = [pq.ParquetFile(p).metadata.num_rows for p in shards]
    ranges = choose_ranges(sum(rows), options)
    assert ranges == meta["ranges"], "signature files were written for another memory_per_task"
    fingerprint = dedup_fingerprint(options, shards, rows, ranges, [])
    fs, _ = filesystem(str(work))
    for i, (path, entry) in enumerate(zip(shards, meta["signature_entries"], strict=True)):
        summary = {"shard": i, "input": path, "rows": rows[i], "with_signature": rows[i], "ranges": ranges,
                   "file": entry}
        write_json(fs, str(work / "_commits" / "signatures" / f"{i:06d}.json"),
                   {"fingerprint": fingerprint, "summary": summary})
    marks: dict[str, float] = {}

    def progress(stage: str, done: int, total: int) -> None:
        marks[stage] = time.perf_counter()

    import ray

    from tamis.engine.ray_runtime import connect, disconnect

    for attempt in range(3):  # started here, not inside run_dedup, so that stage times leave Ray's start out
        try:
            started_ray = connect(num_cpus=cpus)
            break
        except Exception:  # noqa: BLE001 - Ray's start can time out on a loaded machine: try again
            if attempt == 2:
                raise
            time.sleep(10)
    # start the workers and import what the dedup tasks import before the clock starts (a lambda: pickled by
    # value, as the workers cannot import this script); the sleep keeps one worker from taking both
    warm = ray.remote(lambda: (__import__("tamis.dedup.finalize"), time.sleep(0.5)) and None)
    ray.get([warm.options(num_cpus=1).remote() for _ in range(cpus)])
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")
    driver_start_rss = _status_kib("VmRSS") * 1024
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    try:
        summary = run_dedup(shards, str(work), str(out), options, workers=cpus, steps=(), progress=progress)
        wall = time.perf_counter() - started
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    finally:
        if started_ray:
            disconnect()
    driver = {"peak_rss": _status_kib("VmHWM") * 1024, "rss_start": driver_start_rss,
              "cpu_seconds": round(cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime, 2)}
    stages, previous = {}, started
    for stage in STAGES:
        tasks = [t for t in summary["tasks"] if t["stage"] == stage]
        end = marks.get(stage, previous)
        stages[stage] = {"wall_seconds": round(end - previous, 2), "tasks": len(tasks),
                         "cpu_seconds": round(sum(t["cpu_seconds"] for t in tasks), 2),
                         "max_task_seconds": round(max((t["wall_seconds"] for t in tasks), default=0), 2),
                         "max_peak_rss": max((t["peak_rss"] for t in tasks), default=0),
                         "max_over_start": max((t["peak_over_start"] for t in tasks), default=0)}
        previous = end
    check = check_tamis(base_dir, meta, summary)
    result = {"docs": meta["docs"], "wall_seconds": round(wall, 2), "stages": stages, "driver": driver,
              "ranges_per_band": summary["ranges_per_band"], "bucket_tasks": summary["bucket_tasks"],
              "spilled_buckets": summary["spilled_buckets"], "candidate_pairs": summary["candidate_pairs"],
              "partitions": summary["partitions"], "rounds": summary["rounds"], "kept": summary["kept"],
              "removed": summary["removed"], "memory_per_task": meta["memory_per_task"],
              "within_memory_per_task": all(s["max_over_start"] <= meta["memory_per_task"]
                                            for n, s in stages.items() if n != "finalize"),
              "check": check}
    if not keep_files:
        shutil.rmtree(out, ignore_errors=True)
        for child in work.iterdir():
            if child.name not in ("signatures",):
                shutil.rmtree(child) if child.is_dir() else child.unlink()
    return result


def run_datatrove(base_dir: Path, cpus: int) -> dict:
    """datatrove's buckets and cluster stages, each in its own process, measured by wait4()."""
    meta = json.loads((base_dir / "meta.json").read_text())
    work = base_dir / "dt"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    stages = {}
    for stage, ranks in (("buckets", range(meta["bands"])), ("cluster", range(1))):
        started = time.perf_counter()
        todo, running, tasks = list(ranks), {}, []
        while todo or running:
            while todo and len(running) < cpus:
                rank = todo.pop(0)
                log = open(work / f"{stage}-{rank:02d}.log", "w")
                proc = subprocess.Popen([str(DT_PYTHON), str(REPO / "benchmarks" / "datatrove_dedup_scale.py"), stage,
                                         str(base_dir / "dtsigs"), str(work), str(rank)],
                                        stdout=subprocess.DEVNULL, stderr=log)
                running[proc.pid] = (rank, time.perf_counter(), log)
            pid, status, usage = os.wait4(-1, 0)
            rank, began, log = running.pop(pid)
            log.close()
            if os.waitstatus_to_exitcode(status):
                raise RuntimeError(f"datatrove {stage} task {rank} failed; see {log.name}")
            tasks.append({"rank": rank, "wall_seconds": round(time.perf_counter() - began, 2),
                          "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2), "peak_rss": usage.ru_maxrss * 1024})
        stages[stage] = {"wall_seconds": round(time.perf_counter() - started, 2), "tasks": len(tasks),
                         "cpu_seconds": round(sum(t["cpu_seconds"] for t in tasks), 2),
                         "max_task_seconds": max(t["wall_seconds"] for t in tasks),
                         "peak_rss": max(t["peak_rss"] for t in tasks)}
    pairs = sum(p.stat().st_size // 16 for p in (work / "buckets").glob("*.dups"))
    result = {"docs": meta["docs"], "stages": stages, "duplicate_pairs": pairs,
              "check": check_datatrove(base_dir, meta)}
    shutil.rmtree(work / "buckets", ignore_errors=True)
    return result


def report(results: list[dict]) -> None:
    print(f"\n{'docs':>10s} {'stage':>22s} {'wall s':>8s} {'cpu s':>8s} {'tasks':>6s} {'peak RSS MiB':>13s} "
          f"{'over start MiB':>15s}")
    for row in results:
        t = row.get("tamis")
        if t:
            for stage, s in t["stages"].items():
                print(f"{row['docs']:>10d} {'tamis ' + stage:>22s} {s['wall_seconds']:8.1f} {s['cpu_seconds']:8.1f} "
                      f"{s['tasks']:6d} {s['max_peak_rss'] / MiB:13.0f} {s['max_over_start'] / MiB:15.0f}")
            print(f"{row['docs']:>10d} {'tamis driver':>22s} {t['wall_seconds']:8.1f} "
                  f"{t['driver']['cpu_seconds']:8.1f} {'':>6s} {t['driver']['peak_rss'] / MiB:13.0f}")
            print(f"{'':>10s} ranges {t['ranges_per_band']}, pairs {t['candidate_pairs']}, partitions "
                  f"{t['partitions']}, rounds {t['rounds']}, kept {t['kept']}, within memory_per_task "
                  f"{t['within_memory_per_task']}, clusters exact {t['check']['exact']}")
        d = row.get("datatrove")
        if d:
            for stage, s in d["stages"].items():
                print(f"{row['docs']:>10d} {'datatrove ' + stage:>22s} {s['wall_seconds']:8.1f} "
                      f"{s['cpu_seconds']:8.1f} {'':>6s} {s['peak_rss'] / MiB:13.0f}")
            print(f"{'':>10s} datatrove pairs {d['duplicate_pairs']}, clusters exact {d['check']['exact']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["run", "generate", "tamis", "datatrove"])
    parser.add_argument("--docs", type=int, action="append", required=True)
    parser.add_argument("--memory", default="256MiB", help="memory_per_task (default 256MiB)")
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--docs-per-shard", type=int, default=DOCS_PER_SHARD)
    parser.add_argument("--no-datatrove", action="store_true")
    parser.add_argument("--keep-files", action="store_true", help="keep the generated files after a run")
    parser.add_argument("--json", help="write (run) or append to this JSON file")
    args = parser.parse_args()
    from tamis.dedup.options import parse_size

    memory = parse_size(args.memory)
    results = []
    for n in args.docs:
        base_dir = CACHE / f"n{n}"
        row: dict = {"docs": n, "uptime_before": _uptime()}
        if args.command == "generate":
            meta = generate(base_dir, n, memory, args.docs_per_shard, datatrove=not args.no_datatrove)
            print(RESULT + json.dumps({k: v for k, v in meta.items() if k != "signature_entries"}))
            continue
        if args.command == "tamis":
            print(RESULT + json.dumps(run_tamis(base_dir, args.cpus, args.keep_files)))
            continue
        if args.command == "datatrove":
            print(RESULT + json.dumps(run_datatrove(base_dir, args.cpus)))
            continue
        # run: each step in its own process, so that every peak RSS is that step's own
        for step in ["generate", "tamis"] + ([] if args.no_datatrove else ["datatrove"]):
            cmd = [sys.executable, __file__, step, "--docs", str(n), "--memory", args.memory, "--cpus",
                   str(args.cpus), "--docs-per-shard", str(args.docs_per_shard)]
            cmd += (["--no-datatrove"] if args.no_datatrove else []) + (["--keep-files"] if args.keep_files else [])
            started = time.perf_counter()
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode:
                sys.exit(f"{step} failed ({done.returncode}):\n{done.stderr[-3000:]}")
            row[step] = json.loads(next(line[len(RESULT):] for line in done.stdout.splitlines()
                                        if line.startswith(RESULT)))
            row[f"{step}_wall"] = round(time.perf_counter() - started, 1)
            print(f"[{time.strftime('%H:%M:%S')}] {n} {step}: {row[f'{step}_wall']} s", flush=True)
        row["uptime_after"] = _uptime()
        results.append(row)
        if not args.keep_files:
            shutil.rmtree(base_dir, ignore_errors=True)
        if args.json:
            previous = json.loads(Path(args.json).read_text()) if Path(args.json).exists() else []
            previous = [r for r in previous if r["docs"] != n] + [row]
            Path(args.json).write_text(json.dumps(sorted(previous, key=lambda r: r["docs"]), indent=1))
    if results:
        report(results)


def _uptime() -> str:
    return Path("/proc/loadavg").read_text().strip()


if __name__ == "__main__":
    main()
