"""Finalize: per input shard, drop the documents a duplicate cluster does not keep, run the pipeline's steps
that come after dedup (exactly as the pipeline file writes them: FineWeb's PII formatter and token count,
FineWeb-2's quality filters and final formatters...) and write the final shards with the writer's columns
(plus `minhash_cluster_id` and `minhash_cluster_size` when asked or when the writer lists them: -1 and 1
outside duplicate clusters, as datatrove writes them; a cluster's id is the kept document's
`shard << 24 | row`). The steps' counters, removed documents and distributions are returned like a process
task's."""

from __future__ import annotations

import json
import posixpath
import re
from collections import Counter
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tamis.batch import DocBatch
from tamis.dedup.components import members_of_shard
from tamis.dedup.intermediate import TaskMeter
from tamis.dedup.options import DedupOptions
from tamis.dedup.partition import DOC_MASK, ROW_MASK
from tamis.engine.chain import run_steps
from tamis.engine.removed import RemovedWriter
from tamis.io.parquet import ParquetWriter, PartitionedShards
from tamis.io.storage import filesystem
from tamis.pipeline.spec import StepSpec
from tamis.stats.counters import TaskCounters
from tamis.stats.histograms import HistogramSet
from tamis.stats.languages import LanguageBreakdown
from tamis.stats.merge import DEDUP_STEP
from tamis.stats.observe import observe, observe_output
from tamis.steps.base import Step, StepContext

CLUSTER_COLUMNS = [pa.field("minhash_cluster_id", pa.int64()), pa.field("minhash_cluster_size", pa.int64())]
BATCH_ROWS = 4096
DUPLICATE = "duplicate"
#: steps built once per worker process and step list: models and word lists load once, not per task
_BUILT: dict[str, list[tuple[str, Step]]] = {}


def default_steps(options: DedupOptions) -> tuple[StepSpec, ...]:
    """`tamis dedup`'s finalize steps: the PII formatter and GPT-2 token count with their defaults, as
    `--pii` / `--token-count` ask."""
    from tamis.steps.registry import get_step_class

    names = [name for name, wanted in (("pii", options.pii), ("token_count", options.token_count)) if wanted]
    return tuple(StepSpec(n, n, _defaults(get_step_class(n)), get_step_class(n)) for n in names)


def _defaults(step_class: type[Step]) -> dict[str, Any]:
    from tamis.pipeline.validation import validate_params

    return validate_params(step_class, {})


def final_schema(options: DedupOptions, writer: ParquetWriter | None = None) -> pa.Schema:
    schema = (writer or ParquetWriter()).schema()
    if options.cluster_columns:
        for field in CLUSTER_COLUMNS:
            if field.name not in schema.names:
                schema = schema.append(field)
    return schema


def shard_ident(path: str) -> str:
    name = posixpath.basename(path)
    name = re.sub(r"\.parquet$", "", name)
    return name[len("part-"):] if name.startswith("part-") else name


def _built(steps: tuple[StepSpec, ...]) -> list[tuple[str, Step]]:
    key = json.dumps([s.to_dict() for s in steps], sort_keys=True, default=str)
    built = _BUILT.get(key)
    if built is None:
        built = [(s.name, s.build()) for s in steps]
        for _, step in built:
            step.setup()
        _BUILT[key] = built
    return built


def _labels_only(table: pa.Table) -> DocBatch:
    names = [n for n in ("language", "language_script") if n in table.column_names]
    return DocBatch({n: table.column(n).to_pylist() for n in names})


def finalize_task(shard_path: str, shard: int, member_entries: list[dict[str, Any] | None], groups: int,
                  options: DedupOptions, work: str, output: str, removed_output: dict[str, Any] | None = None,
                  steps: tuple[StepSpec, ...] | None = None, writer: StepSpec | None = None) -> dict[str, Any]:
    """Write one input shard's final shards (one per folder under data/); returns counts and the files written.

    `member_entries` are the membership files of the work directory `work` (their paths are inside its
    filesystem, so it is `work` that says which filesystem: s3://, gs://, local).

    `steps` are the pipeline's steps after dedup (None: `default_steps(options)`), `writer` its writer step
    (None: FineWeb's Parquet writer). With `removed_output` ({mode, rate} as in a pipeline's `removed:`), the
    duplicates dropped here (reason `duplicate`) and the documents the steps remove are written to
    removed/<step>/, like the process stage's.
    """
    steps = default_steps(options) if steps is None else steps
    built = _built(steps)
    for _, step in built:
        step.start_input()
    meter = TaskMeter()
    fs_out, root = filesystem(output)
    members = members_of_shard(filesystem(work)[0], member_entries, shard, groups)
    rows = (members["node"] & ROW_MASK).astype(np.int64)
    removed_rows = rows[members["node"] != members["rep"]]
    writer_step = writer.build() if writer is not None else ParquetWriter()
    assert isinstance(writer_step, ParquetWriter)
    schema = final_schema(options, writer_step)
    fs_in, path_in = filesystem(shard_path)
    ident = shard_ident(shard_path)
    shards = PartitionedShards(writer_step, fs_out, root, f"part-{ident}.parquet", schema)
    removed_writer = (RemovedWriter(fs_out, root, ident, removed_output["mode"], removed_output["rate"])
                      if removed_output else None)
    counters = TaskCounters()
    step_counters = [counters.for_step(name) for name, _ in built]
    histograms = HistogramSet()
    languages: Counter[str] = Counter()
    by_language = LanguageBreakdown()

    def on_removed(step: str, docs: DocBatch, reasons: list[str]) -> None:
        observe(histograms, step, "removed", docs)
        by_language.dropped(step, docs, reasons)
        if removed_writer is not None:
            removed_writer(step, docs, reasons)

    contexts = [StepContext(name, c, on_removed) for (name, _), c in zip(built, step_counters, strict=True)]
    docs = unique = kept = 0
    try:
        with fs_in.open(path_in, "rb") as handle:
            parquet = pq.ParquetFile(handle)
            total = parquet.metadata.num_rows
            removed = np.zeros(total, dtype=bool)
            removed[removed_rows] = True
            cluster_id = np.full(total, -1, dtype=np.int64)
            cluster_size = np.ones(total, dtype=np.int64)
            cluster_id[rows] = (members["rep"] & DOC_MASK).astype(np.int64)
            cluster_size[rows] = members["size"].astype(np.int64)
            for batch in parquet.iter_batches(batch_size=BATCH_ROWS):
                start, docs = docs, docs + batch.num_rows
                keep = ~removed[start:docs]
                whole = pa.Table.from_batches([batch])
                if "language" in whole.column_names:
                    by_language.step_in(DEDUP_STEP, _labels_only(whole))
                if not keep.all():
                    duplicates = DocBatch.from_arrow(whole.filter(pa.array(~keep)))
                    by_language.dropped(DEDUP_STEP, duplicates, [DUPLICATE] * len(duplicates))
                    if removed_writer is not None:
                        removed_writer(DEDUP_STEP, duplicates, [DUPLICATE] * len(duplicates))
                table = whole.filter(pa.array(keep))
                if "language" in table.column_names:
                    by_language.step_out(DEDUP_STEP, _labels_only(table))
                if not table.num_rows:
                    continue
                unique += table.num_rows
                columns = {name: table.column(name).to_pylist() for name in table.column_names}
                if "minhash_cluster_id" in schema.names:
                    columns["minhash_cluster_id"] = cluster_id[start:docs][keep].tolist()
                if "minhash_cluster_size" in schema.names:
                    columns["minhash_cluster_size"] = cluster_size[start:docs][keep].tolist()
                out = run_steps(DocBatch(columns), built, step_counters, contexts, histograms, by_language)
                if not len(out):
                    continue
                out = DocBatch({name: out[name] for name in schema.names if name in out})
                observe_output(histograms, languages, out)
                by_language.output(out)
                shards.write(out)
                kept += len(out)
        written = shards.commit()
        removed_written = removed_writer.commit() if removed_writer is not None else {}
    except BaseException:
        shards.abort()
        if removed_writer is not None:
            removed_writer.abort()
        raise
    return {"shard": shard, "input": shard_path, "docs": docs, "kept": kept, "removed": docs - unique,
            "unique": unique, "outputs": [w.to_dict() for w in written], "meter": meter.result(),
            "counters": counters.to_dict(), "languages": dict(languages), "histograms": histograms.to_dict(),
            "by_language": by_language.to_dict(),
            "removed_outputs": {step: w.to_dict() for step, w in removed_written.items()}}
