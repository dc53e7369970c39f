"""Reads FineWeb-schema Parquet shards (a previous run's `data/`) as the input of a later pipeline.

`tamis ablate` uses it to run the steps that differ between variants on the output of the steps they
share, so extraction and language ID run once. Documents keep every column they had (id, url, text,
language, ...), so a later step sees what it would have seen in one long pipeline. There is no `html`
column: put extractors before the shards are written, not after this reader.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import ClassVar

import fsspec
import pyarrow.parquet as pq

from tamis.batch import DocBatch
from tamis.engine.layout import DUMP_NAME, UNKNOWN_DUMP, safe_dump
from tamis.stats.counters import StepCounters
from tamis.steps.base import Reader
from tamis.steps.registry import register_step


class Events:
    RECORDS = "records"
    BYTES_READ = "bytes_read"


@register_step("parquet_input")
class ParquetInputReader(Reader):
    """Reads Parquet shards written by tamis (FineWeb columns) as documents, for pipelines run in stages."""

    kind: ClassVar[str] = "reader"

    def __init__(self, dump: str | None = None, batch_size: int = 128):
        """
        Args:
            dump: value of the `dump` column; by default the one stored in the shard.
            batch_size: documents per batch handed to the next step.
        """
        if dump is not None and safe_dump(dump) != dump:
            raise ValueError(f"dump: {dump!r} is not a dump name (it becomes a folder name: it must match "
                             f"{DUMP_NAME.pattern} and not be '.' or '..')")
        self.dump = dump
        self.batch_size = batch_size

    def iter_batches(self, path: str, counters: StepCounters, limit: int | None = None,
                     byte_range: tuple[int, int] | None = None) -> Iterator[DocBatch]:
        """The documents of one shard in batches of `batch_size`; `limit` caps the documents read.

        With `byte_range`, only the row groups that start in [start, end) are read, so the engine can split
        a large shard between tasks and every row is read exactly once.
        """
        emitted = 0
        started = time.perf_counter()
        with fsspec.open(path, "rb") as handle:
            shard = pq.ParquetFile(handle)
            groups = list(range(shard.metadata.num_row_groups))
            if byte_range is not None:
                start, end = byte_range
                groups = [g for g in groups if start <= _row_group_offset(shard, g) < end]
            counters.event(Events.BYTES_READ, sum(shard.metadata.row_group(g).total_byte_size for g in groups))
            batches = shard.iter_batches(batch_size=self.batch_size, row_groups=groups) if groups else iter(())
            for record_batch in batches:
                if limit is not None:
                    record_batch = record_batch.slice(0, max(0, limit - emitted))
                rows = record_batch.num_rows
                if not rows:
                    break
                batch = DocBatch({name: record_batch.column(name).to_pylist() for name in record_batch.schema.names})
                if self.dump is not None:
                    batch.set_column("dump", [self.dump] * rows)
                elif "dump" not in batch:
                    batch.set_column("dump", [UNKNOWN_DUMP] * rows)
                else:
                    batch.set_column("dump", [safe_dump(d) for d in batch["dump"]])
                counters.event(Events.RECORDS, rows)
                counters.docs_in += rows
                counters.docs_out += rows
                emitted += rows
                counters.seconds += time.perf_counter() - started
                yield batch
                started = time.perf_counter()
                if limit is not None and emitted >= limit:
                    return
        counters.seconds += time.perf_counter() - started


def _row_group_offset(shard: pq.ParquetFile, group: int) -> int:
    """Where a row group's data starts in the file (its first column chunk)."""
    column = shard.metadata.row_group(group).column(0)
    offsets = [column.data_page_offset]
    if column.dictionary_page_offset is not None and column.dictionary_page_offset > 0:
        offsets.append(column.dictionary_page_offset)
    return min(offsets)
