"""Where a run puts things under its output directory (one place, so every module agrees).

    <output>/
      data/<dump>/part-<input-id>.parquet    kept documents, FineWeb columns
      removed/<step>/part-<input-id>.parquet documents a step removed, with a `reason` column
      stats/process/<input-id>.json          counters of one input's task
      stats.json                             all committed tasks' counters, merged
      _commits/process/<input-id>.json       commit marker: an input is done when this exists
      _index/process/<segment>.json          commit index: compact records of committed inputs (engine.commits)
      manifest.json                          pipeline, versions, fingerprint, inputs
"""

from __future__ import annotations

import hashlib
import posixpath
import re

STAGE = "process"


def input_id(path: str) -> str:
    """A stable, readable, unique name for an input file: its stem plus a hash of its full path."""
    name = posixpath.basename(path.rstrip("/"))
    stem = re.sub(r"(\.warc|\.arc)?(\.wet|\.wat)?(\.gz|\.bz2|\.zst)?$", "", name, flags=re.IGNORECASE)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem)[:80] or "input"
    return f"{stem}-{hashlib.sha1(path.encode()).hexdigest()[:8]}"


def shard_path(root: str, dump: str, ident: str) -> str:
    safe_dump = re.sub(r"[^A-Za-z0-9._-]+", "_", dump) or "unknown"
    return posixpath.join(root, "data", safe_dump, f"part-{ident}.parquet")


def removed_path(root: str, step: str, ident: str) -> str:
    return posixpath.join(root, "removed", step, f"part-{ident}.parquet")


def task_stats_path(root: str, ident: str) -> str:
    return posixpath.join(root, "stats", STAGE, f"{ident}.json")


def commit_path(root: str, ident: str) -> str:
    return posixpath.join(root, "_commits", STAGE, f"{ident}.json")


def commits_dir(root: str) -> str:
    return posixpath.join(root, "_commits", STAGE)


def index_dir(root: str) -> str:
    return posixpath.join(root, "_index", STAGE)


def merged_stats_path(root: str) -> str:
    return posixpath.join(root, "stats.json")


def manifest_path(root: str) -> str:
    return posixpath.join(root, "manifest.json")
