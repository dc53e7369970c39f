"""The command line entry point: `tamis run`, `tamis stats`, ... each imported only when it runs.

`tamis stats` on a running job is meant to answer in seconds; importing every command would import Ray, the
steps, spaCy and torch first (about 5 s of CPU before reading a file), so the group names its commands by module
and imports the one asked for (all of them for `tamis --help`).
"""

from __future__ import annotations

import importlib
import logging

import click

from tamis import __version__
from tamis.display import VisibleControlsFormatter, stderr_console
from tamis.engine.cluster_address import ClusterUnreachableError
from tamis.io.errors import MissingStorageLibraryError

#: command name -> "module:attribute" of its click command
COMMANDS = {
    "run": "tamis.cli.run:run",
    "steps": "tamis.cli.run:steps",
    "stats": "tamis.cli.stats:stats",
    "inspect": "tamis.cli.stats:inspect_command",
    "dedup": "tamis.cli.dedup:dedup",
    "ablate": "tamis.cli.ablate:ablate",
    "sample": "tamis.cli.sample:sample",
    "tokenize": "tamis.cli.tokenize:tokenize",
}


class LazyGroup(click.Group):
    """A group whose commands are imported by name when invoked (see the module docstring)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS and cmd_name not in self.commands:
            module, attribute = COMMANDS[cmd_name].split(":")
            self.add_command(getattr(importlib.import_module(module), attribute), cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup)
@click.version_option(__version__, prog_name="tamis")
def cli() -> None:
    """tamis: web crawls in, FineWeb-style pretraining text out, on Ray."""
    root = logging.getLogger()
    if not root.handlers:  # what logging.basicConfig does, with a formatter that shows control characters:
        # log lines quote paths and URLs of the data, whose escape sequences must never reach the terminal
        handler = logging.StreamHandler()
        handler.setFormatter(VisibleControlsFormatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.WARNING)


def main() -> None:
    try:
        cli()
    except Exception as exc:  # noqa: BLE001 - from any command, before or during its work; others re-raised
        reported = _one_line(exc)
        if reported is None:
            raise
        from tamis.cli.errors import fail

        fail(stderr_console(), *reported)


def _one_line(exc: Exception) -> tuple[str, int] | None:
    """(message, exit status) for errors any command may meet, or None to let the traceback through:
    a missing fsspec library (exit 2), an --address / RAY_ADDRESS where nothing listens, a full disk or a
    folder that cannot be written (exit 1), the disk's error also when a Ray task or a stage wrapped it.
    Imported only when one is met: the command line starts light."""
    from tamis.cli.errors import EXIT_FAILED, EXIT_USAGE, storage_failure
    from tamis.io.errors import full_storage_error

    if isinstance(exc, MissingStorageLibraryError):
        return str(exc), EXIT_USAGE
    if isinstance(exc, ClusterUnreachableError):  # a ConnectionError, so an OSError: before storage_failure
        return str(exc), EXIT_FAILED
    full = full_storage_error(exc)
    if full is not None and not (isinstance(exc, OSError) and exc.errno == full.errno):
        exc = full  # the one line names the disk's error, not what wrapped it
    message = storage_failure(exc) if isinstance(exc, OSError) else None
    return None if message is None else (message, EXIT_FAILED)


if __name__ == "__main__":
    main()
