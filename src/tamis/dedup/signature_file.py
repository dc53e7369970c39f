"""Signature files: one shard's band keys, a block per (band, range), each found with two small reads.

Every bucket task reads one (band, range) from every shard's signature file: for a dump, each of about
2,000 tasks reads from 8,000 files. As Parquet with a row group per (band, range), each of those reads parsed
the file's whole footer (the metadata of all bands × ranges row groups), and the driver kept each row
group's digest to check it: memory that grew with shards × bands × ranges (about 1 KB per group measured,
16 GiB for a dump; benchmarks/bench_dedup_driver.py). This format needs neither:

    header  32 bytes   MAGIC (8), number of groups G (uint64), BLAKE2b-128 of the table (16)
    table   G × 32     per group, in (band, range) order: byte offset, rows (uint64 each), digest (16)
    data               per group: its h1, h2 and node columns, `rows` uint64 each

All integers are little-endian. The driver records a file's size and its table digest only. A reader checks
the header against that record (a stale or swapped file differs there), reads its group's table entry, then
the group's columns, and checks them against the entry's digest: damage to the entry or to the columns is a
mismatch, a truncated file a short read; each raises CorruptIntermediateError naming the file, and the driver
recomputes it. The columns are stored raw: they are hashes and node ids, which zstd hardly shrinks.
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from fsspec import AbstractFileSystem

from tamis.dedup.intermediate import CorruptIntermediateError, digest
from tamis.io.storage import temporary_name

MAGIC = b"TAMISIG1"
HEADER_BYTES = 32
ENTRY_BYTES = 32
COLUMNS = ("h1", "h2", "node")
#: files whose group reads are requested at once (bounded: a batch of blobs is held until it is decoded)
READ_BATCH = 64
#: a table entry (the digest as 16 raw bytes: a bytes field "S16" would drop a digest's trailing zero bytes)
_ENTRY = np.dtype([("offset", "<u8"), ("rows", "<u8"), ("digest", "u1", (16,))])


def group_index(band: int, rng: int, ranges: int) -> int:
    """The position of (band, range) in a file written with `ranges` ranges per band."""
    return band * ranges + rng


@dataclass(frozen=True)
class GroupLocation:
    """Where one group's columns are in one file, and the digest they must have."""

    path: str
    offset: int
    rows: int
    digest: bytes


def write_signature_groups(fs: AbstractFileSystem, path: str, groups: list[dict[str, np.ndarray]]) -> dict[str, Any]:
    """Write `groups` (in (band, range) order, each h1, h2 and node of equal length) as one signature file,
    under a temporary name renamed into place; returns its entry: path, bytes and table digest."""
    table = np.zeros(len(groups), dtype=_ENTRY)
    offset = HEADER_BYTES + ENTRY_BYTES * len(groups)
    for i, group in enumerate(groups):
        rows = len(group["node"])
        table[i] = (offset, rows, np.frombuffer(bytes.fromhex(digest({c: group[c] for c in COLUMNS})), np.uint8))
        offset += 8 * len(COLUMNS) * rows
    table_bytes = table.tobytes()
    table_digest = hashlib.blake2b(table_bytes, digest_size=16).digest()
    fs.makedirs(posixpath.dirname(path), exist_ok=True)
    tmp = temporary_name(path)
    try:
        with fs.open(tmp, "wb") as handle:
            handle.write(MAGIC + np.uint64(len(groups)).astype("<u8").tobytes() + table_digest)
            handle.write(table_bytes)
            for group in groups:
                for column in COLUMNS:
                    handle.write(np.ascontiguousarray(group[column], dtype="<u8").tobytes())
        fs.mv(tmp, path)
    except BaseException:
        try:
            if fs.exists(tmp):
                fs.rm(tmp)
        except Exception:  # noqa: BLE001 - cleanup must not hide the error
            pass
        raise
    return {"path": path, "bytes": int(fs.size(path) or 0), "table": table_digest.hex()}


def locate_groups(fs: AbstractFileSystem, entries: list[dict[str, Any]], group: int) -> list[GroupLocation]:
    """Where group `group` is in each file (one header and one table entry read per file, all requested
    together: object stores serve them concurrently); files whose group is empty are left out."""
    if not entries:
        return []
    paths, starts, ends = [], [], []
    for entry in entries:
        entry_start = HEADER_BYTES + ENTRY_BYTES * group
        paths += [entry["path"], entry["path"]]
        starts += [0, entry_start]
        ends += [HEADER_BYTES, entry_start + ENTRY_BYTES]
    blobs = fs.cat_ranges(paths, starts, ends, on_error="return")
    found = []
    for i, entry in enumerate(entries):
        header, raw = blobs[2 * i], blobs[2 * i + 1]
        path = entry["path"]
        if isinstance(header, FileNotFoundError):
            raise CorruptIntermediateError(path, "missing")
        if isinstance(header, BaseException) or isinstance(raw, BaseException):
            error = header if isinstance(header, BaseException) else raw
            raise CorruptIntermediateError(path, f"unreadable: {error}")
        if len(header) != HEADER_BYTES or header[:8] != MAGIC:
            raise CorruptIntermediateError(path, "not a signature file (bad header)")
        groups = int(np.frombuffer(header, dtype="<u8", count=1, offset=8)[0])
        if header[16:].hex() != entry["table"]:
            raise CorruptIntermediateError(path, "its table digest is not the one its producer recorded")
        if group >= groups:
            raise CorruptIntermediateError(path, f"group {group} asked, the file has {groups}")
        if len(raw) != ENTRY_BYTES:
            raise CorruptIntermediateError(path, f"table entry {group} cut short (truncated file)")
        record = np.frombuffer(raw, dtype=_ENTRY)[0]
        offset, rows, expected = int(record["offset"]), int(record["rows"]), record["digest"].tobytes()
        end = offset + 8 * len(COLUMNS) * rows
        if offset < HEADER_BYTES + ENTRY_BYTES * groups or end > entry["bytes"]:
            raise CorruptIntermediateError(path, f"table entry {group} points outside the file")
        if rows:
            found.append(GroupLocation(path, offset, rows, expected))
        elif expected.hex() != _EMPTY_DIGEST:
            raise CorruptIntermediateError(path, f"table entry {group} does not match its checksum")
    return found


def read_located(fs: AbstractFileSystem, locations: list[GroupLocation],
                 batch: int = READ_BATCH) -> Iterator[dict[str, np.ndarray]]:
    """The columns of each located group, checked against its digest; `batch` files' reads are requested
    together (object stores serve them concurrently), and only one batch is held at a time."""
    for first in range(0, len(locations), batch):
        chunk = locations[first:first + batch]
        blobs = fs.cat_ranges([loc.path for loc in chunk], [loc.offset for loc in chunk],
                              [loc.offset + 8 * len(COLUMNS) * loc.rows for loc in chunk], on_error="return")
        for loc, blob in zip(chunk, blobs, strict=True):
            if isinstance(blob, BaseException):
                raise CorruptIntermediateError(loc.path, f"unreadable: {blob}")
            if len(blob) != 8 * len(COLUMNS) * loc.rows:
                raise CorruptIntermediateError(loc.path, "group cut short (truncated file)")
            values = np.frombuffer(blob, dtype="<u8").reshape(len(COLUMNS), loc.rows).astype(np.uint64)
            arrays = {c: values[k] for k, c in enumerate(COLUMNS)}
            if bytes.fromhex(digest(arrays)) != loc.digest:
                raise CorruptIntermediateError(loc.path, f"the group at byte {loc.offset} does not match its "
                                               "checksum")
            yield arrays
        del blobs


_EMPTY_DIGEST = digest({c: np.empty(0, dtype=np.uint64) for c in COLUMNS})
