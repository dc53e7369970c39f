"""Parquet shards in FineWeb's schema: zstd, fixed column types, row groups of bounded size."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import pyarrow as pa
import pyarrow.parquet as pq
from fsspec import AbstractFileSystem

from tamis.batch import DocBatch
from tamis.engine.layout import safe_dump
from tamis.io.storage import temporary_name
from tamis.steps.base import Step
from tamis.steps.registry import register_step

FINEWEB_SCHEMA = pa.schema(
    [
        ("text", pa.string()),
        ("id", pa.string()),
        ("dump", pa.string()),
        ("url", pa.string()),
        ("date", pa.string()),
        ("file_path", pa.string()),
        ("language", pa.string()),
        ("language_score", pa.float64()),
        ("token_count", pa.int64()),
    ]
)


#: columns FineWeb-2 adds to FineWeb's (its published rows), with their types; any other extra column is a string
FINEWEB2_COLUMNS = {
    "language_script": pa.string(),
    "minhash_cluster_size": pa.int64(),
    "top_langs": pa.string(),
}
KNOWN_COLUMN_TYPES = {**FINEWEB2_COLUMNS, "minhash_cluster_id": pa.int64()}
PARTITIONS = ("dump", "language")


def partition_keys(batch: DocBatch, partition_by: str) -> list[str]:
    """The folder under data/ of each document: its dump, or its language label `<code>_<Script>`
    (FineWeb-2's layout; the code alone when no script was recorded)."""
    n = len(batch)
    if partition_by == "dump":
        dumps = batch["dump"] if "dump" in batch else [None] * n
        return [safe_dump(d) for d in dumps]
    languages = batch["language"] if "language" in batch else [None] * n
    scripts = batch["language_script"] if "language_script" in batch else [None] * n
    return [safe_dump(f"{lang}_{script}" if lang and script else lang)
            for lang, script in zip(languages, scripts, strict=True)]


@dataclass
class WrittenShard:
    path: str
    rows: int
    tokens: int
    text_bytes: int
    file_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def table_for(batch: DocBatch, schema: pa.Schema) -> pa.Table:
    """The batch as a table of exactly `schema`'s columns; columns no step produced are null."""
    n = len(batch)
    arrays = [
        pa.array(batch[f.name], type=f.type) if f.name in batch else pa.nulls(n, type=f.type) for f in schema
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


class ShardWriter:
    """One Parquet file, written under a temporary name and renamed into place by `commit()`."""

    def __init__(self, fs: AbstractFileSystem, path: str, schema: pa.Schema, compression: str,
                 compression_level: int | None, row_group_bytes: int, row_group_rows: int):
        self.fs = fs
        self.path = path
        self.schema = schema
        self.compression = compression
        self.compression_level = compression_level
        self.row_group_bytes = row_group_bytes
        self.row_group_rows = row_group_rows
        self._tmp = temporary_name(path)
        self._pending: list[pa.Table] = []
        self._pending_bytes = 0
        self._pending_rows = 0
        self._writer: pq.ParquetWriter | None = None
        self._handle: Any = None
        self.rows = 0
        self.tokens = 0
        self.text_bytes = 0

    def write(self, batch: DocBatch) -> None:
        if not len(batch):
            return
        table = table_for(batch, self.schema)
        self._pending.append(table)
        self._pending_bytes += table.nbytes
        self._pending_rows += table.num_rows
        self.rows += table.num_rows
        if "token_count" in batch:
            self.tokens += sum(count for count in batch["token_count"] if count is not None)
        self.text_bytes += sum(len(text.encode("utf-8")) for text in batch["text"] if text)
        if self._pending_bytes >= self.row_group_bytes or self._pending_rows >= self.row_group_rows:
            self.flush()

    @property
    def pending_bytes(self) -> int:
        """Arrow bytes buffered for the next row group (what this writer holds in memory)."""
        return self._pending_bytes

    def flush(self) -> None:
        """Write what is buffered as a row group now (also called by a caller sharing one memory budget among
        writers)."""
        if not self._pending:
            return
        if self._writer is None:
            self.fs.makedirs(posixpath.dirname(self.path), exist_ok=True)
            self._handle = self.fs.open(self._tmp, "wb")
            self._writer = pq.ParquetWriter(
                self._handle, self.schema, compression=self.compression, compression_level=self.compression_level
            )
        table = pa.concat_tables(self._pending)
        self._writer.write_table(table, row_group_size=table.num_rows)
        self._pending, self._pending_bytes, self._pending_rows = [], 0, 0

    def commit(self) -> WrittenShard | None:
        """Finish the file and move it into place; None when nothing was written."""
        self.flush()
        if self._writer is None:
            return None
        self._writer.close()
        self._handle.close()
        self.fs.mv(self._tmp, self.path)
        size = self.fs.size(self.path)
        return WrittenShard(self.path, self.rows, self.tokens, self.text_bytes, int(size or 0))

    def abort(self) -> None:
        try:
            if self._writer is not None:
                self._writer.close()
                self._handle.close()
            if self.fs.exists(self._tmp):
                self.fs.rm(self._tmp)
        except Exception:  # noqa: BLE001 - cleanup after a failure must not hide it
            pass


@register_step("parquet")
class ParquetWriter(Step):
    """Writes kept documents as Parquet shards with FineWeb's columns."""

    kind: ClassVar[str] = "writer"

    def __init__(
        self,
        compression: str = "zstd",
        compression_level: int | None = 3,
        row_group_bytes: int = 32 * 2**20,
        row_group_rows: int = 100_000,
        extra_columns: list[str] | None = None,
        partition_by: Literal["dump", "language"] = "dump",
    ):
        """
        Args:
            compression: Parquet codec (zstd, snappy, gzip, none).
            compression_level: codec level; zstd 3 is a good size/speed balance.
            row_group_bytes: a row group is cut when the buffered Arrow data reaches this size, which also
                bounds the writer's memory. 32 MiB keeps a worker's memory flat over a 1 GiB WARC file
                (docs/scaling.md: with 128 MiB, one task's RSS grew by ~370 MiB before the first row group)
                while row groups still hold thousands of pages, as readers of Parquet like.
            row_group_rows: ... or this many rows.
            extra_columns: columns added by steps to keep beyond FineWeb's nine: strings, except FineWeb-2's
                `minhash_cluster_size` (and `minhash_cluster_id`), int64.
            partition_by: folder of each document under data/: `dump` (FineWeb: data/<dump>/) or `language`
                (FineWeb-2: data/<language>_<language_script>/).
        """
        self.compression = compression
        self.compression_level = compression_level
        self.row_group_bytes = row_group_bytes
        self.row_group_rows = row_group_rows
        self.extra_columns = extra_columns
        self.partition_by = partition_by
        names = list(extra_columns or [])
        duplicated = sorted({n for n in names if names.count(n) > 1 or n in FINEWEB_SCHEMA.names})
        if duplicated:
            raise ValueError(f"extra_columns: {duplicated[0]!r} is listed twice or is already a FineWeb column")

    def schema(self) -> pa.Schema:
        schema = FINEWEB_SCHEMA
        for name in self.extra_columns or []:
            schema = schema.append(pa.field(name, KNOWN_COLUMN_TYPES.get(name, pa.string())))
        return schema

    def open(self, fs: AbstractFileSystem, path: str, schema: pa.Schema | None = None) -> ShardWriter:
        return ShardWriter(fs, path, schema or self.schema(), self.compression, self.compression_level,
                           self.row_group_bytes, self.row_group_rows)


class PartitionedShards:
    """One task's kept documents as one shard per folder under data/ (`data/<key>/<file_name>`), each
    committed like a single shard. Memory stays bounded: each open shard buffers at most a row group."""

    def __init__(self, writer: ParquetWriter, fs: AbstractFileSystem, root: str, file_name: str,
                 schema: pa.Schema | None = None):
        self.writer = writer
        self.fs = fs
        self.root = root
        self.file_name = file_name
        self.schema = schema
        self._shards: dict[str, ShardWriter] = {}

    def write(self, batch: DocBatch) -> None:
        keys = partition_keys(batch, self.writer.partition_by)
        for key in sorted(set(keys)):
            part = batch if len(set(keys)) == 1 else batch.take([i for i, k in enumerate(keys) if k == key])
            shard = self._shards.get(key)
            if shard is None:
                path = posixpath.join(self.root, "data", key, self.file_name)
                shard = self._shards[key] = self.writer.open(self.fs, path, self.schema)
            shard.write(part)

    def commit(self) -> list[WrittenShard]:
        """The shards written, by folder name."""
        return [w for _, shard in sorted(self._shards.items()) if (w := shard.commit()) is not None]

    def abort(self) -> None:
        for shard in self._shards.values():
            shard.abort()
