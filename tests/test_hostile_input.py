"""Hostile input: oversize WARC headers, decompression bombs, huge chunks, `br` bodies, paths listings.

Memory is measured in a child process (its peak RSS before and after each file), so the test process's
own allocations do not blur it. The hostile records sit between real pages, which must still come out.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable
from pathlib import Path

import pytest
from hostile import (
    blank_padding,
    brotli_bomb,
    encoded_response,
    gzip_bomb,
    gzip_member,
    long_header_line,
    many_header_lines,
    measure_in_subprocess,
    one_huge_chunk,
    real_pages,
    record_id,
    repeated,
    with_neighbours,
    write_warc,
)

from tamis.engine.inputs import PathsFileError, read_paths_file
from tamis.pipeline.spec import PipelineError, parse_pipeline
from tamis.pipeline.validation import describe_params
from tamis.readers.warc import Reasons, WarcReader
from tamis.stats.counters import StepCounters

MIB = 1 << 20
#: what reading one hostile file may add to a process's peak memory: the 10 MiB payload cap, one inflation
#: step (1 MiB) and the copies made while joining them, far below the sizes the files inflate to
PEAK_BOUND = 48 * MIB


def read(path: Path, **params: object) -> tuple[list[str], StepCounters, list]:
    counters = StepCounters()
    batches = list(WarcReader(**params).iter_batches(str(path), counters))
    return [i for b in batches for i in b["id"]], counters, batches


@pytest.fixture(scope="module")
def measured(tmp_path_factory) -> dict[str, dict]:
    """Every hostile file of this module, built once and read in one child process."""
    root = tmp_path_factory.mktemp("hostile")
    files = {
        # a 64 MiB header line in one gzip member of a few hundred KiB
        "long_line.warc.gz": (long_header_line(64 * MIB), True),
        # the same line in a plain file, where warcio's readline is quadratic
        "long_line.warc": (long_header_line(32 * MIB), False),
        # one declared 96 MiB HTTP chunk (warcio reads a chunk whole)
        "huge_chunk.warc.gz": (one_huge_chunk(96 * MIB), True),
        # Content-Encoding bombs: 96 MiB of spaces in under 500 KiB (gzip) and 100 bytes (br)
        "gzip_bomb.warc.gz": ([encoded_response(2, gzip_bomb(96 * MIB), b"gzip")], True),
        "br_bomb.warc.gz": ([encoded_response(2, brotli_bomb(96 * MIB), b"br")], True),
    }
    paths = []
    expected = {}
    for name, (hostile, gzipped) in files.items():
        path, ids = with_neighbours(root / name, hostile, gzipped)
        paths.append(path)
        expected[name] = ids
    results = measure_in_subprocess(paths)
    for name, result in results.items():
        result["expected_ids"] = expected[name]
    return results


@pytest.mark.parametrize("name", ["long_line.warc.gz", "long_line.warc"])
def test_huge_header_line_is_dropped_in_bounded_memory(measured, name: str) -> None:
    result = measured[name]
    assert result["dropped"] == {Reasons.OVERSIZE_HEADER: 1}
    assert result["ids"] == result["expected_ids"]
    assert result["peak_growth"] < PEAK_BOUND, result


def test_huge_chunk_is_read_in_bounded_memory(measured) -> None:
    result = measured["huge_chunk.warc.gz"]
    assert result["dropped"] == {Reasons.TOO_LARGE: 1}
    assert result["ids"] == result["expected_ids"]
    assert result["peak_growth"] < PEAK_BOUND, result


@pytest.mark.parametrize("name", ["gzip_bomb.warc.gz", "br_bomb.warc.gz"])
def test_decompression_bombs_stop_at_the_payload_cap(measured, name: str) -> None:
    result = measured[name]
    assert result["dropped"] == {Reasons.DECODED_TOO_LARGE: 1}
    assert result["ids"] == result["expected_ids"]
    assert result["peak_growth"] < PEAK_BOUND, result


@pytest.mark.parametrize("http", [False, True], ids=["warc_headers", "http_headers"])
def test_header_block_with_too_many_lines_is_dropped(tmp_path: Path, http: bool) -> None:
    path, expected = with_neighbours(tmp_path / "many.warc.gz", many_header_lines(2 * MIB, http))
    ids, counters, _ = read(path)
    assert ids == expected
    assert counters.dropped == {Reasons.OVERSIZE_HEADER: 1}
    assert counters.events["resynced"] == 1


@pytest.mark.parametrize("gzipped", [True, False], ids=["gzip", "plain"])
def test_megabytes_of_blank_lines_after_a_record_are_cut_short(tmp_path: Path, gzipped: bool) -> None:
    """Empty lines between records count against the header budget: 4 MiB of them (4 KiB gzipped) would
    otherwise cost two million line reads (a 1000-fold amplification once gzipped)."""
    path, (first, last) = with_neighbours(tmp_path / "blank.warc.gz", blank_padding(4 * MIB), gzipped)
    ids, counters, _ = read(path)
    assert ids == [first, record_id(2), last]
    assert counters.dropped == {Reasons.OVERSIZE_HEADER: 1}


def test_header_caps_are_reader_parameters(tmp_path: Path) -> None:
    path, expected = with_neighbours(tmp_path / "line.warc", [b"".join(many_header_lines(200_000, http=True))],
                                     gzipped=False)
    assert read(path)[0] == expected  # 200 kB of headers fit the default 1 MiB block
    ids, counters, _ = read(path, max_header_block=100_000)
    assert ids == expected and counters.dropped == {Reasons.OVERSIZE_HEADER: 1}
    long_line, _ = with_neighbours(tmp_path / "long.warc.gz", long_header_line(100_000))
    assert read(long_line)[1].dropped == {Reasons.OVERSIZE_HEADER: 1}
    assert read(long_line, max_header_line=200_000)[1].dropped.get(Reasons.OVERSIZE_HEADER, 0) == 0
    names = {row[0] for row in describe_params(WarcReader)}
    assert {"max_header_line", "max_header_block"} <= names
    with pytest.raises(PipelineError, match="max_header_line"):
        parse_pipeline({"reader": {"step": "warc", "max_header_line": 10}})
    with pytest.raises(ValueError, match="max_header_block"):
        WarcReader(max_header_line=65536, max_header_block=4096)


@pytest.mark.parametrize("chunked", [False, True], ids=["plain", "chunked"])
@pytest.mark.parametrize("coding", ["br", "gzip", "deflate", "raw_deflate"])
def test_encoded_real_pages_are_decoded(tmp_path: Path, coding: str, chunked: bool) -> None:
    import zlib

    import brotli

    def raw_deflate(data: bytes) -> bytes:  # what some servers send as `deflate`: no zlib wrapper
        compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
        return compressor.compress(data) + compressor.flush()

    pages = real_pages(3)
    encoders = {"br": lambda data: brotli.compress(data, quality=5), "gzip": gzip.compress,
                "deflate": zlib.compress, "raw_deflate": raw_deflate}
    encode = encoders[coding]
    encoding = b"deflate" if coding == "raw_deflate" else coding.encode()
    path = write_warc(tmp_path / "encoded.warc.gz",
                      [[encoded_response(n, encode(page), encoding, chunked)] for n, page in enumerate(pages)])
    ids, counters, batches = read(path)
    assert counters.dropped == {}
    assert ids == [record_id(n) for n in range(len(pages))]
    assert [h for b in batches for h in b["html"]] == [p.decode("utf-8") for p in pages]


def test_br_bomb_under_a_raised_cap_is_read(tmp_path: Path) -> None:
    """The cap is max_payload_bytes, not a fixed limit of the decoder: raised, the whole body comes out."""
    page = real_pages(1)[0]
    import brotli

    body = page + b" " * (12 * MIB)
    path = write_warc(tmp_path / "big_br.warc.gz", [[encoded_response(1, brotli.compress(body, quality=1), b"br")]])
    assert read(path)[1].dropped == {Reasons.DECODED_TOO_LARGE: 1}
    ids, counters, batches = read(path, max_payload_bytes=16 * MIB)
    assert counters.dropped == {} and batches[0]["html"][0] == body.decode("utf-8")



def _listing(path: Path, lines: Iterable[bytes]) -> Path:
    path.write_bytes(gzip_member(lines))
    return path


def test_paths_listing_is_streamed_in_bounded_memory(tmp_path: Path) -> None:
    """A listing whose 96 MiB inflate to a few files plus comments: read a line at a time, not whole."""
    listed = [f"crawl-data/CC-MAIN-2024-22/segments/1715971057216.39/warc/CC-MAIN-{n:05d}.warc.gz" for n in range(3)]
    comment = b"# " + b"x" * 1021 + b"\n"  # 1 KiB, so whole lines fill the 96 MiB
    lines = [listed[0].encode() + b"\n", *repeated(comment, 96 * MIB), *(p.encode() + b"\n" for p in listed)]
    listing = _listing(tmp_path / "warc.paths.gz", lines)
    script = (
        "import json, sys\n"
        "from tamis.engine.inputs import read_paths_file\n"
        "def status(key):\n"
        "    return next(int(l.split()[1]) * 1024 for l in open('/proc/self/status') if l.startswith(key + ':'))\n"
        "open('/proc/self/clear_refs', 'w').write('5')\n"
        "before = status('VmRSS')\n"
        "paths = read_paths_file(sys.argv[1], 's3://commoncrawl/')\n"
        "print(json.dumps({'paths': paths, 'peak_growth': status('VmHWM') - before}))\n"
    )
    import json
    import os
    import subprocess
    import sys

    import tamis

    env = {**os.environ, "PYTHONPATH": str(Path(tamis.__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, "-c", script, str(listing)], capture_output=True, text=True, env=env,
                          timeout=120, check=True)
    result = json.loads(done.stdout)
    assert result["paths"] == ["s3://commoncrawl/" + p for p in [listed[0], *listed]]
    assert result["peak_growth"] < 16 * MIB, result["peak_growth"]


def test_paths_listing_of_common_crawl_size(tmp_path: Path) -> None:
    names = [f"crawl-data/CC-MAIN-2024-22/segments/{n // 1000}/warc/CC-MAIN-{n:06d}.warc.gz" for n in range(100_000)]
    listing = _listing(tmp_path / "warc.paths.gz", ["\n".join(names).encode() + b"\n"])
    paths = read_paths_file(str(listing), "s3://commoncrawl")
    assert paths == ["s3://commoncrawl/" + n for n in names]


@pytest.mark.parametrize("content", [b"a" * (8 * MIB), b"\xff\xfe not utf-8"], ids=["long_line", "binary"])
def test_hostile_paths_listing_is_a_clear_error(tmp_path: Path, content: bytes) -> None:
    listing = _listing(tmp_path / "warc.paths.gz", [b"crawl-data/ok.warc.gz\n", content, b"\ncrawl-data/b.warc.gz\n"])
    with pytest.raises(PathsFileError, match="line 2"):
        read_paths_file(str(listing), "s3://commoncrawl")
    with pytest.raises(PathsFileError, match="more than 1 files"):
        read_paths_file(str(_listing(tmp_path / "two.paths.gz", [b"a.warc.gz\nb.warc.gz\n"])), "/data", max_entries=1)
