"""A page cannot forge records for a byte range to start at.

A byte range of a file starts at the first record boundary after its start offset, found by looking at the
bytes. A page can hold bytes that look like a record: a gzip member of a made-up record, which zlib stores
verbatim in the page's own member when the bytes around it are incompressible, or a `WARC/` line in an
uncompressed file. A range that started there would read the made-up record as part of the crawl. These
tests cut a file at offsets inside such a page and require the ranges together to give exactly what the
whole file gives. The same forgery reached whole-file reads after a record that failed to parse, when the
reader looked for the next record inside the failed record's own bytes.
"""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import pytest
from hostile import real_pages, response

from tamis.readers.warc import WarcReader
from tamis.stats.counters import StepCounters

INJECTED = "http://injected.example/"
REAL = [f"http://example.com/{n}" for n in range(4)]


def _forged_records(count: int) -> bytes:
    made_up = b"<html><body><p>" + b"Made-up text of a page nobody crawled. " * 40 + b"</p></body></html>"
    return b"".join(gzip.compress(response(900 + i, made_up, url=INJECTED.encode())) for i in range(count))


def _hostile_page(forgery: bytes, seed: int) -> bytes:
    rng = random.Random(seed)
    noise = bytes(rng.randrange(256) for _ in range(2000))  # incompressible: stored as it is
    return b"<html><body><p>" + noise + forgery + noise + b"</p></body></html>"


def _urls(path: Path, byte_range: tuple[int, int] | None, counters: StepCounters | None = None) -> list[str]:
    counters = counters if counters is not None else StepCounters()
    return [url for batch in WarcReader().iter_batches(str(path), counters, None, byte_range) for url in batch["url"]]


def _write(tmp_path: Path, name: str, members: list[bytes]) -> tuple[Path, list[int]]:
    path = tmp_path / name
    path.write_bytes(b"".join(members))
    starts = [sum(map(len, members[:i])) for i in range(len(members))]
    return path, starts


@pytest.mark.parametrize("forged", [1, 3])
def test_a_page_cannot_forge_where_a_gzip_range_starts(tmp_path: Path, forged: int) -> None:
    """The page's own member is stored (level 0), as zlib stores incompressible bytes; the forged members
    inside it are ordinary members of made-up records, one or several in a row."""
    pages = [response(n, page) for n, page in enumerate(real_pages(4))]
    forgery = _forged_records(forged)
    hostile = response(99, _hostile_page(forgery, forged), url=b"http://hostile.example/")
    members = [gzip.compress(pages[0]), gzip.compress(pages[1]), gzip.compress(hostile, compresslevel=0),
               gzip.compress(pages[2]), gzip.compress(pages[3])]
    path, starts = _write(tmp_path, "forged.warc.gz", members)
    whole = _urls(path, None)
    assert INJECTED not in whole and whole[:2] == REAL[:2] and whole[-2:] == REAL[2:]
    forgery_at = path.read_bytes().index(forgery)
    for cut in sorted({starts[2] + 1, starts[2] + 200, forgery_at - 1, forgery_at, forgery_at + 1, starts[3] - 1,
                       starts[3], starts[3] + 1}):
        later = StepCounters()
        assert _urls(path, (0, cut)) + _urls(path, (cut, path.stat().st_size), later) == whole, cut
        if starts[2] < cut <= forgery_at:  # the forged members were passed over, and that is counted
            assert later.events["resynced"] == 1 and later.events["skipped_bytes"] > 0, cut


def test_a_page_cannot_forge_where_an_uncompressed_range_starts(tmp_path: Path) -> None:
    """In an uncompressed file a forged `WARC/` line can be given a length that runs to its page's real end:
    such files are read whole by their first range, whatever the cut."""
    pages = [response(n, page) for n, page in enumerate(real_pages(3))]
    forgery = b"\r\n" + response(900, b"<html><body><p>" + b"Made-up text. " * 40 + b"</p></body></html>",
                                 url=INJECTED.encode())
    hostile = response(99, b"<html><body><p>" + forgery + b"</p></body></html>", url=b"http://hostile.example/")
    path, starts = _write(tmp_path, "forged.warc", [pages[0], hostile, pages[1], pages[2]])
    whole = _urls(path, None)
    assert INJECTED not in whole and len(whole) == 4
    size = path.stat().st_size
    for cut in range(starts[1], starts[2] + 2, 37):
        first, rest = _urls(path, (0, cut)), _urls(path, (cut, size))
        assert first == whole and rest == [], cut


@pytest.mark.parametrize("where", ["http_header", "url"])
def test_a_page_cannot_forge_records_after_its_own_bad_header(tmp_path: Path, where: str) -> None:
    """A page whose record fails to parse (a server header or a URL over the reader's 64 KiB line cap) is
    skipped to the end of its own gzip member: scanning its bytes for the next record found the members it
    forged, even in a whole-file read."""
    long_line = b"a" * 100_000
    body = _hostile_page(_forged_records(2), 7)
    http_extra = b"X-Padding: " + long_line + b"\r\n" if where == "http_header" else b""
    url = b"http://hostile.example/" + (long_line if where == "url" else b"")
    first, last = (response(n, page) for n, page in enumerate(real_pages(2)))
    path, _ = _write(tmp_path, "header.warc.gz", [gzip.compress(first),
                                                  gzip.compress(response(99, body, http_extra, url), compresslevel=0),
                                                  gzip.compress(last)])
    counters = StepCounters()
    assert _urls(path, None, counters) == REAL[:2]
    assert counters.dropped["oversize_header"] == 1 and counters.events["resynced"] == 1
