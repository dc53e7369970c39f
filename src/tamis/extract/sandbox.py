"""A child process that runs an HTML extractor with a hard time limit per page.

Extraction libraries parse hostile input in C (lxml): a pathological page can spin for minutes, exhaust
memory or crash the interpreter, and a signal-based timeout cannot interrupt C code. So pages are sent to
a long-lived child process over a pipe; when a page overruns its time, or the child dies, the child is
killed and replaced, the page is counted, and the task goes on. One child per worker process (it is
reused across tasks); the round trip costs tens of microseconds against milliseconds of extraction.
"""

from __future__ import annotations

import importlib
import logging
import os
import pickle
import select
import struct
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

from tamis.extract.page_dependence import SEQUENTIAL, PageDependence

_HEADER = struct.Struct("!Q")


class ExtractionTimeout(Exception):
    """The page took longer than the limit."""


class ExtractorCrashed(Exception):
    """The child died while extracting the page (crash, out of memory)."""


# The pipe protocol between a sandbox and its child: each message is a length-prefixed pickle. Public so that
# tamis.extract.speculative, which drives several children's pipes at once, speaks it without a second copy.


def encode_message(obj: Any) -> bytes:
    """One message as it goes down a pipe: its length, then its pickle."""
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(data)) + data


def write_message(fd: int, obj: Any) -> None:
    """Write one message to a blocking pipe."""
    view = memoryview(encode_message(obj))
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _read_exact(fd: int, size: int, deadline: float | None) -> bytes:
    chunks = []
    remaining = size
    while remaining:
        if deadline is not None:
            wait = deadline - time.monotonic()
            if wait <= 0 or not select.select([fd], [], [], wait)[0]:
                raise ExtractionTimeout()
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            raise ExtractorCrashed("extractor process closed its pipe")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_message(fd: int, deadline: float | None) -> Any:
    """Read one message; ExtractionTimeout if it has not begun by `deadline` (monotonic; None: wait)."""
    (size,) = _HEADER.unpack(_read_exact(fd, _HEADER.size, deadline))
    # once the reply has started, finish reading it regardless of the deadline
    return pickle.loads(_read_exact(fd, size, None))


class ExtractionSandbox:
    """Parent side: `extract(html)` returns the text, or raises ExtractionTimeout / ExtractorCrashed."""

    def __init__(self, factory: str, params: dict[str, Any], timeout: float, startup_timeout: float = 120.0):
        """`factory` is "module:function" returning an `extract(html) -> str | None` callable from params;
        the module may define `reset()`, which clears state kept between pages, and `page_dependence()`
        (tamis.extract.page_dependence), which says whether several children may share a file's pages; an
        engine that answers with a segment rule also defines `traced(extract, html)`, `load_segments(entries)`,
        `add_segments(keys)` and `dump_segments()` (tamis.extract.trafilatura_engine has them)."""
        self.factory = factory
        self.params = params
        self.timeout = timeout
        self.startup_timeout = startup_timeout
        self.wall_factor = 10.0
        self._child_cpu = 0.0
        self._retired_cpu = 0.0  # CPU seconds of the children closed so far
        self._process: subprocess.Popen[bytes] | None = None
        self._starting = False  # started, its "ready" not read yet
        #: what the engine's `page_dependence()` returned in the child, once it is ready
        self.page_dependence: PageDependence = SEQUENTIAL

    def start(self) -> None:
        """Start the child if none is running, without waiting for it: it imports and builds the extractor
        (about 0.6 CPU s with trafilatura) while the caller sets up its other steps; the first page waits."""
        if self._process is not None and self._process.poll() is None:
            return
        self.close()
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tamis.extract.sandbox"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            close_fds=True,
        )
        assert self._process.stdin is not None and self._process.stdout is not None
        write_message(self._process.stdin.fileno(), (self.factory, self.params))
        self._starting = True

    def _await_ready(self) -> None:
        if not self._starting:
            return
        self._starting = False
        assert self._process is not None and self._process.stdout is not None
        try:
            reply = read_message(self._process.stdout.fileno(), time.monotonic() + self.startup_timeout)
        except (ExtractionTimeout, ExtractorCrashed) as exc:
            self.close()
            raise RuntimeError(f"extractor {self.factory} failed to start: {exc!r}") from exc
        if not (isinstance(reply, tuple) and reply[0] == "ready"):
            self.close()
            raise RuntimeError(f"extractor {self.factory} failed to start: {reply}")
        self._child_cpu = reply[1]
        self.page_dependence = reply[2]
        _check_cpu_clock(self._process, reply[1])

    def _ready_process(self) -> subprocess.Popen[bytes]:
        """The running child, ready for a page: started (and waited for) if there is none."""
        self.start()  # a no-op while the child is alive
        self._await_ready()
        assert self._process is not None
        return self._process

    def ready_pipes(self) -> tuple[int, int]:
        """The pipe ends (to the child, from it) of a child ready for a page: started and waited for if there
        is none. For a caller that drives the pipe itself (tamis.extract.speculative), with `note_reply`."""
        process = self._ready_process()
        assert process.stdin is not None and process.stdout is not None
        return process.stdin.fileno(), process.stdout.fileno()

    def pipes(self) -> tuple[int, int] | None:
        """The pipe ends (to the child, from it) of the current child, or None when there is none (never
        started, or closed). A child that died keeps its pipes until `close`: what it wrote can still be
        read, then its end is seen (ExtractorCrashed)."""
        process = self._process
        if process is None or process.stdin is None or process.stdout is None:
            return None
        return process.stdin.fileno(), process.stdout.fileno()

    def note_reply(self, child_cpu: float) -> None:
        """Record the CPU time the child reported with its last reply: where the next page's CPU count (and
        so its limit, `page_cpu_seconds`) starts, for a caller that reads the child's replies itself."""
        self._child_cpu = child_cpu

    def extract(self, html: str) -> str | None:
        """The page's text (None when the extractor fails on it); raises ExtractionTimeout / ExtractorCrashed."""
        (result,) = self.extract_many([html])
        if isinstance(result, Exception):
            raise result
        return result

    def extract_many(self, htmls: Sequence[str]) -> list[str | None | ExtractionTimeout | ExtractorCrashed]:
        """Each page's text (None when the extractor fails on it), or the ExtractionTimeout / ExtractorCrashed
        it ended with; pages go through the child one at a time, in order, exactly as `extract` sends them.

        The next page is written while the child works on the current one, so the child never waits for
        this process between pages, even when this process is busy elsewhere (the task runs the other
        steps while extraction runs in a thread: engine.chain). After a timeout or a crash the child is
        replaced and the pages queued behind the failed one are sent again, to the new child.
        """
        results: list[str | None | ExtractionTimeout | ExtractorCrashed] = []
        while len(results) < len(htmls):
            failure = self._extract_in_order(htmls, results)
            if failure is not None:
                self.close()
                results.append(failure)
        return results

    def _extract_in_order(self, htmls: Sequence[str], results: list) -> ExtractionTimeout | ExtractorCrashed | None:
        """Extract pages from `len(results)` on, appending each reply; stops at the first page that times out
        or crashes the child and returns its error (the caller replaces the child).

        The limit is on the child's CPU time, not the wall clock, so that a busy machine (other tasks on
        the same cores) does not turn slow pages into timeouts: which pages are dropped stays the same
        whatever the number of workers. A wall-clock ceiling still catches a child that blocks.
        """
        process = self._ready_process()
        assert process.stdin is not None and process.stdout is not None
        in_fd, out_fd = process.stdin.fileno(), process.stdout.fileno()
        unwritten = memoryview(b"")  # the rest of the page being written to the child's pipe
        next_page = len(results)
        child_reads = True  # False once a write failed: the child is gone, its last replies may still be read

        def queue_next() -> None:
            nonlocal unwritten, next_page
            # at most two pages in the child's hands: the one it extracts and the next one
            if child_reads and not unwritten and next_page < len(htmls) and next_page - len(results) < 2:
                unwritten = memoryview(encode_message(("extract", htmls[next_page])))
                next_page += 1

        os.set_blocking(in_fd, False)
        try:
            while len(results) < len(htmls):
                queue_next()
                # the child idles between pages, so its CPU time at its last reply is this page's start
                wall_deadline = self.wall_deadline()
                cpu_left = self.timeout
                while True:
                    # CPU time never runs faster than the wall clock, so waiting `cpu_left` cannot overshoot
                    wait = min(max(cpu_left, 0.0), wall_deadline - time.monotonic())
                    if cpu_left <= 0 or wait <= 0:
                        return ExtractionTimeout()
                    readable, writable, _ = select.select([out_fd], [in_fd] if unwritten else [], [], wait)
                    if writable:
                        try:
                            unwritten = unwritten[os.write(in_fd, unwritten):]
                        except BlockingIOError:
                            pass
                        except OSError:  # the child is gone; what it has written can still be read
                            unwritten, child_reads = memoryview(b""), False
                        queue_next()
                    if readable:
                        break
                    cpu_left = self.timeout - self.page_cpu_seconds()
                status, value, self._child_cpu = read_message(out_fd, None)
                results.append(None if status == "error" else value)
        except (ExtractorCrashed, OSError) as exc:
            return ExtractorCrashed(str(exc))
        finally:
            os.set_blocking(in_fd, True)
        return None

    def wall_deadline(self) -> float:
        """When a page handed to the child now must have been answered by the wall clock: the ceiling that
        catches a child which blocks (uses no CPU), well above the CPU limit."""
        return time.monotonic() + max(self.wall_factor * self.timeout, self.timeout + 5.0)

    def page_cpu_seconds(self) -> float:
        """CPU the live child has used since its last reply: the current page's, as the limit counts it."""
        return self.cpu_seconds() - self._child_cpu

    def cpu_seconds(self) -> float:
        """CPU time used so far by the live child (a finished child's time is in RUSAGE_CHILDREN)."""
        return _process_cpu_seconds(self._process)

    def total_cpu_seconds(self) -> float:
        """CPU time of every child this sandbox has run, the closed ones up to their last reading (the
        extraction step's own CPU, which its time counter cannot give once several children share a file)."""
        return self._retired_cpu + self.cpu_seconds()

    def reset(self) -> None:
        """Forget state carried from earlier pages, so a file's output never depends on which worker ran it.

        trafilatura's `deduplicate` keeps a process-wide cache of text segments: without a reset at each
        input file, a page's text would depend on the files the same worker happened to process before.
        """
        process = self._process
        if process is None or process.poll() is not None or self._starting:
            return  # a fresh child has no state
        assert process.stdin is not None and process.stdout is not None
        try:
            write_message(process.stdin.fileno(), ("reset", None))
            self._child_cpu = read_message(process.stdout.fileno(), time.monotonic() + self.startup_timeout)[2]
        except (ExtractionTimeout, ExtractorCrashed, OSError):
            self.close()

    def close(self) -> None:
        process, self._process = self._process, None
        self._starting = False
        if process is None:
            return
        try:
            self._retired_cpu += _process_cpu_seconds(process)
        except Exception:  # noqa: BLE001 - from __del__ at interpreter exit (builtins gone): the kill matters
            pass
        try:
            process.kill()
        except OSError:
            pass
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()
        process.wait()

    def __del__(self) -> None:
        self.close()


def _process_cpu_seconds(process: subprocess.Popen[bytes] | None) -> float:
    """CPU seconds of a live child (0 once it has exited, or where neither clock below can be read).

    The child's process CPU-time clock, read with clock_gettime: the clock its own `time.process_time()`
    reports with each reply, so a page's count (`page_cpu_seconds`) takes two readings of one clock. Why
    not /proc/<pid>/stat: it counts in ticks (10 ms) and costs 20 µs a read against under 1 µs, and the
    multi-child loop reads it several times per page. /proc is the fallback where the clock is refused.
    """
    if process is None or process.poll() is not None:
        return 0.0
    if _clock_trusted and (reading := _cpu_clock_reading(process.pid)) is not None:
        return reading
    try:
        with open(f"/proc/{process.pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


#: False once a child's clock read less than the child itself reported (see _check_cpu_clock)
_clock_trusted = True


def _check_cpu_clock(process: subprocess.Popen[bytes] | None, reported: float) -> None:
    """Stop using the process CPU clock if it reads less than the CPU time a ready child just reported on
    its own clock: that clock cannot run backwards, so such a reading is not the child's, and the page limit
    would never be reached (only the wall-clock ceiling would stop a slow page). /proc is used from then on.
    One comparison per child start; on Linux the two are one clock and it always holds."""
    global _clock_trusted
    if not _clock_trusted or process is None or process.poll() is not None:
        return
    reading = _cpu_clock_reading(process.pid)
    if reading is not None and reading < reported - 0.005:  # None: refused, every read falls back to /proc
        _clock_trusted = False
        logging.getLogger(__name__).warning(
            "the extraction child's CPU clock read %.3f s where the child reported %.3f s; reading its CPU "
            "time from /proc instead", reading, reported)


def _cpu_clock_reading(pid: int) -> float | None:
    """Process `pid`'s CPU seconds on its CPU-time clock, or None where that clock is refused."""
    try:
        return time.clock_gettime(_process_cpu_clock(pid))
    except (OSError, OverflowError, AttributeError):
        return None


def _process_cpu_clock(pid: int) -> int:
    """The clock id of process `pid`'s CPU time (what glibc's clock_getcpuclockid returns on Linux: the
    kernel's encoding of a process clock, ~pid shifted left by 3, with CPUCLOCK_SCHED, 2, in the low bits)."""
    if not sys.platform.startswith("linux"):
        raise OSError("process CPU clocks of other processes are read this way on Linux only")
    return ((~pid) << 3) | 2


def _child_main() -> None:
    """Child side: build the extractor, then answer one page at a time until stdin closes."""
    in_fd, out_fd = sys.stdin.buffer.fileno(), sys.stdout.buffer.fileno()
    # anything the extractor prints must not corrupt the reply stream
    sys.stdout = sys.stderr
    try:
        factory, params = read_message(in_fd, None)
        module_name, function_name = factory.split(":")
        module = importlib.import_module(module_name)
        extract = getattr(module, function_name)(**params)
        reset = getattr(module, "reset", None)
        extract("<html><body><p>warm up</p></body></html>")
        if reset is not None:
            reset()
        declared = getattr(module, "page_dependence", None)
        dependence = declared() if declared is not None else SEQUENTIAL
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which fails the step clearly
        write_message(out_fd, f"{type(exc).__name__}: {exc}")
        return
    write_message(out_fd, ("ready", time.process_time(), dependence))
    while True:
        try:
            command, html = read_message(in_fd, None)
        except ExtractorCrashed:
            return
        if command == "reset":
            if reset is not None:
                reset()
            write_message(out_fd, ("ok", None, time.process_time()))
            continue
        if command in ("load", "add"):  # no reply: they prepare the next page, whose limit they count in
            getattr(module, f"{command}_segments")(html)
            continue
        try:
            if command == "traced":
                reply = module.traced(extract, html)
            elif command == "dump":
                reply = module.dump_segments()
            else:
                reply = extract(html)
            write_message(out_fd, ("ok", reply, time.process_time()))
        except Exception as exc:  # noqa: BLE001 - a page the library cannot parse is a dropped page
            write_message(out_fd, ("error", f"{type(exc).__name__}: {exc}", time.process_time()))


if __name__ == "__main__":
    _child_main()
