"""Merging per-task summaries into the stats of a run: exact sums, independent of task order."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tamis.stats.counters import TaskCounters
from tamis.stats.histograms import HistogramSet
from tamis.stats.languages import LanguageBreakdown

DEDUP_STEP = "dedup"


@dataclass
class RunStats:
    counters: TaskCounters = field(default_factory=TaskCounters)
    histograms: HistogramSet = field(default_factory=HistogramSet)
    languages: Counter[str] = field(default_factory=Counter)
    shards: list[dict[str, Any]] = field(default_factory=list)
    removed_shards: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    tasks: int = 0
    #: funnel, drop reasons, documents and tokens per language (tamis.stats.languages)
    by_language: LanguageBreakdown = field(default_factory=LanguageBreakdown)

    def add(self, summary: dict[str, Any]) -> None:
        self.tasks += 1
        self.counters.merge(TaskCounters.from_dict(summary["counters"]))
        self.histograms.merge(HistogramSet.from_dict(summary.get("histograms", {})))
        self.languages.update(summary.get("languages", {}))
        self.by_language.merge(LanguageBreakdown.from_dict(summary.get("by_language")))
        self.add_outputs(summary)

    def add_outputs(self, summary: dict[str, Any]) -> None:
        """Record the shards and removed-document files one unit wrote (its summary or its compact record)."""
        if summary.get("shard"):
            self.shards.append({**summary["shard"], "input": summary["input"]})
        for shard in summary.get("shards", []):  # one per language folder (FineWeb-2's layout)
            self.shards.append({**shard, "input": summary["input"]})
        for step, shard in summary.get("removed", {}).items():
            self.removed_shards.setdefault(step, []).append(shard)

    def apply_dedup(self, summary: dict[str, Any]) -> None:
        """After dedup: its drops join the funnel, and the final shards replace the intermediate ones."""
        counters = self.counters.for_step(DEDUP_STEP)
        counters.docs_in += summary["docs"]
        counters.docs_out += summary.get("unique", summary["kept"])
        if summary["removed"]:
            counters.drop("duplicate", summary["removed"])
        counters.seconds += summary.get("seconds", 0.0)
        # the steps after dedup (finalize) count like any step
        self.counters.merge(TaskCounters.from_dict(summary.get("counters", {})))
        after = LanguageBreakdown.from_dict(summary.get("by_language"))
        self.by_language.merge(after, output=False)
        self.by_language.replace_output(after)
        for step, shards in summary.get("steps_removed_shards", {}).items():
            self.removed_shards.setdefault(step, []).extend(shards)
        # what was written is what survived dedup: output languages and distributions come from finalize
        self.languages = Counter(summary.get("languages", {}))
        final = HistogramSet.from_dict(summary.get("histograms", {}))
        self.histograms.histograms = {key: h for key, h in self.histograms.histograms.items()
                                      if not key.startswith("output/")}
        self.histograms.merge(final)
        for shard in summary.get("removed_shards", []):
            self.removed_shards.setdefault(DEDUP_STEP, []).append(shard)
        by_path = {shard["path"]: shard.get("input") for shard in self.shards}
        self.shards = [{**shard, "input": by_path.get(shard["path"])} for shard in summary.get("final_shards", [])]

    def to_dict(self) -> dict[str, Any]:
        return {
            "tasks": self.tasks,
            "steps": self.counters.to_dict(),
            "languages": dict(self.languages.most_common()),
            "by_language": self.by_language.to_dict(),
            "histograms": self.histograms.to_dict(),
            "shards": sorted(self.shards, key=lambda s: s["path"]),
            "removed_shards": {k: sorted(v, key=lambda s: s["path"]) for k, v in sorted(self.removed_shards.items())},
        }


def merge_summaries(summaries: list[dict[str, Any]]) -> RunStats:
    stats = RunStats()
    for summary in sorted(summaries, key=lambda s: s["input_id"]):
        stats.add(summary)
    return stats
