"""`tamis stats` and `tamis inspect`: what a run produced, and why it dropped what it dropped."""

from __future__ import annotations

import json
import sys

import click
from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from tamis.cli.errors import fail, output_file_option
from tamis.display import line, plain, stderr_console, visible
from tamis.stats.load import RunNotFoundError, load_run, to_json
from tamis.stats.report_terminal import print_report, status_line

EXIT_NOT_FOUND = 1
EXIT_USAGE = 2


def _load(output: str, console: Console):
    try:
        return load_run(output)
    except (RunNotFoundError, FileNotFoundError) as exc:
        fail(console, exc, EXIT_NOT_FOUND)


@click.command()
@click.argument("output")
@click.option("--shards", is_flag=True, help="List every shard: rows, tokens, text bytes, size on disk.")
@click.option("--json", "as_json", is_flag=True, help="Print the merged stats as JSON (for machines).")
@click.option("--html", "html_path", default=None, metavar="FILE", callback=output_file_option,
              help="Also write a self-contained HTML report (charts, histograms, shards) to this file.")
@click.option("--top", type=click.IntRange(min=1), default=15, show_default=True,
              help="Rows of the drop-reason and language tables.")
@click.option("--watch", "watching", is_flag=True,
              help="Refresh the report of a running job until it ends (Ctrl-C stops watching).")
@click.option("--interval", type=click.FloatRange(min=0.1), default=5.0, show_default=True,
              help="Seconds between refreshes with --watch.")
@click.option("--iterations", type=click.IntRange(min=1), default=None, help="With --watch: stop after N refreshes.")
def stats(output: str, shards: bool, as_json: bool, html_path: str | None, top: int, watching: bool,
          interval: float, iterations: int | None) -> None:
    """Totals, per-step funnel, drop reasons, languages and shards of the run in OUTPUT (a directory or an
    fsspec URL such as s3://bucket/prefix). A run still in progress shows its committed inputs, labelled
    PARTIAL."""
    err = stderr_console()
    if watching:
        if as_json or html_path or shards:
            err.print("[red]error:[/red] --watch prints the report only (no --json, --html or --shards)")
            sys.exit(EXIT_USAGE)
        from tamis.stats.watch import watch

        watch(output, Console(), interval=interval, iterations=iterations, top=min(top, 5))
        return
    run = _load(output, err)
    if html_path:
        from tamis.stats.report_html import write_report

        write_report(run, html_path)
        err.print(line(f"HTML report: {html_path}"))
    if as_json:
        click.echo(json.dumps(to_json(run), indent=1, default=str))
    else:
        print_report(Console(), run, shards=shards, top=top)


@click.command("inspect")
@click.argument("output")
@click.option("--step", default=None, help="Removed documents of this step (see `tamis stats` for the names).")
@click.option("--reason", default=None, help="Removed documents with this reason (of --step, or of any step).")
@click.option("--kept", is_flag=True, help="Kept documents (the default when neither --step nor --reason).")
@click.option("--sample", "n", type=click.IntRange(min=1), default=5, show_default=True, help="Documents to show.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the (reproducible) draw.")
@click.option("--where", default=None,
              help="Python expression over columns and features, e.g. \"chars > 2000 and 'blog' in url\" or "
                   "\"line_punct_ratio < 0.05\".")
@click.option("--compare", "other", default=None, help="Another run's OUTPUT: show its decision on the same ids.")
@click.option("--chars", type=click.IntRange(min=0), default=500, show_default=True, help="Characters of text shown.")
@click.option("--no-features", is_flag=True, help="Do not recompute filter features.")
@click.option("--json", "as_json", is_flag=True, help="Print the sampled documents as JSON.")
def inspect_command(output: str, step: str | None, reason: str | None, kept: bool, n: int, seed: int,
                    where: str | None, other: str | None, chars: int, no_features: bool, as_json: bool) -> None:
    """Print sampled kept or removed documents of the run in OUTPUT: url, decision, features, text head."""
    # imported here: it reads shards and rebuilds filters, which `tamis stats` does not need to import
    from tamis.stats.inspect import InspectError, Selection, compare, sample

    err = stderr_console()
    if kept and (step or reason):
        err.print("[red]error:[/red] --kept selects kept documents; --step/--reason select removed ones")
        sys.exit(EXIT_USAGE)
    run = _load(output, err)
    try:
        sampled = sample(run, Selection(step=step, reason=reason, kept=kept), n=n, seed=seed, where=where,
                         features=not no_features)
        comparison = compare(run, _load(other, err), sampled.documents) if other else None
    except InspectError as exc:
        fail(err, exc, EXIT_USAGE)
    if as_json:
        click.echo(json.dumps({"label": run.label, "selection": sampled.description, "candidates": sampled.candidates,
                               "notes": sampled.notes, "documents": sampled.documents, "compare": comparison},
                              indent=1, default=str))
        return
    console = Console()
    console.print(status_line(run))
    console.print(line(f"{len(sampled.documents)} of {sampled.candidates:,} {sampled.description} (seed {seed})"))
    for note in sampled.notes:
        console.print(line(("note:", "yellow"), f" {note}"))
    if comparison:
        _print_comparison(console, comparison, other or "")
    for doc in sampled.documents:
        console.print(_panel(doc, chars))


def _panel(doc: dict, chars: int) -> Panel:
    lines = Text()
    decision = "kept" if doc["origin"] == "kept" else f"removed by {doc['origin']}: {doc.get('reason')}"
    lines.append("decision  ", style="bold")
    lines.append(visible(decision) + "\n", style="green" if doc["origin"] == "kept" else "red")
    if "other_decision" in doc:
        style = "green" if doc["other_decision"] == doc.get("decision") else "yellow"
        lines.append("other run ", style="bold")
        lines.append(visible(doc["other_decision"]) + "\n", style=style)
    meta = [f"{k} {doc[k]}" for k in ("language", "language_score", "token_count") if doc.get(k) is not None]
    if meta:
        lines.append("meta      ", style="bold")
        lines.append(visible(", ".join(meta)) + "\n")
    if doc.get("features"):
        lines.append("features  ", style="bold")
        lines.append(visible(", ".join(f"{k}={v}" for k, v in doc["features"].items())) + "\n")
    text = doc.get("text") or ""
    head = text[:chars] + (f" […{len(text) - chars:,} more chars]" if len(text) > chars else "")
    lines.append("\n" + (visible(head, multiline=True) if text else "(no text: removed before extraction)"),
                 style="dim" if not text else "")
    return Panel(lines, title=plain(doc.get("url")), subtitle=plain(doc.get("id")), title_align="left")


def _print_comparison(console: Console, comparison: dict, other: str) -> None:
    table = Table(title=plain(f"decisions, this run vs {other} ({comparison['common_ids']:,} ids in both, "
                              f"{comparison['same']:,} the same)"), title_justify="left", header_style="bold")
    for column in ("this run", "other run", "docs"):
        table.add_column(column, justify="right" if column == "docs" else "left")
    for row in comparison["crosstab"][:20]:
        style = "" if row["this"] == row["other"] else "yellow"
        table.add_row(plain(row["this"]), plain(row["other"]), f"{row['docs']:,}", style=style)
    console.print(table)
    console.print(f"ids only in this run: {comparison['only_this']:,}; only in the other: {comparison['only_other']:,}")
