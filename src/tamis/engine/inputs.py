"""Turning the user's input arguments (paths, globs, URLs) into a sorted list of files."""

from __future__ import annotations

import fsspec


class MissingInputError(FileNotFoundError):
    pass


def expand_inputs(patterns: list[str]) -> list[str]:
    """Every file matched by the patterns, as full paths/URLs, sorted and de-duplicated.

    A pattern that matches nothing is an error: silently processing fewer files than asked is the kind
    of data loss nobody notices.
    """
    found: set[str] = set()
    for pattern in patterns:
        fs, _ = fsspec.core.url_to_fs(pattern)
        protocol = fs.protocol[0] if isinstance(fs.protocol, (tuple, list)) else fs.protocol
        _, path = fsspec.core.url_to_fs(pattern)
        if any(ch in pattern for ch in "*?["):
            matches = [m for m in fs.glob(path) if fs.isfile(m)]
        else:
            matches = [path] if fs.isfile(path) else []
        if not matches:
            raise MissingInputError(f"no input file matches {pattern!r}")
        for match in matches:
            found.add(match if protocol in ("file", "local") else fs.unstrip_protocol(match))
    return sorted(found)
