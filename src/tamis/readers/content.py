"""A record's payload, de-chunked and decoded (gzip, deflate, br), never beyond its size cap.

warcio's `content_stream()` reads a whole HTTP chunk at once (up to 2 GiB as declared), inflates each
block without an output limit, and fails on every `br` record with brotli 1.2. Here the chunked coding is
undone in bounded pieces and the content coding runs through the bounded reader, so reading
`max_bytes + 1` bytes costs at most that much memory whatever the chunk sizes and compression ratio.
"""

from __future__ import annotations

from typing import Any

from warcio.recordloader import ArcWarcRecord

from tamis.readers.bounded import BoundedReader, HeaderLimits, new_inflater

_CHUNK_HEADER_MAX = 64
_PIECE = 1 << 16


class Dechunker:
    """HTTP/1.1 chunked transfer coding undone as a stream. As in warcio, a chunk header that does not
    parse means the body was not really chunked: the rest is passed through as it is."""

    def __init__(self, raw: Any):
        self.raw = raw
        self.left = 0
        self.done = False
        self.not_chunked = False
        self.pending = b""

    def read(self, size: int = _PIECE) -> bytes:
        parts: list[bytes] = []
        wanted = size
        while wanted > 0 and not self.done:
            if self.pending:
                piece, self.pending = self.pending[:wanted], self.pending[wanted:]
            elif self.not_chunked:
                piece = self.raw.read(wanted)
                if not piece:
                    self.done = True
            elif self.left == 0:
                self._next_chunk()
                continue
            else:
                piece = self.raw.read(min(self.left, wanted))
                if not piece:
                    self.done = True  # cut off inside a chunk: what arrived is the body
                self.left -= len(piece)
                if self.left == 0 and piece:
                    end = self.raw.read(2)
                    if end != b"\r\n":
                        self.pending, self.not_chunked = end, True
            parts.append(piece)
            wanted -= len(piece)
        return b"".join(parts)

    def _next_chunk(self) -> None:
        header = self.raw.readline(_CHUNK_HEADER_MAX)
        try:
            if not header.endswith(b"\r\n"):
                raise ValueError("no CRLF")
            size = int(header[:-2].split(b";", 1)[0], 16)
            if size < 0:
                raise ValueError("negative")
        except ValueError:
            self.pending, self.not_chunked = header, True
            if not header:
                self.done = True
            return
        if size == 0:
            self.done = True
            return
        self.left = size


def content_encoding(record: ArcWarcRecord) -> str | None:
    """The payload's Content-Encoding when it is one we decode (gzip, deflate, br), else None."""
    if not record.http_headers:
        return None
    encoding = (record.http_headers.get_header("Content-Encoding") or "").strip().lower()
    return encoding if encoding and new_inflater(encoding) is not None else None


def payload_stream(record: ArcWarcRecord, limits: HeaderLimits) -> Any:
    """A stream of the record's payload: de-chunked, then decoded, each step bounded."""
    if not record.http_headers:
        return record.raw_stream
    stream: Any = record.raw_stream
    if (record.http_headers.get_header("Transfer-Encoding") or "").strip().lower() == "chunked":
        stream = Dechunker(stream)
    encoding = content_encoding(record)
    if encoding is not None:
        stream = BoundedReader(stream, limits, decomp_type=encoding)
    return stream


def read_payload(record: ArcWarcRecord, max_bytes: int, limits: HeaderLimits) -> bytes:
    """At most `max_bytes + 1` bytes of the decoded payload (one more than the cap shows it is over)."""
    stream = payload_stream(record, limits)
    parts: list[bytes] = []
    wanted = max_bytes + 1
    while wanted > 0:
        piece = stream.read(min(wanted, _PIECE))
        if not piece:
            break
        parts.append(piece)
        wanted -= len(piece)
    return b"".join(parts)
