"""What the dedup stage's intermediates share: the error for a damaged one, the commit check, task meters.

The files themselves are block files (tamis.dedup.block_file): written under a temporary name and renamed
into place, their size and table digest in the producing task's commit marker, every block's digest in the
file's table. A reader that finds a truncated, partial or corrupt intermediate raises
CorruptIntermediateError naming the file, and the driver recomputes it: it is never silently used.
"""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass
from typing import Any

from fsspec import AbstractFileSystem


class CorruptIntermediateError(RuntimeError):
    """An intermediate file does not match what its producer recorded."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"corrupt or partial intermediate {path}: {reason}")
        self.path = path
        self.reason = reason

    def __reduce__(self):
        return (CorruptIntermediateError, (self.path, self.reason))


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
