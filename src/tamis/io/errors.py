"""Errors of tamis.io that the command line reports in one line; here, apart, so that importing them is cheap."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator

#: a full or read-only storage: every later write fails the same way, so a run stops starting tasks
STORAGE_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


class MissingStorageLibraryError(ValueError):
    """A URL's protocol needs an fsspec library that is not installed (the message says which extra)."""


class StorageFullError(RuntimeError):
    """A full, over-quota or read-only storage met by a task whose OSErrors Ray retries: raised instead of
    the OSError (its message kept), so that Ray does not retry what would fail the same way."""


def error_chain(exc: BaseException | None, *, ray_cause: bool = False) -> Iterator[BaseException]:
    """`exc` and the errors it wraps, each once: its `__cause__`, else its `__context__`. With `ray_cause`,
    the `cause` of an error that has one comes first: Ray hands a task's own error to the driver that way."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        cause = getattr(exc, "cause", None) if ray_cause else None
        exc = cause if isinstance(cause, BaseException) else exc.__cause__ or exc.__context__


def storage_full_errno(exc: BaseException) -> int | None:
    """ENOSPC, EDQUOT or EROFS if `exc` or an error it wraps is one (None otherwise).

    A task's error reaches the driver wrapped by Ray (the original is its `cause`), and some writers (Arrow's)
    raise an OSError without an errno whose message carries the system's text: both are recognised.
    """
    for current in error_chain(exc, ray_cause=True):
        if isinstance(current, OSError) and current.errno in STORAGE_FULL_ERRNOS:
            return current.errno
        message = str(current)
        for code in STORAGE_FULL_ERRNOS:
            if os.strerror(code) in message:
                return code
    return None


def full_storage_error(exc: BaseException, where: str = "") -> OSError | None:
    """The disk's own error (errno and the system's text, `where` after it) for an error that
    `storage_full_errno` recognises, to be reported in one line instead of what wrapped it; else None."""
    code = storage_full_errno(exc)
    return None if code is None else OSError(code, os.strerror(code) + where)
