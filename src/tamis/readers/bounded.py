"""warcio's record framing with bounded memory and linear time on hostile input.

warcio reads header lines with an unbounded `readline()` that grows the line by concatenation (quadratic
on a long line of a plain file) and inflates each gzip block without an output limit (a 16 KiB block of a
gzip bomb becomes 16 MiB). Here the same parsing runs over a reader whose lines are capped (an oversize
line or header block raises `OversizeHeader`, which the WARC reader counts and resyncs past), whose lines
are assembled from a list of parts (linear time), and whose inflation never produces more than a fixed
amount of output per step, so no header is ever materialised beyond its cap.
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass
from io import BytesIO
from typing import Any, BinaryIO

from warcio.archiveiterator import ArchiveIterator
from warcio.bufferedreaders import BufferedReader
from warcio.recordloader import ArcWarcRecord

log = logging.getLogger(__name__)

#: most bytes one inflation step may produce; bounds the reader's buffer whatever the compression ratio
INFLATE_STEP = 1 << 20
DEFAULT_MAX_HEADER_LINE = 64 * 2**10
DEFAULT_MAX_HEADER_BLOCK = 2**20


class OversizeHeader(Exception):
    """A header line or a record's header block is longer than the reader's cap."""


@dataclass(frozen=True)
class HeaderLimits:
    #: bytes of one header line, its line ending included
    max_line: int = DEFAULT_MAX_HEADER_LINE
    #: bytes of a record's header block: the WARC headers and the HTTP headers together
    max_block: int = DEFAULT_MAX_HEADER_BLOCK


class BrotliInflater:
    """brotli's incremental decoder behind zlib's decompressobj interface (`decompress(data, max_length)`,
    `unconsumed_tail`, `unused_data`, `eof`), so the bounded reader drives both the same way.

    brotli 1.2's `Decompressor` has `process(data, output_buffer_limit=)` and no `decompress` or
    `unused_data` (warcio's own br support assigns `unused_data` on it and fails with AttributeError).
    After a call that hits the output limit, brotli accepts no input until its pending output is drained,
    so input given meanwhile is handed back as `unconsumed_tail`.
    """

    def __init__(self) -> None:
        import brotli

        self._decoder = brotli.Decompressor()
        self.unused_data = b""
        self.unconsumed_tail = b""

    @property
    def eof(self) -> bool:
        return self._decoder.is_finished()

    def decompress(self, data: bytes, max_length: int = 0) -> bytes:
        if self._decoder.is_finished():
            self.unused_data += data
            return b""
        if data and not self._decoder.can_accept_more_data():
            self.unconsumed_tail = data
            return self._decoder.process(b"", output_buffer_limit=max_length)
        self.unconsumed_tail = b""
        return self._decoder.process(data, output_buffer_limit=max_length)

    def flush(self) -> bytes:
        return b""


def new_inflater(encoding: str) -> Any:
    """A decompressor for an HTTP Content-Encoding or warcio's gzip framing, or None if unknown."""
    encoding = encoding.lower()
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompressobj()
    if encoding == "deflate_alt":
        return zlib.decompressobj(-zlib.MAX_WBITS)
    if encoding == "br":
        return BrotliInflater()
    return None


class BoundedReader(BufferedReader):
    """warcio's BufferedReader with capped lines, bounded inflation and linear-time line assembly.

    `block_budget`, when set, is how many more header bytes the current record may read by lines; the
    archive iterator sets it for the length of a record's header parsing.
    """

    def __init__(self, stream: BinaryIO, limits: HeaderLimits, decomp_type: str | None = "gzip",
                 inflate_step: int = INFLATE_STEP, **kwargs: Any):
        self._tail = b""
        self.limits = limits
        self.inflate_step = inflate_step
        self.block_budget: int | None = None
        super().__init__(stream, decomp_type=decomp_type, **kwargs)

    def _init_decomp(self, decomp_type: str | None) -> None:
        self.num_block_read = 0
        self._tail = b""
        self.decomp_type = decomp_type
        self.decompressor = new_inflater(decomp_type) if decomp_type else None
        if decomp_type and self.decompressor is None:
            raise ValueError(f"unsupported compression {decomp_type!r}")

    def _fillbuff(self, block_size: int | None = None) -> None:
        if not self.empty():
            return
        if self.decompressor is not None and self.decompressor.unused_data:
            return  # this gzip member is finished; the next one is started by read_next_member
        while True:
            if self._tail:
                data, self._tail = self._tail, b""
            elif self.starting_data:
                data, self.starting_data = self.starting_data, None
            else:
                data = self.stream.read(block_size or self.block_size)
            if not data and self.decompressor is not None and not self.decompressor.eof and self.num_block_read:
                self._process_read_bytes(self._drain())  # input exhausted: what the decoder still holds
                return
            self._process_read(data)
            if not data or self.decompressor is None or self.decompressor.unused_data or not self.empty():
                return

    def _drain(self) -> bytes:
        try:
            return self.decompressor.decompress(b"", self.inflate_step)
        except Exception:  # noqa: BLE001 - a stream cut inside a member ends there, as in warcio
            return b""

    def _process_read_bytes(self, data: bytes) -> None:
        if not data:
            self.buff = None
            return
        self.buff_size = len(data)
        self.num_read += self.buff_size
        self.num_block_read += self.buff_size
        self.buff = BytesIO(data)

    def _decompress(self, data: bytes) -> bytes:
        if self.decompressor is None or not data:
            return data
        try:
            out = self.decompressor.decompress(data, self.inflate_step)
        except Exception as exc:  # noqa: BLE001 - zlib.error, brotli.error
            if self.num_block_read == 0:
                # as in warcio: a first block that does not inflate means the stream is not compressed
                if self.decomp_type == "deflate":
                    self._init_decomp("deflate_alt")
                    return self._decompress(data)
                self.decompressor = None
                return data
            log.debug("inflation failed mid-stream (%s); the stream ends here", exc)
            self._tail = b""
            return b""
        self._tail = self.decompressor.unconsumed_tail
        return out

    def rem_length(self) -> int:
        return super().rem_length() + len(self._tail)

    def readline(self, length: int | None = None) -> bytes:
        """One line, at most `length` bytes; a longer line than the cap raises OversizeHeader."""
        if length == 0:
            return b""
        cap = self.limits.max_line
        want = cap if length is None or length > cap else length
        parts: list[bytes] = []
        size = 0
        while size < want:
            self._fillbuff()
            if self.empty():
                break
            part = self.buff.readline(want - size)
            parts.append(part)
            size += len(part)
            if part.endswith(b"\n"):
                break
        line = b"".join(parts)
        if size >= cap and not line.endswith(b"\n") and (length is None or length > cap):
            raise OversizeHeader(f"header line longer than {cap} bytes")
        if self.block_budget is not None:
            self.block_budget -= size
            if self.block_budget < 0:
                raise OversizeHeader(f"header block longer than {self.limits.max_block} bytes")
        return line


class BoundedArchiveIterator(ArchiveIterator):
    """warcio's ArchiveIterator over a BoundedReader, with a header budget per record."""

    def __init__(self, fileobj: BinaryIO, limits: HeaderLimits = HeaderLimits(), **kwargs: Any):
        super().__init__(fileobj, **kwargs)
        self.limits = limits
        self.reader = BoundedReader(self.fh, limits, decomp_type="gzip", block_size=self.reader.block_size)

    def read_to_end(self, record: ArcWarcRecord | None = None) -> None:
        """The blank lines after a record count against a header budget too: a megabyte of empty lines
        (a few bytes of gzip) would otherwise cost a Python call per line."""
        self.reader.block_budget = self.limits.max_block
        try:
            super().read_to_end(record)
        finally:
            self.reader.block_budget = None

    def _next_record(self, next_line: bytes | None) -> ArcWarcRecord:
        self.reader.block_budget = self.limits.max_block - len(next_line or b"")
        try:
            return super()._next_record(next_line)
        finally:
            self.reader.block_budget = None
