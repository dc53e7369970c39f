"""Block files (tamis.dedup.block_file), every dedup intermediate: a block found with two small reads, every
kind of damage detected, and nothing per block kept by the driver."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from tamis.dedup.block_file import (
    ENTRY_BYTES,
    HEADER_BYTES,
    all_blocks,
    block_digest,
    locate_blocks,
    read_block,
    read_located,
    write_blocks,
)
from tamis.dedup.intermediate import CorruptIntermediateError
from tamis.dedup.options import DedupOptions
from tamis.dedup.partition import SIGNATURE_COLUMNS, signature_block, signature_task
from tamis.io.storage import filesystem

sys.path.insert(0, str(Path(__file__).parent))
from dedup_corpus import make_corpus  # noqa: E402

COLUMNS = SIGNATURE_COLUMNS


def _blocks(sizes: list[int], seed: int = 0, columns=COLUMNS) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [{c: rng.integers(0, 2**64, size=n, dtype=np.uint64) for c in columns} for n in sizes]


def _read(fs, entry: dict, block: int, columns=COLUMNS) -> list[dict[str, np.ndarray]]:
    return read_block(fs, [entry], block, columns)


def test_every_block_reads_back_exactly_and_empty_blocks_are_skipped(tmp_path):
    fs, _ = filesystem(str(tmp_path))
    sizes = [3, 0, 1, 250, 0, 17]
    blocks = _blocks(sizes)
    entry = write_blocks(fs, str(tmp_path / "a.blocks"), blocks, COLUMNS)
    assert entry["bytes"] == (tmp_path / "a.blocks").stat().st_size == HEADER_BYTES + ENTRY_BYTES * 6 + 24 * sum(sizes)
    for index, block in enumerate(blocks):
        found = _read(fs, entry, index)
        if not sizes[index]:
            assert found == []
            continue
        assert len(found) == 1
        for column in COLUMNS:
            assert found[0][column].dtype == np.uint64 and np.array_equal(found[0][column], block[column])
    # several files in one call, in order, batched
    other = write_blocks(fs, str(tmp_path / "b.blocks"), _blocks(sizes, seed=1), COLUMNS)
    locations = locate_blocks(fs, [entry, None, other, entry], 3, COLUMNS)  # None: a file not written
    parts = list(read_located(fs, locations, COLUMNS, batch=2))
    assert [len(p["node"]) for p in parts] == [250, 250, 250]
    assert np.array_equal(parts[0]["h2"], parts[2]["h2"]) and not np.array_equal(parts[0]["h2"], parts[1]["h2"])


def test_digests_with_zero_bytes_at_either_end_read_back(tmp_path):
    """A digest is 16 raw bytes in the table; one that ends (or starts) with a zero byte must come back whole
    (a numpy bytes field drops trailing zeros: 1 block in 256 then read as corrupt)."""
    fs, _ = filesystem(str(tmp_path))
    chosen = {}
    for seed in range(5000):
        block = _blocks([2], seed)[0]
        # written as block 0 ("last": its digest ends with a zero byte) or block 1 ("first")
        for index, end, position in ((0, "last", -1), (1, "first", 0)):
            if block_digest(index, COLUMNS, block)[position] == 0 and end not in chosen:
                chosen[end] = block
        if len(chosen) == 2:
            break
    assert len(chosen) == 2
    entry = write_blocks(fs, str(tmp_path / "z.blocks"), [chosen["last"], chosen["first"]], COLUMNS)
    for index, name in enumerate(("last", "first")):
        assert np.array_equal(_read(fs, entry, index)[0]["node"], chosen[name]["node"])


def _damaged(tmp_path: Path, change) -> tuple[object, dict]:
    fs, _ = filesystem(str(tmp_path))
    path = tmp_path / "s.blocks"
    entry = write_blocks(fs, str(path), _blocks([40, 5, 60]), COLUMNS)
    data = bytearray(path.read_bytes())
    path.write_bytes(bytes(change(data)))
    return fs, entry


def _flip(position: int):
    def change(data: bytearray) -> bytearray:
        data[position] ^= 0x01
        return data
    return change


@pytest.mark.parametrize("change, block, message", [
    (lambda d: d[: len(d) - 100], 2, "truncated"),                      # cut inside the last block's columns
    (lambda d: d[: HEADER_BYTES + ENTRY_BYTES + 10], 1, "truncated"),   # cut inside the table
    (lambda d: d[:10], 0, "bad header"),
    (_flip(HEADER_BYTES + 3 * ENTRY_BYTES + 24 * 40 + 8), 1, "checksum"),   # a bit of block 1's h1
    (_flip(HEADER_BYTES + ENTRY_BYTES + 8), 1, "checksum"),             # block 1's row count
    (_flip(HEADER_BYTES + ENTRY_BYTES + 20), 1, "checksum"),            # block 1's digest
    (_flip(HEADER_BYTES + ENTRY_BYTES + 1), 1, "checksum|outside"),     # block 1's offset
    (_flip(HEADER_BYTES + 2 * ENTRY_BYTES + 8 + 7), 2, "outside"),      # block 2's rows made huge
    (_flip(20), 0, "table digest"),                                    # the header's table digest
    (_flip(2), 0, "bad header"),                                       # the magic
])
def test_damage_anywhere_is_a_corrupt_intermediate_naming_the_file(tmp_path, change, block, message):
    fs, entry = _damaged(tmp_path, change)
    with pytest.raises(CorruptIntermediateError, match=message) as caught:
        _read(fs, entry, block)
    assert caught.value.path == entry["path"]


def test_a_missing_or_swapped_file_is_detected(tmp_path):
    fs, _ = filesystem(str(tmp_path))
    entry = write_blocks(fs, str(tmp_path / "s.blocks"), _blocks([8, 8]), COLUMNS)
    other = write_blocks(fs, str(tmp_path / "t.blocks"), _blocks([8, 8], seed=5), COLUMNS)
    assert other["bytes"] == entry["bytes"]
    (tmp_path / "s.blocks").write_bytes((tmp_path / "t.blocks").read_bytes())  # same size, valid, another file
    with pytest.raises(CorruptIntermediateError, match="table digest"):
        _read(fs, entry, 0)
    with pytest.raises(CorruptIntermediateError, match="table digest"):
        all_blocks(fs, entry, COLUMNS)
    (tmp_path / "s.blocks").unlink()
    with pytest.raises(CorruptIntermediateError, match="missing"):
        _read(fs, entry, 0)
    with pytest.raises(CorruptIntermediateError, match="block 2 asked"):
        _read(fs, other, 2)
    with pytest.raises(CorruptIntermediateError, match="2 columns, 3 expected"):
        _read(fs, write_blocks(fs, str(tmp_path / "u.blocks"), _blocks([4], columns=("u", "v")), ("u", "v")), 0)


@pytest.mark.parametrize("move", ["swap 0 and 2", "copy 2 onto 0", "copy empty 1 onto 0"])
def test_a_table_entry_moved_to_another_place_does_not_match(tmp_path, move):
    """Every entry is intact, only in the wrong place: reading block 0 alone (which does not read the whole
    table) must not return block 2's rows, or none."""
    fs, _ = filesystem(str(tmp_path))
    path = tmp_path / "m.blocks"
    entry = write_blocks(fs, str(path), _blocks([5, 0, 7]), COLUMNS)
    data = bytearray(path.read_bytes())
    table = [bytes(data[HEADER_BYTES + ENTRY_BYTES * i:HEADER_BYTES + ENTRY_BYTES * (i + 1)]) for i in range(3)]
    new = {"swap 0 and 2": [table[2], table[1], table[0]], "copy 2 onto 0": [table[2], table[1], table[2]],
           "copy empty 1 onto 0": [table[1], table[1], table[2]]}[move]
    data[HEADER_BYTES:HEADER_BYTES + 3 * ENTRY_BYTES] = b"".join(new)
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptIntermediateError, match="checksum"):
        _read(fs, entry, 0)


def test_a_failed_read_condemns_the_file_only_when_its_size_is_wrong(tmp_path):
    """A read error on a file that still has its recorded size (throttling, a network error) is raised as it
    is, so the driver does not delete a good file; a missing file or one of another size is corrupt."""
    from fsspec.implementations.local import LocalFileSystem

    class Failing(LocalFileSystem):
        def cat_file(self, path, start=None, end=None, **kwargs):
            raise ConnectionError("SlowDown: please reduce your request rate")

    fs, _ = filesystem(str(tmp_path))
    entry = write_blocks(fs, str(tmp_path / "f.blocks"), _blocks([6, 6]), COLUMNS)
    failing = Failing(skip_instance_cache=True)
    with pytest.raises(ConnectionError, match="SlowDown"):
        read_block(failing, [entry], 1, COLUMNS)
    with pytest.raises(ConnectionError, match="SlowDown"):
        all_blocks(failing, entry, COLUMNS)
    (tmp_path / "f.blocks").write_bytes((tmp_path / "f.blocks").read_bytes()[:-40])
    with pytest.raises(CorruptIntermediateError, match="its producer wrote"):
        read_block(failing, [entry], 1, COLUMNS)
    (tmp_path / "f.blocks").unlink()
    with pytest.raises(CorruptIntermediateError, match="missing"):
        read_block(failing, [entry], 1, COLUMNS)


def test_no_blocks_and_narrow_columns(tmp_path):
    """A file of no blocks reads as nothing (no empty range is requested); columns given as uint32 are stored
    and checked as the uint64 values they are."""
    fs, _ = filesystem(str(tmp_path))
    empty = write_blocks(fs, str(tmp_path / "e.blocks"), [], ("u", "v"))
    assert all_blocks(fs, empty, ("u", "v")) == []
    narrow = {"u": np.arange(9, dtype=np.uint32), "v": np.arange(9, dtype=">u8")}
    entry = write_blocks(fs, str(tmp_path / "n.blocks"), [narrow], ("u", "v"))
    [block] = read_block(fs, [entry], 0, ("u", "v"))
    assert block["u"].dtype == np.uint64 and block["u"].tolist() == block["v"].tolist() == list(range(9))


def test_reading_every_block_checks_the_whole_table(tmp_path):
    """all_blocks (a scatter task reads every block of an edge file) reads the whole table, so damage to any
    entry, even of a block that is empty or never read, is found by the table digest."""
    fs, _ = filesystem(str(tmp_path))
    blocks = _blocks([30, 0, 12], columns=("u", "v"))
    entry = write_blocks(fs, str(tmp_path / "e.blocks"), blocks, ("u", "v"))
    parts = list(read_located(fs, all_blocks(fs, entry, ("u", "v")), ("u", "v")))
    assert [len(p["u"]) for p in parts] == [30, 12] and np.array_equal(parts[1]["v"], blocks[2]["v"])
    data = bytearray((tmp_path / "e.blocks").read_bytes())
    data[HEADER_BYTES + ENTRY_BYTES + 9] ^= 0x04  # the empty block's row count
    (tmp_path / "e.blocks").write_bytes(bytes(data))
    with pytest.raises(CorruptIntermediateError, match="does not match its digest"):
        all_blocks(fs, entry, ("u", "v"))


def test_what_a_signature_task_returns_does_not_grow_with_bands_times_ranges(tmp_path):
    """The driver keeps each shard's entry and sends it to every bucket task: it must be the same few fields
    whether the file holds 14 blocks or 14 x 64 (a per-block record here is what made the driver's memory grow
    with shards x bands x ranges)."""
    paths, _ = make_corpus(tmp_path / "in", originals=200, exact=0, near=0, shards=1)
    options = DedupOptions()
    one = signature_task(paths[0], 0, 1, options, str(tmp_path / "w1"))["file"]
    many = signature_task(paths[0], 0, 64, options, str(tmp_path / "w64"))["file"]
    assert abs(len(json.dumps(many)) - len(json.dumps(one))) <= 4
    fs, _ = filesystem(str(tmp_path))
    rows_one = sum(p["node"].size for p in _read(fs, one, signature_block(0, 0, 1)))
    rows_many = sum(p["node"].size for r in range(64) for p in _read(fs, many, signature_block(0, r, 64)))
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
                             "blocks": {"b0-r0": [0, 3, "0" * 32]}}]}))
    with_index = DedupOptions(kind="exact", previous_index=(str(old),))
    with pytest.raises(DedupError, match="older tamis.*format Parquet.*rebuild"):
        run_dedup(paths, str(tmp_path / "work"), str(tmp_path / "out"), with_index)
    assert not (tmp_path / "work").exists() and not (tmp_path / "out").exists()
