"""Merging per-task summaries into the stats of a run: exact sums, independent of task order."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tamis.stats.counters import TaskCounters
from tamis.stats.histograms import HistogramSet


@dataclass
class RunStats:
    counters: TaskCounters = field(default_factory=TaskCounters)
    histograms: HistogramSet = field(default_factory=HistogramSet)
    languages: Counter[str] = field(default_factory=Counter)
    shards: list[dict[str, Any]] = field(default_factory=list)
    removed_shards: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    tasks: int = 0

    def add(self, summary: dict[str, Any]) -> None:
        self.tasks += 1
        self.counters.merge(TaskCounters.from_dict(summary["counters"]))
        self.histograms.merge(HistogramSet.from_dict(summary.get("histograms", {})))
        self.languages.update(summary.get("languages", {}))
        if summary.get("shard"):
            self.shards.append({**summary["shard"], "input": summary["input"]})
        for step, shard in summary.get("removed", {}).items():
            self.removed_shards.setdefault(step, []).append(shard)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tasks": self.tasks,
            "steps": self.counters.to_dict(),
            "languages": dict(self.languages.most_common()),
            "histograms": self.histograms.to_dict(),
            "shards": sorted(self.shards, key=lambda s: s["path"]),
            "removed_shards": {k: sorted(v, key=lambda s: s["path"]) for k, v in sorted(self.removed_shards.items())},
        }


def merge_summaries(summaries: list[dict[str, Any]]) -> RunStats:
    stats = RunStats()
    for summary in sorted(summaries, key=lambda s: s["input_id"]):
        stats.add(summary)
    return stats
