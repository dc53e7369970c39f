"""`tamis run`, `tamis steps`: the command line entry point."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from tamis import __version__
from tamis.cli.ablate import ablate
from tamis.cli.dedup import dedup
from tamis.cli.errors import EXIT_FAILED, EXIT_PARTIAL, user_errors
from tamis.cli.stats import inspect_command, stats
from tamis.cli.summary import print_summary
from tamis.cli.tokenize import tokenize
from tamis.engine.inputs import COMMON_CRAWL_BASE
from tamis.engine.runner import DEFAULT_MAX_TASK_BYTES, run_pipeline
from tamis.pipeline.spec import load_pipeline
from tamis.pipeline.validation import describe_params
from tamis.steps.registry import available_steps, load_plugin_dir


def _plugin_dirs(extra: tuple[str, ...]) -> list[str]:
    """`--plugins` directories, TAMIS_PLUGIN_PATH, and ./filters when it exists."""
    dirs = list(extra)
    dirs += [p for p in os.environ.get("TAMIS_PLUGIN_PATH", "").split(os.pathsep) if p]
    if Path("filters").is_dir():
        dirs.append("filters")
    return dirs


@click.group()
@click.version_option(__version__, prog_name="tamis")
def cli() -> None:
    """tamis: web crawls in, FineWeb-style pretraining text out, on Ray."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


@cli.command()
@click.argument("pipeline", type=click.Path(dir_okay=False))
@click.option("--input", "-i", "inputs", multiple=True, required=True,
              help="Input file, glob or fsspec URL (repeatable), e.g. 'data/*.warc.gz'.")
@click.option("--output", "-o", required=True, help="Output directory or fsspec URL (s3://bucket/prefix).")
@click.option("--address", default=None, help="Ray cluster address; default RAY_ADDRESS, else an embedded local Ray.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Tasks running at once (default: every CPU of the cluster).")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Read at most N HTML documents per input file (for quick trials).")
@click.option("--overwrite", is_flag=True, help="Delete an existing output made with another pipeline and start over.")
@click.option("--max-task-bytes", type=click.IntRange(min=1), default=DEFAULT_MAX_TASK_BYTES, show_default=True,
              help="Split input files larger than this into byte ranges, one task each.")
@click.option("--paths-base", default=COMMON_CRAWL_BASE, show_default=True,
              help="Where the relative paths listed in a Common Crawl *.paths.gz input live.")
@click.option("--plugins", multiple=True, type=click.Path(file_okay=False),
              help="Directory of *.py step plugins (repeatable); ./filters is always scanned.")
@click.option("--no-progress", is_flag=True, help="No progress display.")
def run(pipeline: str, inputs: tuple[str, ...], output: str, address: str | None, workers: int | None,
        limit: int | None, overwrite: bool, max_task_bytes: int, paths_base: str, plugins: tuple[str, ...],
        no_progress: bool) -> None:
    """Run PIPELINE (a YAML file) on the inputs: files, globs, fsspec URLs, or Common Crawl *.paths.gz lists.

    Exit 0 when every input is committed, 1 when inputs are missing or every task failed, 2 for a bad
    pipeline file or option (nothing started), 3 when some inputs failed (listed at the end)."""
    console = Console(stderr=True)
    with user_errors(console):
        spec = load_pipeline(pipeline, _plugin_dirs(plugins))
        result = run_pipeline(spec, list(inputs), output, address=address, workers=workers, limit=limit,
                              overwrite=overwrite, max_task_bytes=max_task_bytes, paths_base=paths_base,
                              console=console, show_progress=not no_progress)
    print_summary(Console(), result)
    out = Console()
    out.print(f"shards: {output.rstrip('/')}/data/   stats: {output.rstrip('/')}/stats.json")
    if result.failed:
        sys.exit(EXIT_PARTIAL if result.completed else EXIT_FAILED)


@cli.command()
@click.option("--plugins", multiple=True, type=click.Path(file_okay=False), help="Directory of step plugins.")
def steps(plugins: tuple[str, ...]) -> None:
    """List the available steps, their parameters and defaults."""
    for directory in _plugin_dirs(plugins):
        load_plugin_dir(directory)
    console = Console()
    for name, step_class in available_steps().items():
        table = Table(title=f"{name}  ({step_class.kind}: {step_class.__module__}.{step_class.__qualname__})",
                      title_justify="left", show_header=True, header_style="bold")
        table.add_column("parameter")
        table.add_column("type")
        table.add_column("default")
        for row in describe_params(step_class):
            table.add_row(*row)
        doc = (step_class.__doc__ or "").strip().splitlines()
        if doc:
            table.caption = doc[0]
            table.caption_justify = "left"
        console.print(table)


# commands that live in their own modules
for command in (stats, inspect_command, dedup, ablate, tokenize):
    cli.add_command(command)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
