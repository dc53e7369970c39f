"""`tamis tokenize` on Ray: encode every input shard, then write the output shards in the global order.

    <output>/
      part-00000.ds (.ds.index, .ds.metadata)   datatrove format, or
      part-00000.bin + .idx                     megatron format, or
      part-00000.bin + .json                    numpy format
      manifest.json                             options, fingerprint, tokenizer, totals, status
      _commits/encode/<input-id>.json           encode commit markers (removed when the run completes)
      _commits/write/part-00000.json            output shard commit markers
      _work/encoded/<input-id>.tokens, .npz     each input's tokens (uint32) and per-document lengths and keys

Two kinds of Ray tasks. An encode task streams one input shard in row batches, tokenizes it, appends
end-of-text after every document and writes the tokens with each document's length and shuffle key; it
returns counts only. The driver then orders all documents (see tamis.tokenize.shuffle: input order, or a
seeded hash of the id), applies the token budget and cuts the order into output shards; a write task
copies its documents' tokens from the encoded files into one output shard of the chosen format. Every task
commits by a marker written last: a rerun with the same options redoes only unfinished tasks, and
different options into the same output are refused (`--overwrite` starts over). The output does not depend
on the number of workers.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import posixpath
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import ray
from rich.console import Console

from tamis.engine.layout import INPUT_ID_HEX_DIGITS, check_distinct_ids, input_id
from tamis.engine.progress import ProgressCounter, ProgressDisplay
from tamis.engine.ray_runtime import cluster_cpus, connect
from tamis.io.storage import filesystem, read_json, url_of, write_json
from tamis.tokenize.formats import EXTENSIONS, FORMATS, ShardTokenWriter
from tamis.tokenize.shuffle import Plan, make_plan, shuffle_key
from tamis.tokenize.tokenizers import Tokenizer, load_tokenizer

log = logging.getLogger(__name__)
MAX_TASK_RETRIES = 3
BATCH_ROWS = 512
WORK_DIR = "_work"
COMMITS = "_commits"


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

    @property
    def ok(self) -> bool:
        return not self.failed


# -- tasks ---------------------------------------------------------------------------------------------------------


def _encoded_paths(root: str, ident: str) -> tuple[str, str]:
    base = posixpath.join(root, WORK_DIR, "encoded", ident)
    return base + ".tokens", base + ".npz"


def encode_shard(path: str, ident: str, source_index: int, root: str, tokenizer_spec: str, eos: str | None,
                 seed: int, fingerprint: str, counter: Any = None) -> dict[str, Any]:
    """Tokenize one input shard into `_work/encoded/` and commit it; returns its counts."""
    started, cpu_started = time.perf_counter(), time.process_time()
    tokenizer = load_tokenizer(tokenizer_spec, eos)
    fs, root_path = filesystem(root)
    tokens_path, docs_path = _encoded_paths(root_path, ident)
    fs.makedirs(posixpath.dirname(tokens_path), exist_ok=True)
    in_fs, in_path = filesystem(path)
    lengths: list[int] = []
    keys: list[int] = []
    skipped_empty, text_bytes = 0, 0
    with in_fs.open(in_path, "rb") as handle, fs.open(tokens_path + ".tmp", "wb") as out:
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
            keys += [shuffle_key(seed, doc_id) for _, doc_id in kept]
            batch_bytes = sum(len(t.encode("utf-8")) for t, _ in kept)
            text_bytes += batch_bytes
            out.write(np.concatenate([np.asarray(t, dtype="<u4") for t in encoded]).tobytes())
            if counter is not None:
                counter.add.remote(len(kept), batch_bytes)
    buffer = io.BytesIO()
    np.savez(buffer, lengths=np.asarray(lengths, dtype=np.int64), keys=np.asarray(keys, dtype=np.uint64))
    with fs.open(docs_path, "wb") as handle:
        handle.write(buffer.getvalue())
    fs.mv(tokens_path + ".tmp", tokens_path)
    summary = {"input": path, "input_id": ident, "source_index": source_index, "fingerprint": fingerprint,
               "documents": len(lengths), "tokens": int(sum(lengths)), "text_bytes": text_bytes,
               "skipped_empty": skipped_empty, "cpu_seconds": round(time.process_time() - cpu_started, 3),
               "wall_seconds": round(time.perf_counter() - started, 3)}
    write_json(fs, posixpath.join(root_path, COMMITS, "encode", f"{ident}.json"), summary)
    return summary


def write_shard(name: str, plan_ref: Any, start: int, end: int, idents: list[str], root: str,
                options: TokenizeOptions, fingerprint: str) -> dict[str, Any]:
    """Copy documents [start, end) of the plan, in order, into output shard `name`, and commit it."""
    started, cpu_started = time.perf_counter(), time.process_time()
    plan: Plan = plan_ref
    tokenizer = load_tokenizer(options.tokenizer, options.eos)
    fs, root_path = filesystem(root)
    offsets: dict[int, np.ndarray] = {}
    handles: dict[int, Any] = {}
    writer = ShardTokenWriter(fs, posixpath.join(root_path, name), options.format, tokenizer)
    try:
        for source, document, take in zip(plan.source[start:end], plan.document[start:end], plan.take[start:end],
                                          strict=True):
            source = int(source)
            if source not in offsets:
                tokens_path, docs_path = _encoded_paths(root_path, idents[source])
                with fs.open(docs_path, "rb") as handle:
                    lengths = np.load(io.BytesIO(handle.read()))["lengths"]
                offsets[source] = np.concatenate([[0], np.cumsum(lengths)])
                handles[source] = fs.open(tokens_path, "rb")
            handle = handles[source]
            begin, full = int(offsets[source][document]), int(offsets[source][document + 1] - offsets[source][document])
            handle.seek(4 * begin)
            tokens = np.frombuffer(handle.read(4 * int(take)), dtype="<u4")
            if take < full:  # cut by the budget: its first take - 1 tokens, then end-of-text
                tokens = np.concatenate([tokens[:-1], np.array([tokenizer.eos_id], dtype="<u4")])
            writer.add(tokens)
        written = writer.commit()
    except BaseException:
        writer.abort()
        raise
    finally:
        for handle in handles.values():
            handle.close()
    summary = {"shard": name, "fingerprint": fingerprint, **written,
               "files": [url_of(fs, p) for p in written["files"]],
               "cpu_seconds": round(time.process_time() - cpu_started, 3),
               "wall_seconds": round(time.perf_counter() - started, 3)}
    write_json(fs, posixpath.join(root_path, COMMITS, "write", f"{name}.json"), summary)
    return summary


# -- driver --------------------------------------------------------------------------------------------------------


def find_shards(inputs: list[str]) -> list[str]:
    """Parquet shards of the inputs: a `tamis run` output (its data/ folder), folders, files or globs."""
    found: list[str] = []
    for pattern in inputs:
        fs, path = filesystem(pattern)
        if any(c in path for c in "*?["):
            matches = fs.glob(path)
        elif fs.isdir(path):
            data = posixpath.join(path, "data")
            matches = fs.glob(posixpath.join(data if fs.isdir(data) else path, "**", "*.parquet"))
        elif fs.exists(path):
            matches = [path]
        else:
            raise TokenizeError(f"input {pattern!r}: no such file or folder")
        matches = [m for m in matches if m.endswith(".parquet") and not posixpath.basename(m).startswith(".")]
        if not matches:
            raise TokenizeError(f"input {pattern!r}: no Parquet shards found")
        found += [url_of(fs, m) for m in matches]
    return sorted(dict.fromkeys(found))


def fingerprint_of(options: TokenizeOptions, tokenizer: Tokenizer, shards: list[str], sizes: list[int]) -> str:
    identity = {"tokenizer": tokenizer.describe(), "format": options.format, "shuffle": options.shuffle,
                "seed": options.seed if options.shuffle else None, "max_tokens": options.max_tokens,
                "shards": options.shards, "prefix": options.prefix, "inputs": list(zip(shards, sizes, strict=True)),
                "input_id_hex_digits": INPUT_ID_HEX_DIGITS}
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


def _run_bounded(calls: list[tuple[str, Callable[[], ray.ObjectRef]]], limit: int, display: ProgressDisplay,
                 counter: Any, result: TokenizeResult, console: Console) -> list[dict[str, Any]]:
    """Submit `calls` (label, submit) with at most `limit` in flight; collect summaries and failures."""
    queue = list(reversed(calls))
    pending: dict[ray.ObjectRef, str] = {}
    done: list[dict[str, Any]] = []
    while queue or pending:
        while queue and len(pending) < limit:
            label, submit = queue.pop()
            pending[submit()] = label
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
        for ref in ready:
            label = pending.pop(ref)
            try:
                summary = ray.get(ref)
            except Exception as exc:  # noqa: BLE001 - one shard's failure must not stop the others
                lines = [line for line in str(exc).strip().splitlines() if line.strip()]
                result.failed[label] = lines[-1] if lines else repr(exc)
                console.print(f"[red]failed[/red] {label}: {result.failed[label]}")
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
                 show_progress: bool = True) -> TokenizeResult:
    """Tokenize the Parquet shards of `inputs` into `options.output` (layout in the module docstring)."""
    console = console or Console(stderr=True)
    started = time.perf_counter()
    options.check()
    output = options.output if "://" in options.output else os.path.abspath(options.output)
    tokenizer = load_tokenizer(options.tokenizer, options.eos)
    shards = find_shards(inputs)
    check_distinct_ids(shards)
    sizes = []
    for shard in shards:
        fs_in, path_in = filesystem(shard)
        sizes.append(int(fs_in.size(path_in) or 0))
    fingerprint = fingerprint_of(options, tokenizer, shards, sizes)
    fs, root = filesystem(output)
    manifest_path = posixpath.join(root, "manifest.json")
    if fs.exists(manifest_path):
        previous = read_json(fs, manifest_path)
        if previous.get("fingerprint") != fingerprint:
            if not overwrite:
                raise TokenizeConflictError(
                    f"{output} holds tokens made with other options or inputs (fingerprint "
                    f"{previous.get('fingerprint')}, this run is {fingerprint}); use another --output, or "
                    "--overwrite to delete it and start over")
            _remove(fs, root, options.prefix)
        elif previous.get("status") == "complete":
            result = TokenizeResult(output, fingerprint, options.format, previous.get("files", []),
                                    skipped=len(previous.get("shards", [])), totals=previous["totals"])
            console.print(f"tokenize: {output} is complete with these options; nothing to do")
            return result
    elif overwrite:
        _remove(fs, root, options.prefix)
    idents = [input_id(s) for s in shards]
    manifest = {"fingerprint": fingerprint, "options": {k: v for k, v in options.__dict__.items() if k != "output"},
                "tokenizer": tokenizer.describe(), "inputs": dict(zip(shards, sizes, strict=True))}
    write_json(fs, manifest_path, {**manifest, "status": "running"})
    result = TokenizeResult(output, fingerprint, options.format)
    started_ray = connect(address, num_cpus=workers)
    try:
        limit = workers or 2 * cluster_cpus()
        encoded = _committed(fs, posixpath.join(root, COMMITS, "encode"), fingerprint)
        todo = [(i, s) for i, s in enumerate(shards) if idents[i] not in encoded]
        result.skipped = len(shards) - len(todo)
        counter = ProgressCounter.remote()
        encode = ray.remote(encode_shard).options(num_cpus=1, max_retries=MAX_TASK_RETRIES, retry_exceptions=False)
        calls = [(s, (lambda i=i, s=s: encode.remote(s, idents[i], i, output, options.tokenizer, options.eos,
                                                       options.seed, fingerprint, counter))) for i, s in todo]
        console.print(f"tokenize: {len(shards)} input shard(s), {len(todo)} to encode, {options.format} format, "
                      f"tokenizer {tokenizer.name} (vocabulary {tokenizer.vocab_size:,}, eos {tokenizer.eos_id})")
        with ProgressDisplay(console, len(todo), enabled=show_progress, label="encode") as display:
            for summary in _run_bounded(calls, limit, display, counter, result, console):
                encoded[summary["input_id"]] = summary
        ray.kill(counter)
        if result.failed:
            write_json(fs, manifest_path, {**manifest, "status": "incomplete", "failed": result.failed})
            result.totals = {"seconds": round(time.perf_counter() - started, 3), "input_shards": len(shards),
                             "encoded_shards": len(encoded)}
            return result
        plan = _plan(fs, root, idents, options)
        names = [f"{options.prefix}-{j:05d}" for j in range(len(plan.bounds))]
        written = _committed(fs, posixpath.join(root, COMMITS, "write"), fingerprint)
        plan_ref = ray.put(plan)
        write = ray.remote(write_shard).options(num_cpus=1, max_retries=MAX_TASK_RETRIES, retry_exceptions=False)
        calls = [(name, (lambda name=name, b=b: write.remote(name, plan_ref, b[0], b[1], idents, output, options,
                                                              fingerprint)))
                 for name, b in zip(names, plan.bounds, strict=True) if name not in written]
        with ProgressDisplay(console, len(calls), enabled=show_progress, label="write") as display:
            for summary in _run_bounded(calls, limit, display, None, result, console):
                written[summary["shard"]] = summary
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


def _plan(fs: Any, root: str, idents: list[str], options: TokenizeOptions) -> Plan:
    lengths, keys = [], []
    for ident in idents:
        with fs.open(_encoded_paths(root, ident)[1], "rb") as handle:
            arrays = np.load(io.BytesIO(handle.read()))
            lengths.append(arrays["lengths"])
            keys.append(arrays["keys"])
    return make_plan(lengths, keys if options.shuffle else None, options.max_tokens,
                     options.shards or len(idents))


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
