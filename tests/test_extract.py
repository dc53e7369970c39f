"""Extraction: FineWeb's trafilatura settings, the hard time limit, and state that must not leak."""

from __future__ import annotations

import threading
import time

import pytest
import trafilatura
from conftest import WARC_DIR

from tamis.batch import DocBatch
from tamis.extract.sandbox import ExtractionSandbox, ExtractionTimeout, ExtractorCrashed
from tamis.extract.steps import Reasons, ResiliparseExtractor, TrafilaturaExtractor
from tamis.readers.warc import WarcReader
from tamis.stats.counters import StepCounters
from tamis.steps.base import StepContext

# FineWeb's settings for the plain (no fast path) engine, as the sandbox tests drive it
FINEWEB_PARAMS = {"favor_precision": True, "include_comments": False, "deduplicate": True}


def trafilatura_sandbox(timeout: float) -> ExtractionSandbox:
    return ExtractionSandbox("tamis.extract.trafilatura_engine:build", FINEWEB_PARAMS, timeout)


def pages(name: str) -> list[str]:
    batches = WarcReader().iter_batches(str(WARC_DIR / name), StepCounters())
    return [html for batch in batches for html in batch["html"] if html]


def run_step(step, htmls: list[str]) -> tuple[DocBatch, StepCounters]:
    counters = StepCounters()
    batch = DocBatch({"id": [str(i) for i in range(len(htmls))], "html": htmls, "text": [None] * len(htmls)})
    step.start_input()
    return step.process(batch, StepContext("extract", counters)), counters


def test_trafilatura_step_matches_library_call() -> None:
    htmls = pages("dolma_sample-0001.warc.gz")
    out, counters = run_step(TrafilaturaExtractor(), htmls)
    trafilatura.deduplication.LRU_TEST.clear()
    expected = [trafilatura.extract(h, favor_precision=True, include_comments=False, deduplicate=True) for h in htmls]
    assert out["text"] == [text.strip() for text in expected if text and text.strip()]
    assert len(out) + counters.dropped[Reasons.NO_TEXT] == len(htmls)
    assert counters.child_cpu_seconds > 0  # the child's CPU is the step's cost (its seconds are waiting time)


def test_output_does_not_depend_on_earlier_inputs() -> None:
    """trafilatura's deduplicate cache is per process: each input must start from a clean cache."""
    htmls = pages("dolma_sample-0000.warc.gz")
    step = TrafilaturaExtractor()
    first, _ = run_step(step, htmls)
    second, _ = run_step(step, htmls)
    assert first["text"] == second["text"]


def slow_page() -> str:
    """20,000 distinct paragraphs: trafilatura needs well over a second of CPU on this (measured ~1.8 s)."""
    paragraphs = "".join(f"<p>Sentence number {i} is here with some words, and more words.</p>" for i in range(20000))
    return f"<html><body>{paragraphs}</body></html>"


def test_pathological_page_times_out_and_the_rest_goes_on() -> None:
    monster = slow_page()
    htmls = pages("dolma_sample-0001.warc.gz")[:3]
    step = TrafilaturaExtractor(timeout=0.2)
    started = time.monotonic()
    out, counters = run_step(step, [htmls[0], monster, htmls[1], htmls[2]])
    assert counters.dropped[Reasons.TIMEOUT] == 1
    assert len(out) + counters.dropped[Reasons.NO_TEXT] == 3
    assert counters.child_cpu_seconds >= 0.2  # the killed child's CPU (the limit it used up) is counted too
    assert time.monotonic() - started < 30


def test_crashing_engine_is_contained() -> None:
    sandbox = ExtractionSandbox("os:_exit", {}, timeout=1.0)
    try:
        sandbox.extract("<html></html>")
    except (ExtractorCrashed, RuntimeError):
        pass
    else:
        raise AssertionError("a child that exits must be reported")


def test_factory_that_fails_is_a_clear_error() -> None:
    # time.sleep as a factory: sleep(**{}) fails at start, which must be a clear error, not a hang
    sandbox = ExtractionSandbox("time:sleep", {}, timeout=0.5)
    try:
        sandbox.extract("x")
    except RuntimeError as exc:
        assert "failed to start" in str(exc)
    else:
        raise AssertionError("a factory that fails must be reported")


def test_started_child_gets_ready_in_the_background_and_a_reset_before_ready_keeps_it() -> None:
    """`start()` returns before the child has imported its extractor; the first page waits for it."""
    sandbox = trafilatura_sandbox(1.0)
    began = time.monotonic()
    sandbox.start()
    assert time.monotonic() - began < 0.5 and sandbox._starting  # trafilatura's import takes longer than this
    child = sandbox._process.pid
    sandbox.reset()  # a fresh child has no state: nothing sent, nothing waited for
    sandbox.start()  # already running: the same child
    html = pages("dolma_sample-0001.warc.gz")[0]
    plain = trafilatura_sandbox(1.0)
    text = sandbox.extract(html)
    assert text and text == plain.extract(html)
    assert sandbox._process.pid == child and not sandbox._starting
    sandbox.close()
    plain.close()


def test_factory_that_fails_after_an_early_start_is_a_clear_error() -> None:
    sandbox = ExtractionSandbox("time:sleep", {}, timeout=0.5)
    sandbox.start()
    with pytest.raises(RuntimeError, match="failed to start"):
        sandbox.extract("x")


def test_a_blocked_child_hits_the_wall_clock_ceiling() -> None:
    """A child that blocks uses no CPU; the wall-clock ceiling must still end the wait."""
    sandbox = trafilatura_sandbox(0.05)
    sandbox.wall_factor = 2.0
    sandbox.extract("<html><body><p>ready</p></body></html>")
    import os
    import signal

    os.kill(sandbox._process.pid, signal.SIGSTOP)
    started = time.monotonic()
    try:
        sandbox.extract("<html><body><p>blocked</p></body></html>")
    except ExtractionTimeout:
        pass
    else:
        raise AssertionError("a stopped child must time out")
    assert time.monotonic() - started < 10


def test_resiliparse_extracts_text() -> None:
    htmls = pages("dolma_sample-0001.warc.gz")
    out, counters = run_step(ResiliparseExtractor(), htmls)
    assert len(out) >= len(htmls) - 2
    assert all(text.strip() for text in out["text"])


def _one_by_one(sandbox: ExtractionSandbox, htmls: list[str]) -> list:
    results = []
    for html in htmls:
        try:
            results.append(sandbox.extract(html))
        except (ExtractionTimeout, ExtractorCrashed) as exc:
            results.append(type(exc))
    return results


def test_pages_queued_behind_a_timeout_go_to_the_new_child_and_match_one_by_one() -> None:
    """extract_many writes the next page while the child extracts; after a timeout the page already queued
    is sent again to a fresh child, so every page's result is what `extract` gives one page at a time."""
    monster = slow_page()
    real = pages("dolma_sample-0001.warc.gz")[:8]
    htmls = real[:3] + [monster] + real[3:] + [monster, real[0]]
    many = trafilatura_sandbox(0.2)
    one = trafilatura_sandbox(0.2)
    try:
        got = [r if not isinstance(r, Exception) else type(r) for r in many.extract_many(htmls)]
        expected = _one_by_one(one, htmls)
    finally:
        many.close()
        one.close()
    assert got == expected
    assert got.count(ExtractionTimeout) == 2 and sum(isinstance(r, str) for r in got) >= 5


def test_pages_larger_than_the_pipe_go_through_in_both_directions() -> None:
    """Several-MB pages (far above a pipe's 64 KiB) written while the child replies with large texts."""
    real = pages("dolma_sample-0000.warc.gz")[:4]
    padding = "<!-- " + "x" * (6 * 2**20) + " -->"
    long_text = "".join(f"<p>Paragraph {i} says something different from the others.</p>" for i in range(3000))
    big = [real[0].replace("</body>", padding + "</body>", 1),
           f"<html><body><article>{long_text}</article></body></html>", padding + real[1], real[2], real[3] + padding]
    many = trafilatura_sandbox(30.0)
    one = trafilatura_sandbox(30.0)
    got: list = []
    worker = threading.Thread(target=lambda: got.extend(many.extract_many(big)), daemon=True)
    try:
        worker.start()
        worker.join(timeout=120)  # a deadlock (both sides blocked writing) fails here instead of hanging
        assert not worker.is_alive(), "extract_many deadlocked on pages larger than the pipe"
        expected = _one_by_one(one, big)
    finally:
        many.close()
        one.close()
    assert got == expected
    assert len(got[1]) > 100_000  # a reply far larger than the pipe


def test_the_limit_is_per_page_however_many_pages_a_list_holds() -> None:
    """Each page gets the whole limit: a list's pages together may use many times it (the limit is counted
    from the child's CPU time at the reply before each page, not at the start of the list)."""
    htmls = pages("dolma_sample-0001.warc.gz") * 2  # 30 pages, 4-37 ms of CPU each on the 2-core machine
    many = trafilatura_sandbox(0.1)
    one = trafilatura_sandbox(30.0)
    try:
        many.extract("<html><body><p>ready</p></body></html>")
        cpu_before = many._child_cpu
        got = many.extract_many(htmls)
        list_cpu = many._child_cpu - cpu_before
        expected = _one_by_one(one, htmls)
    finally:
        many.close()
        one.close()
    assert list_cpu > 2 * many.timeout  # the list as a whole is far over the limit, so a per-list count fails
    assert not any(isinstance(r, Exception) for r in got)
    assert got == expected


def test_a_childs_cpu_is_read_on_the_clock_it_reports_with_each_reply(monkeypatch: pytest.MonkeyPatch) -> None:
    """The parent reads a live child's CPU on the child's own process CPU-time clock, the one behind the
    `time.process_time()` it sends back, so a page's count is two readings of one clock; where that clock
    is refused, /proc's ticks give the same within their 10 ms; an exited child reads 0."""
    import subprocess
    import sys

    from tamis.extract import sandbox as sandbox_module

    spin = ("import sys, time\nstart = time.process_time()\nwhile time.process_time() - start < 0.3: pass\n"
            "print(time.process_time(), flush=True)\nsys.stdin.read()\n")
    child = subprocess.Popen([sys.executable, "-c", spin], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        reported = float(child.stdout.readline())
        clock = sandbox_module._process_cpu_seconds(child)
        assert reported <= clock < reported + 0.005  # the child only waits on stdin after it printed
        assert abs(clock * 100 - round(clock * 100)) > 1e-6  # finer than /proc's 10 ms ticks
        def refused(pid: int) -> int:
            raise OSError("no CPU clock for other processes here")

        monkeypatch.setattr(sandbox_module, "_process_cpu_clock", refused)
        ticks = sandbox_module._process_cpu_seconds(child)
        assert ticks != clock and abs(ticks - clock) <= 0.02
    finally:
        child.stdin.close()
        child.wait()
    assert sandbox_module._process_cpu_seconds(child) == 0.0


def test_a_clock_that_is_not_the_childs_is_dropped_for_proc(monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    """If the process CPU clock answered with another process's time (here an idle `sleep`'s), it would read
    less than the CPU the ready child reports having used, and a page would never reach its CPU limit. The
    sandbox notices when the child starts, says so, and reads /proc from then on: a page that needs ~1.8 s
    of CPU still stops at the 0.2 s limit (the wall-clock ceiling is set far away, so only the CPU count
    can stop it)."""
    import subprocess

    from tamis.extract import sandbox as sandbox_module

    real_clock = sandbox_module._process_cpu_clock
    idle = subprocess.Popen(["sleep", "120"])
    monkeypatch.setattr(sandbox_module, "_clock_trusted", True)
    monkeypatch.setattr(sandbox_module, "_process_cpu_clock", lambda pid: real_clock(idle.pid))
    sandbox = trafilatura_sandbox(0.2)
    sandbox.wall_factor = 1000.0
    try:
        with caplog.at_level("WARNING", logger="tamis.extract.sandbox"):
            sandbox.extract(pages("dolma_sample-0001.warc.gz")[0])
        assert sandbox_module._clock_trusted is False
        assert "from /proc instead" in caplog.text
        with pytest.raises(ExtractionTimeout):
            sandbox.extract(slow_page())
    finally:
        sandbox.close()
        idle.kill()
        idle.wait()
