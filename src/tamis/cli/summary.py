"""The end-of-run summary table."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from tamis.display import line, plain
from tamis.engine.runner import RunResult


def print_summary(console: Console, result: RunResult) -> None:
    totals = result.totals
    table = Table(title="tamis run", show_header=True, header_style="bold")
    for column in ("tasks", "records", "HTML docs", "kept", "tokens", "seconds", "docs/s"):
        table.add_column(column, justify="right")
    seconds = totals.get("seconds", 0.0) or 1e-9
    table.add_row(
        f"{totals['units']}",
        f"{totals['records']:,}",
        f"{totals['html_docs']:,}",
        f"{totals['kept']:,}",
        f"{totals['tokens']:,}",
        f"{seconds:.1f}",
        f"{totals['html_docs'] / seconds:.1f}",
    )
    console.print(table)

    steps = Table(title="per step", show_header=True, header_style="bold")
    for column in ("step", "in", "out", "seconds", "top drop reasons"):
        steps.add_column(column, justify="left" if column in ("step", "top drop reasons") else "right")
    order = {name: i for i, name in enumerate(result.steps_order)}
    for name, counters in sorted(result.counters.steps.items(), key=lambda item: order.get(item[0], len(order))):
        reasons = ", ".join(f"{reason} {n:,}" for reason, n in counters.top_reasons())
        steps.add_row(plain(name), f"{counters.docs_in:,}", f"{counters.docs_out:,}", f"{counters.seconds:.1f}",
                      plain(reasons))
    console.print(steps)
    if result.skipped:
        console.print(f"skipped {len(result.skipped)} input(s) already committed by an earlier run")
    for path, error in result.failed.items():
        console.print(line(("FAILED", "red"), f" {path}: {error}"))
