"""Exit codes and the user errors every command reports the same way: a one-line message, no traceback."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console

from tamis.display import line
from tamis.engine.inputs import MissingInputError
from tamis.engine.layout import InputIdClash
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
