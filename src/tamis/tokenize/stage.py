"""`tamis tokenize` on Ray: encode every input shard, then write the output shards in the global order.

    <output>/
      part-00000.ds (.ds.index, .ds.metadata)   datatrove format, or
      part-00000.bin + .idx                     megatron format, or
      part-00000.bin + .json                    numpy format
      manifest.json                             options, fingerprint, tokenizer, totals, status
      _commits/encode/<input-id>.json           encode commit markers (removed when the run completes)
      _commits/write/part-00000.json            output shard commit markers
      _work/encoded/<input-id>.tokens, .npz     each input's tokens (uint32) and per-document lengths
      _work/encoded/<input-id>.keys, .hist      shuffled runs: its documents by bucket (a block file), and
                                                its documents and tokens per bucket (int64)

Three kinds of Ray tasks. An encode task streams one input shard in row batches, tokenizes it, appends
end-of-text after every document and writes the tokens with each document's length (and, shuffled, its
documents sorted by key in buckets); it returns counts only. The global order (tamis.tokenize.shuffle: input
order, or a seeded hash of the id) is a sequence of segments, inputs or buckets, of which the driver knows
only the documents and tokens: locate tasks list the segments where the token budget and the shards' cut
points fall and return those ranks (tamis.tokenize.plan), so the driver's memory does not grow with the
documents. A write task lists the segments of its shard and copies their documents' tokens from the encoded
files into one output shard of the chosen format. Every task commits by a marker written last: a rerun
with the same options redoes only unfinished tasks, and different options into the same output are refused
(`--overwrite` starts over). The output does not depend on the number of workers, nor on the number of
buckets.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import posixpath
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import ray
from rich.console import Console

from tamis.dedup.block_file import locate_blocks, read_located, write_blocks
from tamis.dedup.intermediate import CorruptIntermediateError
from tamis.display import line, stderr_console
from tamis.engine.layout import INPUT_ID_HEX_DIGITS, check_distinct_ids, input_id
from tamis.engine.output_lock import output_lock
from tamis.engine.overlap import OverlapError, check_apart
from tamis.engine.progress import ProgressCounter, ProgressDisplay
from tamis.engine.ray_runtime import cluster_cpus, connect
from tamis.engine.run_output import UnfinishedRunError, check_finished, find_run_root
from tamis.io.errors import full_storage_error
from tamis.io.redact import public_url
from tamis.io.storage import filesystem, read_json, url_of, write_json
from tamis.tokenize.formats import EXTENSIONS, FORMATS, ShardTokenWriter
from tamis.tokenize.plan import Plan, locate, make_plan, prefixes, queries
from tamis.tokenize.shuffle import (
    KEY_COLUMNS,
    Segment,
    bucket_count,
    bucket_segment,
    input_segment,
    key_blocks,
    key_order,
    shuffle_key,
)
from tamis.tokenize.tokenizers import Tokenizer, load_tokenizer

log = logging.getLogger(__name__)
MAX_TASK_RETRIES = 3
BATCH_ROWS = 512
WORK_DIR = "_work"
COMMITS = "_commits"
#: the layout of `_work/` (in the fingerprint: a run left unfinished by another layout is not resumed)
WORK_FORMAT = 2
#: input Parquet bytes per shuffle bucket (a write or locate task holds a bucket: about 32 bytes a document)
SHUFFLE_BUCKET_BYTES = 256 << 20
#: files whose bucket totals the driver reads per request
HIST_READ_BATCH = 64
#: the work files of one input, `_work/encoded/<input-id><suffix>`
ENCODED_SUFFIXES = (".tokens", ".npz", ".keys", ".hist")
#: times an input whose work files were found damaged is encoded again in one run
MAX_RECOMPUTE = 2
#: token bytes a write task requests at once (each input's documents among them in one range)
READ_BATCH_BYTES = 32 << 20
#: tokens, and documents, an encode task copies at once when it puts a shuffled input's tokens in key order
REORDER_TOKENS = 8 << 20
REORDER_DOCUMENTS = 1 << 16


class TokenizeError(ValueError):
    """Bad tokenize options or inputs (nothing was started); the message names the option."""


class TokenizeConflictError(TokenizeError):
    """The output directory holds a tokenize run with other options."""


@dataclass(frozen=True)
class TokenizeOptions:
    output: str
    tokenizer: str = "gpt2"
    format: str = "datatrove"
    shuffle: bool = False
    seed: int = 0
    max_tokens: int | None = None
    eos: str | None = None
    shards: int | None = None  # output shards; default one per input shard
    prefix: str = "part"

    def check(self) -> None:
        if self.format not in FORMATS:
            raise TokenizeError(f"--format {self.format!r}: expected one of {', '.join(FORMATS)}")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise TokenizeError(f"--max-tokens {self.max_tokens}: expected a positive number of tokens")
        if self.shards is not None and self.shards < 1:
            raise TokenizeError(f"--shards {self.shards}: expected at least 1")


@dataclass
class TokenizeResult:
    output: str
    fingerprint: str
    format: str
    files: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: int = 0
    totals: dict[str, Any] = field(default_factory=dict)
    #: a task met a full or read-only output storage: no task started after it, and the run raises this
    storage_error: OSError | None = None

    @property
    def ok(self) -> bool:
        return not self.failed


# -- tasks ---------------------------------------------------------------------------------------------------------


def _encoded_base(root: str, ident: str) -> str:
    """An input's work files are this path plus each of ENCODED_SUFFIXES."""
    return posixpath.join(root, WORK_DIR, "encoded", ident)


def _encoded_paths(root: str, ident: str) -> tuple[str, str]:
    base = _encoded_base(root, ident)
    return base + ".tokens", base + ".npz"


def _bucket_paths(root: str, ident: str) -> tuple[str, str]:
    base = _encoded_base(root, ident)
    return base + ".keys", base + ".hist"


@dataclass(frozen=True)
class Layout:
    """What a locate or write task needs to list a segment: the inputs' ids, and for a shuffled run the number of
    buckets and each input's key file entry (path, size, table digest). O(inputs), put in Ray's store once."""

    idents: list[str]
    buckets: int  # 0: input order, a segment per input
    key_entries: list[dict[str, Any]] | None = None

    @cached_property
    def source_of(self) -> dict[str, int]:
        """Key file path -> input number: built once per task, not once per bucket it lists."""
        return {entry["path"]: i for i, entry in enumerate(self.key_entries or [])}


def load_segment(fs: Any, root: str, layout: Layout, segment: int) -> Segment:
    """The documents of segment `segment` in output order: an input's rows, or a bucket's from every input."""
    if not layout.buckets:
        path = _encoded_paths(root, layout.idents[segment])[1]
        try:
            with fs.open(path, "rb") as handle:
                raw = handle.read()
        except FileNotFoundError:
            raise CorruptIntermediateError(path, "missing") from None
        try:
            lengths = np.load(io.BytesIO(raw))["lengths"]
        except Exception as exc:  # noqa: BLE001 - whatever np.load makes of damaged bytes
            raise CorruptIntermediateError(path, f"unreadable ({type(exc).__name__}: {exc})") from None
        return input_segment(segment, lengths)
    assert layout.key_entries is not None
    locations = locate_blocks(fs, layout.key_entries, segment, KEY_COLUMNS)
    blocks = zip(locations, read_located(fs, locations, KEY_COLUMNS), strict=True)
    return bucket_segment([(layout.source_of[location.path], arrays) for location, arrays in blocks])


def locate_task(segment: int, asked: list[tuple[float, str]], documents_before: int, tokens_before: int,
                layout: Layout, root: str) -> list[tuple[int, int]]:
    """Ranks in the global order that fall in one segment (tamis.tokenize.plan.locate)."""
    fs, root_path = filesystem(root)
    return locate(load_segment(fs, root_path, layout, segment).length, documents_before, tokens_before, asked)


def _write_in_key_order(fs: Any, path: str, local_tokens: str, keys: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Write an input's tokens (in row order in `local_tokens`) to `path` in key order; returns that order.

    Why: the global order is a merge of the inputs' documents by key, so with each input's tokens in key order,
    a stretch of the global order reads one contiguous range from each input (a write task's few large
    requests), where row order would scatter it over one request per document.
    """
    order = key_order(keys)
    starts = prefixes(lengths)[:-1]
    tokens = np.memmap(local_tokens, dtype="<u4", mode="r") if int(lengths.sum()) else np.empty(0, "<u4")
    with fs.open(path, "wb") as out:
        first = 0
        while first < len(order):  # about REORDER_TOKENS tokens per write, whatever the documents' sizes
            last = int(np.searchsorted(np.cumsum(lengths[order[first:first + REORDER_DOCUMENTS]]), REORDER_TOKENS))
            chunk = order[first:first + max(last, 1)]
            sizes = lengths[chunk]
            index = np.repeat(starts[chunk] - (np.cumsum(sizes) - sizes), sizes) + np.arange(int(sizes.sum()))
            out.write(np.asarray(tokens[index]).tobytes())
            first += len(chunk)
    del tokens
    return order


def encode_shard(path: str, ident: str, source_index: int, root: str, tokenizer_spec: str, eos: str | None,
                 seed: int, fingerprint: str, counter: Any = None, buckets: int = 0) -> dict[str, Any]:
    """Tokenize one input shard into `_work/encoded/` and commit it; returns its counts (and, with `buckets`, the
    entry of its key file)."""
    started, cpu_started = time.perf_counter(), time.process_time()
    tokenizer = load_tokenizer(tokenizer_spec, eos)
    fs, root_path = filesystem(root)
    tokens_path, docs_path = _encoded_paths(root_path, ident)
    fs.makedirs(posixpath.dirname(tokens_path), exist_ok=True)
    in_fs, in_path = filesystem(path)
    lengths: list[int] = []
    keys: list[int] = []
    skipped_empty, text_bytes = 0, 0
    # shuffled: tokens go to a local file first, then to the work folder in key order (see _write_in_key_order)
    local = tempfile.TemporaryDirectory(prefix="tamis-encode-") if buckets else None
    with in_fs.open(in_path, "rb") as handle, (open(posixpath.join(local.name, "tokens"), "wb") if local else
                                               fs.open(tokens_path + ".tmp", "wb")) as out:
        parquet = pq.ParquetFile(handle)
        names = parquet.schema_arrow.names
        if "text" not in names:
            raise TokenizeError(f"{path}: no `text` column (columns: {', '.join(names)})")
        columns = ["text"] + (["id"] if "id" in names else [])
        row = 0
        for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=columns):
            texts = batch.column("text").to_pylist()
            ids = batch.column("id").to_pylist() if "id" in columns else [None] * len(texts)
            kept = [(t, i if i is not None else f"{path}#{row + n}") for n, (t, i) in enumerate(zip(texts, ids,
                                                                                                   strict=True)) if t]
            row += len(texts)
            skipped_empty += len(texts) - len(kept)
            if not kept:
                continue
            encoded = tokenizer.encode_batch([t for t, _ in kept])
            for tokens in encoded:
                tokens.append(tokenizer.eos_id)
                lengths.append(len(tokens))
            if buckets:
                keys += [shuffle_key(seed, doc_id) for _, doc_id in kept]
            batch_bytes = sum(len(t.encode("utf-8")) for t, _ in kept)
            text_bytes += batch_bytes
            out.write(np.concatenate([np.asarray(t, dtype="<u4") for t in encoded]).tobytes())
            if counter is not None:
                counter.add.remote(len(kept), batch_bytes)
    length_array = np.asarray(lengths, dtype=np.int64)
    buffer = io.BytesIO()
    np.savez(buffer, lengths=length_array)
    with fs.open(docs_path, "wb") as handle:
        handle.write(buffer.getvalue())
    key_entry = None
    if local is not None:
        key_array = np.asarray(keys, dtype=np.uint64)
        with local:
            order = _write_in_key_order(fs, tokens_path + ".tmp", posixpath.join(local.name, "tokens"), key_array,
                                        length_array)
        blocks = key_blocks(key_array, length_array, buckets, order)
        keys_path, hist_path = _bucket_paths(root_path, ident)
        key_entry = write_blocks(fs, keys_path, blocks, KEY_COLUMNS)
        totals = np.array([[len(b["length"]) for b in blocks], [int(b["length"].sum()) for b in blocks]], "<i8")
        with fs.open(hist_path, "wb") as handle:
            handle.write(totals.tobytes())
    fs.mv(tokens_path + ".tmp", tokens_path)
    summary = {"input": path, "input_id": ident, "source_index": source_index, "fingerprint": fingerprint,
               "documents": len(lengths), "tokens": int(sum(lengths)), "text_bytes": text_bytes,
               "skipped_empty": skipped_empty, "cpu_seconds": round(time.process_time() - cpu_started, 3),
               "wall_seconds": round(time.perf_counter() - started, 3), "keys": key_entry}
    write_json(fs, posixpath.join(root_path, COMMITS, "encode", f"{ident}.json"), summary)
    return summary


def _read_documents(fs: Any, root: str, idents: list[str], sources: np.ndarray, offsets: np.ndarray,
                    takes: np.ndarray, lengths: np.ndarray) -> Iterator[tuple[np.ndarray, int, int]]:
    """Each document's first `take` tokens, in order, as (tokens, take, its length), for a stretch of one segment.

    Why ranges, not a file handle per input: a shuffled shard reads from every input, and an object store's
    file object reads ahead (s3fs: 50 MiB) from each position it is sent to. A stretch of one segment is, in
    each input, one contiguous run of documents (inputs' tokens are in key order when shuffled, in row order
    otherwise), so each batch of at most READ_BATCH_BYTES asks for one range per input it touches, all
    requested together (object stores serve them concurrently).
    """
    sources, offsets, takes, fulls = sources.tolist(), offsets.tolist(), takes.tolist(), lengths.tolist()
    first = 0
    while first < len(sources):
        last, size = first, 0
        while last < len(sources) and (last == first or size + 4 * takes[last] <= READ_BATCH_BYTES):
            size += 4 * takes[last]
            last += 1
        ranges: dict[int, list[int]] = {}  # source -> [first byte, end byte]
        for i in range(first, last):
            begin, stop = 4 * offsets[i], 4 * (offsets[i] + takes[i])
            span = ranges.setdefault(sources[i], [begin, stop])
            span[0], span[1] = min(span[0], begin), max(span[1], stop)
        paths = [_encoded_paths(root, idents[source])[0] for source in ranges]
        blobs = fs.cat_ranges(paths, [b for b, _ in ranges.values()], [e for _, e in ranges.values()],
                              on_error="return")
        held = {}
        for (source, (begin, stop)), path, blob in zip(ranges.items(), paths, blobs, strict=True):
            if isinstance(blob, BaseException):
                raise blob
            if len(blob) != stop - begin:
                raise CorruptIntermediateError(path, f"{len(blob)} bytes at {begin}, {stop - begin} expected")
            held[source] = (begin, blob)
        for i in range(first, last):
            begin, blob = held[sources[i]]
            yield np.frombuffer(blob, dtype="<u4", count=takes[i], offset=4 * offsets[i] - begin), takes[i], fulls[i]
        first = last


def write_shard(name: str, plan_ref: Any, start: int, end: int, layout_ref: Any, root: str,
                options: TokenizeOptions, fingerprint: str) -> dict[str, Any]:
    """Copy documents [start, end) of the global order into output shard `name`, and commit it: the segments
    that hold them are listed one at a time, so the task holds one segment's rows, not the whole order."""
    started, cpu_started = time.perf_counter(), time.process_time()
    plan: Plan = plan_ref
    layout: Layout = layout_ref
    tokenizer = load_tokenizer(options.tokenizer, options.eos)
    fs, root_path = filesystem(root)
    writer = ShardTokenWriter(fs, posixpath.join(root_path, name), options.format, tokenizer)
    try:
        for segment in plan.segments_of(start, end):
            rows = load_segment(fs, root_path, layout, segment)
            first = int(plan.documents_before[segment])
            lo, hi = max(start - first, 0), min(end - first, len(rows))
            takes = plan.take(np.arange(first + lo, first + hi), rows.length[lo:hi])
            for tokens, take, full in _read_documents(fs, root_path, layout.idents, rows.source[lo:hi],
                                                      rows.offset[lo:hi], takes, rows.length[lo:hi]):
                if take < full:  # cut by the budget: its first take - 1 tokens, then end-of-text
                    tokens = np.concatenate([tokens[:-1], np.array([tokenizer.eos_id], dtype="<u4")])
                writer.add(tokens)
        written = writer.commit()
    except BaseException:
        writer.abort()
        raise
    summary = {"shard": name, "fingerprint": fingerprint, **written,
               "files": [url_of(fs, p) for p in written["files"]],
               "cpu_seconds": round(time.process_time() - cpu_started, 3),
               "wall_seconds": round(time.perf_counter() - started, 3)}
    write_json(fs, posixpath.join(root_path, COMMITS, "write", f"{name}.json"), summary)
    return summary


# -- driver --------------------------------------------------------------------------------------------------------


def find_shards(inputs: list[str], allow_incomplete: bool = False, warnings: list[str] | None = None) -> list[str]:
    """Parquet shards of the inputs: a `tamis run` output (its data/ folder), folders, files or globs.

    An input that is, or lies in the data/ folder of, a run that has not finished is refused (or, with
    `allow_incomplete`, read with a line added to `warnings`): see tamis.engine.run_output."""
    found: list[str] = []
    for pattern in inputs:
        fs, path = filesystem(pattern)
        shown = public_url(pattern)  # a signed URL's signature is never printed
        run_root = find_run_root(fs, path)
        if run_root is not None:
            try:
                warning = check_finished(fs, run_root, shown, allow_incomplete)
            except UnfinishedRunError as exc:
                raise TokenizeError(str(exc)) from None
            if warning is not None and warnings is not None:
                warnings.append(warning)
        if any(c in path for c in "*?["):
            matches = fs.glob(path)
        elif fs.isdir(path):
            data = posixpath.join(path, "data")
            matches = fs.glob(posixpath.join(data if fs.isdir(data) else path, "**", "*.parquet"))
        elif fs.exists(path):
            matches = [path]
        else:
            raise TokenizeError(f"input {shown!r}: no such file or folder")
        matches = [m for m in matches if m.endswith(".parquet") and not posixpath.basename(m).startswith(".")]
        if not matches:
            raise TokenizeError(f"input {shown!r}: no Parquet shards found")
        found += [url_of(fs, m) for m in matches]
    return sorted(dict.fromkeys(found))


def fingerprint_of(options: TokenizeOptions, tokenizer: Tokenizer, shards: list[str], sizes: list[int],
                   buckets: int = 0) -> str:
    identity = {"tokenizer": tokenizer.describe(), "format": options.format, "shuffle": options.shuffle,
                "seed": options.seed if options.shuffle else None, "max_tokens": options.max_tokens,
                "shards": options.shards, "prefix": options.prefix, "inputs": list(zip(shards, sizes, strict=True)),
                "input_id_hex_digits": INPUT_ID_HEX_DIGITS, "work_format": WORK_FORMAT, "buckets": buckets}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def _committed(fs: Any, directory: str, fingerprint: str) -> dict[str, dict[str, Any]]:
    done = {}
    for path in fs.glob(posixpath.join(directory, "*.json")) if fs.exists(directory) else []:
        try:
            marker = read_json(fs, path)
        except Exception:  # noqa: BLE001 - an unreadable marker means not committed
            continue
        if marker.get("fingerprint") == fingerprint:
            done[posixpath.basename(path)[: -len(".json")]] = marker
    return done


def _remove(fs: Any, root: str, prefix: str) -> None:
    """Delete a previous tokenize output: its token files, work folder, markers and manifest (nothing else)."""
    for name in fs.ls(root, detail=False) if fs.exists(root) else []:
        base = posixpath.basename(name)
        if base in (WORK_DIR, COMMITS, "manifest.json") or (base.startswith(f"{prefix}-") and base.endswith(
                tuple(ext for exts in EXTENSIONS.values() for ext in exts))):
            fs.rm(name, recursive=True)


def damaged_input(exc: BaseException) -> str | None:
    """The input id whose encoded work file a task found damaged (a CorruptIntermediateError on a file of
    `_work/encoded/`), or None for any other error."""
    cause = exc.as_instanceof_cause() if isinstance(exc, ray.exceptions.RayTaskError) else exc
    if not isinstance(cause, CorruptIntermediateError):
        return None
    name = posixpath.basename(cause.path)
    return next((name[: -len(suffix)] for suffix in ENCODED_SUFFIXES if name.endswith(suffix)), None)


def _run_bounded(calls: list[tuple[str, Callable[[], ray.ObjectRef]]], limit: int, display: ProgressDisplay,
                 counter: Any, result: TokenizeResult, console: Console,
                 damaged: set[str] | None = None) -> list[dict[str, Any]]:
    """Submit `calls` (label, submit) with at most `limit` in flight; collect summaries and failures (with
    `damaged`, the inputs whose work files a task found damaged are added there instead)."""
    queue = list(reversed(calls))
    pending: dict[ray.ObjectRef, str] = {}
    done: list[dict[str, Any]] = []
    while queue or pending:
        if result.storage_error is not None:
            queue.clear()  # every later task would fail at its first write
        while queue and len(pending) < limit:
            label, submit = queue.pop()
            pending[submit()] = label
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
        for ref in ready:
            label = pending.pop(ref)
            try:
                summary = ray.get(ref)
            except Exception as exc:  # noqa: BLE001 - one shard's failure must not stop the others
                if damaged is not None and (ident := damaged_input(exc)) is not None:
                    damaged.add(ident)
                    display.update(len(done) + len(result.failed), display.docs, display.bytes, {})
                    continue
                lines = [text for text in str(exc).strip().splitlines() if text.strip()]
                result.failed[label] = lines[-1] if lines else repr(exc)
                console.print(line(("failed", "red"), f" {label}: {result.failed[label]}"))
                if result.storage_error is None and (full := full_storage_error(exc)) is not None:
                    result.storage_error = full
                    left = f". No more tasks start ({len(queue)} left)" if queue else ""
                    console.print(line(("stopping", "red"), f": {full.strerror}{left}"))
                continue
            done.append(summary)
            display.durations.append(summary.get("wall_seconds", 0.0))
        docs, nbytes = display.docs, display.bytes
        if counter is not None:
            try:
                docs, nbytes, _ = ray.get(counter.totals.remote(), timeout=10)
            except Exception:  # noqa: BLE001 - progress is display only
                pass
        display.update(len(done) + len(result.failed), docs, nbytes, {})
    return done


def run_tokenize(inputs: list[str], options: TokenizeOptions, *, address: str | None = None,
                 workers: int | None = None, overwrite: bool = False, console: Console | None = None,
                 show_progress: bool = True, allow_incomplete: bool = False) -> TokenizeResult:
    """Tokenize the Parquet shards of `inputs` into `options.output` (layout in the module docstring).
    `allow_incomplete`: read the output of a run that has not finished (tamis.engine.run_output)."""
    console = console or stderr_console()
    started = time.perf_counter()
    options.check()
    output = options.output if "://" in options.output else os.path.abspath(options.output)
    tokenizer = load_tokenizer(options.tokenizer, options.eos)
    warnings: list[str] = []
    shards = find_shards(inputs, allow_incomplete, warnings)
    try:
        check_apart(output, inputs)
    except OverlapError as exc:
        raise TokenizeError(str(exc)) from None
    for warning in warnings:
        console.print(line(("warning", "yellow"), f": {warning}"))
    check_distinct_ids(shards)
    sizes = []
    for shard in shards:
        fs_in, path_in = filesystem(shard)
        sizes.append(int(fs_in.size(path_in) or 0))
    buckets = bucket_count(sum(sizes), SHUFFLE_BUCKET_BYTES) if options.shuffle else 0
    fingerprint = fingerprint_of(options, tokenizer, shards, sizes, buckets)
    fs, root = filesystem(output)
    with output_lock(fs, root):  # one writer per output (tamis.engine.output_lock)
        return _tokenize_holding_output(shards, sizes, options, tokenizer, fingerprint, buckets, output, fs, root,
                                        address=address, workers=workers, overwrite=overwrite, console=console,
                                        show_progress=show_progress, started=started)


def _tokenize_holding_output(shards: list[str], sizes: list[int], options: TokenizeOptions, tokenizer: Tokenizer,
                             fingerprint: str, buckets: int, output: str, fs: Any, root: str, *, address: str | None,
                             workers: int | None, overwrite: bool, console: Console, show_progress: bool,
                             started: float) -> TokenizeResult:
    """`run_tokenize` once the output is this run's alone: resume check, encode, plan, write, manifest."""
    manifest_path = posixpath.join(root, "manifest.json")
    if fs.exists(manifest_path):
        previous = read_json(fs, manifest_path)
        if previous.get("fingerprint") != fingerprint:
            if not overwrite:
                raise TokenizeConflictError(
                    f"{public_url(output)} holds tokens made with other options or inputs (fingerprint "
                    f"{previous.get('fingerprint')}, this run is {fingerprint}); use another --output, or "
                    "--overwrite to delete it and start over")
            _remove(fs, root, options.prefix)
        elif previous.get("status") == "complete":
            result = TokenizeResult(output, fingerprint, options.format, previous.get("files", []),
                                    skipped=len(previous.get("shards", [])), totals=previous["totals"])
            console.print(line(f"tokenize: {public_url(output)} is complete with these options; nothing to do"))
            return result
    elif overwrite:
        _remove(fs, root, options.prefix)
    idents = [input_id(s) for s in shards]
    manifest = {"fingerprint": fingerprint, "options": {k: v for k, v in options.__dict__.items() if k != "output"},
                "tokenizer": tokenizer.describe(), "buckets": buckets, "inputs": dict(zip(shards, sizes, strict=True))}
    write_json(fs, manifest_path, {**manifest, "status": "running"})
    result = TokenizeResult(output, fingerprint, options.format)
    started_ray = connect(address, num_cpus=workers)
    try:
        limit = workers or 2 * cluster_cpus()
        encoded = _committed(fs, posixpath.join(root, COMMITS, "encode"), fingerprint)
        todo = [(i, s) for i, s in enumerate(shards) if idents[i] not in encoded]
        result.skipped = len(shards) - len(todo)
        encode = ray.remote(encode_shard).options(num_cpus=1, max_retries=MAX_TASK_RETRIES, retry_exceptions=False)

        def encode_inputs(todo: list[tuple[int, str]]) -> None:
            counter = ProgressCounter.remote()
            calls = [(s, (lambda i=i, s=s: encode.remote(s, idents[i], i, output, options.tokenizer, options.eos,
                                                           options.seed, fingerprint, counter, buckets)))
                     for i, s in todo]
            with ProgressDisplay(console, len(todo), enabled=show_progress, label="encode") as display:
                for summary in _run_bounded(calls, limit, display, counter, result, console):
                    encoded[summary["input_id"]] = summary
            ray.kill(counter)

        console.print(line(f"tokenize: {len(shards)} input shard(s), {len(todo)} to encode, {options.format} "
                           f"format, tokenizer {tokenizer.name} (vocabulary {tokenizer.vocab_size:,}, eos "
                           f"{tokenizer.eos_id})"))
        encode_inputs(todo)
        plan, written, names = None, {}, []
        for attempt in range(MAX_RECOMPUTE + 1):
            if result.failed:
                break
            damaged: set[str] = set()
            layout = Layout(idents, buckets, [encoded[i]["keys"] for i in idents] if buckets else None)
            layout_ref = ray.put(layout)
            plan = _plan(fs, root, layout, layout_ref, encoded, options, limit, output, damaged)
            if plan is not None:
                names = [f"{options.prefix}-{j:05d}" for j in range(len(plan.bounds))]
                written = _committed(fs, posixpath.join(root, COMMITS, "write"), fingerprint)
                plan_ref = ray.put(plan)
                write = ray.remote(write_shard).options(num_cpus=1, max_retries=MAX_TASK_RETRIES,
                                                        retry_exceptions=False)
                calls = [(name, (lambda name=name, b=b, write=write, plan_ref=plan_ref, layout_ref=layout_ref:
                                 write.remote(name, plan_ref, b[0], b[1], layout_ref, output, options, fingerprint)))
                         for name, b in zip(names, plan.bounds, strict=True) if name not in written]
                with ProgressDisplay(console, len(calls), enabled=show_progress, label="write") as display:
                    for summary in _run_bounded(calls, limit, display, None, result, console, damaged):
                        written[summary["shard"]] = summary
            if not damaged:
                break
            again = [(i, s) for i, s in enumerate(shards) if idents[i] in damaged]
            if attempt == MAX_RECOMPUTE:
                for _, shard in again:
                    result.failed[shard] = f"its encoded work files were still damaged after {MAX_RECOMPUTE} " \
                                           "encodings"
                break
            console.print(line(("tokenize:", "yellow"), f" damaged work files of {len(again)} input(s) "
                               f"({', '.join(s for _, s in again)[:300]}): encoding them again"))
            for i, _ in again:
                _forget_encoded(fs, root, idents[i])
                encoded.pop(idents[i], None)
            encode_inputs(again)
        if result.failed or plan is None:
            write_json(fs, manifest_path, {**manifest, "status": "incomplete", "failed": result.failed})
            result.totals = {"seconds": round(time.perf_counter() - started, 3), "input_shards": len(shards),
                             "encoded_shards": len(encoded)}
            if result.storage_error is not None:
                raise result.storage_error  # committed work is kept; the rerun does the rest
            return result
    finally:
        if started_ray:
            ray.shutdown()
    shards_out = [written[n] for n in names if n in written]
    result.files = [f for s in shards_out for f in s["files"]]
    seconds = time.perf_counter() - started
    cpu = sum(s["cpu_seconds"] for s in encoded.values())
    result.totals = {
        "input_shards": len(shards), "output_shards": len(shards_out),
        "input_documents": sum(s["documents"] for s in encoded.values()),
        "skipped_empty": sum(s["skipped_empty"] for s in encoded.values()),
        "text_bytes": sum(s["text_bytes"] for s in encoded.values()),
        "available_tokens": plan.available, "documents": sum(s["documents"] for s in shards_out),
        "tokens": sum(s["tokens"] for s in shards_out), "bytes": sum(s["bytes"] for s in shards_out),
        "truncated_documents": plan.truncated, "budget_reached": options.max_tokens is None or
        plan.available >= options.max_tokens, "dtype": shards_out[0]["dtype"] if shards_out else None,
        "encode_cpu_seconds": round(cpu, 3),
        "write_cpu_seconds": round(sum(s.get("cpu_seconds", 0.0) for s in shards_out), 3),
        "seconds": round(seconds, 3),
    }
    status = "complete" if not result.failed else "incomplete"
    write_json(fs, manifest_path, {**manifest, "status": status, "failed": result.failed, "files": result.files,
                                   "shards": [s["shard"] for s in shards_out], "totals": result.totals})
    if status == "complete":
        for directory in (posixpath.join(root, WORK_DIR), posixpath.join(root, COMMITS, "encode")):
            if fs.exists(directory):
                fs.rm(directory, recursive=True)
    return result


def _forget_encoded(fs: Any, root: str, ident: str) -> None:
    """Delete an input's encode marker, then its work files: it is encoded again."""
    base = _encoded_base(root, ident)
    for path in [posixpath.join(root, COMMITS, "encode", f"{ident}.json"), *(base + s for s in ENCODED_SUFFIXES)]:
        if fs.exists(path):
            fs.rm(path)


def _plan(fs: Any, root: str, layout: Layout, layout_ref: Any, encoded: dict[str, dict[str, Any]],
          options: TokenizeOptions, limit: int, output: str, damaged: set[str]) -> Plan | None:
    """The run's plan from each segment's documents and tokens, and the ranks that locate tasks find; None,
    with the inputs added to `damaged`, if some of their work files are damaged."""
    if layout.buckets:
        try:
            documents, tokens = _bucket_totals(fs, root, layout)
        except CorruptIntermediateError as exc:
            damaged.add(damaged_input(exc) or "")
            return None
    else:
        documents = [encoded[ident]["documents"] for ident in layout.idents]
        tokens = [encoded[ident]["tokens"] for ident in layout.idents]
    documents_before, tokens_before = prefixes(documents), prefixes(tokens)
    shards = options.shards or len(layout.idents)
    asked = queries(tokens_before, options.max_tokens, shards)
    by_segment: dict[int, list[int]] = {}
    for i, query in enumerate(asked):
        by_segment.setdefault(query.segment, []).append(i)
    task = ray.remote(locate_task).options(num_cpus=1, max_retries=MAX_TASK_RETRIES, retry_exceptions=False)
    answers: list[tuple[int, int]] = [(0, 0)] * len(asked)
    pending: dict[Any, list[int]] = {}
    segments = list(by_segment.items())
    while segments or pending:
        while segments and len(pending) < limit:
            segment, indices = segments.pop()
            ref = task.remote(segment, [(asked[i].threshold, asked[i].side) for i in indices],
                              int(documents_before[segment]), int(tokens_before[segment]), layout_ref, output)
            pending[ref] = indices
        ready, _ = ray.wait(list(pending), num_returns=1)
        for ref in ready:
            indices = pending.pop(ref)
            try:
                found = ray.get(ref)
            except Exception as exc:
                ident = damaged_input(exc)
                if ident is None:
                    raise
                damaged.add(ident)
                continue
            for i, answer in zip(indices, found, strict=True):
                answers[i] = answer
    if damaged:
        return None
    return make_plan(documents_before, tokens_before, options.max_tokens, shards, answers)


def _bucket_totals(fs: Any, root: str, layout: Layout) -> tuple[np.ndarray, np.ndarray]:
    """Documents and tokens per bucket over all inputs, summed as the inputs' totals are read (O(buckets))."""
    documents = np.zeros(layout.buckets, dtype=np.int64)
    tokens = np.zeros(layout.buckets, dtype=np.int64)
    size = 16 * layout.buckets
    paths = [_bucket_paths(root, ident)[1] for ident in layout.idents]
    for first in range(0, len(paths), HIST_READ_BATCH):
        batch = paths[first:first + HIST_READ_BATCH]
        for path, blob in zip(batch, fs.cat_ranges(batch, [0] * len(batch), [size] * len(batch), on_error="return"),
                              strict=True):
            if isinstance(blob, FileNotFoundError):
                raise CorruptIntermediateError(path, "missing")
            if isinstance(blob, BaseException):
                raise blob  # a storage error, not damage
            if len(blob) != size:
                raise CorruptIntermediateError(path, f"{len(blob)} bytes, {size} expected")
            totals = np.frombuffer(blob, dtype="<i8").reshape(2, layout.buckets)
            documents += totals[0]
            tokens += totals[1]
    return documents, tokens


def tokenize_files(paths: list[str], base: str, format_name: str, tokenizer_spec: str = "gpt2",
                   eos: str | None = None) -> dict[str, Any]:
    """Every document of `paths` (Parquet, in file and row order) into one output shard `base.*`.

    For small inputs that are already in the order wanted (an ablation's sample); `run_tokenize` is the
    parallel, resumable, shuffling version.
    """
    tokenizer = load_tokenizer(tokenizer_spec, eos)
    fs, base_path = filesystem(base)
    writer = ShardTokenWriter(fs, base_path, format_name, tokenizer)
    try:
        for path in paths:
            in_fs, in_path = filesystem(path)
            with in_fs.open(in_path, "rb") as handle:
                for batch in pq.ParquetFile(handle).iter_batches(batch_size=BATCH_ROWS, columns=["text"]):
                    texts = [t for t in batch.column("text").to_pylist() if t]
                    for tokens in tokenizer.encode_batch(texts):
                        writer.add(np.asarray(tokens + [tokenizer.eos_id], dtype="<u4"))
        written = writer.commit()
    except BaseException:
        writer.abort()
        raise
    return {**written, "files": [url_of(fs, written["files"][0])], "all_files": [url_of(fs, p) for p in
                                                                                   written["files"]],
            "format": format_name, "tokenizer": tokenizer.describe()}
