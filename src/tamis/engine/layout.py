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

from tamis.io.redact import public_url

STAGE = "process"


#: hex digits of the path's SHA-1 in an input id: 64 bits, so that files of the same name in different folders
#: (FineWeb-2's data/<language>/part-<id>.parquet, hundreds of languages per name) do not share an id; with 32
#: bits, about one pair per dump did, and one of the two inputs was lost
INPUT_ID_HEX_DIGITS = 16


class InputIdClash(ValueError):
    """Two different inputs would get the same id, so they would share a shard, a marker and a commit."""


def input_id(path: str) -> str:
    """A stable, readable, unique name for an input file: its stem plus a hash of its public path.

    Public (no credentials, no query): the id becomes file names, and a re-signed URL is the same input."""
    path = public_url(path)
    name = posixpath.basename(path.rstrip("/"))
    stem = re.sub(r"(\.warc|\.arc)?(\.wet|\.wat)?(\.gz|\.bz2|\.zst)?$", "", name, flags=re.IGNORECASE)
    # a plain file-name part: no separators, and no leading dot or dash (hidden or option-like names)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).lstrip("._-")[:80] or "input"
    return f"{stem}-{hashlib.sha1(path.encode()).hexdigest()[:INPUT_ID_HEX_DIGITS]}"


def check_distinct_ids(paths: list[str]) -> None:
    """Raise InputIdClash, naming both, if two inputs (different public paths) would share an id.

    Checked by the driver before any task starts: a clash would make one input's output overwrite the
    other's, or count it as done, with nothing failing."""
    owner: dict[str, str] = {}
    for path in paths:
        public, ident = public_url(path), input_id(path)
        first = owner.setdefault(ident, public)
        if first != public:
            raise InputIdClash(f"inputs {first!r} and {public!r} would both get the id {ident!r}; "
                               "rename or move one of them")


#: a dump name that may become a folder name: no separators, no `.`/`..`, no leading dot or dash
DUMP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
UNKNOWN_DUMP = "unknown"


def safe_dump(name: object) -> str:
    """`name` when it is a plain folder name (see DUMP_NAME), else "unknown": data never picks a path."""
    if isinstance(name, str) and DUMP_NAME.fullmatch(name) and name not in (".", ".."):
        return name
    return UNKNOWN_DUMP


def shard_path(root: str, dump: str, ident: str) -> str:
    return posixpath.join(root, "data", safe_dump(dump), f"part-{ident}.parquet")


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
