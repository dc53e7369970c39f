"""A memory ceiling per process-stage task, so one hostile input fails its own task and never its node.

Two halves, because Ray's `memory=` is only accounting: it stops Ray from starting more tasks on a node
than their declared memory fits, but nothing stops a running task from taking more. So each task also
lowers its worker's soft `RLIMIT_DATA` (on Linux: heap and private anonymous mappings, where Python,
NumPy, Arrow and lxml allocate) to what the worker holds now plus the ceiling, for the task's duration
only. An allocation past it fails with MemoryError inside the task, which becomes a failed input with a
message naming it; the limit is restored afterwards, the worker lives on and takes the next task.
Measured with Ray 2.60 here: a worker holds about 300 MiB of VmData at rest; a task that allocates
past its ceiling gets MemoryError and the same worker runs the next task normally.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache

log = logging.getLogger(__name__)

AUTO = "auto"
OFF = "off"
#: below this a worker cannot even load the pipeline's models
MIN_TASK_MEMORY = 64 * 2**20
_UNITS = {"": 1, "b": 1, "k": 2**10, "kb": 10**3, "kib": 2**10, "m": 2**20, "mb": 10**6, "mib": 2**20,
          "g": 2**30, "gb": 10**9, "gib": 2**30, "t": 2**40, "tb": 10**12, "tib": 2**40}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's `malloc_trim`, or None on a system without it."""
    name = ctypes.util.find_library("c") if sys.platform.startswith("linux") else None
    try:
        return getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    except OSError:
        return None


def release_free_memory() -> None:
    """Hand back to the system what glibc's malloc holds freed (`malloc_trim(0)`); a no-op elsewhere.

    A task frees every page's HTML and text as it goes, but glibc keeps freed chunks for reuse, and with many
    threads (a Ray worker has dozens) and strings of every size the pool it keeps grows slowly: on the 1 GiB
    file, one unsplit task's malloc held 80 MiB freed after the first minute and 130 MiB at the end, which
    was most of its RSS growth (docs/scaling.md). Trimming at each state block (64 MiB of input) costs a few
    milliseconds and keeps a worker's memory flat over a file of any size.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


class TaskMemoryExceeded(MemoryError):
    """A task allocated past its memory ceiling; the message names the input."""


def parse_task_memory(text: str | int | None) -> int | str | None:
    """`auto`, `off`, or a size (`4GiB`, `512MiB`, `2G`, bytes) -> AUTO, None, or bytes; ValueError if not."""
    if text is None:
        return None
    if isinstance(text, int):
        size = text
    else:
        lowered = text.strip().lower()
        if lowered == AUTO:
            return AUTO
        if lowered in (OFF, "none", "0"):
            return None
        match = _SIZE.match(lowered)
        if not match or match.group(2) not in _UNITS:
            raise ValueError(f"expected 'auto', 'off' or a size such as 4GiB or 512MiB, got {text!r}")
        size = int(float(match.group(1)) * _UNITS[match.group(2)])
    if size < MIN_TASK_MEMORY:
        raise ValueError(f"a task needs at least {MIN_TASK_MEMORY // 2**20} MiB, got {size} bytes")
    return size


def resolve_task_memory(setting: int | str | None, nodes: list[dict]) -> int | None:
    """The ceiling in bytes for this cluster (`nodes` as from `ray.nodes()`), or None for no ceiling.

    `auto` is each CPU's share of the smallest node's memory (Ray's `memory` resource over its CPUs), so
    that a node full of tasks fits its memory. An explicit size larger than every node's memory could
    never be scheduled: that is an error, before any task is sent.
    """
    setting = parse_task_memory(setting) if isinstance(setting, str) else setting
    if setting is None:
        return None
    alive = [n.get("Resources", {}) for n in nodes if n.get("Alive", True)]
    workers = [r for r in alive if r.get("CPU", 0) > 0 and r.get("memory", 0) > 0]
    if not workers:
        return None if setting == AUTO else int(setting)
    if setting == AUTO:
        return max(MIN_TASK_MEMORY, int(min(r["memory"] / r["CPU"] for r in workers)))
    largest = max(r["memory"] for r in workers)
    if setting > largest:
        raise ValueError(f"--task-memory {setting / 2**30:.1f} GiB is more than any node has "
                         f"({largest / 2**30:.1f} GiB): no task could be scheduled")
    return int(setting)


def task_reservation(limit: int | None, cpus: int, setting: int | str | None) -> int | None:
    """What a process-stage task of `cpus` CPUs reserves in Ray's `memory` accounting.

    With `auto` the ceiling is one CPU's share of a node; a task given several CPUs (fewer inputs than CPUs,
    runner.task_cpus) runs one extraction child per CPU, so it reserves the shares of all its CPUs, which a
    node of the smallest kind still holds (the task's CPUs never pass its CPUs). An explicit size is the
    task's, whatever its CPUs. The worker's own ceiling (`memory_ceiling`) stays `limit` either way: the
    extraction children are processes of their own.
    """
    if limit is None:
        return None
    setting = parse_task_memory(setting) if isinstance(setting, str) else setting
    return limit * max(1, cpus) if setting == AUTO else limit


def _data_in_use() -> int | None:
    """This process's VmData (what RLIMIT_DATA counts), or None where /proc is not there."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmData:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


@contextmanager
def memory_ceiling(limit: int | None) -> Iterator[None]:
    """Within the block, this process may grow its data by at most `limit` bytes (Linux; elsewhere, and
    with `limit` None, nothing is enforced and Ray's accounting alone applies)."""
    in_use = _data_in_use() if limit and sys.platform.startswith("linux") else None
    if in_use is None:
        yield
        return
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    ceiling = in_use + limit
    if hard != resource.RLIM_INFINITY:
        ceiling = min(ceiling, hard)
    if soft != resource.RLIM_INFINITY:
        ceiling = min(ceiling, soft)
    try:
        resource.setrlimit(resource.RLIMIT_DATA, (ceiling, hard))
    except (ValueError, OSError) as exc:
        log.warning("cannot set the task memory ceiling (%s); Ray's accounting alone applies", exc)
        yield
        return
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))
