"""A run's stats, read from its output directory (local path or any fsspec URL), finished or in progress.

The source of truth is the set of commit markers (`_commits/process/<input-id>.json`) whose fingerprint is the
manifest's and whose input is one of the manifest's inputs: each commits exactly one task, so merging them gives
the same counts whatever ran twice, was skipped on a relaunch, or is still running. They are found as the runner
finds them (engine.commits): one listing of the markers, the commit index's segments, and reads only for units
committed since the last segment. When the manifest says the run is complete and `stats.json` agrees (same
fingerprint, every input committed), `stats.json` is that merge already and is read instead (one file).
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass, field
from typing import Any

from fsspec import AbstractFileSystem

from tamis.dedup.options import DEDUP_DIR, FINALIZE_STEPS
from tamis.engine import layout
from tamis.engine.commits import load_commits
from tamis.io.storage import filesystem
from tamis.stats.counters import TaskCounters
from tamis.stats.histograms import HistogramSet
from tamis.stats.languages import LanguageBreakdown
from tamis.stats.merge import DEDUP_STEP, RunStats
from tamis.stats.observe import OUTPUT_SCOPE

WRITER_STEP = "write"


class RunNotFoundError(FileNotFoundError):
    """The path holds no tamis run (no manifest.json and no commit markers)."""


@dataclass
class LoadedRun:
    """Merged stats of a run's committed tasks, with what is needed to say how complete they are."""

    url: str
    fs: AbstractFileSystem
    root: str
    manifest: dict[str, Any]
    stats: RunStats
    steps_order: list[str]
    #: sums over committed tasks of what RunStats does not keep (CPU and wall seconds)
    task_cpu_seconds: float = 0.0
    task_wall_seconds: float = 0.0
    source: str = "commits"
    ignored_markers: int = 0
    #: files read to find the committed tasks (index segments, markers and stats files not yet indexed)
    reads: int = 0
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return str(self.manifest.get("status", "unknown"))

    @property
    def inputs(self) -> int:
        """Tasks the run plans: one per input file, or per byte range when the engine splits large inputs."""
        return int(self.manifest.get("units") or len(self.manifest.get("inputs", [])) or self.stats.tasks)

    @property
    def unit_word(self) -> str:
        files = len(self.manifest.get("inputs", []))
        return "inputs" if not files or files == self.inputs else f"work units ({files} input files)"

    @property
    def committed(self) -> int:
        return self.stats.tasks

    @property
    def partial(self) -> bool:
        return self.status != "complete" or self.committed < self.inputs

    @property
    def label(self) -> str:
        """"COMPLETE: ..." or "PARTIAL: n of m inputs committed (...)"."""
        if not self.partial:
            return f"COMPLETE: {self.committed} of {self.inputs} {self.unit_word} committed"
        why = {"running": "run in progress", "incomplete": f"run ended with {len(self.failed)} failed input(s)"}
        detail = why.get(self.status, f"manifest status {self.status!r}")
        return f"PARTIAL: {self.committed} of {self.inputs} {self.unit_word} committed ({detail})"

    @property
    def reader(self) -> str:
        return self.steps_order[0] if self.steps_order else "warc"

    def totals(self) -> dict[str, Any]:
        """Run-wide totals, all exact sums of committed tasks."""
        steps = self.stats.counters.steps
        reader = steps.get(self.reader)
        shards = self.stats.shards
        return {
            "inputs": self.inputs,
            "committed": self.committed,
            "records": int(reader.events.get("records", 0)) if reader else 0,
            "bytes_read": int(reader.events.get("bytes_read", 0)) if reader else 0,
            "docs_read": reader.docs_out if reader else 0,
            "kept": sum(int(s["rows"]) for s in shards),
            "tokens": sum(int(s["tokens"]) for s in shards),
            "text_bytes": sum(int(s["text_bytes"]) for s in shards),
            "file_bytes": sum(int(s["file_bytes"]) for s in shards),
            "shards": len(shards),
            "removed": {step: sum(int(s["rows"]) for s in parts) for step, parts in self.stats.removed_shards.items()},
            "dropped": sum(sum(c.dropped.values()) for c in steps.values()),
            "task_cpu_seconds": round(self.task_cpu_seconds, 3),
            "task_wall_seconds": round(self.task_wall_seconds, 3),
        }

    def relocate(self, path: str) -> str:
        """A shard path recorded by a task, under this run's root (the output may have been moved or copied)."""
        return posixpath.join(self.root, *path.replace("\\", "/").split("/")[-3:])


def _steps_order(manifest: dict[str, Any], stats: RunStats, recorded: list[str] | None = None) -> list[str]:
    """The steps in the order they ran: as the runner recorded it in stats.json, else from the manifest."""
    pipeline = manifest.get("pipeline") or {}
    order = list(recorded or [])
    if not order and pipeline:
        # with dedup, PII and token counting run after it (finalize), not in the process stage
        finalize = FINALIZE_STEPS if pipeline.get("dedup") else frozenset()
        steps = pipeline.get("steps", [])
        at = pipeline.get("dedup_at")  # a `- step: dedup` entry: the steps after it ran after dedup
        order.append((pipeline.get("reader") or {}).get("name", "warc"))
        if at is not None:
            order += [step["name"] for step in steps[:at]] + [WRITER_STEP, DEDUP_STEP]
            order += [step["name"] for step in steps[at:]]
        else:
            order += [step["name"] for step in steps if step.get("step") not in finalize]
            order.append(WRITER_STEP)
    # steps seen in the counters but unknown to the manifest (no manifest at all) go last, by name
    order += sorted(name for name in stats.counters.steps if name not in order)
    return order


def _stats_from_merged(data: dict[str, Any]) -> RunStats:
    stats = RunStats(
        counters=TaskCounters.from_dict(data.get("steps", {})),
        histograms=HistogramSet.from_dict(data.get("histograms", {})),
        shards=list(data.get("shards", [])),
        removed_shards={k: list(v) for k, v in data.get("removed_shards", {}).items()},
        tasks=int(data.get("tasks", 0)),
    )
    stats.languages.update(data.get("languages", {}))
    stats.by_language = LanguageBreakdown.from_dict(data.get("by_language"))
    return stats


def _json(fs: AbstractFileSystem, path: str) -> dict[str, Any] | None:
    try:
        return json.loads(fs.cat_file(path))
    except FileNotFoundError:
        return None


def load_run(url: str, *, prefer_merged: bool = True) -> LoadedRun:
    """The stats of the run under `url`, merged from its committed tasks (see the module docstring)."""
    fs, root = filesystem(url)
    manifest = _json(fs, layout.manifest_path(root)) or {}
    fingerprint = manifest.get("fingerprint")
    inputs = set(manifest.get("inputs", []))  # a list of paths, or {path: size}
    units = int(manifest.get("units") or len(inputs))

    if prefer_merged and manifest.get("status") == "complete":
        merged = _json(fs, layout.merged_stats_path(root))
        if (merged and merged.get("fingerprint") == fingerprint and merged.get("complete")
                and merged.get("committed") == units):
            stats = _stats_from_merged(merged)
            totals = merged.get("totals", {})
            return LoadedRun(url, fs, root, manifest, stats, _steps_order(manifest, stats, merged.get("steps_order")),
                             task_cpu_seconds=float(totals.get("task_cpu_seconds", 0.0)),
                             source="stats.json", failed=dict(merged.get("failed", {})))

    # without a manifest every marker counts
    state = load_commits(fs, root, fingerprint, inputs if fingerprint is not None else None)
    if not manifest and not state.units and not state.ignored:
        raise RunNotFoundError(f"{url}: no tamis run here (no manifest.json, no {layout.STAGE} commit markers)")
    stats = state.stats
    dedup = _json(fs, posixpath.join(root, DEDUP_DIR, "summary.json"))
    deduplicates = bool(manifest.get("pipeline", {}).get("dedup"))
    if dedup and deduplicates and len(state.units) == units and dedup.get("shards") == len(stats.shards):
        stats.apply_dedup(dedup)  # the dedup stage ran over exactly these committed shards
    return LoadedRun(url, fs, root, manifest, stats, _steps_order(manifest, stats),
                     task_cpu_seconds=float(state.sums["cpu_seconds"]),
                     task_wall_seconds=float(state.sums["wall_seconds"]),
                     ignored_markers=state.ignored, failed=dict(manifest.get("failed", {})), reads=state.reads)


def funnel(run: LoadedRun) -> list[dict[str, Any]]:
    """One row per step in pipeline order: documents in/out, drops, share of documents read still kept, and the
    characters of text kept after the step where the step observes text (extractors and filters)."""
    steps = run.stats.counters.steps
    read = steps[run.reader].docs_out if run.reader in steps else 0
    rows = []
    for name in run.steps_order:
        counters = steps.get(name)
        if counters is None:
            continue
        kept_chars = run.stats.histograms.histograms.get(f"{name}/kept/text_chars")
        if name == WRITER_STEP:
            kept_chars = run.stats.histograms.histograms.get(f"{OUTPUT_SCOPE}/kept/text_chars")
        rows.append({
            "step": name,
            "docs_in": counters.docs_in,
            "docs_out": counters.docs_out,
            "dropped": sum(counters.dropped.values()),
            "kept_of_read": counters.docs_out / read if read else None,
            "kept_of_in": counters.docs_out / counters.docs_in if counters.docs_in else None,
            "text_chars_out": int(kept_chars.total) if kept_chars is not None else None,
            "tokens_out": sum(int(s["tokens"]) for s in run.stats.shards) if name == WRITER_STEP else None,
            "seconds": round(counters.seconds, 3),
            "top_reasons": counters.top_reasons(),
        })
    return rows


def drop_reasons(run: LoadedRun) -> list[dict[str, Any]]:
    """Every (step, reason) with its count, most frequent first."""
    total = sum(sum(c.dropped.values()) for c in run.stats.counters.steps.values())
    rows = []
    for step in run.steps_order:
        counters = run.stats.counters.steps.get(step)
        if counters is None:
            continue
        for reason, n in counters.dropped.items():
            rows.append({"step": step, "reason": reason, "docs": int(n), "share": n / total if total else 0.0})
    return sorted(rows, key=lambda r: (-r["docs"], run.steps_order.index(r["step"]), r["reason"]))


def feature_histograms(run: LoadedRun) -> dict[str, dict[str, dict[str, Any]]]:
    """step -> metric -> {"kept": Histogram | None, "removed": Histogram | None}, in pipeline order."""
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for key, histogram in run.stats.histograms.histograms.items():
        scope, outcome, metric = key.split("/", 2)
        found.setdefault(scope, {}).setdefault(metric, {"kept": None, "removed": None})[outcome] = histogram
    order = {name: i for i, name in enumerate([*run.steps_order, OUTPUT_SCOPE])}
    return {scope: dict(sorted(found[scope].items())) for scope in sorted(found, key=lambda s: order.get(s, 1e9))}


def to_json(run: LoadedRun) -> dict[str, Any]:
    """Everything `tamis stats --json` prints."""
    return {
        "url": run.url,
        "status": run.status,
        "partial": run.partial,
        "label": run.label,
        "source": run.source,
        "fingerprint": run.manifest.get("fingerprint"),
        "pipeline": (run.manifest.get("pipeline") or {}).get("name"),
        "steps_order": run.steps_order,
        "totals": run.totals(),
        "funnel": funnel(run),
        "drop_reasons": drop_reasons(run),
        "failed": run.failed,
        **run.stats.to_dict(),
    }
