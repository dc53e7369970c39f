"""Hostile WARC files, written straight to disk without holding their inflated size in memory.

Each file puts one hostile record between real ones (pages from ../shared/data), so a test can check both
that the hostile record is dropped by its reason and that its neighbours still come out.
"""

from __future__ import annotations

import gzip
import uuid
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

from conftest import AEB_PAGES

_MIB = 1 << 20


def real_pages(count: int) -> list[bytes]:
    return [gzip.decompress(p.read_bytes()) for p in sorted(AEB_PAGES.glob("*.html.gz"))[:count]]


def record_id(n: int) -> str:
    return f"<urn:uuid:{uuid.UUID(int=n)}>"


def warc_head(n: int, block_length: int, extra: bytes = b"", url: bytes | None = None) -> bytes:
    return (b"WARC/1.0\r\nWARC-Type: response\r\nWARC-Record-ID: " + record_id(n).encode()
            + b"\r\nWARC-Target-URI: " + (url or b"http://example.com/" + str(n).encode())
            + b"\r\nWARC-Date: 2024-05-01T00:00:00Z\r\nContent-Type: application/http; msgtype=response\r\n"
            + extra + b"Content-Length: " + str(block_length).encode() + b"\r\n\r\n")


def http_head(extra: bytes = b"", content_type: bytes = b"text/html; charset=utf-8") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: " + content_type + b"\r\n" + extra + b"\r\n"


def response(n: int, body: bytes, http_extra: bytes = b"", url: bytes | None = None) -> bytes:
    block = http_head(http_extra) + body
    return warc_head(n, len(block), url=url) + block + b"\r\n\r\n"


def repeated(piece: bytes, total: int) -> Iterator[bytes]:
    """`total` bytes of `piece` repeated, a MiB at a time."""
    chunk = piece * max(1, _MIB // len(piece))
    left = total
    while left > 0:
        yield chunk[:left]
        left -= len(chunk[:left])


def gzip_member(parts: Iterable[bytes]) -> bytes:
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
    return b"".join(compressor.compress(p) for p in parts) + compressor.flush()


def write_warc(path: Path, members: list[Iterable[bytes]], gzipped: bool = True) -> Path:
    """One record per member: each gzip-compressed as its own member, or written plain."""
    with open(path, "wb") as out:
        for parts in members:
            if gzipped:
                out.write(gzip_member(parts))
            else:
                for part in parts:
                    out.write(part)
    return path


def with_neighbours(path: Path, hostile: Iterable[bytes], gzipped: bool = True) -> tuple[Path, list[str]]:
    """A file of real page, hostile record, real page; returns it and the ids of the two real records."""
    first, last = real_pages(2)
    write_warc(path, [[response(1, first)], hostile, [response(3, last)]], gzipped)
    return path, [record_id(1), record_id(3)]


def long_header_line(size: int) -> Iterator[bytes]:
    """A WARC record whose header has one line of `size` bytes."""
    yield b"WARC/1.0\r\nWARC-Type: response\r\nWARC-Record-ID: " + record_id(2).encode() + b"\r\nX-Long: "
    yield from repeated(b"a", size)
    yield b"\r\nContent-Length: 0\r\n\r\n\r\n\r\n"


def many_header_lines(size: int, http: bool) -> Iterator[bytes]:
    """A record whose WARC (or HTTP) header block is `size` bytes of short lines."""
    lines = b"".join(repeated(b"X-Many: 1\r\n", size))
    body = b"<html><body>hello</body></html>"
    if http:
        block = http_head(lines) + body
        yield warc_head(2, len(block)) + block + b"\r\n\r\n"
    else:
        block = http_head() + body
        yield warc_head(2, len(block), lines) + block + b"\r\n\r\n"


def encoded_response(n: int, encoded: bytes, encoding: bytes, chunked: bool = False) -> bytes:
    """A response whose body is `encoded` with Content-Encoding `encoding` (optionally also chunked)."""
    extra = b"Content-Encoding: " + encoding + b"\r\n"
    body = encoded
    if chunked:
        extra += b"Transfer-Encoding: chunked\r\n"
        pieces = [encoded[i:i + 4000] for i in range(0, len(encoded), 4000)]
        body = b"".join(b"%x\r\n" % len(p) + p + b"\r\n" for p in pieces) + b"0\r\n\r\n"
    return response(n, body, extra)


def one_huge_chunk(size: int) -> Iterator[bytes]:
    """A chunked response declaring one chunk of `size` bytes (it really is that long)."""
    head = http_head(b"Transfer-Encoding: chunked\r\n")
    chunk_head = b"%x\r\n" % size
    block_length = len(head) + len(chunk_head) + size + len(b"\r\n0\r\n\r\n")
    yield warc_head(2, block_length) + head + chunk_head + b"<html><body>"
    yield from repeated(b"a", size - len(b"<html><body>"))
    yield b"\r\n0\r\n\r\n\r\n\r\n"


def gzip_bomb(size: int) -> bytes:
    """`size` bytes of spaces, gzip-compressed (about 1/200 of that at the fast level used here)."""
    return gzip_member(repeated(b" ", size))


def brotli_bomb(size: int) -> bytes:
    import brotli

    compressor = brotli.Compressor(quality=1)
    return b"".join(compressor.process(p) for p in repeated(b" ", size)) + compressor.finish()


_MEASURE = r"""
import json, sys, time
from tamis.readers.warc import WarcReader
from tamis.stats.counters import StepCounters

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024

results = []
for path in sys.argv[2:]:
    reader = WarcReader(**json.loads(sys.argv[1]))
    counters = StepCounters()
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")  # resets the peak RSS (VmHWM) to the current RSS
    before = status("VmRSS")
    cpu = time.process_time()
    ids = [i for batch in reader.iter_batches(path, counters) for i in batch["id"]]
    results.append({"path": path, "ids": ids, "dropped": dict(counters.dropped),
                    "peak_growth": status("VmHWM") - before, "cpu_seconds": round(time.process_time() - cpu, 3)})
print(json.dumps(results))
"""


def measure_in_subprocess(paths: list[Path], **reader_params: object) -> dict[str, dict]:
    """Read each file with a fresh WarcReader in a child process: its ids, drops, and how far the child's
    peak RSS rose while reading it (Linux: the peak is reset through /proc/self/clear_refs before each)."""
    import json
    import os
    import subprocess
    import sys

    import tamis

    src = str(Path(tamis.__file__).resolve().parents[1])  # the same tamis as the test's
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, "-c", _MEASURE, json.dumps(reader_params), *map(str, paths)],
                          capture_output=True, text=True, timeout=300, env=env, check=True)
    return {Path(r["path"]).name: r for r in json.loads(done.stdout.strip().splitlines()[-1])}


def blank_padding(size: int) -> Iterator[bytes]:
    """A good record followed by `size` bytes of empty lines (a few KiB once gzipped)."""
    yield response(2, b"<html><body>between</body></html>")
    yield from repeated(b"\r\n", size)
