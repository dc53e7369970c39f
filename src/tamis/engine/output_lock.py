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

Outputs on object stores (`s3://`...) are not locked: fsspec offers no exclusive create on them. The
checkpoint design (engine.commits) keeps such concurrent runs consistent, only wasteful.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
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
    """The lock of a local output, held from `acquire()` to `release()` (or the end of a `with` block)."""

    def __init__(self, root: str):
        self.path = Path(root) / LOCK_NAME
        self.holder = Holder.this_process()
        self.held = False

    def acquire(self) -> OutputLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):  # a stale lock is removed once, then the create is tried again
            try:
                descriptor = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self._remove_if_stale()
                continue
            with os.fdopen(descriptor, "w") as handle:
                json.dump(asdict(self.holder), handle)
            self.held = True
            return self
        raise OutputLockedError(f"{self.path.parent}: taken by another run while this one started; try again")

    def _remove_if_stale(self) -> None:
        holder = _read_holder(self.path)
        if holder is None and not self.path.exists():
            return  # released meanwhile: the create is tried again
        alive = None if holder is None else holder.alive_here()
        if holder is not None and alive is False:
            log.warning("%s: the run that held it (pid %d, since %s) is gone; taking it over",
                        self.path, holder.pid, holder.since)
            self.path.unlink(missing_ok=True)
            return
        if holder is None:
            who = "a run whose lock file cannot be read"
        else:
            where = "this machine" if alive else f"machine {holder.host!r}"
            who = f"the run started {holder.since} by process {holder.pid} on {where}"
        remedy = ("wait for it to end, or give another --output" if alive else
                  f"if no run uses this output any more, delete {self.path} and run again")
        raise OutputLockedError(f"{self.path.parent} is in use by {who}: two runs into one output would do the "
                                f"same work twice and could delete each other's. {remedy[0].upper()}{remedy[1:]}")

    def release(self) -> None:
        if self.held:
            self.held = False
            holder = _read_holder(self.path)
            if holder is not None and (holder.host, holder.pid) == (self.holder.host, self.holder.pid):
                self.path.unlink(missing_ok=True)

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_holder(path: Path) -> Holder | None:
    try:
        data = json.loads(path.read_text())
        return Holder(str(data["host"]), int(data["pid"]), data.get("process_start"), str(data.get("since", "?")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def live_holder(root: str) -> Holder | None:
    """The run holding the lock of `root`; None when there is no lock, it cannot be read, or its process is
    gone (a holder on another machine is returned: it cannot be told from here)."""
    holder = _read_holder(Path(root) / LOCK_NAME)
    return None if holder is None or holder.alive_here() is False else holder


def lockable(fs: Any) -> bool:
    """Whether outputs on `fs` can be locked: local (and NFS-mounted) folders, not object stores."""
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return protocol in ("file", "local")


def output_lock(fs: Any, root: str) -> contextlib.AbstractContextManager[Any]:
    """The lock of `root` on `fs` for a `with` block: an OutputLock for a local output, else nothing."""
    return OutputLock(root) if lockable(fs) else contextlib.nullcontext()
