"""The progress display asks the progress actor for totals only as often as it can show them."""

import io

from rich.console import Console

from tamis.engine.progress import PROGRESS_POLL_SECONDS, ProgressDisplay


def test_live_bar_polls_twice_a_second():
    console = Console(file=io.StringIO(), force_terminal=True)
    with ProgressDisplay(console, 3) as display:
        assert display.poll_seconds == PROGRESS_POLL_SECONDS


def test_log_lines_poll_once_per_line():
    out = io.StringIO()
    console = Console(file=out, force_terminal=False)
    with ProgressDisplay(console, 3, log_every=30.0) as display:
        assert display.poll_seconds == 30.0
        display.update(1, 10, 1000, {})
        display.update(2, 20, 2000, {})  # within 30 s of the first line: not printed
    assert out.getvalue().count("process: ") == 1
    assert "1/3 units" in out.getvalue()
