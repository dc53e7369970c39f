"""Errors of tamis.io that the command line reports in one line; here, apart, so that importing them is cheap."""

from __future__ import annotations


class MissingStorageLibraryError(ValueError):
    """A URL's protocol needs an fsspec library that is not installed (the message says which extra)."""
