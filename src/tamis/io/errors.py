"""Errors of tamis.io that the command line reports in one line; here, apart, so that importing them is cheap."""

from __future__ import annotations

import errno
import os

#: a full or read-only storage: every later write fails the same way, so a run stops starting tasks
STORAGE_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


class MissingStorageLibraryError(ValueError):
    """A URL's protocol needs an fsspec library that is not installed (the message says which extra)."""


class StorageFullError(RuntimeError):
    """A full, over-quota or read-only storage met by a task whose OSErrors Ray retries: raised instead of
    the OSError (its message kept), so that Ray does not retry what would fail the same way."""


def storage_full_errno(exc: BaseException) -> int | None:
    """ENOSPC, EDQUOT or EROFS if `exc` or an error it wraps is one (None otherwise).

    A task's error reaches the driver wrapped by Ray (the original is its `cause`), and some writers (Arrow's)
    raise an OSError without an errno whose message carries the system's text: both are recognised.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in STORAGE_FULL_ERRNOS:
            return current.errno
        message = str(current)
        for code in STORAGE_FULL_ERRNOS:
            if os.strerror(code) in message:
                return code
        cause = getattr(current, "cause", None)
        current = cause if isinstance(cause, BaseException) else current.__cause__ or current.__context__
    return None


def full_storage_error(exc: BaseException, where: str = "") -> OSError | None:
    """The disk's own error (errno and the system's text, `where` after it) for an error that
    `storage_full_errno` recognises, to be reported in one line instead of what wrapped it; else None."""
    code = storage_full_errno(exc)
    return None if code is None else OSError(code, os.strerror(code) + where)
