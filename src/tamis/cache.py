"""tamis's per-user cache folder: files worth keeping between runs (parsed block lists, a tokenizer's dictionary).

Why per user and not the system temp folder: a file under a fixed name in /tmp can be planted by any other user
of the machine before tamis first writes it, and several libraries load such files back without a check
(tamis.text.library_files). `$TAMIS_CACHE_DIR` moves it; the default is `~/.cache/tamis`.
"""

from __future__ import annotations

import atexit
import os
import shutil
import stat
import tempfile
from pathlib import Path


def user_cache_dir() -> Path:
    """`$TAMIS_CACHE_DIR`, else `~/.cache/tamis` (not created here)."""
    return Path(os.environ.get("TAMIS_CACHE_DIR") or Path.home() / ".cache" / "tamis")


class UnsafeFolderError(PermissionError):
    """A folder that should be ours alone is a symlink, a file, or another user's."""


def ensure_private_folder(path: Path) -> None:
    """Create `path` owner-only (with its parents), or accept it only if it is a plain folder of ours, made
    owner-only if it was wider; otherwise UnsafeFolderError.

    Why: a folder someone else created at a path we predict (or a symlink there) would hand them what we put in
    it, or let them choose what we read from it. Shared by the embedded Ray's folder and the cache folders.
    """
    try:
        path.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        pass
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise UnsafeFolderError(f"{path} is not a plain folder (a symlink or a file)")
    if info.st_uid != os.getuid():
        raise UnsafeFolderError(f"{path} belongs to uid {info.st_uid}, not to you")
    if stat.S_IMODE(info.st_mode) & 0o077:
        os.chmod(path, 0o700)


def private_cache_folder(name: str) -> Path:
    """`<user cache>/<name>`: created owner-only if missing, made owner-only if it is ours and wider.

    Where it cannot be created or written, or is not a plain folder of ours (a symlink, another user's: a
    shared `$TAMIS_CACHE_DIR`, say), a folder of this process's own, owner-only and removed at exit: the library
    then rebuilds its cache once per process, which is slower but never reads a file another user wrote.
    """
    folder = user_cache_dir() / name
    try:
        ensure_private_folder(folder)
        probe = tempfile.NamedTemporaryFile(dir=folder, prefix=".probe-")  # noqa: SIM115 - closed at once
        probe.close()
        return folder
    except OSError:
        own = Path(tempfile.mkdtemp(prefix=f"tamis-{name}-"))
        atexit.register(shutil.rmtree, own, ignore_errors=True)
        return own
