"""Telling transient storage errors (throttling, timeouts, dropped connections) from permanent ones."""

from __future__ import annotations

import errno
import random
import time
from collections.abc import Callable
from typing import TypeVar

from tamis.io.errors import error_chain

T = TypeVar("T")

_TRANSIENT_ERRNOS = {errno.ETIMEDOUT, errno.ECONNRESET, errno.ECONNREFUSED, errno.ECONNABORTED, errno.EPIPE,
                     errno.EAGAIN, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ENETRESET}
# Names of exception classes (botocore, aiohttp, requests, urllib3, gcsfs...) and message fragments that mean
# "try again later"; matched by name so that no cloud SDK has to be importable here.
_TRANSIENT_NAMES = ("Timeout", "Throttl", "SlowDown", "ConnectionError", "ConnectionClosed", "ServerDisconnected",
                    "ClientPayloadError", "IncompleteRead", "ProtocolError", "ServiceUnavailable",
                    "RetryError", "EndpointConnectionError", "ReadTimeout")
_TRANSIENT_MESSAGES = ("slow down", "throttl", "timed out", "timeout", "503", "500 internal", "connection reset",
                       "temporarily unavailable", "too many requests", "429")


def is_transient(exc: BaseException) -> bool:
    """True for errors worth retrying: the same request may well succeed in a few seconds."""
    for error in error_chain(exc):
        if isinstance(error, (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)):
            return False
        if isinstance(error, (TimeoutError, ConnectionError)):
            return True
        if isinstance(error, OSError) and error.errno in _TRANSIENT_ERRNOS:
            return True
        name = type(error).__name__
        if any(fragment in name for fragment in _TRANSIENT_NAMES):
            return True
        message = str(error).lower()
        if any(fragment in message for fragment in _TRANSIENT_MESSAGES):
            return True
    return False


def with_retries(action: Callable[[], T], attempts: int, base_delay: float = 1.0,
                 on_retry: Callable[[int, BaseException], None] | None = None) -> T:
    """Run `action`; on a transient error wait (exponential backoff with jitter) and run it again."""
    for attempt in range(attempts):
        try:
            return action()
        except Exception as exc:
            if attempt + 1 >= attempts or not is_transient(exc):
                raise
            if on_retry is not None:
                on_retry(attempt + 1, exc)
            time.sleep(base_delay * 2**attempt * (0.5 + random.random()))
    raise AssertionError("unreachable")
