"""`tamis dedup`: the dedup and finalize stages alone, on existing FineWeb-schema Parquet shards."""

from __future__ import annotations

import json
import posixpath
import sys
import time
from collections.abc import Callable

import click
from rich.console import Console

from tamis.cli.errors import output_folder_option, resumable, user_errors
from tamis.dedup.options import DedupOptions, DedupOptionsError, parse_size
from tamis.dedup.stage import DedupError, run_dedup
from tamis.display import line, stderr_console
from tamis.engine.output_lock import output_lock
from tamis.engine.overlap import OverlapError, check_apart
from tamis.io.redact import public_url
from tamis.io.storage import filesystem, url_of


def expand_shards(patterns: tuple[str, ...]) -> list[str]:
    """Every Parquet file matched by the patterns (local paths or fsspec URLs), sorted, without repeats."""
    found: list[str] = []
    for pattern in patterns:
        fs, path = filesystem(pattern)
        matches = fs.glob(path) if any(c in path for c in "*?[") else ([path] if fs.exists(path) else [])
        if fs.isdir(path):
            matches = fs.glob(posixpath.join(path, "**", "*.parquet"))
        found += [url_of(fs, m) for m in matches if m.endswith(".parquet")]
    return sorted(dict.fromkeys(found))


def _progress_printer(console: Console, every: float = 30.0) -> Callable[[str, int, int], None]:
    """Each stage's `done/total`: rewritten in place on a terminal; in a log (CI, a cluster's job log), a line
    when a stage ends and at most one every `every` seconds before, instead of carriage returns that run
    every count into one line."""
    last = [time.monotonic()]

    def progress(stage: str, done: int, total: int) -> None:
        if console.is_terminal:
            console.print(f"{stage}: {done}/{total}", end="\r")
        elif done == total or time.monotonic() - last[0] >= every:
            last[0] = time.monotonic()
            console.print(f"{stage}: {done}/{total}")

    return progress


@click.command("dedup")
@click.argument("shards", nargs=-1, required=True)
@click.option("--output", "-o", required=True, help="Directory for the final shards (data/<dump>/part-*.parquet).",
              callback=output_folder_option)
@click.option("--work-dir", help="Directory for intermediates and commit markers [default: OUTPUT/dedup].")
@click.option("--kind", type=click.Choice(["minhash", "exact"]), default="minhash", show_default=True)
@click.option("--n-grams", default=5, show_default=True, help="Words per shingle.")
@click.option("--bands", default=14, show_default=True)
@click.option("--rows-per-band", default=8, show_default=True)
@click.option("--hash-bits", type=click.Choice(["32", "64"]), default="64", show_default=True)
@click.option("--hash-function", type=click.Choice(["sha1", "xxhash"]), default="sha1", show_default=True)
@click.option("--seed", default=1, show_default=True)
@click.option("--ranges-per-band", default=0, show_default=True, help="0: chosen from the input size.")
@click.option("--memory-per-task", default="512MiB", show_default=True, help="Working memory bound of one task.")
@click.option("--keep", type=click.Choice(["lowest_id", "oldest", "longest"]), default="lowest_id",
              show_default=True, help="Which document of a cluster is kept.")
@click.option("--cluster-columns/--no-cluster-columns", default=False, show_default=True,
              help="Add minhash_cluster_id and minhash_cluster_size.")
@click.option("--pii/--no-pii", default=True, show_default=True,
              help="Apply the PII formatter (turn off when the shards already had it applied).")
@click.option("--token-count/--no-token-count", default=True, show_default=True)
@click.option("--previous-index", multiple=True, help="Work directory of an earlier dedup run to dedup against.")
@click.option("--address", help="Ray cluster address (default: RAY_ADDRESS, else a local Ray).")
@click.option("--workers", type=int, help="Concurrent tasks (and CPUs of a local Ray).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def dedup(shards, output, work_dir, kind, n_grams, bands, rows_per_band, hash_bits, hash_function, seed,
          ranges_per_band, memory_per_task, keep, cluster_columns, pii, token_count, previous_index, address,
          workers, as_json) -> None:
    """Deduplicate existing shards (MinHash or exact) and write final shards; signatures in a separate pass."""
    console = stderr_console()
    try:
        options = DedupOptions(kind=kind, n_grams=n_grams, bands=bands, rows_per_band=rows_per_band,
                               hash_bits=int(hash_bits), hash_function=hash_function, seed=seed,
                               ranges_per_band=ranges_per_band, memory_per_task=parse_size(memory_per_task),
                               keep=keep, cluster_columns=cluster_columns, pii=pii, token_count=token_count,
                               previous_index=tuple(previous_index), max_in_flight=workers or 0)
    except DedupOptionsError as exc:
        raise click.UsageError(str(exc)) from None
    files = expand_shards(shards)
    if not files:
        raise click.UsageError(f"no Parquet shards match {' '.join(map(public_url, shards))}")
    with user_errors(console, OverlapError):
        check_apart(output, list(shards))
    work = work_dir or posixpath.join(output.rstrip("/"), "dedup")
    fs, root = filesystem(output)
    try:
        # one writer per output, as `tamis run`; its OutputLockedError exits 2 through user_errors
        with user_errors(console), resumable(console), output_lock(fs, root):
            summary = run_dedup(files, work, output, options, address=address, workers=workers,
                                progress=_progress_printer(console))
    except DedupError as exc:
        console.print(line(("dedup failed", "red"), f": {exc}"))
        sys.exit(1)
    if as_json:
        click.echo(json.dumps({k: v for k, v in summary.items() if k != "tasks"}, indent=1))
        return
    out = Console()
    out.print(f"{summary['docs']} documents in {summary['shards']} shards: kept {summary['kept']}, removed "
              f"{summary['removed']} ({summary['candidate_pairs']} candidate pairs, {summary['rounds']} component "
              f"rounds, {summary['seconds']} s)")
    out.print(line(f"shards: {public_url(output).rstrip('/')}/data/   work: {public_url(work)}"))
