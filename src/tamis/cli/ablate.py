"""`tamis ablate`: compare pipeline variants by training and evaluating a proxy model on each."""

from __future__ import annotations

import sys

import click
from rich.console import Console
from rich.table import Table

from tamis.ablate.report import difference_table, summary_table
from tamis.ablate.runner import run_ablation
from tamis.ablate.spec import AblationError, load_ablation, with_overrides
from tamis.cli.errors import EXIT_FAILED, EXIT_PARTIAL, EXIT_USAGE, fail, output_folder_option, resumable, user_errors
from tamis.display import line, stderr_console


def _seeds(value: str | None) -> list[int] | None:
    if not value:
        return None
    try:
        return [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}") from None


@click.command()
@click.argument("ablation", type=click.Path(dir_okay=False))
@click.option("--output", "-o", required=True, help="Output directory (pipeline stages, samples, results, report).",
              callback=output_folder_option)
@click.option("--input", "-i", "inputs", multiple=True,
              help="Input file or glob (repeatable), replacing the file's `input:`; relative to the current directory.")
@click.option("--seeds", default=None, help="Comma-separated seeds, replacing the file's `seeds:` (e.g. 0,1,2).")
@click.option("--token-budget", type=click.IntRange(min=1), default=None,
              help="Tokens sampled per variant and seed, replacing the file's `token_budget:`.")
@click.option("--address", default=None, help="Ray cluster address; default RAY_ADDRESS, else an embedded local Ray.")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Pipeline tasks running at once.")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Read at most N HTML documents per input file (for quick trials).")
@click.option("--no-progress", is_flag=True, help="No progress display.")
@click.option("--no-plugins", is_flag=True, help="Import no plugin file (a `plugins:` key is then an error).")
def ablate(ablation: str, output: str, inputs: tuple[str, ...], seeds: str | None, token_budget: int | None,
           address: str | None, workers: int | None, limit: int | None, no_progress: bool, no_plugins: bool) -> None:
    """Run the variants of ABLATION (a YAML file), sample the same token budget from each, evaluate a proxy
    model on each sample and seed, and write results.parquet, results.json, chart.png and report.html.
    Exit 0 when every evaluation succeeded, 1 when none did, 2 for a bad file or option, 3 when some failed."""
    console = stderr_console()
    with resumable(console), user_errors(console, AblationError):
        spec = with_overrides(load_ablation(ablation, allow_plugins=not no_plugins), inputs=list(inputs),
                              seeds=_seeds(seeds), token_budget=token_budget)
        if not spec.inputs:
            fail(console, f"{ablation}: no input: give `input:` in the file or --input", EXIT_USAGE)
        result = run_ablation(spec, output, address=address, workers=workers, limit=limit, console=console,
                              show_progress=not no_progress)
    # one row per metric, one column per variant: readable in a terminal with a dozen metrics
    header, rows = summary_table(spec, result)
    # the ablation's name is the user's text (or its file's): a title made plain, never markup
    table = Table(title=line(f"{spec.name}: {result.token_budget} tokens per variant, seeds {list(spec.seeds)} "
                             "(mean ± 95% interval over seeds)"), title_justify="left")
    table.add_column("metric")
    for row in rows:
        table.add_column(row[0], justify="right")
    for j, name in enumerate(header[1:], start=1):
        table.add_row(name, *(row[j] for row in rows))
    out = Console()
    out.print(table)
    d_header, d_rows = difference_table(spec, result)
    if d_rows:
        differences = Table(title=line(f"difference from {spec.variants[0].name} (95% t interval over seeds)"),
                            title_justify="left")
        for name in d_header:
            differences.add_column(name, justify="left" if name in ("variant", "against", "metric") else "right")
        for row in d_rows:
            differences.add_row(*row)
        out.print(differences)
    for failure in result.failures:
        out.print(line(("failed", "red"), f" {failure['variant']} seed {failure['seed']} "
                       f"{failure['evaluator'] or failure['stage']}: {failure['error']}"))
    root = output.rstrip("/")
    out.print(line(f"results: {root}/results.parquet  {root}/results.json   chart: {root}/chart.png   "
                   f"report: {root}/report.html   ({result.seconds:.0f} s)"))
    if result.failures:
        sys.exit(EXIT_FAILED if not result.rows else EXIT_PARTIAL)
