"""Block files: the dedup stage's intermediates, numbered blocks of uint64 columns, each found with two small reads.

Each dedup task reads one block from each of many files: a bucket task reads its (band, range) from every
shard's signature file (for a dump, about 2,000 tasks × 8,000 files), and a component task reads its
partition from each of the previous round's P files (P × P per round). As Parquet with a row group per
block, each of those reads parsed the file's whole footer (the metadata of all its row groups), and the
driver kept every row group's digest to check it: memory that grew with shards × bands × ranges and with
P² (about 1 KB per row group measured, 17 GB for a dump's signatures; benchmarks/bench_dedup_driver.py).
This format needs neither:

    header  32 bytes   MAGIC (8), blocks G (uint32), columns C (uint32), BLAKE2b-128 of the table (16)
    table   G × 32     per block, in order: byte offset, rows (uint64 each), BLAKE2b-128 of the block (16)
    data               per block: its C columns, `rows` uint64 each, in the order the writer named them

All integers are little-endian. A block's digest covers its number and row count as well as its columns, so
a table entry copied or moved onto another's place does not match. The driver records a file's size and
table digest only. A reader checks the header against that record (a stale or swapped file differs there),
reads its block's table entry, then the block's columns, and checks them against the entry's digest: damage
to the entry or to the columns is a mismatch, a truncated file a short read or a size that is not the one
recorded; each raises CorruptIntermediateError naming the file, and the driver recomputes it. A read that
fails while the file still has its recorded size (a network error, throttling, a permission) is raised as it
is: the file is not condemned for it. Columns are stored raw: they are hashes and node ids, which zstd
hardly shrinks.
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from fsspec import AbstractFileSystem

from tamis.dedup.intermediate import CorruptIntermediateError
from tamis.io.storage import temporary_name

MAGIC = b"TAMISBK1"
HEADER_BYTES = 32
ENTRY_BYTES = 32
#: files whose block reads are requested at once (bounded: a batch of blobs is held until it is decoded)
READ_BATCH = 64
#: a table entry (the digest as 16 raw bytes: a bytes field "S16" would drop a digest's trailing zero bytes)
_ENTRY = np.dtype([("offset", "<u8"), ("rows", "<u8"), ("digest", "u1", (16,))])


@dataclass(frozen=True)
class BlockLocation:
    """Where one block's columns are in one file (of `file_bytes` bytes), and the digest they must have."""

    path: str
    file_bytes: int
    block: int
    offset: int
    rows: int
    digest: bytes


def block_digest(block: int, columns: Sequence[str], arrays: dict[str, np.ndarray]) -> bytes:
    """BLAKE2b-128 of a block: its number, its rows, and each column's name and little-endian bytes."""
    rows = len(arrays[columns[0]])
    h = hashlib.blake2b(np.array([block, rows], dtype="<u8").tobytes(), digest_size=16)
    for column in columns:
        h.update(column.encode() + b"\0")
        h.update(np.ascontiguousarray(arrays[column], dtype="<u8").view(np.uint8))
    return h.digest()


def _failed_read(fs: AbstractFileSystem, path: str, recorded_bytes: int, error: BaseException) -> BaseException:
    """What a failed read means: a missing file, or one whose size is not the recorded one, is corrupt (the
    driver recomputes it); otherwise the error itself (network, throttling, permissions), which must not make
    the driver delete a good file."""
    if isinstance(error, FileNotFoundError):
        return CorruptIntermediateError(path, "missing")
    try:
        size = fs.size(path)
    except FileNotFoundError:
        return CorruptIntermediateError(path, "missing")
    except Exception:  # noqa: BLE001 - the file cannot be judged: report the first error
        return error
    if size != recorded_bytes:
        return CorruptIntermediateError(path, f"{size} bytes, its producer wrote {recorded_bytes}")
    return error


def write_blocks(fs: AbstractFileSystem, path: str, blocks: Sequence[dict[str, np.ndarray]],
                 columns: Sequence[str]) -> dict[str, Any]:
    """Write `blocks` (each the named columns, of equal length) as one block file, under a temporary name
    renamed into place; returns its entry: path, bytes and table digest."""
    blocks = [{c: np.ascontiguousarray(block[c], dtype="<u8") for c in columns} for block in blocks]
    table = np.zeros(len(blocks), dtype=_ENTRY)
    offset = HEADER_BYTES + ENTRY_BYTES * len(blocks)
    for i, block in enumerate(blocks):
        rows = len(block[columns[0]])
        table[i] = (offset, rows, np.frombuffer(block_digest(i, columns, block), np.uint8))
        offset += 8 * len(columns) * rows
    table_bytes = table.tobytes()
    table_digest = hashlib.blake2b(table_bytes, digest_size=16).digest()
    header = MAGIC + np.array([len(blocks), len(columns)], dtype="<u4").tobytes() + table_digest
    fs.makedirs(posixpath.dirname(path), exist_ok=True)
    tmp = temporary_name(path)
    try:
        with fs.open(tmp, "wb") as handle:
            handle.write(header)
            handle.write(table_bytes)
            for block in blocks:
                for column in columns:
                    handle.write(block[column].tobytes())
        fs.mv(tmp, path)
    except BaseException:
        try:
            if fs.exists(tmp):
                fs.rm(tmp)
        except Exception:  # noqa: BLE001 - cleanup must not hide the error
            pass
        raise
    return {"path": path, "bytes": int(fs.size(path) or 0), "table": table_digest.hex()}


def _check_header(fs: AbstractFileSystem, entry: dict[str, Any], header: Any, columns: Sequence[str]) -> int:
    """The file's block count, after checking its header against the entry; raises if it does not match."""
    path = entry["path"]
    if isinstance(header, BaseException):
        raise _failed_read(fs, path, entry["bytes"], header)
    if len(header) != HEADER_BYTES or header[:8] != MAGIC:
        raise CorruptIntermediateError(path, "not a block file (bad header)")
    blocks, width = np.frombuffer(header, dtype="<u4", count=2, offset=8).tolist()
    if header[16:].hex() != entry["table"]:
        raise CorruptIntermediateError(path, "its table digest is not the one its producer recorded")
    if width != len(columns):
        raise CorruptIntermediateError(path, f"{width} columns, {len(columns)} expected")
    return blocks


def locate_blocks(fs: AbstractFileSystem, entries: Sequence[dict[str, Any] | None], block: int,
                  columns: Sequence[str]) -> list[BlockLocation]:
    """Where block `block` is in each file (its header and one table entry read per file, all requested
    together: object stores serve them concurrently); files whose block is empty, and None entries (no
    file), are left out."""
    entries = [e for e in entries if e]
    paths, starts, ends = [], [], []
    for entry in entries:
        entry_start = HEADER_BYTES + ENTRY_BYTES * block
        paths += [entry["path"], entry["path"]]
        starts += [0, entry_start]
        ends += [HEADER_BYTES, entry_start + ENTRY_BYTES]
    blobs = fs.cat_ranges(paths, starts, ends, on_error="return") if paths else []
    found = []
    for i, entry in enumerate(entries):
        path = entry["path"]
        blocks = _check_header(fs, entry, blobs[2 * i], columns)
        if block >= blocks:
            raise CorruptIntermediateError(path, f"block {block} asked, the file has {blocks}")
        raw = blobs[2 * i + 1]
        if isinstance(raw, BaseException):
            raise _failed_read(fs, path, entry["bytes"], raw)
        if len(raw) != ENTRY_BYTES:
            raise CorruptIntermediateError(path, f"table entry {block} cut short (truncated file)")
        location = _location(entry, np.frombuffer(raw, dtype=_ENTRY)[0], block, blocks, columns)
        if location is not None:
            found.append(location)
    return found


def _location(entry: dict[str, Any], record: Any, block: int, blocks: int,
              columns: Sequence[str]) -> BlockLocation | None:
    """The block's location from its table record, checked to lie inside the file; None if it is empty."""
    path = entry["path"]
    offset, rows, expected = int(record["offset"]), int(record["rows"]), record["digest"].tobytes()
    if offset < HEADER_BYTES + ENTRY_BYTES * blocks or offset + 8 * len(columns) * rows > entry["bytes"]:
        raise CorruptIntermediateError(path, f"table entry {block} points outside the file")
    if rows:
        return BlockLocation(path, entry["bytes"], block, offset, rows, expected)
    if expected != block_digest(block, columns, {c: np.empty(0, dtype=np.uint64) for c in columns}):
        raise CorruptIntermediateError(path, f"table entry {block} does not match its checksum")
    return None


def all_blocks(fs: AbstractFileSystem, entry: dict[str, Any], columns: Sequence[str]) -> list[BlockLocation]:
    """The locations of every non-empty block of one file (its header and whole table read)."""
    header = fs.cat_ranges([entry["path"]], [0], [HEADER_BYTES], on_error="return")[0]
    blocks = _check_header(fs, entry, header, columns)
    if not blocks:  # no table to read (an empty range is not a valid request on every object store)
        return []
    raw = fs.cat_ranges([entry["path"]], [HEADER_BYTES], [HEADER_BYTES + ENTRY_BYTES * blocks], on_error="return")[0]
    if isinstance(raw, BaseException):
        raise _failed_read(fs, entry["path"], entry["bytes"], raw)
    if len(raw) != ENTRY_BYTES * blocks:
        raise CorruptIntermediateError(entry["path"], "table cut short (truncated file)")
    if hashlib.blake2b(raw, digest_size=16).hexdigest() != entry["table"]:
        raise CorruptIntermediateError(entry["path"], "its table does not match its digest")
    records = np.frombuffer(raw, dtype=_ENTRY)
    found = (_location(entry, records[i], i, blocks, columns) for i in range(blocks))
    return [location for location in found if location is not None]


def entry_of(fs: AbstractFileSystem, path: str) -> dict[str, Any]:
    """An entry for a file read without its producer's record (benchmarks, inspection): its size and the table
    digest its own header states, so reads check only that the file agrees with itself."""
    header = fs.cat_ranges([path], [0], [HEADER_BYTES], on_error="return")[0]
    if isinstance(header, BaseException) or len(header) != HEADER_BYTES or header[:8] != MAGIC:
        raise CorruptIntermediateError(path, "not a block file (bad header)")
    return {"path": path, "bytes": int(fs.size(path)), "table": header[16:].hex()}


def read_located(fs: AbstractFileSystem, locations: Sequence[BlockLocation], columns: Sequence[str],
                 batch: int = READ_BATCH) -> Iterator[dict[str, np.ndarray]]:
    """The columns of each located block, checked against its digest; `batch` files' reads are requested
    together (object stores serve them concurrently), and only one batch is held at a time."""
    width = 8 * len(columns)
    for first in range(0, len(locations), batch):
        chunk = locations[first:first + batch]
        blobs = fs.cat_ranges([loc.path for loc in chunk], [loc.offset for loc in chunk],
                              [loc.offset + width * loc.rows for loc in chunk], on_error="return")
        for loc, blob in zip(chunk, blobs, strict=True):
            if isinstance(blob, BaseException):
                raise _failed_read(fs, loc.path, loc.file_bytes, blob)
            if len(blob) != width * loc.rows:
                raise CorruptIntermediateError(loc.path, "block cut short (truncated file)")
            # a copy per column, so that a consumer that frees columns one by one frees their memory
            arrays = {c: np.frombuffer(blob, dtype="<u8", count=loc.rows, offset=8 * k * loc.rows).astype(np.uint64)
                      for k, c in enumerate(columns)}
            if block_digest(loc.block, columns, arrays) != loc.digest:
                raise CorruptIntermediateError(loc.path, f"the block at byte {loc.offset} does not match its "
                                               "checksum")
            yield arrays
        del blobs


def read_block(fs: AbstractFileSystem, entries: Sequence[dict[str, Any] | None], block: int,
               columns: Sequence[str]) -> list[dict[str, np.ndarray]]:
    """Block `block` of every file, checked (the non-empty ones, in file order)."""
    return list(read_located(fs, locate_blocks(fs, entries, block, columns), columns))
