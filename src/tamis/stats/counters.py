"""Per-step counters of one task.

A step's counters are a fixed set of fields (documents in and out, seconds, drops by reason) plus named
events the step declares as class constants, so a typo cannot invent a new counter silently. Merging is
a plain sum, so the stats of a run are the sum of its committed tasks whatever order they ran in.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass
class StepCounters:
    """What one step saw in one task."""

    docs_in: int = 0
    docs_out: int = 0
    seconds: float = 0.0
    #: CPU seconds of the step's child processes (the extraction sandbox): its cost, which `seconds` (time in
    #: the task) does not give once several children share a file; 0 for steps that run in the task's process
    child_cpu_seconds: float = 0.0
    dropped: Counter[str] = field(default_factory=Counter)
    events: Counter[str] = field(default_factory=Counter)

    @contextmanager
    def timed(self) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds += time.perf_counter() - start

    def drop(self, reason: str, n: int = 1) -> None:
        self.dropped[reason] += n

    def top_reasons(self, n: int = 3) -> list[tuple[str, int]]:
        """The `n` most frequent drop reasons, ties by name: the same whatever order the tasks were merged in
        (`Counter.most_common` keeps ties in the order they were first counted)."""
        return sorted(self.dropped.items(), key=lambda item: (-item[1], item[0]))[:n]

    def event(self, name: str, n: int = 1) -> None:
        self.events[name] += n

    def to_dict(self) -> dict[str, Any]:
        return {
            "docs_in": self.docs_in,
            "docs_out": self.docs_out,
            "seconds": round(self.seconds, 6),
            "child_cpu_seconds": round(self.child_cpu_seconds, 6),
            "dropped": dict(sorted(self.dropped.items())),
            "events": dict(sorted(self.events.items())),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StepCounters:
        return cls(
            docs_in=int(data.get("docs_in", 0)),
            docs_out=int(data.get("docs_out", 0)),
            seconds=float(data.get("seconds", 0.0)),
            child_cpu_seconds=float(data.get("child_cpu_seconds", 0.0)),
            dropped=Counter(data.get("dropped", {})),
            events=Counter(data.get("events", {})),
        )

    def merge(self, other: StepCounters) -> None:
        self.docs_in += other.docs_in
        self.docs_out += other.docs_out
        self.seconds += other.seconds
        self.child_cpu_seconds += other.child_cpu_seconds
        self.dropped.update(other.dropped)
        self.events.update(other.events)


@dataclass
class TaskCounters:
    """Counters of every step of one task, keyed by the step's instance name, in pipeline order."""

    steps: dict[str, StepCounters] = field(default_factory=dict)

    def for_step(self, name: str) -> StepCounters:
        if name not in self.steps:
            self.steps[name] = StepCounters()
        return self.steps[name]

    def to_dict(self) -> dict[str, Any]:
        return {name: counters.to_dict() for name, counters in self.steps.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskCounters:
        return cls({name: StepCounters.from_dict(value) for name, value in data.items()})

    def merge(self, other: TaskCounters) -> None:
        for name, counters in other.steps.items():
            self.for_step(name).merge(counters)
