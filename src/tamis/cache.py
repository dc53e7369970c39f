"""tamis's per-user cache folder: files worth keeping between runs (parsed block lists, a tokenizer's dictionary).

Why per user and not the system temp folder: a file under a fixed name in /tmp can be planted by any other user
of the machine before tamis first writes it, and several libraries load such files back without a check
(tamis.text.library_files). `$TAMIS_CACHE_DIR` moves it; the default is `~/.cache/tamis`.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path


def user_cache_dir() -> Path:
    """`$TAMIS_CACHE_DIR`, else `~/.cache/tamis` (not created here)."""
    return Path(os.environ.get("TAMIS_CACHE_DIR") or Path.home() / ".cache" / "tamis")


def private_cache_folder(name: str) -> Path:
    """`<user cache>/<name>`, created owner-only if missing.

    Where that cannot be created (a read-only home, say), a folder of this process's own, owner-only and
    removed at exit: the library then rebuilds its cache once per process, which is slower but never shares a
    file with another user.
    """
    folder = user_cache_dir() / name
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=folder, prefix=".probe-")  # noqa: SIM115 - closed at once
        probe.close()
        return folder
    except OSError:
        own = Path(tempfile.mkdtemp(prefix=f"tamis-{name}-"))
        atexit.register(shutil.rmtree, own, ignore_errors=True)
        return own
