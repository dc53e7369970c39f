"""Finalize: per input shard, drop the documents a duplicate cluster does not keep, apply the pipeline's
finalize steps (PII formatter, GPT-2 token count) and write the final shard with FineWeb's columns
(plus `minhash_cluster_id` and `minhash_cluster_size` when asked: -1 and 1 outside duplicate clusters,
as datatrove writes them; a cluster's id is the kept document's `shard << 24 | row`)."""

from __future__ import annotations

import posixpath
import re
from collections import Counter
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tamis.annotate.tokens import count_tokens
from tamis.batch import DocBatch
from tamis.dedup.components import members_of_shard
from tamis.dedup.intermediate import TaskMeter
from tamis.dedup.options import DedupOptions
from tamis.dedup.partition import DOC_MASK, ROW_MASK
from tamis.engine.layout import safe_dump
from tamis.engine.removed import RemovedWriter
from tamis.filters.pii import PIIFormatter
from tamis.io.parquet import FINEWEB_SCHEMA, ShardWriter
from tamis.io.storage import filesystem
from tamis.stats.histograms import HistogramSet
from tamis.stats.merge import DEDUP_STEP
from tamis.stats.observe import observe_output

CLUSTER_COLUMNS = [pa.field("minhash_cluster_id", pa.int64()), pa.field("minhash_cluster_size", pa.int64())]
BATCH_ROWS = 4096


DUPLICATE = "duplicate"


def final_schema(options: DedupOptions) -> pa.Schema:
    schema = FINEWEB_SCHEMA
    if options.cluster_columns:
        for field in CLUSTER_COLUMNS:
            schema = schema.append(field)
    return schema


def shard_ident(path: str) -> str:
    name = posixpath.basename(path)
    name = re.sub(r"\.parquet$", "", name)
    return name[len("part-"):] if name.startswith("part-") else name


def final_path(output_root: str, dump: str | None, shard_path: str) -> str:
    return posixpath.join(output_root, "data", safe_dump(dump), f"part-{shard_ident(shard_path)}.parquet")


def finalize_task(shard_path: str, shard: int, member_entries: list[dict[str, Any]], groups: int,
                  options: DedupOptions, output: str, removed_output: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write one final shard; returns counts and the path written (None when every document was removed).

    With `removed_output` ({mode, rate} as in a pipeline's `removed:`), the duplicates dropped here are
    written to removed/dedup/ with the reason `duplicate`, like every filter's removed documents.
    """
    if options.token_count:
        count_tokens(["load the GPT-2 ranks once per worker, outside the task's memory meter"])
    meter = TaskMeter()
    fs_out, root = filesystem(output)
    fs_work = filesystem(member_entries[0]["path"])[0] if member_entries and member_entries[0] else fs_out
    members = members_of_shard(fs_work, [e for e in member_entries if e], shard, groups)
    rows = (members["node"] & ROW_MASK).astype(np.int64)
    removed_rows = rows[members["node"] != members["rep"]]
    pii = PIIFormatter()
    pii.setup()
    schema = final_schema(options)
    fs_in, path_in = filesystem(shard_path)
    writer: ShardWriter | None = None
    removed_writer = (RemovedWriter(fs_out, root, shard_ident(shard_path), removed_output["mode"],
                                    removed_output["rate"]) if removed_output else None)
    docs = kept = 0
    histograms = HistogramSet()
    languages: Counter[str] = Counter()
    try:
        with fs_in.open(path_in, "rb") as handle:
            parquet = pq.ParquetFile(handle)
            total = parquet.metadata.num_rows
            removed = np.zeros(total, dtype=bool)
            removed[removed_rows] = True
            if options.cluster_columns:
                cluster_id = np.full(total, -1, dtype=np.int64)
                cluster_size = np.ones(total, dtype=np.int64)
                cluster_id[rows] = (members["rep"] & DOC_MASK).astype(np.int64)
                cluster_size[rows] = members["size"].astype(np.int64)
            for batch in parquet.iter_batches(batch_size=BATCH_ROWS):
                start, docs = docs, docs + batch.num_rows
                keep = ~removed[start:docs]
                if removed_writer is not None and not keep.all():
                    duplicates = DocBatch.from_arrow(pa.Table.from_batches([batch]).filter(pa.array(~keep)))
                    removed_writer(DEDUP_STEP, duplicates, [DUPLICATE] * len(duplicates))
                table = pa.Table.from_batches([batch]).filter(pa.array(keep))
                if not table.num_rows:
                    continue
                columns = {name: table.column(name).to_pylist() for name in table.column_names}
                if options.pii:
                    columns["text"] = [pii.format(t) if t else t for t in columns["text"]]
                if options.token_count:
                    columns["token_count"] = count_tokens([t or "" for t in columns["text"]])
                if options.cluster_columns:
                    columns["minhash_cluster_id"] = cluster_id[start:docs][keep].tolist()
                    columns["minhash_cluster_size"] = cluster_size[start:docs][keep].tolist()
                out = DocBatch({name: columns[name] for name in schema.names if name in columns})
                observe_output(histograms, languages, out)
                if writer is None:
                    dump = out["dump"][0] if "dump" in out else None
                    writer = ShardWriter(fs_out, final_path(root, dump, shard_path), schema, "zstd", 3,
                                         128 * 2**20, 100_000)
                writer.write(out)
                kept += table.num_rows
        written = writer.commit() if writer is not None else None
        removed_written = removed_writer.commit() if removed_writer is not None else {}
    except BaseException:
        if writer is not None:
            writer.abort()
        if removed_writer is not None:
            removed_writer.abort()
        raise
    return {"shard": shard, "input": shard_path, "docs": docs, "kept": kept, "removed": docs - kept,
            "output": written.to_dict() if written else None, "meter": meter.result(),
            "languages": dict(languages), "histograms": histograms.to_dict(),
            "removed_output": removed_written[DEDUP_STEP].to_dict() if DEDUP_STEP in removed_written else None}
