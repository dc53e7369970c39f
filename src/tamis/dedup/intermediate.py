"""Intermediate files of the dedup stage: Parquet of uint64 columns, in named row groups, with checksums.

Every file is written under a temporary name and renamed into place; what was written (size, and per row
group its rows and a BLAKE2b digest of its column data) goes into the producing task's commit marker.
A reader checks the size before opening and the digest after decoding (Parquet page checksums catch
most damage earlier), so a truncated, partial or corrupt intermediate raises CorruptIntermediateError
naming the file, and the driver recomputes it: it is never silently used.
"""

from __future__ import annotations

import hashlib
import posixpath
import resource
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec import AbstractFileSystem

from tamis.io.storage import temporary_name


class CorruptIntermediateError(RuntimeError):
    """An intermediate file does not match what its producer recorded."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"corrupt or partial intermediate {path}: {reason}")
        self.path = path
        self.reason = reason

    def __reduce__(self):
        return (CorruptIntermediateError, (self.path, self.reason))


def digest(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.blake2b(digest_size=16)
    for name in sorted(arrays):
        h.update(name.encode())
        h.update(np.ascontiguousarray(arrays[name]).view(np.uint8))
    return h.hexdigest()


def write_groups(fs: AbstractFileSystem, path: str, groups: list[tuple[str, dict[str, np.ndarray]]]) -> dict[str, Any]:
    """Write named groups of equal-length uint64 columns as row groups of one file; returns its entry.

    Empty groups are not written (the entry simply lacks them).
    """
    fs.makedirs(posixpath.dirname(path), exist_ok=True)
    tmp = temporary_name(path)
    entry: dict[str, Any] = {"path": path, "groups": {}}
    schema = None
    index = 0
    try:
        with fs.open(tmp, "wb") as handle:
            writer = None
            for name, arrays in groups:
                rows = len(next(iter(arrays.values())))
                if not rows:
                    continue
                table = pa.table({k: pa.array(v, type=pa.uint64()) for k, v in arrays.items()})
                if writer is None:
                    schema = table.schema
                    writer = pq.ParquetWriter(handle, schema, compression="zstd", compression_level=1,
                                              write_page_checksum=True)
                writer.write_table(table, row_group_size=max(rows, 1))
                entry["groups"][name] = [index, rows, digest(arrays)]
                index += 1
            if writer is None:  # nothing to write: an empty file with a known schema-less marker
                handle.write(b"")
            else:
                writer.close()
        fs.mv(tmp, path)
    except BaseException:
        try:
            if fs.exists(tmp):
                fs.rm(tmp)
        except Exception:  # noqa: BLE001 - cleanup must not hide the error
            pass
        raise
    entry["bytes"] = int(fs.size(path) or 0)
    return entry


def read_group(fs: AbstractFileSystem, entry: dict[str, Any], name: str, columns: list[str]) -> dict[str, np.ndarray]:
    """The named group's columns, checked against the entry; empty arrays when the file lacks the group."""
    found = entry["groups"].get(name)
    if not found:
        return {c: np.empty(0, dtype=np.uint64) for c in columns}
    index, rows, expected = found
    path = entry["path"]
    try:
        size = fs.size(path)
    except FileNotFoundError:
        raise CorruptIntermediateError(path, "missing") from None
    if size != entry["bytes"]:
        raise CorruptIntermediateError(path, f"{size} bytes, its producer wrote {entry['bytes']}")
    try:
        with fs.open(path, "rb") as handle:
            table = pq.ParquetFile(handle, page_checksum_verification=True).read_row_group(index)
        arrays = {c: table.column(c).to_numpy() for c in table.column_names}
    except (OSError, pa.ArrowException, ValueError, KeyError) as exc:
        raise CorruptIntermediateError(path, f"unreadable row group {index}: {exc}") from None
    if len(next(iter(arrays.values()))) != rows or digest(arrays) != expected:
        raise CorruptIntermediateError(path, f"row group {index} ({name}) does not match its checksum")
    return {c: arrays[c] for c in columns}


def check_exists(fs: AbstractFileSystem, entry: dict[str, Any]) -> bool:
    """Cheap check of a committed file before reusing it: present with the recorded size."""
    try:
        return fs.size(entry["path"]) == entry["bytes"]
    except FileNotFoundError:
        return False


@dataclass
class TaskMeter:
    """CPU seconds and peak resident memory of one task, in its (possibly reused) worker process.

    Linux lets a process reset its RSS high-water mark (`5` into /proc/self/clear_refs), so the peak
    measured is this task's, not an earlier task's of the same worker.
    """

    started: float = 0.0
    cpu_started: float = 0.0
    rss_start: int = 0

    def __post_init__(self) -> None:
        try:
            with open("/proc/self/clear_refs", "w") as handle:
                handle.write("5")
        except OSError:
            pass
        self.rss_start = _status_kib("VmRSS") * 1024
        self.started = time.perf_counter()
        self.cpu_started = _cpu()

    def result(self) -> dict[str, Any]:
        peak = _status_kib("VmHWM") * 1024
        return {"wall_seconds": round(time.perf_counter() - self.started, 6),
                "cpu_seconds": round(_cpu() - self.cpu_started, 6),
                "rss_start": self.rss_start, "peak_rss": peak, "peak_over_start": max(0, peak - self.rss_start)}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _status_kib(field: str) -> int:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
