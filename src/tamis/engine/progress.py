"""Live progress of a run: tasks add what they have read to a tiny actor; the driver draws it."""

from __future__ import annotations

import time
from collections import deque

import ray
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tamis.display import line, visible


@ray.remote(num_cpus=0)
class ProgressCounter:
    """Documents and bytes read so far, across tasks (display only; final counts come from commits)."""

    def __init__(self) -> None:
        self.docs = 0
        self.bytes = 0
        self.running: dict[str, float] = {}

    def add(self, docs: int, nbytes: int, finished: str | None = None) -> None:
        """Documents and bytes read since the last call; `finished`: the unit that just committed (its task says
        so in its last call, which saves the driver one actor call per task)."""
        self.docs += docs
        self.bytes += nbytes
        if finished is not None:
            self.running.pop(finished, None)

    def started(self, unit: str) -> None:
        self.running[unit] = time.time()

    def finished(self, unit: str) -> None:
        self.running.pop(unit, None)

    def totals(self) -> tuple[int, int, dict[str, float]]:
        return self.docs, self.bytes, dict(self.running)


#: how often a live progress bar is refreshed with the tasks' running totals
PROGRESS_POLL_SECONDS = 0.5


class ProgressDisplay:
    """A progress bar on a terminal; a periodic status line in logs."""

    def __init__(self, console: Console, total_files: int, enabled: bool = True, log_every: float = 30.0,
                 label: str = "process"):
        self.console = console
        self.label = label
        self.enabled = enabled
        self.total_files = total_files
        self.started = time.monotonic()
        self.log_every = log_every
        self._last_log = 0.0
        # the last finished tasks' durations (a window: sorting every one at each refresh grew with the run)
        self.durations: deque[float] = deque(maxlen=1000)
        self.files = 0
        self.docs = 0
        self.bytes = 0
        self._progress: Progress | None = None
        if enabled and console.is_terminal:
            self._progress = Progress(
                TextColumn(f"[bold]{label}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("files"),
                TextColumn("{task.fields[docs]:,} docs"),
                TextColumn("{task.fields[rate]:.1f} MB/s"),
                TimeElapsedColumn(),
                TextColumn("{task.fields[slowest]}", markup=False),
                console=console,
            )
            self._task = self._progress.add_task("process", total=total_files, docs=0, rate=0.0, slowest="")

    @property
    def poll_seconds(self) -> float:
        """How often the driver should fetch the running totals: twice a second for a live bar, once per status
        line in logs (each fetch is an actor call, a few ms of CPU on both sides, for nothing between lines)."""
        return PROGRESS_POLL_SECONDS if self._progress is not None else self.log_every

    def __enter__(self) -> ProgressDisplay:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def stragglers(self, running: dict[str, float]) -> str:
        """The slowest running task, flagged when it has run 3x longer than the median finished one."""
        if not running:
            return ""
        unit, since = min(running.items(), key=lambda item: item[1])
        age = time.time() - since
        text = f"slowest {visible(unit)} {age:.0f}s"
        if len(self.durations) >= 3:
            median = sorted(self.durations)[len(self.durations) // 2]
            late = sum(time.time() - t > max(3 * median, 30.0) for t in running.values())
            if late:
                text = f"{late} straggler(s): " + text
        return text

    def update(self, files: int, docs: int, nbytes: int, running: dict[str, float]) -> None:
        self.files, self.docs, self.bytes = files, docs, nbytes
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = nbytes / elapsed / 1e6
        slowest = self.stragglers(running)
        if self._progress is not None:
            self._progress.update(self._task, completed=files, docs=docs, rate=rate, slowest=slowest)
        elif self.enabled and time.monotonic() - self._last_log >= self.log_every:
            self._last_log = time.monotonic()
            self.console.print(line(
                f"{self.label}: {files}/{self.total_files} units, {len(running)} running, {docs:,} docs, "
                f"{rate:.1f} MB/s {slowest}"
            ))
