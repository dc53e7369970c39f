"""`tamis stats --watch`: the funnel of a running job, refreshed until the run ends.

Each refresh is one `load_run` (two listings and the commit index's new segments, see engine.commits), so it
costs the same whether the job has committed ten inputs or ninety thousand. Documents per second are taken
between two refreshes from the committed counts.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.console import Console

from tamis.display import line
from tamis.stats.load import LoadedRun, RunNotFoundError, load_run
from tamis.stats.report_terminal import print_report

#: statuses after which nothing more will be committed
FINISHED = ("complete", "incomplete")


def watch(output: str, console: Console, *, interval: float = 5.0, iterations: int | None = None, top: int = 5,
          sleep: Callable[[float], None] = time.sleep) -> LoadedRun | None:
    """Print the report of the run in `output` every `interval` seconds until it is finished (or `iterations`
    refreshes, or Ctrl-C); returns the last state read (None if no run appeared)."""
    run: LoadedRun | None = None
    previous: tuple[float, int] | None = None
    done = 0
    try:
        while iterations is None or done < iterations:
            done += 1
            try:
                run = load_run(output)
            except (RunNotFoundError, FileNotFoundError):
                console.print(line(f"waiting for a tamis run in {output} ..."))
                sleep(interval)
                continue
            now, read = time.monotonic(), run.totals()["docs_read"]
            if console.is_terminal:
                console.clear()
            if previous is not None and now > previous[0]:
                rate = (read - previous[1]) / (now - previous[0])
                console.print(f"{rate:,.1f} committed docs/s since the last refresh ({now - previous[0]:.0f} s ago)")
            previous = (now, read)
            print_report(console, run, top=top)
            if run.status in FINISHED:
                break
            console.print(f"refreshing every {interval:g} s (Ctrl-C stops watching; the run goes on)")
            sleep(interval)
    except KeyboardInterrupt:
        pass
    return run
