"""`tamis run` and `tamis steps`: the commands that build pipelines (they import the engine, Ray and the steps)."""

from __future__ import annotations

import sys

import click
from rich.console import Console
from rich.table import Table

from tamis.cli.errors import EXIT_FAILED, EXIT_PARTIAL, output_folder_option, resumable, user_errors
from tamis.cli.plugins import plugin_dirs
from tamis.cli.summary import print_summary
from tamis.display import line, plain, plugins_line, stderr_console
from tamis.engine.inputs import COMMON_CRAWL_BASE
from tamis.engine.memory import parse_task_memory
from tamis.engine.runner import DEFAULT_MAX_TASK_BYTES, RECORDED, run_pipeline
from tamis.io.redact import public_url
from tamis.pipeline.spec import load_pipeline
from tamis.pipeline.validation import describe_params
from tamis.steps.registry import available_steps, load_plugin_dir, loaded_plugin_files, plugin_file_of


def _task_memory_option(ctx: click.Context, param: click.Parameter, value: str) -> int | str | None:
    try:
        return parse_task_memory(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command()
@click.argument("pipeline", type=click.Path(dir_okay=False))
@click.option("--input", "-i", "inputs", multiple=True, required=True,
              help="Input file, glob or fsspec URL (repeatable), e.g. 'data/*.warc.gz'.")
@click.option("--output", "-o", required=True, help="Output directory or fsspec URL (s3://bucket/prefix).",
              callback=output_folder_option)
@click.option("--address", default=None, help="Ray cluster address; default RAY_ADDRESS, else an embedded local Ray.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Tasks running at once (default: every CPU of the cluster).")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Read at most N HTML documents per input file (for quick trials).")
@click.option("--overwrite", is_flag=True, help="Delete an existing output made with another pipeline and start over.")
@click.option("--max-task-bytes", type=click.IntRange(min=1), default=None,
              help=f"Split input files larger than this into byte ranges, one task each, cut on the reader's state "
                   f"blocks (64 MiB) so the output is the same [default: {DEFAULT_MAX_TASK_BYTES}, or what an "
                   "existing output was split at].")
@click.option("--paths-base", default=COMMON_CRAWL_BASE, show_default=True,
              help="Where the relative paths listed in a Common Crawl *.paths.gz input live.")
@click.option("--plugins", multiple=True, type=click.Path(file_okay=False),
              help="Directory of *.py step plugins (repeatable); ./filters is scanned unless --no-plugins.")
@click.option("--no-plugins", is_flag=True,
              help="Import no plugin file: not ./filters, TAMIS_PLUGIN_PATH, nor the pipeline's `plugins:`.")
@click.option("--no-progress", is_flag=True,
              help="No progress display (and no progress actor: one Ray worker process fewer).")
@click.option("--task-memory", default="auto", show_default=True, callback=_task_memory_option,
              help="Memory ceiling of each task (4GiB, 512MiB...): an input that needs more fails alone. "
                   "'auto': each CPU's share of a node's memory (a task given several CPUs reserves their "
                   "shares); 'off': none.")
def run(pipeline: str, inputs: tuple[str, ...], output: str, address: str | None, workers: int | None,
        limit: int | None, overwrite: bool, max_task_bytes: int | None, paths_base: str, plugins: tuple[str, ...],
        no_plugins: bool, no_progress: bool, task_memory: int | str | None) -> None:
    """Run PIPELINE (a YAML file) on the inputs: files, globs, fsspec URLs, or Common Crawl *.paths.gz lists.

    Exit 0 when every input is committed, 1 when inputs are missing or every task failed, 2 for a bad
    pipeline file or option (nothing started), 3 when some inputs failed (listed at the end)."""
    console = stderr_console()
    with resumable(console), user_errors(console):
        spec = load_pipeline(pipeline, plugin_dirs(plugins, no_plugins), allow_plugins=not no_plugins)
        result = run_pipeline(spec, list(inputs), output, address=address, workers=workers, limit=limit,
                              overwrite=overwrite, max_task_bytes=max_task_bytes or RECORDED, paths_base=paths_base,
                              console=console, show_progress=not no_progress, task_memory=task_memory)
    print_summary(Console(), result)
    out = Console()
    shown = public_url(output).rstrip("/")  # an output URL's credentials are never printed either
    out.print(line(f"shards: {shown}/data/   stats: {shown}/stats.json"))
    if result.failed:
        sys.exit(EXIT_PARTIAL if result.completed else EXIT_FAILED)


@click.command()
@click.option("--plugins", multiple=True, type=click.Path(file_okay=False), help="Directory of step plugins.")
@click.option("--no-plugins", is_flag=True, help="Import no plugin file (not ./filters, nor TAMIS_PLUGIN_PATH).")
def steps(plugins: tuple[str, ...], no_plugins: bool) -> None:
    """List the available steps, their parameters and defaults, and the plugin files imported."""
    console = Console()
    with user_errors(console):
        for directory in plugin_dirs(plugins, no_plugins):
            load_plugin_dir(directory)
    steps_found = available_steps()
    console.print(plugins_line(loaded_plugin_files()))
    for name, step_class in steps_found.items():
        origin = plugin_file_of(step_class)
        where = f", {origin.shown()}" if origin else ""
        table = Table(title=plain(f"{name}  ({step_class.kind}: {step_class.__module__}.{step_class.__qualname__}"
                                  f"{where})"), title_justify="left", show_header=True, header_style="bold")
        table.add_column("parameter")
        table.add_column("type")
        table.add_column("default")
        for row in describe_params(step_class):
            table.add_row(*(plain(cell) for cell in row))
        doc = (step_class.__doc__ or "").strip().splitlines()
        if doc:
            table.caption = plain(doc[0])
            table.caption_justify = "left"
        console.print(table)
