"""Exit codes and the user errors every command reports the same way: a one-line message, no traceback."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click
from rich.console import Console

from tamis.display import line
from tamis.engine.inputs import MissingInputError
from tamis.engine.layout import InputIdClash
from tamis.engine.ray_runtime import stopped_by_sigterm
from tamis.engine.runner import OutputConflictError
from tamis.pipeline.spec import PipelineError

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3


def fail(console: Console, message: object, code: int) -> None:
    console.print(line(("error:", "red"), f" {message}"))
    sys.exit(code)


@contextmanager
def user_errors(console: Console, *usage_errors: type[Exception]) -> Iterator[None]:
    """Missing inputs exit 1; a bad pipeline, option or output directory exits 2 (nothing was started)."""
    try:
        yield
    except MissingInputError as exc:
        fail(console, exc, EXIT_FAILED)
    except (PipelineError, OutputConflictError, InputIdClash, *usage_errors) as exc:
        fail(console, exc, EXIT_USAGE)


#: exit codes of a command stopped by Ctrl-C or SIGTERM (128 + the signal's number, as shells report them)
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


@contextmanager
def resumable(console: Console) -> Iterator[None]:
    """Ctrl-C or SIGTERM (a scheduler stopping the job): one line saying what is kept, exit 130 or 143.

    By then Ray is shut down and its private folder removed (the commands' own cleanup runs as the
    interruption unwinds; tamis.engine.ray_runtime turns SIGTERM into one while connected). Before, Ctrl-C
    printed click's bare "Aborted!", and SIGTERM a native stack dump from Ray's crash handler and an abort.
    """
    try:
        yield
    except KeyboardInterrupt:
        terminated = stopped_by_sigterm()
        fail(console, f"stopped by {'SIGTERM' if terminated else 'Ctrl-C'}: the work committed so far is kept; "
                      "run the same command again to do the rest",
             EXIT_TERMINATED if terminated else EXIT_INTERRUPTED)


def output_folder_option(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """Callback of every `--output`: a local path blocked by a file (the path itself or a folder on the way)
    is refused before anything starts (exit 2), where the first write deep in the run used to end in a
    FileExistsError traceback. fsspec URLs (s3://...) are left to their store."""
    if value is None or "://" in value:
        return value
    current = os.path.abspath(value)
    while not os.path.lexists(current):
        parent = os.path.dirname(current)
        if parent == current:
            return value
        current = parent
    if not os.path.isdir(current):
        shown = "it" if current == os.path.abspath(value) else repr(current)
        raise click.BadParameter(f"{value!r}: {shown} is a file, not a folder", ctx=ctx, param=param)
    return value
