"""`tamis inspect`: sampled kept or removed documents of a run, to judge a filter by eye.

Kept documents come from the committed shards (`data/`), removed ones from `removed/<step>/` (written when the
pipeline's `removed.mode` is `full` or `sample`), each with its reason. Filter features are recomputed on the
stored text by the run's own step (built from the manifest), so they are the values the filter saw for a
removed document; for a kept document they are computed on the final text, after later steps rewrote it.
Sampling is deterministic: the same run, selection and seed give the same documents.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pyarrow.parquet as pq

from tamis.batch import DocBatch
from tamis.stats.histograms import FEATURE_PREFIX
from tamis.stats.load import LoadedRun
from tamis.stats.where import UnknownNameError, Where, WhereError
from tamis.stats.where import compile_where as parse_where
from tamis.steps.base import Filter

KEPT = "kept"
LIGHT_COLUMNS = ("id", "url", "reason")


class InspectError(ValueError):
    """A selection that cannot be made (unknown step, nothing recorded, a bad --where)."""


@dataclass
class Selection:
    step: str | None = None
    reason: str | None = None
    kept: bool = False

    @property
    def removed(self) -> bool:
        return not self.kept and (self.step is not None or self.reason is not None)


@dataclass
class Sampled:
    documents: list[dict[str, Any]]
    candidates: int
    description: str
    notes: list[str] = field(default_factory=list)


def _files(run: LoadedRun, selection: Selection) -> list[tuple[str, str]]:
    """(step or "kept", path) of every file the selection reads, committed tasks only."""
    if not selection.removed:
        return [(KEPT, run.relocate(s["path"])) for s in sorted(run.stats.shards, key=lambda s: s["path"])]
    steps = [selection.step] if selection.step else list(run.stats.removed_shards)
    known = set(run.steps_order) | set(run.stats.removed_shards)
    if selection.step and selection.step not in known:
        raise InspectError(f"unknown step {selection.step!r}; this run's steps: {', '.join(run.steps_order)}")
    mode = ((run.manifest.get("options") or {}).get("removed") or {}).get("mode")
    if selection.step and selection.step not in run.stats.removed_shards:
        dropped = run.stats.counters.steps.get(selection.step)
        n = sum(dropped.dropped.values()) if dropped else 0
        hint = f" (removed.mode is {mode!r})" if mode else ""
        raise InspectError(f"no removed documents recorded for step {selection.step!r}: it dropped {n:,}{hint}")
    return [(step, run.relocate(s["path"])) for step in steps
            for s in sorted(run.stats.removed_shards.get(step, []), key=lambda s: s["path"])]


def _read(run: LoadedRun, path: str, columns: list[str] | None = None) -> list[dict[str, Any]]:
    schema = pq.read_schema(path, filesystem=run.fs)
    names = [c for c in columns if c in schema.names] if columns is not None else None
    return pq.read_table(path, columns=names, filesystem=run.fs).to_pylist()


def step_instance(run: LoadedRun, step: str) -> Filter | None:
    """The run's filter named `step`, rebuilt from the manifest and set up; None when it cannot be."""
    from tamis.steps.registry import get_step_class

    for spec in (run.manifest.get("pipeline") or {}).get("steps", []):
        if spec.get("name") == step:
            try:
                instance = get_step_class(spec["step"])(**spec.get("params", {}))
            except Exception:  # noqa: BLE001 - a plugin not importable here: no features, the rest still works
                return None
            if not isinstance(instance, Filter):
                return None
            instance.setup()
            return instance
    return None


def features_of(filter_step: Filter, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The `feature.*` columns `filter_step` publishes for these documents (empty when it publishes none)."""
    if not rows:
        return []
    columns = {name: [row.get(name) for row in rows] for name in ("text", "id", "url", "dump", "date",
                                                                  "file_path", "language", "language_score")}
    columns["text"] = [text or "" for text in columns["text"]]
    batch = DocBatch(columns)
    try:
        filter_step.filter_batch(batch)
    except Exception:  # noqa: BLE001 - features are a help for the eye; a step that needs more context skips
        return [{} for _ in rows]
    names = [c for c in batch.columns if c.startswith(FEATURE_PREFIX)]
    return [{name[len(FEATURE_PREFIX):]: _clean(batch[name][i]) for name in names} for i in range(len(rows))]


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else round(value, 4)
    return value


class _Features:
    """Features per step, computed on demand and cached per document id."""

    def __init__(self, run: LoadedRun):
        self.run = run
        self._steps: dict[str, Filter | None] = {}

    def steps_for(self, origin: str) -> list[str]:
        if origin != KEPT:
            return [origin]
        return [s for s in self.run.steps_order if self.filter(s) is not None]

    def filter(self, step: str) -> Filter | None:
        if step not in self._steps:
            self._steps[step] = step_instance(self.run, step)
        return self._steps[step]

    def add(self, origin: str, rows: list[dict[str, Any]]) -> None:
        for step in self.steps_for(origin):
            instance = self.filter(step)
            if instance is None:
                continue
            for row, feats in zip(rows, features_of(instance, rows), strict=True):
                row.setdefault("features", {}).update(feats)


def compile_where(expression: str | None) -> Where | None:
    """The --where expression parsed and checked (tamis.stats.where: never `eval`)."""
    if not expression:
        return None
    try:
        return parse_where(expression)
    except WhereError as exc:
        raise InspectError(f"--where: {exc}") from None


def _matches(code: Where, row: dict[str, Any]) -> bool:
    names = {**row, **row.get("features", {}), "chars": len(row.get("text") or "")}
    try:
        return code(names)
    except UnknownNameError as exc:
        raise InspectError(f"--where: {exc} (columns: {', '.join(sorted(k for k in row if k != 'features'))}; "
                           f"features: {', '.join(sorted(row.get('features', {}))) or 'none'})") from None
    except WhereError as exc:
        raise InspectError(f"--where: {exc}") from None
    except Exception:  # noqa: BLE001 - a row the expression cannot handle (None text) does not match
        return False


def sample(run: LoadedRun, selection: Selection, *, n: int = 5, seed: int = 0, where: str | None = None,
           features: bool = True) -> Sampled:
    """`n` documents of the selection drawn with `seed`, each a dict of its columns, `origin` (kept or the
    step) and `features`."""
    code = compile_where(where)
    files = _files(run, selection)
    feats = _Features(run)
    notes = []
    candidates: list[tuple[str, str, int]] = []  # (id, path, row) sorted by id, so the draw is reproducible
    full_rows: dict[str, list[dict[str, Any]]] = {}
    for origin, path in files:
        if code is not None:
            rows = _read(run, path)
            rows = [r for r in rows if selection.reason is None or r.get("reason") == selection.reason]
            if rows and features:
                feats.add(origin, rows)
            full_rows[path] = rows
            index = [i for i, r in enumerate(rows) if _matches(code, r)]
        else:
            rows = _read(run, path, list(LIGHT_COLUMNS))
            index = [i for i, r in enumerate(rows) if selection.reason is None or r.get("reason") == selection.reason]
        candidates += [(rows[i]["id"], path, i) for i in index]
    origin_of = {path: origin for origin, path in files}
    candidates.sort()
    chosen = random.Random(seed).sample(candidates, min(n, len(candidates)))
    documents = []
    for _, path, i in chosen:
        if path not in full_rows:
            full_rows[path] = _read(run, path)
        row = dict(full_rows[path][i])
        row["origin"] = origin_of[path]
        documents.append(row)
    if features and code is None:
        by_origin: dict[str, list[dict[str, Any]]] = {}
        for row in documents:
            by_origin.setdefault(row["origin"], []).append(row)
        for origin, rows in by_origin.items():
            feats.add(origin, rows)
    for row in documents:
        row.setdefault("features", {})
    mode = ((run.manifest.get("options") or {}).get("removed") or {}).get("mode")
    if selection.removed and mode == "sample":
        notes.append("removed.mode is 'sample': only a deterministic sample of removed documents was recorded")
    what = "kept documents" if not selection.removed else "removed documents"
    if selection.step:
        what += f" of step {selection.step}"
    if selection.reason:
        what += f" with reason {selection.reason}"
    if where:
        what += f" where {where}"
    return Sampled(documents, len(candidates), what, notes)


def decisions(run: LoadedRun) -> dict[str, str]:
    """document id -> "kept" or "<step>: <reason>", over every document the run recorded."""
    found: dict[str, str] = {}
    for shard in run.stats.shards:
        for row in _read(run, run.relocate(shard["path"]), ["id"]):
            found[row["id"]] = KEPT
    for step, shards in run.stats.removed_shards.items():
        for shard in shards:
            for row in _read(run, run.relocate(shard["path"]), ["id", "reason"]):
                found[row["id"]] = f"{step}: {row['reason']}"
    return found


def compare(run: LoadedRun, other: LoadedRun, documents: list[dict[str, Any]]) -> dict[str, Any]:
    """The other run's decision on each sampled document, and a cross-table of both runs' decisions over every
    document id both recorded."""
    mine, theirs = decisions(run), decisions(other)
    for row in documents:
        row["decision"] = mine.get(row["id"], "not recorded")
        row["other_decision"] = theirs.get(row["id"], "not recorded")
    common = mine.keys() & theirs.keys()
    table = Counter((mine[i], theirs[i]) for i in common)
    return {
        "common_ids": len(common),
        "only_this": len(mine.keys() - theirs.keys()),
        "only_other": len(theirs.keys() - mine.keys()),
        "same": sum(n for (a, b), n in table.items() if a == b),
        "crosstab": [{"this": a, "other": b, "docs": n} for (a, b), n in sorted(table.items(), key=lambda x: -x[1])],
    }
