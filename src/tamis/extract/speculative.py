"""One input's pages extracted by several sandbox children at once, with the text that one child gives.

Why: a task goes through its input's pages in order, in one extraction child, because trafilatura's
`deduplicate` carries a cache of text segments from page to page. On a machine with more cores than input
files (a laptop with a few files, the last files of a job, the benchmark's single file) the other cores
would sit idle, and extraction is most of a job's work.

Why the text stays the same: a page's text depends on the pages before it only through the answers the
segment cache gives to the page's queries ("was this segment, if longer than `min_duplcheck_size`, seen more
than `max_repetitions` times?"), and which queries a page makes depends only on its HTML and on those
answers. So children extract pages ahead, each with its own cache (a guess at the real one), and log every
query with the count their cache gave. The pages are then accepted in order against `SegmentModel`, an
exact model of the cache one child would have had: it replays a page's queries, and when every answer that
matters comes out the same, the page's text is the one child's text and the model holds what that child's
cache would hold after it. When an answer differs, the page is extracted again by a child whose cache is
first loaded from the model (an exact run), which is the one-child run itself. A guessed run that times out
or crashes is also run again exactly (whether a page overruns can depend on its answers); a failure in an
exact run is the one child's failure, and the model then starts empty, as the one child's replacement does.

Children are kept close to the model between pages (the segments of pages accepted from the others are
added to their caches, a replaced child is loaded from the model), which is what keeps guesses right; how
often they are wrong moves the cost, never the text.
"""

from __future__ import annotations

import heapq
import os
import select
import time
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tamis.extract.page_dependence import INDEPENDENT, SEQUENTIAL, PageDependence, is_segment_rule
from tamis.extract.sandbox import (
    ExtractionSandbox,
    ExtractionTimeout,
    ExtractorCrashed,
    encode_message,
    read_message,
)

Outcome = str | None | ExtractionTimeout | ExtractorCrashed


class SegmentModel:
    """The segment cache of one child that extracted every accepted page in order: least recently used
    first, evicted past `maxsize`, each query counting the segment once (trafilatura's LRU rules, with the
    size and thresholds the child reports from the installed trafilatura).

    A page whose answers do not match is rolled back (`accept`). Why not a copy before each page: a copy of
    a full cache (4,096 segments) cost more than the replay itself, at every page, for the few pages a file
    rolls back. So the model keeps a copy every `checkpoint_every` accepted pages and the queries of the pages
    since; a rollback goes back to the copy and replays those pages, which gives the same content, in the
    same order, as the state before the page.
    """

    def __init__(self, maxsize: int, min_length: int, max_repetitions: int, checkpoint_every: int = 64):
        self.maxsize = maxsize
        self.min_length = min_length
        self.max_repetitions = max_repetitions
        self.checkpoint_every = max(1, checkpoint_every)
        self.counts: OrderedDict[str, int] = OrderedDict()
        self._checkpoint: OrderedDict[str, int] = OrderedDict()
        self._since: list[Sequence[tuple[str, int]]] = []  # the queries of pages accepted after the copy

    def clear(self) -> None:
        self.counts.clear()
        self._checkpoint.clear()
        self._since.clear()

    def entries(self) -> list[tuple[str, int]]:
        """The content, oldest first: what a child's `load_segments` takes."""
        return list(self.counts.items())

    def accept(self, queries: Sequence[tuple[str, int]]) -> bool:
        """Count a page's queries if each one's answer matches the one its child got (True); otherwise leave
        the model as it was before the page (False)."""
        if len(self._since) >= self.checkpoint_every:
            self._checkpoint = self.counts.copy()
            self._since.clear()
        if self.replay(queries):
            self._since.append(queries)
            return True
        self.counts = self._checkpoint.copy()
        for accepted in self._since:
            if not self.replay(accepted):  # the same queries on the same state: cannot differ
                raise RuntimeError("segment model: an accepted page did not replay on its checkpoint")
        return False

    def replay(self, queries: Sequence[tuple[str, int]]) -> bool:
        """Count the page's queries; whether each one's answer matches the one its child got. On False the
        model is left part-way: `accept` is the call that rolls back."""
        counts, maxsize = self.counts, self.maxsize
        for key, seen in queries:
            previous = counts.pop(key, -1)
            counts[key] = max(previous, 0) + 1
            if len(counts) > maxsize:
                counts.popitem(last=False)
            if len(key) > self.min_length and (previous > self.max_repetitions) != (seen > self.max_repetitions):
                return False
        return True


@dataclass
class _Job:
    page: int
    exact: bool  # the child's cache was loaded from the model just before it


@dataclass
class _Child:
    sandbox: ExtractionSandbox
    jobs: deque[_Job] = field(default_factory=deque)  # written to the child, oldest first: replies come so
    outbox: deque[bytes] = field(default_factory=deque)
    unwritten: memoryview = field(default_factory=lambda: memoryview(b""))
    pending_keys: list[str] = field(default_factory=list)  # accepted pages' segments its cache lacks
    stale: bool = False  # its cache is not worth keeping in step (a new child): load the model first
    broken: bool = False  # a write failed: the child is gone, its replies may still be read
    wall_deadline: float = 0.0
    generation: int = 0  # bumped when the child is replaced


@dataclass
class _Run:
    htmls: Sequence[str]
    results: list[Outcome] = field(default_factory=list)
    outcomes: dict[int, tuple[str, Any, _Job, _Child, int]] = field(default_factory=dict)
    next_new: int = 0
    redo: list[int] = field(default_factory=list)  # a heap: pages whose guessed run was lost with a child
    exact_wanted: bool = False  # the page `len(results)` must be extracted exactly
    exact_sent: bool = False

    @property
    def done(self) -> int:
        return len(self.results)


class SpeculativeExtraction:
    """`extract_many` of ExtractionSandbox over `processes` children, same results, same per-page limit.

    With one process it is the sandbox itself. What the engine's children report as their page dependence
    (tamis.extract.page_dependence) decides the rest: independent pages (resiliparse, trafilatura without
    `deduplicate`) are simply shared out; a segment rule gets the speculation above; an engine that says
    nothing, or says its pages are sequential, is run by the first child alone, the others closed.
    """

    def __init__(self, factory: str, params: dict[str, Any], timeout: float, processes: int = 1):
        self.factory, self.params, self.timeout = factory, params, timeout
        self.children: list[_Child] = []
        self.model: SegmentModel | None = None
        #: what the first child that became ready reported (None until then)
        self.dependence: PageDependence | None = None
        #: guessed runs found wrong and extracted again (cost, not output)
        self.rerun_pages = 0
        #: how many pages past the first one not accepted yet may be handed out: room for the other
        #: children to go on while one works on a slow page (pages take 4 ms to a second)
        self.window = 32
        self._retired_cpu = 0.0  # CPU seconds of children dropped by `resize`
        self.resize(processes)

    @property
    def processes(self) -> int:
        return len(self.children)

    def resize(self, processes: int) -> None:
        """Use `processes` children from now on (extra ones are closed, new ones start empty)."""
        processes = max(1, int(processes))
        while len(self.children) > processes:
            removed = self.children.pop().sandbox
            removed.close()
            self._retired_cpu += removed.total_cpu_seconds()
        while len(self.children) < processes:
            self.children.append(_Child(ExtractionSandbox(self.factory, self.params, self.timeout)))
        self.reset()

    def start(self) -> None:
        """Start the children without waiting for them (see ExtractionSandbox.start): all of them, unless
        the engine is known to need its pages in one child."""
        for child in self.children[:1] if self.dependence == SEQUENTIAL else self.children:
            child.sandbox.start()

    def cpu_seconds(self) -> float:
        """CPU seconds of the live children (per-task accounting, as ExtractionSandbox.cpu_seconds)."""
        return sum(child.sandbox.cpu_seconds() for child in self.children)

    def total_cpu_seconds(self) -> float:
        """CPU seconds of every child run so far, closed ones included."""
        return self._retired_cpu + sum(child.sandbox.total_cpu_seconds() for child in self.children)

    def reset(self) -> None:
        """Forget every page seen (a new input or state block), in the model and in every child."""
        if self.model is not None:
            self.model.clear()
        for child in self.children:
            child.sandbox.reset()
            child.pending_keys.clear()
            child.stale = False

    def close(self) -> None:
        for child in self.children:
            child.sandbox.close()

    def extract(self, html: str) -> str | None:
        (result,) = self.extract_many([html])
        if isinstance(result, Exception):
            raise result
        return result

    def extract_many(self, htmls: Sequence[str]) -> list[Outcome]:
        """Each page's result, as ExtractionSandbox.extract_many with one child gives it."""
        first = self.children[0]
        try:
            if len(self.children) > 1 and self.dependence is None:
                self._ready(first)  # learn what the engine allows
            if len(self.children) == 1 or self.dependence == SEQUENTIAL:
                for child in self.children[1:]:
                    child.sandbox.close()
                return first.sandbox.extract_many(htmls)
            self.start()
            for child in self.children:
                self._ready(child)
            run = _Run(htmls)
            while run.done < len(htmls):
                self._dispatch(run)
                self._wait(run)
                self._accept(run)
            return run.results
        finally:  # the sandboxes' own calls (reset) write blocking
            for child in self.children:
                pipes = child.sandbox.pipes()
                if pipes is not None:
                    os.set_blocking(pipes[0], True)

    # -- the children ---------------------------------------------------------------------------------

    def _ready(self, child: _Child) -> None:
        to_child, _ = child.sandbox.ready_pipes()
        os.set_blocking(to_child, False)
        dependence = child.sandbox.page_dependence
        if is_segment_rule(dependence):
            if self.model is None:
                self.model = SegmentModel(*dependence)
        elif dependence != INDEPENDENT:
            dependence = SEQUENTIAL
        self.dependence = dependence

    def _replace(self, child: _Child, run: _Run) -> None:
        """Kill the child and start another; its pages not answered go back to be extracted."""
        for job in child.jobs:
            if job.exact:
                run.exact_sent = False
            else:
                heapq.heappush(run.redo, job.page)
        child.jobs.clear()
        child.outbox.clear()
        child.unwritten = memoryview(b"")
        child.pending_keys.clear()
        child.broken = False
        child.stale = True
        child.generation += 1
        child.sandbox.close()
        self._ready(child)

    def _send(self, child: _Child, message: Any) -> None:
        child.outbox.append(encode_message(message))

    def _dispatch(self, run: _Run) -> None:
        """Give children pages until each holds two (the one it extracts and the next)."""
        stateful = self.model is not None
        while True:
            free = [c for c in self.children if len(c.jobs) < 2 and not c.broken]
            if not free:
                return
            child = min(free, key=lambda c: len(c.jobs))
            if run.exact_wanted and not run.exact_sent:
                job = _Job(run.done, exact=True)
                self._load_model(child)
                run.exact_sent = True
            elif run.redo:
                job = _Job(heapq.heappop(run.redo), exact=False)
            elif run.next_new < len(run.htmls) and run.next_new - run.done < self.window:
                job = _Job(run.next_new, exact=False)
                run.next_new += 1
            else:
                return
            if stateful and not job.exact:
                if child.stale:
                    self._load_model(child)
                elif child.pending_keys:
                    self._send(child, ("add", child.pending_keys))
                    child.pending_keys = []
            self._send(child, ("traced" if stateful else "extract", run.htmls[job.page]))
            if not child.jobs:
                child.wall_deadline = child.sandbox.wall_deadline()
            child.jobs.append(job)

    def _load_model(self, child: _Child) -> None:
        """Queue the model's content for the child's cache: its next page runs as one child would run it."""
        assert self.model is not None
        self._send(child, ("load", self.model.entries()))
        child.pending_keys.clear()
        child.stale = False

    def _wait(self, run: _Run) -> None:
        """One round of the children's pipes: write what is queued, read the replies that came, and
        replace a child whose page is past the limit (the page's CPU time, as ExtractionSandbox counts it)."""
        busy = [c for c in self.children if c.jobs]
        wait = 1.0
        for child in busy:
            wait = min(wait, self.timeout - child.sandbox.page_cpu_seconds(), child.wall_deadline - time.monotonic())
        readers = {self._fd(c, "out"): c for c in busy}
        writers = {self._fd(c, "in"): c for c in self.children if (c.unwritten or c.outbox) and not c.broken}
        generations = {id(c): c.generation for c in busy}
        readable, writable, _ = select.select(list(readers), list(writers), [], max(wait, 0.0))
        for fd in writable:
            self._write(writers[fd])
        for fd in readable:
            self._read(readers[fd], run)
        for child in busy:
            if not child.jobs or child.generation != generations[id(child)]:
                continue  # answered, or replaced this round
            if child.sandbox.page_cpu_seconds() >= self.timeout or time.monotonic() >= child.wall_deadline:
                self._fail(child, run, ExtractionTimeout())

    @staticmethod
    def _fd(child: _Child, side: str) -> int:
        pipes = child.sandbox.pipes()
        assert pipes is not None  # a child is closed only by _replace, which starts the next one
        return pipes[1] if side == "out" else pipes[0]

    def _write(self, child: _Child) -> None:
        try:
            while True:
                if not child.unwritten:
                    if not child.outbox:
                        return
                    child.unwritten = memoryview(child.outbox.popleft())
                child.unwritten = child.unwritten[os.write(self._fd(child, "in"), child.unwritten):]
        except BlockingIOError:
            return
        except OSError:  # the child is gone; its replies can still be read, then its end is seen
            child.unwritten, child.broken = memoryview(b""), True
            child.outbox.clear()

    def _read(self, child: _Child, run: _Run) -> None:
        try:
            status, value, cpu = read_message(self._fd(child, "out"), None)
        except (ExtractorCrashed, OSError) as exc:
            self._fail(child, run, ExtractorCrashed(str(exc)))
            return
        child.sandbox.note_reply(cpu)
        job = child.jobs.popleft()
        run.outcomes[job.page] = (status, value, job, child, child.generation)
        if child.jobs:
            child.wall_deadline = child.sandbox.wall_deadline()

    def _fail(self, child: _Child, run: _Run, error: ExtractionTimeout | ExtractorCrashed) -> None:
        job = child.jobs.popleft()
        run.outcomes[job.page] = ("failed", error, job, child, child.generation)
        self._replace(child, run)

    # -- accepting pages in order ---------------------------------------------------------------------

    def _accept(self, run: _Run) -> None:
        model = self.model
        while run.done in run.outcomes:
            status, value, job, child, generation = run.outcomes.pop(run.done)
            if model is None:  # independent pages: every outcome is final
                run.results.append(value if status in ("ok", "failed") else None)
                continue
            if status == "error":  # traced() returns failures as pages without text: a lost reply
                status, value = "failed", ExtractorCrashed(str(value))
            if status == "failed":
                if not job.exact:
                    self._want_exact(run)
                    return
                run.results.append(value)
                model.clear()  # the one child's replacement starts empty
                for other in self.children:
                    other.stale = True
                self._exact_done(run)
                continue
            text, queries = value
            if not model.accept(queries):
                if job.exact:
                    raise RuntimeError("extraction with a loaded segment cache did not replay on its model")
                self.rerun_pages += 1
                self._want_exact(run)
                return
            keys = [key for key, _ in queries]
            for other in self.children:
                if other is not child or other.generation != generation:
                    other.pending_keys.extend(keys)
            run.results.append(text)
            self._exact_done(run)

    @staticmethod
    def _want_exact(run: _Run) -> None:
        run.exact_wanted, run.exact_sent = True, False

    @staticmethod
    def _exact_done(run: _Run) -> None:
        run.exact_wanted = run.exact_sent = False
