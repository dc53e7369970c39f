"""Whether a `tamis run` output can be read as a dataset: its run has finished.

Why: `tamis tokenize` and `tamis sample` read every shard under OUTPUT/data/. While a run writes, or after it
stopped early (an input failed, the driver was killed, the disk filled), data/ holds part of the dataset only,
and may hold a shard whose task failed while committing (the rerun writes it again, with the same bytes).
Tokens made from such a folder would silently miss documents. So the readers ask here first, and read an
unfinished run only when told to (`--allow-incomplete`), with a warning.

A folder without a run's manifest (any Parquet files) is not a run's output: nothing is checked.
"""

from __future__ import annotations

import posixpath
from typing import Any

from tamis.engine import layout
from tamis.engine.output_lock import is_local, live_holder
from tamis.io.storage import read_json

#: what readers say to do about an unfinished run, and about one that is still running
REMEDY = "Run the same `tamis run` command again to finish it"
REMEDY_RUNNING = "Wait for it to end"
ALLOW = "or pass --allow-incomplete to use the shards written so far"


class UnfinishedRunError(RuntimeError):
    """A run's output was given to a reader before the run finished."""


def unfinished_reason(fs: Any, root: str) -> str | None:
    """Why the run whose output is `root` has not finished, or None when it has (or `root` is no run's output)."""
    found = _unfinished(fs, root)
    return None if found is None else found[0]


def _run_manifest(fs: Any, root: str) -> dict[str, Any] | None:
    """The manifest of the `tamis run` whose output is `root`; None when there is none there (no manifest, or
    another tool's: a tokenize output has one without a pipeline). Raises OSError or ValueError when a
    manifest.json is there but cannot be read."""
    path = layout.manifest_path(root)
    if not fs.exists(path):
        return None
    manifest = read_json(fs, path)
    return manifest if isinstance(manifest, dict) and "pipeline" in manifest else None


def _unfinished(fs: Any, root: str) -> tuple[str, bool] | None:
    """(why the run of `root` has not finished, whether it is known to be still writing), or None."""
    try:
        manifest = _run_manifest(fs, root)
    except (OSError, ValueError) as exc:
        return f"its manifest.json cannot be read ({type(exc).__name__})", False
    if manifest is None:
        return None
    status = manifest.get("status")
    if status == "complete":
        return None
    if status == "incomplete":
        failed = manifest.get("failed") or {}
        progress = _progress(fs, root, manifest.get("fingerprint"))
        return f"its run stopped with {len(failed)} failed input(s){progress}", False
    if status == "running":
        holder = live_holder(fs, root)
        if holder is not None:
            return f"its run is still writing it (started {holder.since} by process {holder.pid})", True
        if not is_local(fs):  # a store that cannot lock leaves no lock behind a run that goes on
            return "its manifest says its run is running (it may still be, or it was stopped before it finished)", False
        return "its run stopped before it finished (interrupted, or its driver was lost)", False
    return f"its run's status is {status!r}", False


def is_run_output(fs: Any, root: str) -> bool:
    """Whether `root` holds a `tamis run`'s manifest (not a tokenize output's, which has one too)."""
    try:
        return _run_manifest(fs, root) is not None
    except (OSError, ValueError):
        return True  # a manifest.json where a run writes one, unreadable: treated as a run's, never written over


def find_run_root(fs: Any, path: str) -> str | None:
    """The output folder of the run that `path` is, or lies under the data/ folder of (the deepest such: a run's
    output may itself sit under a folder named data/); None when there is none. `path` may be a glob."""
    parts = path.rstrip("/").split("/")
    candidates = ["/".join(parts), *("/".join(parts[:i]) for i in range(len(parts) - 1, 0, -1) if parts[i] == "data")]
    for root in candidates:
        if root and not any(c in root for c in "*?[") and fs.exists(posixpath.join(root, "manifest.json")):
            return root
    return None


def check_finished(fs: Any, root: str, shown: str, allow_incomplete: bool) -> str | None:
    """Raise UnfinishedRunError naming `shown` if its run has not finished; with `allow_incomplete`, return the
    warning to print instead. None when there is nothing to say."""
    found = _unfinished(fs, root)
    if found is None:
        return None
    reason, running = found
    if not allow_incomplete:
        remedy = REMEDY_RUNNING if running else REMEDY
        raise UnfinishedRunError(f"{shown}: {reason}, so its data/ holds part of the dataset only. {remedy}, {ALLOW}")
    return f"{shown}: {reason}; using the shards written so far (--allow-incomplete)"


def _progress(fs: Any, root: str, fingerprint: object) -> str:
    """"; 12 of 40 unit(s) committed" from the stats.json the run wrote when it stopped, else ""."""
    path = layout.merged_stats_path(root)
    try:
        stats = read_json(fs, path) if fs.exists(path) else None
    except (OSError, ValueError):
        return ""
    if not isinstance(stats, dict) or stats.get("fingerprint") != fingerprint:
        return ""
    committed, units = stats.get("committed"), stats.get("units")
    if isinstance(committed, int) and isinstance(units, int):
        return f"; {committed} of {units} unit(s) committed"
    return ""
