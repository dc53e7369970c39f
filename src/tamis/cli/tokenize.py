"""`tamis tokenize`: a run's Parquet shards (or any FineWeb-schema Parquet) to training-ready token files."""

from __future__ import annotations

import sys

import click
from rich.console import Console
from rich.table import Table

from tamis.cli.errors import EXIT_FAILED, EXIT_PARTIAL, EXIT_USAGE, fail, output_folder_option, resumable
from tamis.display import line, stderr_console
from tamis.engine.layout import InputIdClash
from tamis.engine.output_lock import OutputLockedError
from tamis.io.redact import public_url
from tamis.tokenize.formats import FORMATS
from tamis.tokenize.stage import TokenizeError, TokenizeOptions, run_tokenize
from tamis.tokenize.tokenizers import TokenizerError


@click.command("tokenize")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--output", "-o", required=True, help="Output directory (or fsspec URL) for the token files.",
              callback=output_folder_option)
@click.option("--tokenizer", default="gpt2", show_default=True,
              help="'gpt2' (shipped ranks), a tiktoken ranks file or a Hugging Face tokenizer.json (by path).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="datatrove", show_default=True)
@click.option("--shuffle", is_flag=True, help="Shuffle documents globally across shards (by --seed).")
@click.option("--seed", default=0, show_default=True, help="Shuffle seed.")
@click.option("--max-tokens", type=click.IntRange(min=1), default=None,
              help="Write exactly this many tokens (end-of-text included), the last document cut.")
@click.option("--eos", default=None, help="End-of-text token text [default: <|endoftext|>].")
@click.option("--shards", type=click.IntRange(min=1), default=None,
              help="Output shards [default: one per input shard].")
@click.option("--address", default=None, help="Ray cluster address; default RAY_ADDRESS, else an embedded local Ray.")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Tasks running at once.")
@click.option("--overwrite", is_flag=True, help="Delete tokens made with other options in --output and start over.")
@click.option("--allow-incomplete", is_flag=True,
              help="Read a run's output even though the run has not finished (part of its documents only).")
@click.option("--no-progress", is_flag=True, help="No progress display.")
def tokenize(inputs: tuple[str, ...], output: str, tokenizer: str, fmt: str, shuffle: bool, seed: int,
             max_tokens: int | None, eos: str | None, shards: int | None, address: str | None,
             workers: int | None, overwrite: bool, allow_incomplete: bool, no_progress: bool) -> None:
    """Tokenize INPUTS (a `tamis run` output, folders, Parquet files or globs): every document followed by
    end-of-text, in datatrove (.ds), Megatron (.bin/.idx) or numpy (.bin + .json) format.
    Exit 0 when complete, 1 when every input failed, 2 for a bad option, 3 when some inputs failed."""
    console = stderr_console()
    options = TokenizeOptions(output, tokenizer=tokenizer, format=fmt, shuffle=shuffle, seed=seed,
                              max_tokens=max_tokens, eos=eos, shards=shards)
    try:
        with resumable(console):
            result = run_tokenize(list(inputs), options, address=address, workers=workers, overwrite=overwrite,
                                  console=console, show_progress=not no_progress,
                                  allow_incomplete=allow_incomplete)
    except (TokenizeError, TokenizerError, InputIdClash, OutputLockedError) as exc:
        fail(console, exc, EXIT_USAGE)
    out = Console()
    totals = result.totals
    if result.failed:
        for label, error in result.failed.items():
            out.print(line(("failed", "red"), f" {label}: {error}"))  # paths and errors are data: never markup
        out.print(f"{len(result.failed)} input(s) failed; nothing was written (rerun to retry them)")
        sys.exit(EXIT_PARTIAL if totals.get("encoded_shards") else EXIT_FAILED)
    table = Table(title=f"tamis tokenize ({result.format})", header_style="bold")
    for column in ("shards in", "shards out", "documents", "tokens", "text MB", "output MB", "dtype", "seconds",
                   "tokens/s"):
        table.add_column(column, justify="right")
    seconds = totals.get("seconds") or 1e-9
    table.add_row(f"{totals['input_shards']}", f"{totals['output_shards']}", f"{totals['documents']:,}",
                  f"{totals['tokens']:,}", f"{totals['text_bytes'] / 1e6:.2f}", f"{totals['bytes'] / 1e6:.2f}",
                  str(totals.get("dtype")), f"{seconds:.1f}", f"{totals['tokens'] / seconds:,.0f}")
    out.print(table)
    if totals.get("truncated_documents"):
        out.print(f"budget: {totals['tokens']:,} tokens exactly (last document cut)")
    if not totals.get("budget_reached", True):
        out.print(f"[yellow]budget not reached[/yellow]: the inputs hold {totals['available_tokens']:,} tokens")
    shown = public_url(output).rstrip("/")
    out.print(line(f"tokens: {shown}/   manifest: {shown}/manifest.json"))
