"""One `tamis run` at a time per output: a lock file that a second run into the same output finds.

Why: two runs into one output would do every input twice, write one run index over the other's, and a
second run with `--overwrite` would delete what the first commits while it runs. The second run is refused
before it writes anything, saying which run holds the output.

The lock is `_lock.json` at the output's root, created with an exclusive create (`O_CREAT | O_EXCL`,
atomic on local file systems and NFS) and removed when the run ends, however it ends. A run that was killed
(SIGKILL, a lost machine) leaves its lock behind: on the same machine the lock is stale when its process is
gone (its pid and, on Linux, the process's start time, so a reused pid does not count), and the next run
takes it over with a warning. A lock left by another machine cannot be checked from here: the message says
which file to delete once that run is known to be over.

On an object store (`s3://`...) the lock is the same object, made with a conditional create (S3's
`If-None-Match: *`, through fsspec's `pipe_file(mode="create")`): AWS S3 and the stores that implement it
refuse the second create. A store or file system that cannot create exclusively leaves the output unlocked, with
one warning, as before (the checkpoint design, engine.commits, keeps concurrent runs consistent, only wasteful).
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

LOCK_NAME = "_lock.json"


class OutputLockedError(RuntimeError):
    """Another run holds the output."""


@dataclass(frozen=True)
class Holder:
    """Who holds a lock: enough to tell whether that run can still be alive."""

    host: str
    pid: int
    #: the process's start, in clock ticks since boot (Linux), so that a reused pid is not taken for it
    process_start: int | None
    since: str

    @classmethod
    def this_process(cls) -> Holder:
        return cls(socket.gethostname(), os.getpid(), _process_start(os.getpid()),
                   time.strftime("%Y-%m-%d %H:%M:%S %z"))

    def alive_here(self) -> bool | None:
        """Whether the holder still runs: None when it is on another machine (it cannot be told from here)."""
        if self.host != socket.gethostname():
            return None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # another user's process of that pid
        start = _process_start(self.pid)
        return self.process_start is None or start is None or start == self.process_start


def _process_start(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat (the start time in clock ticks), or None off Linux."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # the command name, in parentheses, may hold spaces
    return int(fields[19]) if len(fields) > 19 else None


class OutputLock:
    """The lock of an output, held from `acquire()` to `release()` (or the end of a `with` block).

    `fs`: the output's fsspec file system; None or a local one for a local folder (an `O_EXCL` create), else
    an object store's (a conditional create).
    """

    def __init__(self, root: str, fs: Any | None = None):
        self.path, self.store = _lock_location(root, fs)
        self.holder = Holder.this_process()
        self.held = False

    @property
    def shown_root(self) -> str:
        """The output as the user wrote it (an object store's with its protocol)."""
        if self.store is None:
            return str(Path(self.path).parent)
        return self.store.unstrip_protocol(posixpath.dirname(str(self.path)))

    @property
    def shown_path(self) -> str:
        return str(self.path) if self.store is None else self.store.unstrip_protocol(str(self.path))

    def acquire(self) -> OutputLock:
        data = json.dumps(asdict(self.holder)).encode()
        for _ in range(2):  # a stale lock is removed once, then the create is tried again
            try:
                created = self._create(data)
            except FileExistsError:
                self._remove_if_stale()
                continue
            if not created:
                return self  # a store that cannot create exclusively: unlocked, as said in a warning
            self.held = True
            return self
        raise OutputLockedError(f"{self.shown_root}: taken by another run while this one started; try again")

    def _create(self, data: bytes) -> bool:
        """Create the lock file, or raise FileExistsError; False when the store cannot create exclusively."""
        if self.store is None:
            path = Path(self.path)
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
            return True
        try:
            self.store.pipe_file(str(self.path), data, mode="create")
        except FileExistsError:
            raise
        except (OSError, ValueError, NotImplementedError, TypeError) as exc:
            log.warning("%s: not locked (the store did not take an exclusive create: %s); another run into "
                        "the same output at once would do the same work again", self.shown_root,
                        type(exc).__name__)
            return False
        return True

    def _remove_if_stale(self) -> None:
        holder = _read_holder(self.path, self.store)
        if holder is None and not self._exists():
            return  # released meanwhile: the create is tried again
        alive = None if holder is None else holder.alive_here()
        if holder is not None and alive is False:
            log.warning("%s: the run that held it (pid %d, since %s) is gone; taking it over",
                        self.shown_path, holder.pid, holder.since)
            self._remove()
            return
        if holder is None:
            who = "a run whose lock file cannot be read"
        else:
            where = "this machine" if alive else f"machine {holder.host!r}"
            who = f"the run started {holder.since} by process {holder.pid} on {where}"
        remedy = ("wait for it to end, or give another --output" if alive else
                  f"if no run uses this output any more, delete {self.shown_path} and run again")
        raise OutputLockedError(f"{self.shown_root} is in use by {who}: two runs into one output would do the "
                                f"same work twice and could delete each other's. {remedy[0].upper()}{remedy[1:]}")

    def _exists(self) -> bool:
        if self.store is None:
            return Path(self.path).exists()
        self.store.invalidate_cache(str(self.path))
        return bool(self.store.exists(str(self.path)))

    def _remove(self) -> None:
        if self.store is None:
            Path(self.path).unlink(missing_ok=True)
            return
        try:
            self.store.rm_file(str(self.path))
        except FileNotFoundError:
            pass

    def release(self) -> None:
        if self.held:
            self.held = False
            holder = _read_holder(self.path, self.store)
            if holder is not None and (holder.host, holder.pid) == (self.holder.host, self.holder.pid):
                self._remove()

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def is_local(fs: Any) -> bool:
    """Whether `fs` is the local file system (NFS mounts included), where the lock is an `O_EXCL` create."""
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return protocol in ("file", "local")


def _lock_location(root: str, fs: Any | None) -> tuple[Path | str, Any | None]:
    """(the lock file of `root`, the object store it is on or None for a local folder)."""
    if fs is None or is_local(fs):
        return Path(root) / LOCK_NAME, None
    return posixpath.join(root.rstrip("/"), LOCK_NAME), fs


def _read_holder(path: Path | str, store: Any | None = None) -> Holder | None:
    try:
        data = json.loads(Path(path).read_text() if store is None else store.cat_file(str(path)))
        return Holder(str(data["host"]), int(data["pid"]), data.get("process_start"), str(data.get("since", "?")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def live_holder(fs: Any, root: str) -> Holder | None:
    """The run holding the lock of `root` on `fs`; None when there is no lock, it cannot be read, or its process
    is gone (a holder on another machine is returned: it cannot be told from here)."""
    holder = _read_holder(*_lock_location(root, fs))
    return None if holder is None or holder.alive_here() is False else holder


def output_lock(fs: Any, root: str) -> OutputLock:
    """The lock of `root` on `fs`, for a `with` block: exclusive on local folders and on object stores that
    create conditionally (see the module's docstring)."""
    return OutputLock(root, fs)
