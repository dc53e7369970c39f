"""One Common-Crawl-size WARC file (about 1 GiB, 30,000 pages): worker memory over the file, and split == unsplit.

    python benchmarks/bench_big_warc.py [--records 30000] [--split-mib 256] [--pipeline FILE] [--json]

Issue #14, part 2. What it does:

1. **Corpus.** `shared/tools/make_warc_corpus.py` builds one `.warc.gz` of `--records` HTML responses (each a
   request + response + metadata triple) from the 311 real pages of `shared/data/extraction/*/html`, repeated
   (repeats differ by an HTML comment). 30,000 records give about 1.0 GiB. It is cached under
   `.bench/big-warc/` (git-ignored) by record count, seed and the tool's hash.
2. **Two runs of `tamis run`**, each a fresh process with a fresh embedded Ray (the machine's CPUs): *unsplit*
   (`--max-task-bytes 1 TiB`: one task reads the whole file) and *split* (`--max-task-bytes` = `--split-mib`).
   While each runs, a sampler in this process reads `/proc` about once a second and records the RSS of the
   driver, of every Ray worker while it runs a tamis task (process title `ray::process_input`) and of the
   worker's children (the extraction sandbox). The samples go to `.bench/big-warc/<run>-rss.csv`; the summary
   gives, per process, the RSS at its first sample, median, max, last, the least-squares slope (MiB per
   minute) and the change from the median of the first quarter of its samples to that of the last quarter.
3. **Identity.** The kept documents of both runs (every row of `data/**/*.parquet`), and the removed ones
   (`removed/<step>/*.parquet`, per step), are read, sorted by `id` and compared column by column with
   `pyarrow.Table.equals` (schemas included): same ids, same content, whatever the shard layout. The counts
   of `stats.json` (totals: records, HTML docs, kept, tokens; per step: documents in, out and dropped by
   reason) and the run summary printed by `tamis run` must match too. The progress lines printed on stderr
   (every 30 s when not on a terminal) must never go down and never exceed the final document count.
4. **Cost.** Wall seconds per run, task CPU seconds (from `stats.json`: the workers' and their extraction
   children's CPU), and the input's compressed bytes per CPU second: the figure the default
   `--max-task-bytes` is chosen from (docs/_big_warc_section.md).

Pipeline. The full English recipe (pipelines/fineweb.yaml, trafilatura at ~30-40 ms a page) on 30,000 pages is
~20 CPU minutes per run on a 2-core machine, so by default the 1 GiB runs use a cheaper pipeline that still
reads and decompresses every byte of the file and runs an extractor in its sandbox: warc -> url_filter ->
resiliparse -> language_id [en] -> gopher_quality -> token_count -> parquet, with every removed document
written (`removed: full`). Streaming in bounded batches and the range reader are the same whatever the
steps. trafilatura's `deduplicate` cache (pipelines/fineweb.yaml) carries text from page to page; the reader's
state blocks (WarcReader `state_block_bytes`, 64 MiB) restart it at the same offsets whole or split, and ranges
are cut on block edges, so the outputs must be identical with it too (the script reports any table that differs).
`--pipeline FILE` runs any pipeline instead (e.g. pipelines/fineweb.yaml on a few hundred records, for the
recipe's bytes per CPU second). `--row-group-mib` sets the default pipeline's writer row groups (their buffer
is most of a whole-file task's RSS growth). Figures and the choice of the default --max-task-bytes:
docs/_big_warc_section.md (for docs/scaling.md).

Timings depend on machine load (the script prints `uptime` before and after each run); RSS and identity do not.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TAMIS_SHARED_DATA", REPO.parent / "shared" / "data"))
TOOL = SHARED.parent / "tools" / "make_warc_corpus.py"
CACHE = REPO / ".bench" / "big-warc"
PAGE_DIRS = (SHARED / "extraction" / "scrapinghub_aeb" / "html",
             SHARED / "extraction" / "readability_testpages" / "html")
UNSPLIT_BYTES = 2**40
PAGE = os.sysconf("SC_PAGE_SIZE")
TASK_TITLE = "process_input"

FAST_PIPELINE: dict[str, Any] = {
    "name": "big-warc-fast",
    "reader": {"step": "warc"},
    "steps": [
        {"step": "url_filter"},
        {"step": "resiliparse"},
        {"step": "language_id", "languages": ["en"], "threshold": 0.65},
        {"step": "gopher_quality"},
        {"step": "token_count"},
    ],
    "writer": {"step": "parquet", "compression": "zstd"},
    "removed": {"mode": "full"},
}


def build_corpus(records: int, seed: int) -> Path:
    """The cached corpus for `records` and `seed`, built on first use (atomically: a killed build leaves none)."""
    tool_hash = hashlib.sha1(TOOL.read_bytes()).hexdigest()[:8]
    directory = CACHE / f"corpus-{records}-s{seed}-{tool_hash}"
    path = directory / "corpus.warc.gz"
    if path.exists():
        return path
    partial = directory.with_name(directory.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    command = [sys.executable, str(TOOL), "--out", str(partial / "corpus.warc.gz"), "--records", str(records),
               "--seed", str(seed)]
    for pages in PAGE_DIRS:
        command += ["--pages", str(pages)]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    print(f"built {path} ({records} records) in {time.perf_counter() - started:.0f} s", flush=True)
    shutil.rmtree(directory, ignore_errors=True)
    partial.rename(directory)
    return path


# --- sampling RSS from /proc -------------------------------------------------------------------------------


def _read(path: str) -> str | None:
    try:
        with open(path, "rb") as fh:
            return fh.read().decode(errors="replace")
    except OSError:
        return None


def _processes() -> dict[int, tuple[int, str, int, float]]:
    """pid -> (parent pid, title, RSS bytes, CPU seconds) for every process we can read."""
    ticks = os.sysconf("SC_CLK_TCK")
    found = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        stat = _read(f"/proc/{name}/stat")
        statm = _read(f"/proc/{name}/statm")
        cmdline = _read(f"/proc/{name}/cmdline")
        if not stat or not statm or cmdline is None:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        title = cmdline.replace("\0", " ").strip()
        found[int(name)] = (int(fields[1]), title, int(statm.split()[1]) * PAGE,
                            (int(fields[11]) + int(fields[12])) / ticks)
    return found


@dataclass
class Sampler:
    """Every `every` seconds: RSS of the driver, of Ray workers running a tamis task, and of their children."""

    driver: int
    every: float = 1.0
    rows: list[dict[str, Any]] = field(default_factory=list)
    #: pid -> (role, CPU seconds at its last sample)
    cpu: dict[int, tuple[str, float]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self.started = time.monotonic()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.every)

    def sample(self) -> None:
        procs = _processes()
        children: dict[int, list[int]] = {}
        for pid, (ppid, *_rest) in procs.items():
            children.setdefault(ppid, []).append(pid)
        # descendants of the driver only: other users' Ray processes on the machine are not ours
        ours, stack = set(), [self.driver]
        while stack:
            pid = stack.pop()
            if pid in procs and pid not in ours:
                ours.add(pid)
                stack += children.get(pid, [])
        t = round(time.monotonic() - self.started, 2)
        for pid in sorted(ours):
            ppid, title, rss, cpu = procs[pid]
            if rss == 0:
                continue  # a process caught while exiting (its memory already released)
            parent_title = procs.get(ppid, (0, "", 0, 0.0))[1]
            if pid == self.driver:
                role = "driver"
            elif title.startswith("ray::") and TASK_TITLE in title:
                role = "worker"
            elif parent_title.startswith("ray::") and not title.startswith("ray::"):
                role = "worker-child"
            else:
                continue
            if role == "worker-child" and TASK_TITLE not in parent_title:
                continue  # an idle worker's sandbox between tasks: not part of a task
            self.cpu[pid] = (role, cpu)
            self.rows.append({"t": t, "pid": pid, "role": role, "rss_mib": round(rss / 2**20, 2),
                              "cpu_s": round(cpu, 2), "title": title[:60]})


WARM_UP = 0.1


def _slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of RSS against time, in MiB per minute (0 with fewer than 3 points)."""
    if len(points) < 3 or points[-1][0] <= points[0][0]:
        return 0.0
    mean_t = statistics.fmean(t for t, _ in points)
    mean_r = statistics.fmean(r for _, r in points)
    var = sum((t - mean_t) ** 2 for t, _ in points)
    return round(sum((t - mean_t) * (r - mean_r) for t, r in points) / var * 60, 2)


def rss_summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per process: samples, span, first/median/max/last RSS, slope, first-quarter to last-quarter change."""
    by_pid: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        by_pid.setdefault(row["pid"], []).append(row)
    out = []
    for pid, series in by_pid.items():
        ts = [r["t"] for r in series]
        rss = [r["rss_mib"] for r in series]
        n = len(series)
        quarter = max(1, n // 4)
        # past the first 10% of the process's sampled span: model loading and the first batches are warm-up
        cut = ts[0] + WARM_UP * (ts[-1] - ts[0])
        steady = [(t, r) for t, r in zip(ts, rss, strict=True) if t >= cut]
        out.append({"pid": pid, "role": series[0]["role"], "samples": n, "from_s": ts[0], "to_s": ts[-1],
                    "first": rss[0], "median": round(statistics.median(rss), 1), "max": max(rss), "last": rss[-1],
                    "slope_mib_per_min": _slope(list(zip(ts, rss, strict=True))),
                    "q1_to_q4_mib": round(statistics.median(rss[-quarter:]) - statistics.median(rss[:quarter]), 1),
                    "steady_from_s": round(cut, 1), "steady_min": min(r for _, r in steady),
                    "steady_max": max(r for _, r in steady), "steady_slope_mib_per_min": _slope(steady)})
    return sorted(out, key=lambda s: (s["role"], s["from_s"]))


def curve(rows: list[dict[str, Any]], role: str, points: int = 12) -> list[tuple[float, float]]:
    """The summed RSS of every process of `role` at about `points` evenly spaced sample times."""
    by_t: dict[float, float] = {}
    for row in rows:
        if row["role"] == role:
            by_t[row["t"]] = by_t.get(row["t"], 0.0) + row["rss_mib"]
    times = sorted(by_t)
    if not times:
        return []
    step = max(1, len(times) // points)
    picked = times[::step] + ([times[-1]] if (len(times) - 1) % step else [])
    return [(t, round(by_t[t], 1)) for t in picked]


# --- one run ---------------------------------------------------------------------------------------------

PROGRESS = re.compile(r"process: (\d+)/(\d+) units, (\d+) running, ([\d,]+) docs")
SUMMARY_ROW = re.compile(r"^\W*(\d+)\W+([\d,]+)\W+([\d,]+)\W+([\d,]+)\W+([\d,]+)\W+[\d.]+\W+[\d.]+\W*$")


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def run_tamis(name: str, pipeline: Path, corpus: Path, output: Path, max_task_bytes: int) -> dict[str, Any]:
    """`tamis run` in a fresh process (its own embedded Ray), sampled; returns timings, stats and samples."""
    shutil.rmtree(output, ignore_errors=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
           "RAY_USAGE_STATS_ENABLED": "0", "COLUMNS": "200", "TERM": "dumb"}
    command = [sys.executable, "-c", "from tamis.cli.main import cli; cli(prog_name='tamis')", "run", str(pipeline),
               "--input", str(corpus), "--output", str(output), "--max-task-bytes", str(max_task_bytes),
               "--no-plugins"]
    load_before = uptime()
    print(f"[{name}] {load_before}", flush=True)
    started = time.perf_counter()
    stderr_path, stdout_path = output.with_suffix(".stderr"), output.with_suffix(".stdout")
    with open(stderr_path, "w") as err, open(stdout_path, "w") as out:
        child = subprocess.Popen(command, stdout=out, stderr=err, env=env, cwd=REPO)
        sampler = Sampler(child.pid)
        sampler.start()
        code = child.wait()
        sampler.stop()
    wall = time.perf_counter() - started
    load_after = uptime()
    stderr, stdout = stderr_path.read_text(), stdout_path.read_text()
    if code != 0:
        raise SystemExit(f"[{name}] tamis run exited {code}:\n{stderr[-3000:]}\n{stdout[-2000:]}")
    stats = json.loads((output / "stats.json").read_text())
    csv_path = CACHE / f"{name}-rss.csv"
    with open(csv_path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["t", "pid", "role", "rss_mib", "cpu_s", "title"])
        writer.writeheader()
        writer.writerows(sampler.rows)
    progress = [(int(m[1]), int(m[2]), int(m[3]), int(m[4].replace(",", ""))) for m in PROGRESS.finditer(stderr)]
    summary_rows = [m.groups() for m in map(SUMMARY_ROW.match, stdout.splitlines()) if m]
    printed = [int(x.replace(",", "")) for x in summary_rows[0]] if summary_rows else None
    print(f"[{name}] wall {wall:.1f} s, task CPU {stats['totals']['task_cpu_seconds']:.1f} s, "
          f"{stats['units']} unit(s); {load_after}", flush=True)
    return {"name": name, "max_task_bytes": max_task_bytes, "wall_s": round(wall, 2), "load_before": load_before,
            "load_after": load_after, "stats": stats, "rows": sampler.rows, "csv": str(csv_path),
            "sampled_cpu_s": {
                role: round(sum(c for r, c in sampler.cpu.values() if r == role), 2)
                for role in ("driver", "worker", "worker-child")}, "progress": progress, "printed_summary": printed}


# --- comparisons -----------------------------------------------------------------------------------------


def sorted_rows(files: list[Path]) -> pa.Table | None:
    """Every row of `files`, sorted by id (None when there are none)."""
    tables = [pq.read_table(path) for path in files]
    if not tables:
        return None
    table = pa.concat_tables(tables, promote_options="default")
    return table.sort_by([("id", "ascending")])


def compare_tables(name: str, left: pa.Table | None, right: pa.Table | None) -> dict[str, Any]:
    if left is None or right is None:
        return {"what": name, "rows": [0 if left is None else left.num_rows, 0 if right is None else right.num_rows],
                "identical": left is None and right is None}
    ids = left.column("id").to_pylist()
    same = left.schema.equals(right.schema) and left.equals(right)
    first_diff = None
    if not same:
        for column in left.schema.names:
            if column not in right.schema.names or not left.column(column).equals(right.column(column)):
                first_diff = column
                break
    return {"what": name, "rows": [left.num_rows, right.num_rows], "unique_ids": len(set(ids)) == len(ids),
            "columns": left.schema.names, "identical": same, "first_differing_column": first_diff}


def step_counts(stats: dict[str, Any]) -> dict[str, Any]:
    """Per step: documents in, out, drops by reason and events (timings left out)."""
    steps = stats.get("counters", {}).get("steps", stats.get("steps", {}))
    kept = ("docs_in", "docs_out", "dropped", "events")
    return {name: {k: v for k, v in c.items() if k in kept} for name, c in steps.items()}


def compare_runs(unsplit: dict[str, Any], split: dict[str, Any], out_unsplit: Path, out_split: Path) -> dict:
    def rows(root: Path, pattern: str) -> pa.Table | None:
        return sorted_rows(sorted(root.glob(pattern)))

    checks = [compare_tables("kept documents (data/**/*.parquet)", rows(out_unsplit, "data/**/*.parquet"),
                             rows(out_split, "data/**/*.parquet"))]
    steps = sorted({p.name for root in (out_unsplit, out_split) for p in (root / "removed").glob("*")})
    for step in steps:
        checks.append(compare_tables(f"removed/{step}", rows(out_unsplit, f"removed/{step}/*.parquet"),
                                     rows(out_split, f"removed/{step}/*.parquet")))
    keys = ("records", "html_docs", "kept", "tokens")
    totals = {k: [unsplit["stats"]["totals"][k], split["stats"]["totals"][k]] for k in keys}
    counts_u, counts_s = step_counts(unsplit["stats"]), step_counts(split["stats"])
    differing = sorted(k for k in set(counts_u) | set(counts_s) if counts_u.get(k) != counts_s.get(k))
    return {"tables": checks, "totals": totals, "totals_equal": all(a == b for a, b in totals.values()),
            "step_counts_equal": counts_u == counts_s and bool(counts_u), "step_count_differences": differing,
            "bytes_read": [unsplit["stats"]["totals"]["bytes_read"], split["stats"]["totals"]["bytes_read"]]}


def check_progress(run: dict[str, Any]) -> dict[str, Any]:
    """Progress lines never go down, never exceed the final count; the printed summary matches stats.json."""
    totals = run["stats"]["totals"]
    docs = [p[3] for p in run["progress"]]
    monotone = all(a <= b for a, b in zip(docs, docs[1:], strict=False))
    bounded = all(d <= totals["html_docs"] for d in docs)
    expected = [totals["units"], totals["records"], totals["html_docs"], totals["kept"], totals["tokens"]]
    return {"progress_lines": len(docs), "last_progress": run["progress"][-1] if run["progress"] else None,
            "monotone": monotone, "bounded_by_final": bounded, "printed_summary": run["printed_summary"],
            "summary_matches_stats": run["printed_summary"] == expected, "expected_summary": expected}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=30000, help="HTML responses in the file (30,000: ~1 GiB)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split-mib", type=float, default=256, help="--max-task-bytes of the split run, in MiB")
    parser.add_argument("--pipeline", type=Path, default=None, help="a pipeline file (default: the cheap one above)")
    parser.add_argument("--row-group-mib", type=float, default=None,
                        help="the default pipeline's parquet writer row_group_bytes, in MiB (default: the writer's)")
    parser.add_argument("--only", choices=("unsplit", "split"), default=None, help="one run, no comparison")
    parser.add_argument("--keep", action="store_true", help="keep the runs' outputs under .bench/big-warc/")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args()

    CACHE.mkdir(parents=True, exist_ok=True)
    corpus = build_corpus(args.records, args.seed)
    size = corpus.stat().st_size
    pipeline = args.pipeline
    if pipeline is None:
        fast = json.loads(json.dumps(FAST_PIPELINE))
        name = "pipeline-fast"
        if args.row_group_mib is not None:
            fast["writer"]["row_group_bytes"] = int(args.row_group_mib * 2**20)
            name += f"-rg{args.row_group_mib:g}"
        pipeline = CACHE / f"{name}.yaml"
        pipeline.write_text(yaml.safe_dump(fast, sort_keys=False))
    pipeline = pipeline.resolve()
    tag = f"{args.records}-{pipeline.stem}"
    split_bytes = int(args.split_mib * 2**20)
    print(f"corpus {corpus} ({size / 2**20:.1f} MiB, {args.records} records); pipeline {pipeline}; "
          f"split at {split_bytes} bytes -> {-(-size // split_bytes)} ranges; {os.cpu_count()} CPUs", flush=True)
    runs: dict[str, dict[str, Any]] = {}
    outputs = {"unsplit": CACHE / f"out-{tag}-unsplit", "split": CACHE / f"out-{tag}-split"}
    for name, limit in (("unsplit", UNSPLIT_BYTES), ("split", split_bytes)):
        if args.only in (None, name):
            runs[name] = run_tamis(f"{tag}-{name}", pipeline, corpus, outputs[name], limit)

    report: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpus": os.cpu_count(),
                              "corpus": {"path": str(corpus), "bytes": size, "records": args.records},
                              "pipeline": str(pipeline), "runs": {}}
    for name, run in runs.items():
        totals = run["stats"]["totals"]
        cpu = totals["task_cpu_seconds"]
        report["runs"][name] = {
            "max_task_bytes": run["max_task_bytes"], "units": totals["units"], "wall_s": run["wall_s"],
            "task_cpu_s": cpu, "sampled_cpu_s": run["sampled_cpu_s"], "html_docs": totals["html_docs"],
            "kept": totals["kept"], "input_mib_per_cpu_s": round(size / 2**20 / cpu, 3) if cpu else None,
            "cpu_ms_per_doc": round(1000 * cpu / max(totals["html_docs"], 1), 2),
            "load_before": run["load_before"], "load_after": run["load_after"], "rss_csv": run["csv"],
            "rss": rss_summary(run["rows"]), "worker_curve": curve(run["rows"], "worker"),
            "child_curve": curve(run["rows"], "worker-child"), "progress": check_progress(run)}
    if len(runs) == 2:
        report["identity"] = compare_runs(runs["unsplit"], runs["split"], outputs["unsplit"], outputs["split"])
    (CACHE / f"report-{tag}.json").write_text(json.dumps(report, indent=1))
    if not args.keep:
        for out in outputs.values():
            shutil.rmtree(out, ignore_errors=True)
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print_report(report)
    identity = report.get("identity")
    if identity and not (all(t["identical"] for t in identity["tables"]) and identity["totals_equal"]
                         and identity["step_counts_equal"]):
        sys.exit(1)


def print_report(report: dict[str, Any]) -> None:
    corpus = report["corpus"]
    print(f"\n{report['date']}, {report['cpus']} CPUs; corpus {corpus['bytes'] / 2**20:.1f} MiB, "
          f"{corpus['records']} records; pipeline {report['pipeline']}")
    for name, run in report["runs"].items():
        print(f"\n== {name}: {run['units']} unit(s), wall {run['wall_s']:.1f} s, task CPU {run['task_cpu_s']:.1f} s "
              f"(process CPU from /proc: {run['sampled_cpu_s']}), {run['input_mib_per_cpu_s']} MiB of input per CPU s, "
              f"{run['cpu_ms_per_doc']} CPU ms/doc, {run['html_docs']} docs, {run['kept']} kept")
        print(f"   load before: {run['load_before']}\n   load after:  {run['load_after']}")
        print(f"   RSS samples: {run['rss_csv']}")
        print("   RSS in MiB; 'steady' = past the first 10% of the process's sampled span (warm-up: models load)")
        print(f"   {'role':<13}{'pid':>8}{'samples':>8}{'from s':>8}{'to s':>8}{'first':>8}{'median':>8}{'max':>8}"
              f"{'last':>8}{'MiB/min':>9}{'q1->q4':>8}{'steady min-max':>16}{'steady MiB/min':>15}")
        for s in run["rss"]:
            print(f"   {s['role']:<13}{s['pid']:>8}{s['samples']:>8}{s['from_s']:>8.0f}{s['to_s']:>8.0f}"
                  f"{s['first']:>8.1f}{s['median']:>8.1f}{s['max']:>8.1f}{s['last']:>8.1f}"
                  f"{s['slope_mib_per_min']:>9.2f}{s['q1_to_q4_mib']:>8.1f}"
                  f"{s['steady_min']:>8.1f}-{s['steady_max']:<7.1f}{s['steady_slope_mib_per_min']:>15.2f}")
        print("   worker RSS (MiB, summed over workers) at t (s): "
              + "  ".join(f"{t:.0f}:{r:.0f}" for t, r in run["worker_curve"]))
        print("   sandbox RSS (MiB, summed):                    "
              + "  ".join(f"{t:.0f}:{r:.0f}" for t, r in run["child_curve"]))
        p = run["progress"]
        print(f"   progress: {p['progress_lines']} lines, last {p['last_progress']}, monotone {p['monotone']}, "
              f"<= final {p['bounded_by_final']}; printed summary {p['printed_summary']} "
              f"matches stats.json {p['summary_matches_stats']}")
    identity = report.get("identity")
    if identity:
        print("\n== split vs unsplit (rows sorted by id, every column compared, schemas included)")
        for t in identity["tables"]:
            print(f"   {t['what']}: rows {t['rows']}, identical {t['identical']}"
                  + (f" (first differing column {t['first_differing_column']})" if not t["identical"] else ""))
        print(f"   totals {identity['totals']}: equal {identity['totals_equal']}; per-step in/out/dropped equal "
              f"{identity['step_counts_equal']} {identity['step_count_differences'] or ''}")
        print(f"   bytes_read (unsplit, split): {identity['bytes_read']}")


if __name__ == "__main__":
    main()
