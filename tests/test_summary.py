"""The end-of-run summary prints the same lines whatever order the tasks ended in."""

from __future__ import annotations

import io
from collections import Counter

from rich.console import Console

from tamis.cli.summary import print_summary
from tamis.engine.runner import RunResult
from tamis.stats.counters import StepCounters, TaskCounters

TOTALS = {"units": 2, "records": 23, "html_docs": 22, "kept": 20, "tokens": 900, "seconds": 1.0}


def _task(**dropped: int) -> TaskCounters:
    return TaskCounters({"warc": StepCounters(docs_in=12, docs_out=11, dropped=Counter(dropped))})


def _summary(*tasks: TaskCounters) -> str:
    merged = TaskCounters()
    for task in tasks:  # as the driver merges them: in the order the tasks end
        merged.merge(task)
    stream = io.StringIO()
    print_summary(Console(file=stream, width=200), RunResult(output="out", fingerprint="f", inputs=["a", "b"],
                                                             counters=merged, totals=TOTALS, steps_order=["warc"]))
    return stream.getvalue()


def test_tied_drop_reasons_are_listed_by_name_whichever_task_ended_first() -> None:
    truncated, corrupt = _task(truncated=1), _task(corrupt_record=1)
    first, second = _summary(truncated, corrupt), _summary(corrupt, truncated)
    assert first == second
    assert "corrupt_record 1, truncated 1" in first


def test_top_reasons_are_the_most_frequent_then_by_name() -> None:
    assert StepCounters(dropped=Counter({"b": 2, "a": 2, "z": 5, "c": 1})).top_reasons() == [("z", 5), ("a", 2),
                                                                                            ("b", 2)]
    assert StepCounters().top_reasons() == []
