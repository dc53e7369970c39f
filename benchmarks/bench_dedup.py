"""Dedup quality and cost: tamis's MinHash dedup against ground truth and against datatrove 0.10.1.

    python benchmarks/bench_dedup.py [--records 400] [--scale 10] [--memory 64MiB] [--json OUT]

1. Builds a corpus with shared/tools/make_warc_corpus.py (real pages, injected exact and near copies, and a
   ground-truth file), cached under .bench/dedup/; texts come from trafilatura (favor_precision, no comments,
   deduplicate off: trafilatura's cross-document paragraph cache would make copies differ) and are written as
   FineWeb-schema shards of about 150 documents.
2. Runs tamis's dedup stage (signatures -> buckets -> components -> finalize, PII and token count off, as
   datatrove's four stages do neither) on an embedded Ray with one CPU, and datatrove's four MinHash stages
   (benchmarks/datatrove_dedup.py, in its venv) with one worker, on the same shards.
3. Prints precision and recall against the ground truth for exact and near copies, agreement with datatrove's
   removed set (as is, and with datatrove's clusters given tamis's keep rule), documents per CPU second of each,
   and the peak memory of every task per stage while the input grows `--scale` times.

Definitions. A removed document is correct when its cluster's kept document has the same origin page.
A copy is found when it shares a predicted cluster with another document of its origin. Removal precision
and recall count, per origin, removed documents against the |group| - 1 that should go.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TAMIS_SHARED", REPO.parent / "shared"))
TOOL = SHARED / "tools" / "make_warc_corpus.py"
PAGES = SHARED / "data" / "extraction" / "scrapinghub_aeb" / "html"
# the datatrove venv made by benchmarks/setup_datatrove_venv.sh (override with DATATROVE_PYTHON)
DT_PYTHON = Path(os.environ.get("DATATROVE_PYTHON", REPO / ".bench" / "dtvenv" / "bin" / "python"))
CACHE = REPO / ".bench" / "dedup"
DOCS_PER_SHARD = 150
COMMENT = re.compile(rb"^<!-- r\d+ -->\n")

for key, value in {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled", "RAY_DEDUP_LOGS": "0",
                   "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}.items():
    os.environ.setdefault(key, value)


def build_corpus(records: int, exact: float, near: float, seed: int) -> tuple[Path, dict]:
    """(shard directory, truth by record id); cached by parameters."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import trafilatura
    from warcio.archiveiterator import ArchiveIterator

    from tamis.io.parquet import FINEWEB_SCHEMA

    name = f"r{records}-e{exact}-n{near}-s{seed}"
    base = CACHE / name
    shards, truth_path = base / "shards", base / "truth.json"
    if truth_path.exists():
        return shards, json.loads(truth_path.read_text())
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    warc = base / "corpus.warc.gz"
    subprocess.run([sys.executable, str(TOOL), "--pages", str(PAGES), "--out", str(warc), "--records", str(records),
                    "--exact-dup-rate", str(exact), "--near-dup-rate", str(near), "--seed", str(seed)], check=True)
    truth = {t["record_id"]: t for t in json.loads((base / "corpus.truth.json").read_text())}
    memo: dict[str, str | None] = {}
    rows = []
    with open(warc, "rb") as handle:
        for record in ArchiveIterator(handle):
            if record.rec_type != "response":
                continue
            rid = record.rec_headers.get_header("WARC-Record-ID")
            body = record.content_stream().read()
            key = hashlib.sha1(COMMENT.sub(b"", body)).hexdigest()  # filler copies differ only by a comment
            if key not in memo:
                memo[key] = trafilatura.extract(body.decode("utf-8", "replace"), favor_precision=True,
                                                include_comments=False, deduplicate=False)
            if memo[key]:
                rows.append({"text": memo[key], "id": rid, "dump": "CC-BENCH", "url": truth[rid]["url"],
                             "date": record.rec_headers.get_header("WARC-Date"), "file_path": warc.name,
                             "language": "en", "language_score": 1.0, "token_count": 0})
    shards.mkdir()
    for i in range(0, len(rows), DOCS_PER_SHARD):
        part = rows[i:i + DOCS_PER_SHARD]
        pq.write_table(pa.Table.from_pylist(part, schema=FINEWEB_SCHEMA),
                       shards / f"part-{i // DOCS_PER_SHARD:05d}.parquet")
    present = {r["id"] for r in rows}
    truth = {rid: t for rid, t in truth.items() if rid in present}
    truth_path.write_text(json.dumps(truth))
    return shards, truth


def run_tamis(shards: Path, work: Path, memory: int) -> dict:
    """tamis's dedup; returns kept ids, removed id -> kept id of its cluster, CPU seconds, task meters."""
    import numpy as np
    import pyarrow.parquet as pq

    from tamis.dedup.options import DedupOptions
    from tamis.dedup.partition import ROW_MASK, shard_of
    from tamis.dedup.stage import run_dedup

    shutil.rmtree(work, ignore_errors=True)
    paths = sorted(str(p) for p in shards.glob("*.parquet"))
    options = DedupOptions(pii=False, token_count=False, memory_per_task=memory, max_in_flight=1)
    started = time.perf_counter()
    summary = run_dedup(paths, str(work / "work"), str(work / "out"), options)
    wall = time.perf_counter() - started
    ids = [pq.read_table(p, columns=["id"]).column("id").to_pylist() for p in paths]
    rep_of = {}
    if summary["rounds"]:
        members = sorted((work / "work" / "components").glob(f"members-{summary['rounds']:03d}/*.parquet"))
        for path in members:
            if path.stat().st_size:
                table = pq.read_table(path)
                node, rep = table.column("node").to_numpy(), table.column("rep").to_numpy()
                for n_shard, n_row, r_shard, r_row in zip(shard_of(node).tolist(), (node & ROW_MASK).tolist(),
                                                          shard_of(rep).tolist(), (rep & ROW_MASK).tolist(),
                                                          strict=True):
                    rep_of[ids[n_shard][n_row]] = ids[r_shard][r_row]
    kept = pq.read_table(str(work / "out" / "data"), columns=["id"]).column("id").to_pylist()
    del np
    return {"kept": set(kept), "rep_of": rep_of, "summary": summary, "wall": wall,
            "cpu": sum(t["cpu_seconds"] for t in summary["tasks"]), "order": [i for s in ids for i in s]}


def run_datatrove(shards: Path, work: Path) -> dict:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    import pyarrow.parquet as pq

    result, jsonl = work / "result.json", work / "jsonl"
    jsonl.mkdir()
    for path in sorted(shards.glob("*.parquet")):  # same files, same order, same documents
        with open(jsonl / f"{path.stem}.jsonl", "w") as handle:
            for row in pq.read_table(path, columns=["id", "text"]).to_pylist():
                handle.write(json.dumps(row) + "\n")
    subprocess.run([str(DT_PYTHON), str(REPO / "benchmarks" / "datatrove_dedup.py"), str(jsonl), str(work / "w"),
                    str(result)], check=True, capture_output=True)
    data = json.loads(result.read_text())
    kept = set(data["kept"])
    return {"kept": kept, "removed": set(data["ids"]) - kept, "cluster": data["clusters"],
            "cpu": data["cpu_seconds"], "wall": data["wall_seconds"], "stages": data["stages"]}


def quality(truth: dict, kept: set[str], rep_of: dict[str, str]) -> dict:
    """Precision/recall per kind (see the module docstring)."""
    origin = {rid: t["origin"] for rid, t in truth.items()}
    kind = {rid: ("exact" if t["kind"] in ("exact", "copy") else t["kind"]) for rid, t in truth.items()}
    groups = defaultdict(list)
    for rid, o in origin.items():
        groups[o].append(rid)
    clusters = defaultdict(set)
    for rid, rep in rep_of.items():
        clusters[rep].add(rid)
    out = {}
    for k in ("exact", "near"):
        docs = [r for r in truth if kind[r] == k and len(groups[origin[r]]) > 1]
        found = sum(1 for r in docs if r in rep_of and any(origin[o] == origin[r] for o in clusters[rep_of[r]] - {r}))
        removed = [r for r in docs if r not in kept]
        correct = sum(1 for r in removed if origin.get(rep_of.get(r)) == origin[r])
        out[k] = {"docs": len(docs), "recall": found / len(docs) if docs else 1.0,
                  "removed": len(removed), "precision": correct / len(removed) if removed else 1.0}
    tp = fp = should = 0
    for members in groups.values():
        should += len(members) - 1
        gone = sum(1 for m in members if m not in kept)
        if gone and gone == len(members):
            tp, fp = tp + gone - 1, fp + 1
        else:
            tp += gone
    for rid in truth:
        if rid not in kept and len(groups[origin[rid]]) == 1:
            fp += 1
    out["removal"] = {"precision": tp / (tp + fp) if tp + fp else 1.0, "recall": tp / should if should else 1.0,
                      "removed": tp + fp, "should": should}
    return out


def agreement(truth: dict, ours: dict, theirs: dict) -> dict:
    docs = list(truth)
    same = sum(1 for d in docs if (d in ours["kept"]) == (d in theirs["kept"]))
    # datatrove's clusters with tamis's keep rule (first in input order) instead of union-by-size's root
    position = {d: i for i, d in enumerate(ours["order"])}
    members = defaultdict(list)
    for d, c in theirs["cluster"].items():
        members[c].append(d)
    canonical_removed = {d for ms in members.values() for d in sorted(ms, key=position.get)[1:]}
    ours_removed = {d for d in docs if d not in ours["kept"]}
    same_canonical = sum(1 for d in docs if (d in canonical_removed) == (d in ours_removed))
    return {"docs": len(docs), "same_decision": same / len(docs), "same_with_keep_rule": same_canonical / len(docs),
            "only_tamis_removed": sorted(ours_removed - canonical_removed),
            "only_datatrove_removed": sorted(canonical_removed - ours_removed)}


def memory_table(summary: dict) -> dict:
    table = defaultdict(lambda: {"tasks": 0, "max_over_start": 0, "max_peak_rss": 0, "cpu": 0.0})
    for t in summary["tasks"]:
        row = table[t["stage"]]
        row["tasks"] += 1
        row["max_over_start"] = max(row["max_over_start"], t["peak_over_start"])
        row["max_peak_rss"] = max(row["max_peak_rss"], t["peak_rss"])
        row["cpu"] += t["cpu_seconds"]
    return dict(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=400)
    parser.add_argument("--scale", type=int, default=10)
    parser.add_argument("--exact-dup-rate", type=float, default=0.1)
    parser.add_argument("--near-dup-rate", type=float, default=0.1)
    parser.add_argument("--memory", default="64MiB", help="memory_per_task of the tamis runs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()

    import ray

    from tamis.dedup.options import parse_size

    memory = parse_size(args.memory)
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False, logging_level="WARNING",
             _temp_dir="/tmp/tbd")
    results = []
    try:
        for records in (args.records, args.records * args.scale):
            shards, truth = build_corpus(records, args.exact_dup_rate, args.near_dup_rate, args.seed)
            ours = run_tamis(shards, CACHE / "runs" / f"tamis-{records}", memory)
            theirs = run_datatrove(shards, CACHE / "runs" / f"datatrove-{records}") if DT_PYTHON.exists() else None
            row = {"records": records, "docs": len(truth),
                   "tamis_quality": quality(truth, ours["kept"], ours["rep_of"]),
                   "tamis_cpu": ours["cpu"], "tamis_wall": ours["wall"],
                   "tamis_docs_per_cpu_s": len(truth) / ours["cpu"], "memory": memory_table(ours["summary"]),
                   "tamis_removed": ours["summary"]["removed"]}
            if theirs:
                dt_rep = {}
                members = defaultdict(list)
                for d, c in theirs["cluster"].items():
                    members[c].append(d)
                for ms in members.values():
                    keeper = next((m for m in ms if m in theirs["kept"]), ms[0])
                    dt_rep.update({m: keeper for m in ms})
                row.update({"datatrove_quality": quality(truth, theirs["kept"], dt_rep),
                            "datatrove_cpu": theirs["cpu"],
                            "datatrove_stages": theirs["stages"],
                            "datatrove_docs_per_cpu_s": len(truth) / theirs["cpu"],
                            "agreement": agreement(truth, ours, theirs), "datatrove_removed": len(theirs["removed"])})
            results.append(row)
    finally:
        ray.shutdown()
    report(results, memory)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=list))


def report(results: list[dict], memory: int) -> None:
    mib = 2**20
    for row in results:
        print(f"\n== {row['records']} records, {row['docs']} documents with text ==")
        for who in ("tamis", "datatrove"):
            q = row.get(f"{who}_quality")
            if q:
                print(f"{who:10s} exact: P={q['exact']['precision']:.4f} R={q['exact']['recall']:.4f} "
                      f"(n={q['exact']['docs']})  near: P={q['near']['precision']:.4f} R={q['near']['recall']:.4f} "
                      f"(n={q['near']['docs']})  removal: P={q['removal']['precision']:.4f} "
                      f"R={q['removal']['recall']:.4f}")
        if "agreement" in row:
            a = row["agreement"]
            print(f"agreement with datatrove: same keep/remove decision {a['same_decision']:.4f}; with datatrove's "
                  f"clusters under tamis's keep rule {a['same_with_keep_rule']:.4f} "
                  f"(only tamis removed {len(a['only_tamis_removed'])}, "
                  f"only datatrove {len(a['only_datatrove_removed'])})")
            print(f"docs per CPU second: tamis {row['tamis_docs_per_cpu_s']:.0f} ({row['tamis_cpu']:.1f} s), "
                  f"datatrove {row['datatrove_docs_per_cpu_s']:.0f} ({row['datatrove_cpu']:.1f} s: "
                  + ", ".join(f"{k} {v:.1f}" for k, v in row["datatrove_stages"].items())
                  + f"); ratio {row['tamis_docs_per_cpu_s'] / row['datatrove_docs_per_cpu_s']:.1f}x")
    print(f"\npeak memory per task (MiB over the worker's RSS at task start / peak RSS), bound {memory / mib:.0f} MiB")
    stages = ["signatures", "buckets", "components", "finalize"]
    print(f"{'records':>8s} " + " ".join(f"{s:>24s}" for s in stages))
    for row in results:
        cells = []
        for s in stages:
            m = row["memory"].get(s)
            cells.append(f"{m['tasks']:4d}t {m['max_over_start'] / mib:6.1f} / {m['max_peak_rss'] / mib:6.1f}" if m
                         else "-")
        print(f"{row['records']:>8d} " + " ".join(f"{c:>24s}" for c in cells))


if __name__ == "__main__":
    main()
