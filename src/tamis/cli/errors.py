"""Exit codes and the user errors every command reports the same way: a one-line message, no traceback."""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click
from rich.console import Console

from tamis.display import line
from tamis.engine.inputs import MissingInputError
from tamis.engine.layout import InputIdClash
from tamis.engine.output_lock import OutputLockedError
from tamis.engine.ray_runtime import stopped_by_sigterm
from tamis.engine.runner import OutputConflictError
from tamis.pipeline.spec import PipelineError
from tamis.steps.registry import PluginImportError

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3


def fail(console: Console, message: object, code: int) -> None:
    """Print `error: MESSAGE` on one line and exit with `code`.

    `soft_wrap`: rich would otherwise fold the line at the console's width (80 columns where stderr is not a
    terminal: a log, CI, a pipe), splitting a long path or URL inside itself, so that the path copied from
    the message is not the path. The terminal still wraps it for the eye.
    """
    console.print(line(("error:", "red"), f" {message}"), soft_wrap=True)
    sys.exit(code)


@contextmanager
def user_errors(console: Console, *usage_errors: type[Exception]) -> Iterator[None]:
    """Missing inputs exit 1; a bad pipeline, option or output directory exits 2 (nothing was started)."""
    try:
        yield
    except MissingInputError as exc:
        fail(console, exc, EXIT_FAILED)
    except (PipelineError, PluginImportError, OutputConflictError, OutputLockedError, InputIdClash,
            *usage_errors) as exc:
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


def _folder_problem(path: str) -> tuple[str, str] | None:
    """(the thing in the way, why) when local `path` cannot be (or be made) a folder we write in, else None.

    The nearest existing thing on the way to `path`, itself included, must be a folder (not a file) that this
    user can write: not on a read-only file system, not without write permission.
    """
    current = os.path.abspath(path)
    while not os.path.lexists(current):
        parent = os.path.dirname(current)
        if parent == current:
            return None
        current = parent
    if not os.path.isdir(current):
        return current, "is a file, not a folder"
    if os.access(current, os.W_OK | os.X_OK):
        return None
    try:
        read_only = bool(os.statvfs(current).f_flag & os.ST_RDONLY)
    except OSError:
        read_only = False
    return current, f"cannot be written ({'a read-only file system' if read_only else 'no write permission'})"


#: characters that fsspec's listings (glob, and cat/expand_path of a list) read as a pattern, not as a name
_GLOB_CHARACTERS = "*?["


def output_folder_option(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """Callback of every `--output`: a local path blocked by a file (the path itself or a folder on the way),
    or under a folder this user cannot write, is refused before anything starts (exit 2), where the first
    write deep in the run used to end in a traceback. fsspec URLs (s3://...) are left to their store. Any
    path with `*`, `?` or `[` is refused too: the run itself went through, but its rerun, `tamis stats`,
    `inspect` and `tokenize` list the folder with fsspec, which read `out [1]` as a pattern (a traceback or
    "no Parquet shards found")."""
    if value is None:
        return value
    magic = sorted({char for char in value if char in _GLOB_CHARACTERS})
    if magic:
        raise click.BadParameter(
            f"{value!r}: an output path cannot contain {' '.join(magic)}: the listings that find its shards, "
            "commits and statistics would read it as a pattern; choose another name", ctx=ctx, param=param)
    if "://" in value:
        return value
    problem = _folder_problem(value)
    if problem is not None:
        thing, why = problem
        shown = "it" if thing == os.path.abspath(value) else repr(thing)
        raise click.BadParameter(f"{value!r}: {shown} {why}", ctx=ctx, param=param)
    return value


def output_file_option(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Callback of an option naming a file to write (`--html`): its folder may be missing (it is made), but not
    blocked by a file, and the path itself must not be a folder."""
    if value is None or "://" in value:
        return value
    if os.path.isdir(value):
        raise click.BadParameter(f"{value!r} is a folder, not a file", ctx=ctx, param=param)
    problem = _folder_problem(os.path.dirname(os.path.abspath(value)))
    if problem is not None:
        thing, why = problem
        raise click.BadParameter(f"{value!r}: {thing!r} {why}", ctx=ctx, param=param)
    return value


#: errors of the storage under a run, as opposed to tamis's own: reported in one line, not a traceback
_STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


def storage_failure(exc: OSError) -> str | None:
    """One line for a full disk or a folder that cannot be written met during a command (None: not one)."""
    if exc.errno not in _STORAGE_ERRNOS:
        return None
    what = exc.strerror or str(exc)
    if exc.filename:
        what += f": {exc.filename}"
    remedy = {errno.ENOSPC: "free some space", errno.EDQUOT: "free some space",
              errno.EROFS: "give an output on a writable file system"}.get(exc.errno, "check the permissions")
    return f"{what}. The work committed so far is kept; {remedy} and run the same command again"
