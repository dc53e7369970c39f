"""Files on local disks and object stores alike (fsspec), committed atomically.

A file is written under a temporary name in its final directory and renamed when complete, so a reader
never sees half a file. On object stores, where rename is a copy, the per-input commit marker written
last (see engine.commit) is what makes outputs visible; a stray temporary object is harmless. JSON files,
small and serialized before they are written, go to an object store in one PUT (atomic there).
"""

from __future__ import annotations

import json
import posixpath
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

import fsspec
from fsspec import AbstractFileSystem
from fsspec.implementations.local import LocalFileSystem

from tamis.io.errors import MissingStorageLibraryError

#: the tamis extra that installs the fsspec library of a protocol
_EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs"}


def url_to_fs(url: str) -> tuple[AbstractFileSystem, str]:
    """fsspec's (filesystem, path) for `url`; a missing protocol library is a one-line error naming the extra
    to install, where it was an ImportError traceback from deep inside fsspec."""
    try:
        return fsspec.core.url_to_fs(url)
    except ImportError as exc:
        from tamis.io.redact import public_url

        protocol = url.split("://", 1)[0].lower() if "://" in url else "file"
        extra = _EXTRAS.get(protocol)
        hint = f"pip install 'tamis[{extra}]'" if extra else f"install fsspec's library for {protocol}://"
        raise MissingStorageLibraryError(f"{public_url(url)!r}: {exc} ({hint})") from None


def filesystem(url: str) -> tuple[AbstractFileSystem, str]:
    """(filesystem, path within it) for a local path or any fsspec URL."""
    fs, path = url_to_fs(url)
    return fs, path.rstrip("/") if path != "/" else path


def url_of(fs: AbstractFileSystem, path: str) -> str:
    """A path inside `fs` as something any process can open: plain for local files, a full URL otherwise."""
    protocol = fs.protocol[0] if isinstance(fs.protocol, (tuple, list)) else fs.protocol
    return path if protocol in ("file", "local") else fs.unstrip_protocol(path)


def join(*parts: str) -> str:
    return posixpath.join(*parts)


def temporary_name(path: str) -> str:
    directory, name = posixpath.split(path)
    return posixpath.join(directory, f".{name}.tmp-{uuid.uuid4().hex[:12]}")


@contextmanager
def atomic_open(fs: AbstractFileSystem, path: str, mode: str = "wb") -> Iterator[IO[Any]]:
    """Write to a temporary name, rename onto `path` only if the block completes."""
    fs.makedirs(posixpath.dirname(path), exist_ok=True)
    tmp = temporary_name(path)
    try:
        with fs.open(tmp, mode) as handle:
            yield handle
        fs.mv(tmp, path)
    except BaseException:
        try:
            if fs.exists(tmp):
                fs.rm(tmp)
        except Exception:  # noqa: BLE001 - best effort cleanup; the original error matters
            pass
        raise


def write_json(fs: AbstractFileSystem, path: str, data: Any, indent: int | None = 1) -> None:
    """`data` as the JSON file `path`, whole or not at all.

    The document is serialized first, then written: by rename on a local disk; on an object store as one PUT,
    which is atomic there already (a reader sees the old object or the new one), so the temporary object, its
    copy and its delete are not needed (with them a task's commit made 20 requests on moto; without, 8)."""
    text = json.dumps(data, indent=indent, sort_keys=True, default=str)
    if isinstance(fs, LocalFileSystem):
        with atomic_open(fs, path, "w") as handle:
            handle.write(text)
    else:
        fs.pipe_file(path, text.encode())


def read_json(fs: AbstractFileSystem, path: str) -> Any:
    with fs.open(path, "r") as handle:
        return json.load(handle)
