"""Streaming WARC/WET reader that survives corrupt input.

warcio parses the records; this module decides which records are documents, decodes them, and, when a
record is corrupt (bad headers, truncated gzip member, wrong Content-Length, garbage bytes), counts the
reason, finds the next record boundary in the raw bytes and carries on, so one bad record costs one
record, not the rest of the file.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import fsspec
from warcio.exceptions import ArchiveLoadFailed
from warcio.recordloader import ArcWarcRecord
from warcio.statusandheaders import StatusAndHeadersParserException

from tamis.batch import DocBatch
from tamis.engine.layout import DUMP_NAME, UNKNOWN_DUMP, safe_dump
from tamis.io.redact import public_url
from tamis.readers.bounded import (
    DEFAULT_MAX_HEADER_BLOCK,
    DEFAULT_MAX_HEADER_LINE,
    BoundedArchiveIterator,
    HeaderLimits,
    OversizeHeader,
)
from tamis.readers.content import content_encoding, read_payload
from tamis.readers.decode import CHARSET_DETECTION, decode_payload
from tamis.stats.counters import StepCounters
from tamis.steps.base import Reader
from tamis.steps.registry import register_step

log = logging.getLogger(__name__)

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
DOC_RECORD_TYPES = frozenset({"response", "conversion", "resource"})
_DUMP_IN_PATH = re.compile(r"CC-MAIN-\d{4}-\d{2}", re.IGNORECASE)
_GZIP_MAGIC = b"\x1f\x8b\x08"
_SCAN_CHUNK = 1 << 20
READER_COLUMNS = ("id", "url", "date", "dump", "file_path", "html", "text")
#: see WarcReader's `state_block_bytes`: a quarter of a Common Crawl file, so the deduplicate cache still
#: sees thousands of pages at once, and a byte-range limit can be any multiple of it
DEFAULT_STATE_BLOCK_BYTES = 64 * 2**20


class Reasons:
    """Why a record did not become a document (counter names, declared once)."""

    NOT_HTML = "not_html"
    TOO_LARGE = "too_large"
    #: a gzip/deflate/br payload whose decoded size passes max_payload_bytes (a page that big, or a bomb)
    DECODED_TOO_LARGE = "too_large_decoded"
    #: a header line or a record's header block longer than the reader's caps (hostile or broken)
    OVERSIZE_HEADER = "oversize_header"
    UNDECODABLE = "undecodable"
    EMPTY = "empty_payload"
    MALFORMED_HEADER = "corrupt_header"
    MALFORMED_RECORD = "corrupt_record"
    DECOMPRESSION = "corrupt_gzip"
    TRUNCATED = "truncated"
    UNREADABLE = "unreadable"


class Events:
    RECORDS = "records"
    RESYNC = "resynced"
    SKIPPED_BYTES = "skipped_bytes"
    BYTES_READ = "bytes_read"


def classify_error(exc: BaseException) -> str:
    if isinstance(exc, OversizeHeader):
        return Reasons.OVERSIZE_HEADER
    if isinstance(exc, StatusAndHeadersParserException):
        return Reasons.MALFORMED_HEADER
    if isinstance(exc, zlib.error):
        return Reasons.DECOMPRESSION
    if isinstance(exc, EOFError):
        return Reasons.TRUNCATED
    if isinstance(exc, ArchiveLoadFailed):
        return Reasons.MALFORMED_RECORD
    if isinstance(exc, (ValueError, KeyError, IndexError, UnicodeError)):
        return Reasons.MALFORMED_RECORD
    return Reasons.UNREADABLE


def _mime(value: str | None) -> str | None:
    if not value:
        return None
    return value.split(";", 1)[0].strip().lower() or None


def _looks_like_html(payload: bytes) -> bool:
    head = payload[:1024].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<?xml")) or b"<html" in head or b"<body" in head


class _DamagedRecord(Exception):
    """Damage found by our own checks rather than by warcio."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class RawRecord:
    """A record that passed the type checks, with its payload read and bounded."""

    offset: int
    record_type: str
    headers: dict[str, str]
    content_type: str | None
    mime: str | None
    payload: bytes


@register_step("warc")
class WarcReader(Reader):
    """Reads WARC (0.17–1.1), WET and ARC files, gzip (multi-member) or not, from any fsspec URL."""

    def __init__(
        self,
        dump: str | None = None,
        max_payload_bytes: int = 10 * 2**20,
        batch_size: int = 128,
        batch_bytes: int = 32 * 2**20,
        keep_wet_text: bool = True,
        max_header_line: int = DEFAULT_MAX_HEADER_LINE,
        max_header_block: int = DEFAULT_MAX_HEADER_BLOCK,
        state_block_bytes: int = DEFAULT_STATE_BLOCK_BYTES,
        charset_detection: str = "fineweb",
    ):
        """
        Args:
            dump: value of the `dump` column; by default the `CC-MAIN-YYYY-WW` in the file path, else the
                warcinfo record's `isPartOf`, else "unknown".
            max_payload_bytes: pages larger than this are skipped (counted as `too_large`) rather than
                parsed; Common Crawl truncates payloads at 1 MiB, so the default only stops pathologies.
            batch_size: documents per batch handed to the next step.
            batch_bytes: a batch is also cut when its HTML reaches this size, bounding task memory.
            keep_wet_text: read WET `conversion` records (already text) as documents.
            max_header_line: bytes of one WARC or HTTP header line; a longer one drops its record as
                `oversize_header` (the reader resyncs at the next record) without reading it whole.
            max_header_block: bytes of a record's WARC and HTTP headers together, same treatment.
            state_block_bytes: steps that carry state from page to page (trafilatura's `deduplicate` cache)
                start afresh at every multiple of this offset in the file (by where a record starts), and
                `--max-task-bytes` cuts byte ranges only there: so a split file gives byte for byte what the
                whole file gives. It is part of the recipe (it changes which earlier pages a page is compared
                with), hence a reader parameter in the fingerprint, not a run option.
            charset_detection: how a page that is not valid UTF-8 becomes text (tamis.readers.decode):
                `fineweb`, FineWeb's own way (uchardet's guess, so the text is FineWeb's), or `declared` (the
                header's and the page's declared charsets first: fewer garbled pages, not FineWeb's text).
        """
        if dump is not None and safe_dump(dump) != dump:
            raise ValueError(f"dump: {dump!r} is not a dump name (it becomes a folder name: it must match "
                             f"{DUMP_NAME.pattern} and not be '.' or '..')")
        for name, value, least in (("max_payload_bytes", max_payload_bytes, 1), ("batch_size", batch_size, 1),
                                   ("batch_bytes", batch_bytes, 1), ("max_header_line", max_header_line, 256),
                                   ("max_header_block", max_header_block, 1024),
                                   ("state_block_bytes", state_block_bytes, 1)):
            if value < least:
                raise ValueError(f"{name}: must be at least {least}, got {value}")
        if charset_detection not in CHARSET_DETECTION:
            raise ValueError(f"charset_detection: expected one of {', '.join(CHARSET_DETECTION)}, "
                             f"got {charset_detection!r}")
        if max_header_block < max_header_line:
            raise ValueError(f"max_header_block: must be at least max_header_line ({max_header_line}), "
                             f"got {max_header_block}")
        self.dump = dump
        self.max_payload_bytes = max_payload_bytes
        self.batch_size = batch_size
        self.batch_bytes = batch_bytes
        self.keep_wet_text = keep_wet_text
        self.header_limits = HeaderLimits(max_header_line, max_header_block)
        self.max_header_line = max_header_line
        self.max_header_block = max_header_block
        self.state_block_bytes = state_block_bytes
        self.charset_detection = charset_detection

    # -- raw record stream with recovery -------------------------------------------------------------------

    def iter_raw_records(
        self, path: str, counters: StepCounters, start: int = 0, end: int | None = None
    ) -> Iterator[RawRecord]:
        """Every document-type record of the file, payload read; corrupt stretches counted and skipped.

        With a byte range, exactly the records that *start* in [start, end) are read, so ranges that tile a
        file read each record once. warcio stops quietly at some damage (a gzip member failing its CRC ends
        the iteration without an error), so an iteration that ends before the end of the file is damage too.
        """
        with fsspec.open(path, "rb") as raw:
            gzipped = raw.read(2) == _GZIP_MAGIC[:2]
            size = raw.seek(0, 2)
            stop = size if end is None else min(end, size)
            if not gzipped:  # read whole by its first range (see _range_start)
                if start > 0:
                    return
                stop = size
            position: int | None = 0 if start <= 0 else self._range_start(raw, start, stop, size, counters)
            last_start = -1
            # bytes_read grows as records are reached (the progress line's MB/s is live over a long file);
            # the total is the range's size whatever the damage, as if counted once at the end
            counted = max(start, 0)
            while position is not None and position < stop:
                raw.seek(position)
                iterator = BoundedArchiveIterator(raw, self.header_limits, arc2warc=True)
                try:
                    for record in iterator:
                        last_start = iterator.offset
                        if last_start >= stop:
                            break
                        if last_start > counted:
                            counters.event(Events.BYTES_READ, last_start - counted)
                            counted = last_start
                        counters.event(Events.RECORDS)
                        raw_record = self._read_record(record, last_start, counters)
                        if raw_record is not None:
                            yield raw_record
                    else:
                        finished_at = iterator.offset
                        if finished_at < stop and size - finished_at > 4 and (
                            self._next_boundary(raw, finished_at, gzipped) is not None
                        ):
                            raise _DamagedRecord(Reasons.DECOMPRESSION if gzipped else Reasons.MALFORMED_RECORD)
                    break
                except MemoryError:
                    raise  # not damage: the task's memory ceiling (tamis.engine.memory) fails this input
                except Exception as exc:  # noqa: BLE001 - any parse failure is data damage, never fatal
                    failed_at = max(getattr(iterator, "offset", position), last_start, position)
                    if failed_at >= stop:
                        break  # damage in the next range's records is the next range's to count
                    reason = exc.reason if isinstance(exc, _DamagedRecord) else classify_error(exc)
                    counters.drop(reason)
                    log.warning("%s: %s near byte %d (%.120r); skipping to the next record",
                                public_url(path), reason, failed_at, str(exc))
                    # a record that fails inside a whole gzip member (a hostile header, say) is skipped to exactly
                    # that member's end: its bytes may hold members the page forged (see _range_start)
                    member_end = _member_end(raw, failed_at, size) if gzipped else None
                    position = member_end if member_end is not None else self._next_boundary(raw, failed_at + 1,
                                                                                           gzipped)
                    if position is not None:
                        counters.event(Events.RESYNC)
                        counters.event(Events.SKIPPED_BYTES, min(position, stop) - failed_at)
                    last_start = (position or 0) - 1
            counters.event(Events.BYTES_READ, max(0, stop - counted))

    def dump_of_file(self, path: str) -> str:
        """The dump a file belongs to: the `dump` parameter, the path, or its warcinfo record's isPartOf."""
        if self.dump:
            return self.dump
        from_path = _dump_from_path(public_url(path))
        if from_path:
            return from_path
        with fsspec.open(path, "rb") as raw:
            try:
                for record in BoundedArchiveIterator(raw, self.header_limits, arc2warc=True):
                    if record.rec_type != "warcinfo":
                        break
                    self._note_warcinfo(record)
                    if self._warcinfo_dump:
                        return self._warcinfo_dump
            except Exception:  # noqa: BLE001 - a damaged head only means we don't know the dump
                pass
        return UNKNOWN_DUMP

    def _read_record(self, record: ArcWarcRecord, offset: int, counters: StepCounters) -> RawRecord | None:
        record_type = record.rec_type
        if record_type not in DOC_RECORD_TYPES:
            if record_type == "warcinfo":
                self._note_warcinfo(record)
            return None
        counters.docs_in += 1
        headers = record.rec_headers
        payload_type = _mime(headers.get_header("WARC-Identified-Payload-Type"))
        http_type = record.http_headers.get_header("Content-Type") if record.http_headers else None
        block_type = headers.get_header("Content-Type")
        content_type = http_type or (block_type if record_type != "response" else None)
        mime = payload_type or _mime(content_type)
        is_wet_text = record_type == "conversion" and mime in (None, "text/plain")
        if is_wet_text and not self.keep_wet_text:
            counters.drop(Reasons.NOT_HTML)
            return None
        if not is_wet_text and mime is not None and mime not in HTML_TYPES:
            counters.drop(Reasons.NOT_HTML)
            return None
        payload = read_payload(record, self.max_payload_bytes, self.header_limits)
        if len(payload) > self.max_payload_bytes:
            counters.drop(Reasons.DECODED_TOO_LARGE if content_encoding(record) else Reasons.TOO_LARGE)
            return None
        while record.raw_stream.read(65536):
            pass
        if getattr(record.raw_stream, "limit", 0) > 0:
            # the block ended before its Content-Length: a truncated file, or a damaged gzip member
            raise _DamagedRecord(Reasons.TRUNCATED)
        if not payload.strip():
            counters.drop(Reasons.EMPTY)
            return None
        if mime is None and not is_wet_text and not _looks_like_html(payload):
            counters.drop(Reasons.NOT_HTML)
            return None
        header_map = {
            "id": headers.get_header("WARC-Record-ID") or "",
            "url": headers.get_header("WARC-Target-URI") or headers.get_header("uri") or "",
            "date": headers.get_header("WARC-Date") or headers.get_header("archive-date") or "",
        }
        return RawRecord(offset, record_type, header_map, content_type, "text/plain" if is_wet_text else mime, payload)

    def _note_warcinfo(self, record: ArcWarcRecord) -> None:
        if self._warcinfo_dump is not None:
            return
        try:
            body = record.raw_stream.read(65536).decode("utf-8", "replace")
        except Exception:  # noqa: BLE001 - warcinfo is optional metadata
            return
        match = re.search(r"^isPartOf:[ \t]*(\S*)", body, re.MULTILINE)
        if match:
            # the dump becomes a folder name: anything but a plain name is "unknown", never a path
            self._warcinfo_dump = safe_dump(match.group(1))

    def _range_start(self, raw: BinaryIO, start: int, stop: int, size: int, counters: StepCounters) -> int | None:
        """Where a byte range of a gzip file starts reading: the first plausible record start at or after `start`
        from which whole gzip members, each starting like a record, follow one another for
        `max_payload_bytes` (or to the end of the file).

        A page's bytes can hold what looks like a record: a gzip member of a forged record, stored verbatim
        in the deflate data of the page's own member (zlib stores incompressible bytes as they are). A range
        that started there would read the forgery as records of the crawl. A forged chain ends inside the
        page that holds it, never where the page's real member ends (that needs the real member's CRC), so
        one that does not run on past a page the reader would keep is no record boundary. The same forgery
        in an uncompressed file could run on to its record's real end, so those files are never cut: their
        first range reads them whole. A start passed over (a forgery, or damage right after a real start) is
        counted as a resync and its skipped bytes.
        """
        first = candidate = self._next_boundary(raw, start, True)
        while candidate is not None and candidate < stop:
            if _members_chain(raw, candidate, min(size, candidate + self.max_payload_bytes), size):
                break
            candidate = self._next_boundary(raw, candidate + 1, True)
        if first is not None and candidate != first:
            counters.event(Events.RESYNC)
            counters.event(Events.SKIPPED_BYTES, min(candidate if candidate is not None else size, stop) - first)
        return candidate

    @staticmethod
    def _next_boundary(raw: BinaryIO, start: int, gzipped: bool) -> int | None:
        """Offset of the next plausible record start at or after `start`, or None at end of file.

        In a gzip file a record starts a gzip member whose first bytes inflate to a record header; in an
        uncompressed file a record starts with `WARC/` at the start of a line.
        """
        position = start
        marker = _GZIP_MAGIC if gzipped else b"WARC/"
        while True:
            raw.seek(position)
            chunk = raw.read(_SCAN_CHUNK + 16)
            if len(chunk) < len(marker):
                return None
            found = chunk.find(marker)
            while found != -1:
                candidate = position + found
                if gzipped:
                    head = chunk[found : found + 4096]
                    if len(head) < 4096:
                        head = _read_at(raw, candidate, 4096)
                    if _gzip_member_is_record(head):
                        return candidate
                elif candidate == 0 or (found > 0 and chunk[found - 1 : found] == b"\n"):
                    return candidate
                elif found == 0 and _read_at(raw, candidate - 1, 1) == b"\n":
                    return candidate
                found = chunk.find(marker, found + 1)
            if len(chunk) <= _SCAN_CHUNK:
                return None
            position += _SCAN_CHUNK

    # -- documents ---------------------------------------------------------------------------------------

    def iter_batches(
        self, path: str, counters: StepCounters, limit: int | None = None, byte_range: tuple[int, int] | None = None
    ) -> Iterator[DocBatch]:
        """Documents of `path` (or of the records starting in `byte_range`) in bounded batches; `limit` caps
        the documents read.

        The reader's `seconds` count only its own work, not the time the consumer spends between batches.
        """
        self._warcinfo_dump = None
        public_path = public_url(path)  # what the file_path column says: never credentials or a signature
        path_dump = self.dump or _dump_from_path(public_path)
        start, end = byte_range if byte_range is not None else (0, None)
        if start > 0 and path_dump is None:
            # a later range never sees the file's warcinfo record: look it up so all ranges agree
            path_dump = self.dump_of_file(path)
        columns: dict[str, list[Any]] = {name: [] for name in READER_COLUMNS}
        batch_bytes = 0
        emitted = 0
        block = max(start, 0) // self.state_block_bytes
        started = time.perf_counter()

        def emit() -> Iterator[DocBatch]:
            """Hand the pending documents on as one batch (the time the consumer takes is not ours)."""
            nonlocal columns, batch_bytes, started
            counters.seconds += time.perf_counter() - started
            yield DocBatch(columns, block)
            started = time.perf_counter()
            columns = {name: [] for name in READER_COLUMNS}
            batch_bytes = 0

        for raw in self.iter_raw_records(path, counters, start, end):
            text = decode_payload(raw.payload, raw.content_type, self.charset_detection)
            if text is None:
                counters.drop(Reasons.UNDECODABLE)
                continue
            record_block = raw.offset // self.state_block_bytes
            if record_block != block:
                # a batch never spans two state blocks: the steps reset their state between them
                if columns["id"]:
                    yield from emit()
                block = record_block
            is_text = raw.mime == "text/plain"
            columns["id"].append(raw.headers["id"] or _synthetic_id(public_path, raw.offset))
            columns["url"].append(raw.headers["url"])
            columns["date"].append(raw.headers["date"])
            columns["dump"].append(path_dump or self._warcinfo_dump or UNKNOWN_DUMP)
            columns["file_path"].append(public_path)
            columns["html"].append(None if is_text else text)
            columns["text"].append(text if is_text else None)
            batch_bytes += len(raw.payload)
            counters.docs_out += 1
            emitted += 1
            done = limit is not None and emitted >= limit
            if len(columns["id"]) >= self.batch_size or batch_bytes >= self.batch_bytes or done:
                yield from emit()
            if done:
                break
        counters.seconds += time.perf_counter() - started
        if columns["id"]:
            yield DocBatch(columns, block)

    _warcinfo_dump: str | None = None


def _read_at(raw: BinaryIO, offset: int, size: int = 65536) -> bytes:
    here = raw.tell()
    raw.seek(offset)
    data = raw.read(size)
    raw.seek(here)
    return data


def _members_chain(raw: BinaryIO, offset: int, horizon: int, size: int) -> bool:
    """Do whole gzip members, each starting like a record, follow one another from `offset` to `horizon` (or to
    the end of the file)? Each member is inflated to its end (its CRC checked), its output thrown away."""
    position = offset
    while position < horizon:
        if not _gzip_member_is_record(_read_at(raw, position, 4096)):
            return False
        end = _member_end(raw, position, size)
        if end is None:
            return False
        position = end
    return True


def _member_end(raw: BinaryIO, offset: int, size: int) -> int | None:
    """Where the gzip member at `offset` ends, or None if it does not inflate whole (damage or a forgery)."""
    inflater = zlib.decompressobj(31)
    position = offset
    step = 1 << 16  # most members are tens of KB: read a little, then more
    try:
        while position < size:
            chunk = _read_at(raw, position, step)
            step = min(2 * step, _SCAN_CHUNK)
            if not chunk:
                return None
            position += len(chunk)
            data = chunk
            while data and not inflater.eof:
                inflater.decompress(data, _SCAN_CHUNK)
                data = inflater.unconsumed_tail
            if inflater.eof:
                return position - len(inflater.unused_data)
    except zlib.error:
        return None
    return None


def _gzip_member_is_record(data: bytes) -> bool:
    """Does a gzip member start here whose content starts like a WARC or ARC record?"""
    try:
        head = zlib.decompressobj(31).decompress(data, 64)
    except zlib.error:
        return False
    return head.startswith((b"WARC/", b"filedesc://")) or (len(head) >= 8 and b"://" in head[:64])


def _dump_from_path(path: str) -> str | None:
    match = _DUMP_IN_PATH.search(path)
    return match.group(0).upper() if match else None


def _synthetic_id(path: str, offset: int) -> str:
    digest = hashlib.sha1(f"{path}:{offset}".encode()).hexdigest()
    return f"<urn:tamis:{digest}>"
