"""Which work units are committed, found with two listings rather than one read per unit.

The per-unit marker `_commits/process/<unit>.json` stays the source of truth: a unit is committed when its marker
exists, is a JSON object, and carries the run's fingerprint. Reading 90,000 markers one by one takes an hour on an
object store, so the driver also keeps a commit index. As tasks commit, it adds their compact records (counters,
shard, drops; no histograms) to an open index segment and merges their histograms into the segment's; every
`FLUSH_UNITS` commits or `FLUSH_SECONDS` it writes the segment as one immutable file
`_index/process/<segment>.json` and opens the next.

A segment keeps per unit only what cannot be summed (its input, shard and removed-document files: an index
entry); everything summable (counters, languages, the per-language funnel, sums, histograms) is merged once per
segment. The per-unit counters of a real pipeline are kilobytes, so keeping them per unit made a segment of
1,000 units tens of MB of JSON, parsed by every resume and every `tamis stats`.

Resume and `tamis stats` list the markers once (names only, no reads), list and read the segments, and read only
the markers (and stats files, for histograms) of units committed but not yet in a segment: at most the last
unflushed segment of each interrupted driver.

Crash consistency: a segment is written atomically (a rename on disk, one PUT on an object store) after the markers
of all its units, so what it lists was committed. A unit whose marker has gone since (deleted to redo it) is not
committed: the marker wins; that segment's merged counters and histograms are then rebuilt from the markers and
stats files of its units that remain, and the driver writes a repaired segment that `replaces` it. A crash
between the repaired segment and the removal of the old one leaves both; the replaced one is ignored (segments
are read newest first, so the replacing one is met before the one it replaces).
"""

from __future__ import annotations

import json
import logging
import posixpath
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from fsspec import AbstractFileSystem

from tamis.engine import layout
from tamis.io.storage import write_json
from tamis.stats.counters import TaskCounters
from tamis.stats.histograms import HistogramSet
from tamis.stats.languages import LanguageBreakdown
from tamis.stats.merge import RunStats

log = logging.getLogger(__name__)
#: an open segment is written after this many commits, or this many seconds after its first commit
FLUSH_UNITS = 1000
FLUSH_SECONDS = 60.0
#: index segments read and folded at a time by load_commits
SEGMENTS_AT_ONCE = 8
#: markers or stats files read and parsed at a time (concurrently on an object store)
READS_AT_ONCE = 100
#: run-wide sums of the fields every record carries
SUMMED = ("docs_read", "docs_kept", "tokens", "bytes_read", "cpu_seconds", "wall_seconds")


#: what an index segment keeps of each unit: what its merged aggregates cannot hold (RunStats.add_outputs)
INDEX_ENTRY = ("input", "input_id", "byte_range", "shard", "shards", "removed")


def compact_record(summary: dict[str, Any]) -> dict[str, Any]:
    """What a marker holds: the summary without its histograms (29 of its 55 KB)."""
    return {key: value for key, value in summary.items() if key != "histograms"}


def index_entry(record: dict[str, Any]) -> dict[str, Any]:
    """What a segment keeps of a unit's record (segments written before kept the whole record: both read)."""
    return {key: record[key] for key in INDEX_ENTRY if key in record}


@dataclass
class CommitState:
    """Merged stats of the committed units, and their ids: all the driver keeps per unit is its id and shard."""

    fingerprint: str | None
    stats: RunStats = field(default_factory=RunStats)
    units: set[str] = field(default_factory=set)
    sums: Counter[str] = field(default_factory=Counter)
    #: markers that exist but do not commit a unit of this run (unreadable, not an object, other fingerprint)
    ignored: int = 0
    #: files read to build this state (segments, markers, stats files), for benchmarks and tests
    reads: int = 0
    segments: list[str] = field(default_factory=list)
    #: segments to rewrite (see the module docstring): (old name, what its valid units make)
    repairs: list[tuple[str, SegmentDraft]] = field(default_factory=list)
    #: committed units found by their marker only, merged: the driver indexes them again
    unindexed: SegmentDraft = field(default_factory=lambda: SegmentDraft())

    def add(self, record: dict[str, Any]) -> None:
        """Fold one unit's record in (its histograms are merged separately, by segment)."""
        self.units.add(record["input_id"])
        self.stats.add(record)
        self.sums.update(_sums(record))

    def add_segment(self, records: dict[str, dict[str, Any]], segment: dict[str, Any]) -> None:
        """Fold in a whole segment whose units all count: its merged counters once, then ids and shards."""
        stats = self.stats
        stats.counters.merge(TaskCounters.from_dict(segment["counters"]))
        stats.languages.update(segment.get("languages", {}))
        stats.by_language.merge(LanguageBreakdown.from_dict(segment.get("by_language")))
        self.sums.update(segment.get("sums", {}))
        for unit, record in records.items():
            self.units.add(unit)
            stats.tasks += 1
            stats.add_outputs(record)


def _sums(record: dict[str, Any]) -> Counter[str]:
    sums: Counter[str] = Counter({key: record.get(key, 0) or 0 for key in SUMMED})
    retries = record.get("io_retries", 0)
    sums["io_retries"] = len(retries) if isinstance(retries, list) else int(retries or 0)
    return sums


@dataclass
class SegmentDraft:
    """Units on their way into one index segment: their index entries, and everything summable about them
    merged as they come (so the driver holds a few hundred bytes per pending unit, not its whole record)."""

    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    counters: TaskCounters = field(default_factory=TaskCounters)
    languages: Counter[str] = field(default_factory=Counter)
    by_language: LanguageBreakdown = field(default_factory=LanguageBreakdown)
    sums: Counter[str] = field(default_factory=Counter)
    histograms: HistogramSet = field(default_factory=HistogramSet)

    def __len__(self) -> int:
        return len(self.entries)

    def add(self, record: dict[str, Any], histograms: HistogramSet | None = None) -> None:
        self.entries[record["input_id"]] = index_entry(record)
        self.counters.merge(TaskCounters.from_dict(record["counters"]))
        self.languages.update(record.get("languages", {}))
        self.by_language.merge(LanguageBreakdown.from_dict(record.get("by_language")))
        self.sums.update(_sums(record))
        if histograms is not None:
            self.histograms.merge(histograms)

    def to_dict(self, fingerprint: str | None, replaces: list[str] | None = None) -> dict[str, Any]:
        """The segment file: merged counters, languages, per-language funnel, sums and histograms, which resume
        folds in once for the whole segment, and the units' index entries."""
        return {"fingerprint": fingerprint, "units": self.entries, "counters": self.counters.to_dict(),
                "languages": dict(self.languages), "by_language": self.by_language.to_dict(), "sums": dict(self.sums),
                "histograms": self.histograms.to_dict(exact=True), "replaces": replaces or []}


def _names(fs: AbstractFileSystem, directory: str) -> dict[str, str]:
    """stem -> path of the *.json files in a directory: one listing (pages of 1,000 on S3), no reads."""
    fs.invalidate_cache(directory)  # fsspec instances are shared: a run in progress must be listed afresh
    try:
        listed = fs.ls(directory, detail=False)
    except FileNotFoundError:
        return {}
    return {posixpath.basename(p)[:-5]: p for p in listed if p.endswith(".json")}


def _read_chunks(fs: AbstractFileSystem, paths: list[str]) -> Iterator[dict[str, Any]]:
    """_read_many over `READS_AT_ONCE` paths at a time: the parsed files of a long tail are never all in memory
    (a unit's stats file is tens of KB of JSON and several times that as Python objects)."""
    for start in range(0, len(paths), READS_AT_ONCE):
        yield _read_many(fs, paths[start:start + READS_AT_ONCE])


def _read_many(fs: AbstractFileSystem, paths: list[str]) -> dict[str, Any]:
    """path -> parsed JSON (or the exception) for many small files: concurrent on object stores (fsspec's cat)."""
    if not paths:
        return {}
    found = fs.cat(paths, on_error="return")
    if not isinstance(found, dict):  # a single path comes back as its bytes
        found = {paths[0]: found}
    parsed: dict[str, Any] = {}
    for path in paths:
        raw = found.get(path, FileNotFoundError(path))
        try:
            if isinstance(raw, BaseException):
                raise raw
            parsed[path] = json.loads(raw)
        except Exception as exc:  # noqa: BLE001 - the caller decides what an unreadable file means
            parsed[path] = exc
    return parsed


def _histograms_of(fs: AbstractFileSystem, root: str, units: list[str], state: CommitState) -> HistogramSet:
    """The merged histograms of units, from their stats files (the task writes them before its marker)."""
    paths = [layout.task_stats_path(root, unit) for unit in units]
    merged = HistogramSet()
    for found in _read_chunks(fs, paths):
        state.reads += len(found)
        for path, data in found.items():
            if isinstance(data, dict):
                merged.merge(HistogramSet.from_dict(data.get("histograms", {})))
            else:
                log.warning("stats file %s of a committed unit unreadable: its histograms are missing", path)
    return merged


def _full_records(fs: AbstractFileSystem, root: str, entries: dict[str, dict[str, Any]], state: CommitState,
                  fingerprint: str | None) -> dict[str, dict[str, Any]]:
    """The whole records (counters included) of a segment's units, from their markers where the segment has
    index entries only; a unit whose marker is no longer a record of this run is left out (not committed)."""
    full = {unit: entry for unit, entry in entries.items() if "counters" in entry}
    wanted = sorted(set(entries) - set(full))
    paths = {unit: layout.commit_path(root, unit) for unit in wanted}
    found: dict[str, Any] = {}
    for chunk in _read_chunks(fs, list(paths.values())):
        state.reads += len(chunk)
        found.update({path: compact_record(r) if isinstance(r, dict) else r for path, r in chunk.items()})
    for unit in wanted:
        record = found[paths[unit]]
        if (isinstance(record, dict) and record.get("input_id") == unit and "counters" in record
                and (fingerprint is None or record.get("fingerprint") == fingerprint)):
            full[unit] = record
        # else: left for load_commits' pass over the markers not in a segment, which reports and counts it
    return full


def _fold_segment(fs: AbstractFileSystem, root: str, state: CommitState, name: str, segment: dict[str, Any],
                  wanted: Any) -> None:
    records = segment["units"]
    valid = {unit: record for unit, record in records.items() if wanted(unit, record)}
    state.segments.append(name)
    if len(valid) == len(records):
        if "counters" in segment:
            state.add_segment(valid, segment)
        else:  # written before segments carried merged counters: its records are whole
            for record in valid.values():
                state.add(record)
        state.stats.histograms.merge(HistogramSet.from_dict(segment.get("histograms", {})))
        return
    # a marker went (or a unit appears twice): rebuild this segment's counters and histograms from its remaining
    # units' markers and stats files
    draft = SegmentDraft()
    for record in _full_records(fs, root, valid, state, segment.get("fingerprint")).values():
        state.add(record)
        draft.add(record)
    draft.histograms = _histograms_of(fs, root, sorted(draft.entries), state)
    state.stats.histograms.merge(draft.histograms)
    state.repairs.append((name, draft))


def load_commits(fs: AbstractFileSystem, root: str, fingerprint: str | None,
                 inputs: set[str] | None = None) -> CommitState:
    """The committed units of the run under `root` with `fingerprint` (None: any), among `inputs` (None: any)."""
    state = CommitState(fingerprint)
    markers = _names(fs, layout.commits_dir(root))
    segment_paths = _names(fs, layout.index_dir(root))
    replaced: set[str] = set()

    def wanted(unit: str, record: Any) -> bool:
        return (unit in markers and unit not in state.units and isinstance(record, dict)
                and (inputs is None or record.get("input") in inputs))

    # Newest first, a few at a time (memory stays that of a few segments): a repaired segment is newer than the
    # one it replaces, so it is met first; a unit listed twice counts in the newest segment that lists it.
    names = sorted(segment_paths, reverse=True)
    for batch in range(0, len(names), SEGMENTS_AT_ONCE):
        chunk = names[batch:batch + SEGMENTS_AT_ONCE]
        segments = _read_many(fs, [segment_paths[name] for name in chunk])
        state.reads += len(segments)
        for name in chunk:
            segment = segments[segment_paths[name]]
            if not isinstance(segment, dict) or not isinstance(segment.get("units"), dict):
                log.warning("ignoring unreadable commit index segment %s", segment_paths[name])
                continue
            if name in replaced or (fingerprint is not None and segment.get("fingerprint") != fingerprint):
                continue
            replaced.update(segment.get("replaces", []))
            _fold_segment(fs, root, state, name, segment, wanted)

    missing = sorted(set(markers) - state.units)
    for found in _read_chunks(fs, [markers[unit] for unit in missing]):
        state.reads += len(found)
        committed = []
        for path, record in found.items():
            unit = posixpath.basename(path)[:-5]
            if not isinstance(record, dict):
                kind = type(record).__name__
                why = "unreadable" if isinstance(record, Exception) else f"a JSON {kind}, not an object"
                log.warning("ignoring commit marker %s: %s (its unit is not committed)", path, why)
                state.ignored += 1
            elif (record.get("input_id") != unit
                  or (fingerprint is not None and record.get("fingerprint") != fingerprint)
                  or (inputs is not None and record.get("input") not in inputs)):
                state.ignored += 1  # left by another pipeline, or for an input this run does not list
            else:
                committed.append(compact_record(record))
        for record in committed:
            state.add(record)
            state.unindexed.add(record)
        histograms = _histograms_of(fs, root, [record["input_id"] for record in committed], state)
        state.stats.histograms.merge(histograms)
        state.unindexed.histograms.merge(histograms)
    return state


class CommitIndex:
    """The driver's side: folds each committed unit into the run's state and writes index segments."""

    def __init__(self, fs: AbstractFileSystem, root: str, state: CommitState, *, flush_units: int | None = None,
                 flush_seconds: float | None = None) -> None:
        self.fs, self.root, self.state = fs, root, state
        self.flush_units = flush_units or FLUSH_UNITS
        self.flush_seconds = flush_seconds if flush_seconds is not None else FLUSH_SECONDS
        self.token = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
        self.written = 0
        self._open = SegmentDraft()
        self._opened = 0.0

    def repair(self) -> None:
        """Rewrite the segments load_commits found stale, and index the units found by their marker only."""
        for old, draft in self.state.repairs:
            self._write(draft, replaces=[old])
            self.fs.rm(posixpath.join(layout.index_dir(self.root), f"{old}.json"))
        self.state.repairs = []
        if self.state.unindexed:
            # already counted in the state by load_commits: written as a segment of their own, not merged again
            self._write(self.state.unindexed)
            self.state.unindexed = SegmentDraft()

    def add(self, record: dict[str, Any], histograms: HistogramSet) -> None:
        """A unit just committed (its marker is written): count it now, index it at the next flush."""
        self.state.add(record)
        self._pend(record, histograms)
        if len(self._open) >= self.flush_units:
            self.flush()

    def tick(self) -> None:
        """Called by the driver's loop: writes the open segment once it is old enough."""
        if self._open and time.monotonic() - self._opened >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        if not self._open:
            return
        self._write(self._open)
        # the run's merged histograms take a segment's at once: one merge per segment, not per unit
        self.state.stats.histograms.merge(self._open.histograms)
        self._open = SegmentDraft()

    def _pend(self, record: dict[str, Any], histograms: HistogramSet) -> None:
        if not self._open:
            self._opened = time.monotonic()
        self._open.add(record, histograms)

    def _write(self, draft: SegmentDraft, replaces: list[str] | None = None) -> None:
        self.written += 1
        name = f"{self.token}-{self.written:06d}"
        write_json(self.fs, posixpath.join(layout.index_dir(self.root), f"{name}.json"),
                   draft.to_dict(self.state.fingerprint, replaces), indent=None)
        self.state.segments.append(name)
