"""The WARC reader against warcio's own iteration, on every real file, and on damaged copies of them."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import pytest
from conftest import WARC_DIR, shared_warcs, warcio_documents

from tamis.readers.warc import Reasons, WarcReader
from tamis.stats.counters import StepCounters

# drops that happen after a record was recognised as an HTML/text document
DOC_LEVEL_DROPS = (Reasons.EMPTY, Reasons.TOO_LARGE, Reasons.UNDECODABLE)


def read_ids(path: Path | str, reader: WarcReader | None = None) -> tuple[list[str], StepCounters]:
    counters = StepCounters()
    reader = reader or WarcReader()
    ids = [doc_id for batch in reader.iter_batches(str(path), counters) for doc_id in batch["id"]]
    return ids, counters


@pytest.mark.parametrize("path", shared_warcs(), ids=lambda p: p.name)
def test_every_shared_file_matches_warcio(path: Path) -> None:
    expected = warcio_documents(path)
    ids, counters = read_ids(path)
    dropped_docs = sum(counters.dropped[reason] for reason in DOC_LEVEL_DROPS)
    assert len(ids) + dropped_docs == len(expected), counters.to_dict()
    assert set(ids) <= {record_id for record_id, _, _ in expected}
    assert len(ids) == len(set(ids))
    corrupt = {r: n for r, n in counters.dropped.items() if r.startswith(("corrupt", "truncated", "unreadable"))}
    assert not corrupt, f"a valid file was reported as damaged: {corrupt}"


def test_sample_reads_expected_documents() -> None:
    """The dolma samples are all-HTML wget crawls: every response must come out as a document."""
    ids, counters = read_ids(WARC_DIR / "dolma_sample-0000.warc.gz")
    assert len(ids) == 22
    assert counters.dropped[Reasons.NOT_HTML] == 2  # the two `resource` records are not HTML


def test_dump_and_metadata_columns() -> None:
    counters = StepCounters()
    batch = next(WarcReader().iter_batches(str(WARC_DIR / "cc-main-2020-34_resiliparse_excerpt.warc.gz"), counters))
    assert set(batch["dump"]) == {"CC-MAIN-2020-34"}
    assert all(doc_id.startswith("<urn:uuid:") for doc_id in batch["id"])
    assert all(url.startswith("http") for url in batch["url"])
    assert all(date.startswith("2020-08") for date in batch["date"])
    # gb2312 and windows-1251 pages are decoded with their charsets, not mangled as UTF-8
    assert not any("\ufffd" in html for html in batch["html"])


def test_wet_conversion_records_are_text() -> None:
    batch = next(WarcReader().iter_batches(str(WARC_DIR / "cc-main-2024-22_whirlwind.warc.wet.gz"), StepCounters()))
    assert batch["html"] == [None]
    assert "Escopete" in batch["text"][0]


SOURCE = WARC_DIR / "dolma_sample-0001.warc.gz"


@pytest.mark.parametrize("seed", range(6))
def test_truncated_file_keeps_every_complete_record(tmp_path: Path, seed: int) -> None:
    data = SOURCE.read_bytes()
    cut = random.Random(seed).randrange(100, len(data) - 100)
    damaged = tmp_path / "truncated.warc.gz"
    damaged.write_bytes(data[:cut])
    ids, counters = read_ids(damaged)
    complete = {rid for rid, offset, length in warcio_documents(SOURCE) if offset + length <= cut}
    assert complete <= set(ids)
    assert len(ids) == len(set(ids))
    assert len(ids) <= len(complete) + 1


@pytest.mark.parametrize("seed", range(6))
def test_flipped_bytes_lose_only_damaged_records(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    data = bytearray(SOURCE.read_bytes())
    flips = sorted(rng.sample(range(len(data)), 3))
    for position in flips:
        data[position] ^= 0xFF
    damaged = tmp_path / "flipped.warc.gz"
    damaged.write_bytes(bytes(data))
    ids, counters = read_ids(damaged)
    records = warcio_documents(SOURCE)
    untouched = {
        rid for rid, offset, length in records if not any(offset <= p < offset + length for p in flips)
    }
    # a flip may also hit a non-document record or a member boundary and take one neighbour with it
    assert len(untouched - set(ids)) <= len(flips)
    assert len(ids) == len(set(ids))
    assert set(ids) <= {rid for rid, _, _ in records}


def test_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.warc.gz"
    empty.write_bytes(b"")
    ids, counters = read_ids(empty)
    assert ids == []


def test_uncompressed_warc_named_gz(tmp_path: Path) -> None:
    plain = tmp_path / "plain.warc.gz"
    plain.write_bytes(gzip.decompress(SOURCE.read_bytes()))
    ids, _ = read_ids(plain)
    assert len(ids) == len(read_ids(SOURCE)[0]) == 15


def test_uncompressed_warc_with_garbage_in_the_middle(tmp_path: Path) -> None:
    text = gzip.decompress(SOURCE.read_bytes())
    middle = len(text) // 2
    damaged = tmp_path / "garbage.warc"
    damaged.write_bytes(text[:middle] + bytes(random.Random(1).randbytes(5000)) + text[middle:])
    ids, counters = read_ids(damaged)
    assert len(ids) >= 13
    assert sum(counters.dropped.values()) >= 1


def test_binary_garbage_named_warc(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.warc.gz"
    garbage.write_bytes(random.Random(2).randbytes(100_000))
    ids, counters = read_ids(garbage)
    assert ids == []
    assert sum(counters.dropped.values()) >= 1


def test_oversized_payload_is_skipped_and_counted() -> None:
    ids, counters = read_ids(SOURCE, WarcReader(max_payload_bytes=20_000))
    assert counters.dropped[Reasons.TOO_LARGE] > 0
    assert len(ids) + counters.dropped[Reasons.TOO_LARGE] == 15
