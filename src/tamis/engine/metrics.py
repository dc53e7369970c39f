"""Live counters of running tasks, exported as Ray metrics so Ray's dashboard, Prometheus and Grafana show a job.

Ray serves them, prefixed `ray_`, on each node's metrics export port (`ray.nodes()[i]["MetricsExportPort"]`,
`/metrics`): `tamis_step_docs_in_total` and `tamis_step_docs_out_total` by step, `tamis_dropped_docs_total` by
step and reason, `tamis_bytes_read_total`, and the gauge `tamis_task_docs_per_second` (by worker). Exact counts
come from the commits; these are for watching a run (a retried task counts twice here).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from tamis.stats.counters import TaskCounters

log = logging.getLogger(__name__)
_METRICS: dict[str, Any] = {}


def _metrics() -> dict[str, Any]:
    if not _METRICS:
        from ray.util.metrics import Counter, Gauge

        _METRICS.update(
            docs_in=Counter("tamis_step_docs_in", "documents into each step", tag_keys=("step",)),
            docs_out=Counter("tamis_step_docs_out", "documents out of each step", tag_keys=("step",)),
            dropped=Counter("tamis_dropped_docs", "documents dropped, by step and reason", tag_keys=("step", "reason")),
            bytes_read=Counter("tamis_bytes_read", "input bytes read"),
            docs_per_second=Gauge("tamis_task_docs_per_second", "documents read per second by the running task"),
        )
    return _METRICS


class MetricsReporter:
    """Sends the growth of one task's counters since the last report; never fails the task."""

    def __init__(self, counters: TaskCounters, reader: str, enabled: bool = True) -> None:
        self.counters, self.reader, self.enabled = counters, reader, enabled
        self._sent: dict[tuple[str, ...], float] = {}
        self._last = time.monotonic()
        self._last_docs = 0

    def _delta(self, key: tuple[str, ...], value: float) -> float:
        delta = value - self._sent.get(key, 0)
        self._sent[key] = value
        return delta

    def report(self) -> None:
        if not self.enabled:
            return
        try:
            metrics = _metrics()
            for step, counters in self.counters.steps.items():
                tags = {"step": step}
                for name, value in (("docs_in", counters.docs_in), ("docs_out", counters.docs_out)):
                    if (delta := self._delta((name, step), value)) > 0:
                        metrics[name].inc(delta, tags=tags)
                for reason, value in counters.dropped.items():
                    if (delta := self._delta(("dropped", step, reason), value)) > 0:
                        metrics["dropped"].inc(delta, tags={"step": step, "reason": reason})
            reader = self.counters.steps.get(self.reader)
            if reader is not None:
                if (delta := self._delta(("bytes_read",), reader.events.get("bytes_read", 0))) > 0:
                    metrics["bytes_read"].inc(delta)
                now = time.monotonic()
                metrics["docs_per_second"].set((reader.docs_out - self._last_docs) / max(now - self._last, 1e-6))
                self._last, self._last_docs = now, reader.docs_out
        except Exception as exc:  # noqa: BLE001 - observability must never fail the work
            log.warning("Ray metrics not exported: %s", exc)
            self.enabled = False
