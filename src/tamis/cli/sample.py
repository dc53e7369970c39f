"""`tamis sample`: a copy of a run's output, subsampled and/or rehydrated (FineWeb-2's upsampling by
cluster size), one Ray task per shard, deterministic for a given seed."""

from __future__ import annotations

import json
import os
import posixpath
from collections import Counter
from typing import Any

import click
import ray

from tamis.cli.errors import output_folder_option, user_errors
from tamis.dedup.rehydrate import rehydrate_shard
from tamis.display import line, stderr_console
from tamis.engine.output_lock import output_lock
from tamis.engine.overlap import OverlapError, check_apart
from tamis.engine.ray_runtime import connect
from tamis.engine.run_output import UnfinishedRunError, check_finished
from tamis.io.redact import public_url
from tamis.io.storage import filesystem, url_of, write_json


def output_shards(output: str) -> list[tuple[str, str]]:
    """(shard URL, its path relative to the run's output) of every final shard under OUTPUT/data/."""
    fs, root = filesystem(output)
    data = posixpath.join(root.rstrip("/"), "data")
    found = sorted(fs.glob(posixpath.join(data, "**", "*.parquet")))
    return [(url_of(fs, p), posixpath.relpath(p, root.rstrip("/"))) for p in found]


@click.command("sample")
@click.argument("output")
@click.option("--output", "-o", "target", required=True, help="Directory for the copy (data/... as in OUTPUT).",
              callback=output_folder_option)
@click.option("--rehydrate", is_flag=True,
              help="Repeat each document by its minhash_cluster_size (FineWeb-2's weights 1/2/3/3/5/8/1).")
@click.option("--fraction", type=click.FloatRange(0, 1, min_open=True), default=1.0, show_default=True,
              help="Keep this fraction of documents (chosen by a hash of seed and id), before rehydration.")
@click.option("--seed", type=int, default=None, help="Shuffle rows within each shard (and seed --fraction).")
@click.option("--address", help="Ray cluster address (default: RAY_ADDRESS, else a local Ray).")
@click.option("--workers", type=int, help="CPUs of a local Ray.")
@click.option("--allow-incomplete", is_flag=True,
              help="Read OUTPUT even though its run has not finished (part of its documents only).")
def sample(output, target, rehydrate, fraction, seed, address, workers, allow_incomplete) -> None:
    """Write a sampled / rehydrated copy of a run's OUTPUT shards to --output."""
    console = stderr_console()
    with user_errors(console, UnfinishedRunError, OverlapError):  # a refusal: one line, exit 2, nothing written
        source_fs, source_root = filesystem(output)
        warning = check_finished(source_fs, source_root.rstrip("/"), public_url(output), allow_incomplete)
        if warning is not None:
            console.print(line(("warning", "yellow"), f": {warning}"))
        shards = output_shards(output)
        if not shards:
            raise click.UsageError(f"no shards under {public_url(output).rstrip('/')}/data/")
        if "://" not in target:
            target = os.path.abspath(target)  # workers may run in another directory
        fs, root = filesystem(target)
        check_apart(target, [output])
        with output_lock(fs, root):  # one writer per folder, as for tamis run (tamis.engine.output_lock)
            results = _copy_shards(shards, fs, root, seed, fraction, rehydrate, address, workers)
            summary = {"source": public_url(output), "rehydrate": rehydrate, "fraction": fraction, "seed": seed,
                       **_totals(results)}
            write_json(fs, posixpath.join(root, "sample.json"), summary)
    console.print(f"{summary['docs_in']} documents in, {summary['docs_out']} out, in {len(results)} shard(s)")
    click.echo(json.dumps({k: v for k, v in summary.items() if k != "files"}))


def _totals(results: list[dict[str, Any]]) -> dict[str, Any]:
    """sample.json's counts: shards, documents in and out, tokens out, documents per language, files."""
    languages: Counter[str] = Counter()
    for result in results:
        languages.update(result["languages"])
    return {"shards": len(results), "docs_in": sum(r["docs_in"] for r in results),
            "docs_out": sum(r["docs_out"] for r in results), "tokens_out": sum(r["tokens_out"] for r in results),
            "languages": dict(sorted(languages.items())), "files": [r["output"] for r in results]}


def _copy_shards(shards: list[tuple[str, str]], fs: Any, root: str, seed: int | None, fraction: float, rehydrate: bool,
                 address: str | None, workers: int | None) -> list[dict[str, Any]]:
    """One Ray task per shard (tamis.dedup.rehydrate.rehydrate_shard); their counts, in shard order."""
    started = connect(address, num_cpus=workers)
    try:
        task = ray.remote(rehydrate_shard).options(num_cpus=1, max_retries=3)
        refs = [task.remote(url, url_of(fs, posixpath.join(root, rel)), seed, fraction, rehydrate)
                for url, rel in shards]
        return ray.get(refs)
    finally:
        if started:
            ray.shutdown()
