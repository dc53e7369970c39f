"""Signature files (tamis.dedup.signature_file): a block per (band, range) found with two small reads, every
kind of damage detected, and nothing per block kept by the driver."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from tamis.dedup.intermediate import CorruptIntermediateError
from tamis.dedup.options import DedupOptions
from tamis.dedup.partition import signature_task
from tamis.dedup.signature_file import (
    ENTRY_BYTES,
    HEADER_BYTES,
    locate_groups,
    read_located,
    write_signature_groups,
)
from tamis.io.storage import filesystem

sys.path.insert(0, str(Path(__file__).parent))
from dedup_corpus import make_corpus  # noqa: E402


def _groups(sizes: list[int], seed: int = 0) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [{c: rng.integers(0, 2**64, size=n, dtype=np.uint64) for c in ("h1", "h2", "node")} for n in sizes]


def _read(fs, entry: dict, group: int) -> list[dict[str, np.ndarray]]:
    return list(read_located(fs, locate_groups(fs, [entry], group)))


def test_every_group_reads_back_exactly_and_empty_groups_are_skipped(tmp_path):
    fs, _ = filesystem(str(tmp_path))
    sizes = [3, 0, 1, 250, 0, 17]
    groups = _groups(sizes)
    entry = write_signature_groups(fs, str(tmp_path / "a.sig"), groups)
    assert entry["bytes"] == (tmp_path / "a.sig").stat().st_size == HEADER_BYTES + ENTRY_BYTES * 6 + 24 * sum(sizes)
    for index, group in enumerate(groups):
        found = _read(fs, entry, index)
        if not sizes[index]:
            assert found == []
            continue
        assert len(found) == 1
        for column in ("h1", "h2", "node"):
            assert found[0][column].dtype == np.uint64 and np.array_equal(found[0][column], group[column])
    # several files in one call, in order, batched
    other = write_signature_groups(fs, str(tmp_path / "b.sig"), _groups(sizes, seed=1))
    locations = locate_groups(fs, [entry, other, entry], 3)
    parts = list(read_located(fs, locations, batch=2))
    assert [len(p["node"]) for p in parts] == [250, 250, 250]
    assert np.array_equal(parts[0]["h2"], parts[2]["h2"]) and not np.array_equal(parts[0]["h2"], parts[1]["h2"])


def test_digests_with_zero_bytes_at_either_end_read_back(tmp_path):
    """A digest is 16 raw bytes in the table; one that ends (or starts) with a zero byte must come back whole
    (a numpy bytes field drops trailing zeros: 1 group in 256 then read as corrupt)."""
    from tamis.dedup.intermediate import digest

    fs, _ = filesystem(str(tmp_path))
    chosen = {}
    for seed in range(5000):
        group = _groups([2], seed)[0]
        value = bytes.fromhex(digest(group))
        for end, byte in (("last", value[-1]), ("first", value[0])):
            if byte == 0 and end not in chosen:
                chosen[end] = group
        if len(chosen) == 2:
            break
    assert len(chosen) == 2
    entry = write_signature_groups(fs, str(tmp_path / "z.sig"), [chosen["last"], chosen["first"]])
    for index, name in enumerate(("last", "first")):
        assert np.array_equal(_read(fs, entry, index)[0]["node"], chosen[name]["node"])


def _damaged(tmp_path: Path, change) -> tuple[object, dict]:
    fs, _ = filesystem(str(tmp_path))
    path = tmp_path / "s.sig"
    entry = write_signature_groups(fs, str(path), _groups([40, 5, 60]))
    data = bytearray(path.read_bytes())
    path.write_bytes(bytes(change(data)))
    return fs, entry


def _flip(position: int):
    def change(data: bytearray) -> bytearray:
        data[position] ^= 0x01
        return data
    return change


@pytest.mark.parametrize("change, group, message", [
    (lambda d: d[: len(d) - 100], 2, "truncated"),                      # cut inside the last group's columns
    (lambda d: d[: HEADER_BYTES + ENTRY_BYTES + 10], 1, "truncated"),   # cut inside the table
    (lambda d: d[:10], 0, "bad header"),
    (_flip(HEADER_BYTES + 3 * ENTRY_BYTES + 24 * 40 + 8), 1, "checksum"),   # a bit of group 1's h1
    (_flip(HEADER_BYTES + ENTRY_BYTES + 8), 1, "checksum"),             # group 1's row count
    (_flip(HEADER_BYTES + ENTRY_BYTES + 20), 1, "checksum"),            # group 1's digest
    (_flip(HEADER_BYTES + ENTRY_BYTES + 1), 1, "checksum|outside"),     # group 1's offset
    (_flip(HEADER_BYTES + 2 * ENTRY_BYTES + 8 + 7), 2, "outside"),      # group 2's rows made huge
    (_flip(20), 0, "table digest"),                                    # the header's table digest
    (_flip(2), 0, "bad header"),                                       # the magic
])
def test_damage_anywhere_is_a_corrupt_intermediate_naming_the_file(tmp_path, change, group, message):
    fs, entry = _damaged(tmp_path, change)
    with pytest.raises(CorruptIntermediateError, match=message) as caught:
        _read(fs, entry, group)
    assert caught.value.path == entry["path"]


def test_a_missing_or_swapped_file_is_detected(tmp_path):
    fs, _ = filesystem(str(tmp_path))
    entry = write_signature_groups(fs, str(tmp_path / "s.sig"), _groups([8, 8]))
    other = write_signature_groups(fs, str(tmp_path / "t.sig"), _groups([8, 8], seed=5))
    assert other["bytes"] == entry["bytes"]
    (tmp_path / "s.sig").write_bytes((tmp_path / "t.sig").read_bytes())  # same size, valid, but another file
    with pytest.raises(CorruptIntermediateError, match="table digest"):
        _read(fs, entry, 0)
    (tmp_path / "s.sig").unlink()
    with pytest.raises(CorruptIntermediateError, match="missing"):
        _read(fs, entry, 0)
    with pytest.raises(CorruptIntermediateError, match="group 2 asked"):
        _read(fs, other, 2)


def test_what_a_signature_task_returns_does_not_grow_with_bands_times_ranges(tmp_path):
    """The driver keeps each shard's entry and sends it to every bucket task: it must be the same few fields
    whether the file holds 14 groups or 14 x 64 (a per-group record here is what made the driver's memory grow
    with shards x bands x ranges)."""
    paths, _ = make_corpus(tmp_path / "in", originals=200, exact=0, near=0, shards=1)
    options = DedupOptions()
    one = signature_task(paths[0], 0, 1, options, str(tmp_path / "w1"))["file"]
    many = signature_task(paths[0], 0, 64, options, str(tmp_path / "w64"))["file"]
    assert abs(len(json.dumps(many)) - len(json.dumps(one))) <= 4
    fs, _ = filesystem(str(tmp_path))
    rows_one = sum(p["node"].size for p in read_located(fs, locate_groups(fs, [one], 0)))
    rows_many = sum(p["node"].size for g in range(64) for p in read_located(fs, locate_groups(fs, [many], g)))
    assert rows_one == rows_many == 200  # band 0's rows, all in one range or spread over 64


def test_a_previous_index_of_the_parquet_format_is_refused_before_any_work(tmp_path):
    """An index written before this format (its signature files Parquet, no `signature_format`) cannot be
    read: the run stops before starting Ray, says why and how to rebuild it, and writes nothing."""
    from tamis.dedup.stage import DedupError, run_dedup

    paths, _ = make_corpus(tmp_path / "in", originals=10, exact=0, near=0, shards=1)
    options = DedupOptions(kind="exact")
    old = tmp_path / "old-work"
    old.mkdir()
    (old / "index.json").write_text(json.dumps({
        "fingerprint": "0" * 16, "signature_params": options.signature_params(), "ranges": 1, "shards": ["x"],
        "signature_files": [{"path": str(old / "signatures" / "part-000000.parquet"), "bytes": 10,
                             "groups": {"b0-r0": [0, 3, "0" * 32]}}]}))
    with_index = DedupOptions(kind="exact", previous_index=(str(old),))
    with pytest.raises(DedupError, match="older tamis.*format Parquet.*rebuild"):
        run_dedup(paths, str(tmp_path / "work"), str(tmp_path / "out"), with_index)
    assert not (tmp_path / "work").exists() and not (tmp_path / "out").exists()
