"""Starting or joining Ray: a private embedded local Ray sized to the machine, or an existing cluster.

The embedded Ray is private whatever the user's environment (see deploy/SECURITY.md):
- every Ray process binds 127.0.0.1, never the machine's LAN address;
- Ray's token authentication is on, with a fresh random token for the run in a 0600 file;
- its temp/session folder (sockets, logs, spilled objects, the token) is a per-run folder inside a per-user
  0700 folder, never the shared /tmp/ray.
An address (`--address`, RAY_ADDRESS) joins that cluster instead, with Ray's own settings and token.
"""

from __future__ import annotations

import atexit
import logging
import os
import secrets
import shutil
import signal
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray

from tamis.cache import UnsafeFolderError, ensure_private_folder
from tamis.engine.cluster_address import check_cluster_reachable, requested_address

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
TOKEN_FILE = "auth_token"
# The longest socket path is `<base>/rXXXXXXXX/ray/session_YYYY-MM-DD_HH-MM-SS_NNNNNN_<pid>/sockets/plasma_store`
# (the base plus 78 characters); Unix socket paths are limited to 107 bytes.
MAX_BASE_LENGTH = 29
# Ray reads RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER once, when it is imported; "0" makes it use loopback.
_LOOPBACK_FLAG = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
# What the private environment sets or removes, restored when the embedded Ray is shut down.
_MANAGED_VARIABLES = (_LOOPBACK_FLAG, "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_TMPDIR")


class PrivateRayError(RuntimeError):
    """The embedded Ray could not be made private (an unsafe temp folder, or Ray not on loopback)."""


@dataclass
class PrivateRay:
    """One private embedded Ray's folder and the process environment it changed (to put back afterwards)."""

    run_dir: Path
    token_path: Path
    saved_env: dict[str, str | None] = field(default_factory=dict)
    saved_cluster_flag: bool = True

    @property
    def ray_dir(self) -> Path:
        """The folder to give Ray as its temp dir (`_temp_dir=` in ray.init, `temp_dir=` for a Cluster)."""
        return self.run_dir / "ray"

    def release(self) -> None:
        """Put the environment back and delete the run's folder (token, sockets, logs, spilled objects)."""
        from ray._private import ray_constants

        ray_constants.ENABLE_RAY_CLUSTER = self.saved_cluster_flag
        for name, value in self.saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        _reset_token_cache()
        shutil.rmtree(self.run_dir, ignore_errors=True)


_local: PrivateRay | None = None


def _ensure_private_dir(path: Path) -> None:
    """Create `path` as 0700, or accept it only if it is a real folder of ours (made 0700 if it was wider).

    A folder someone else created at a predictable /tmp path (or a symlink there) could hand them our sockets
    and token, so it is refused rather than used.
    """
    try:
        ensure_private_folder(path)
    except UnsafeFolderError as exc:
        raise PrivateRayError(f"Ray temp folder {exc}; refusing it") from None


def _is_own_private_dir(path: Path) -> bool:
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return (path.is_absolute() and stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid()
            and not stat.S_IMODE(info.st_mode) & 0o077)


def private_base_dir() -> Path:
    """The per-user 0700 folder under which each embedded Ray gets its own run folder.

    TAMIS_RAY_TEMP_DIR if set; else $XDG_RUNTIME_DIR/tamis-ray (when that is a 0700 folder of ours, as the
    login manager makes it); else <system temp>/tamis-ray-<uid>. Paths too long for Ray's Unix sockets fall
    back to /tmp.
    """
    override = os.environ.get("TAMIS_RAY_TEMP_DIR")
    if override:
        base = Path(override).absolute()
        if len(str(base)) > MAX_BASE_LENGTH:
            raise PrivateRayError(f"TAMIS_RAY_TEMP_DIR is {len(str(base))} characters long; Ray's Unix socket "
                                  f"paths need it at most {MAX_BASE_LENGTH}")
    else:
        base = Path("/tmp") / f"tamis-ray-{os.getuid()}"
        runtime = os.environ.get("XDG_RUNTIME_DIR")
        system_temp = Path(tempfile.gettempdir()) / f"tamis-ray-{os.getuid()}"
        if runtime and _is_own_private_dir(Path(runtime)) and len(runtime) + len("/tamis-ray") <= MAX_BASE_LENGTH:
            base = Path(runtime) / "tamis-ray"
        elif len(str(system_temp)) <= MAX_BASE_LENGTH:
            base = system_temp
    _ensure_private_dir(base)
    return base


def _reset_token_cache() -> None:
    """Make Ray's C++ side read the auth mode and token again (it caches both)."""
    from ray._raylet import AuthenticationTokenLoader, Config

    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


def make_private_ray() -> PrivateRay:
    """Prepare this process (and the Ray processes it will start) for a private local Ray; returns its handle.

    Used by `connect()` and by tests that build `ray.cluster_utils.Cluster`s: pass `ray_dir` as the temp dir.
    The run folder itself stays 0700 and holds the token and Ray's folder, which Ray makes 0777 (it sits
    inside two 0700 folders, so no other user can reach it).
    Forces loopback and token mode whatever the environment says, and keeps every Ray default path
    (RAY_TMPDIR: `ray_current_cluster`, the default session folder) inside the private run folder.
    """
    from ray._private import ray_constants

    run_dir = Path(tempfile.mkdtemp(prefix="r", dir=private_base_dir()))  # mkdtemp makes it 0700
    (run_dir / "ray").mkdir(mode=0o700)  # Ray's own folder: Ray makes it (and its subfolders) 0777
    token_path = run_dir / TOKEN_FILE
    descriptor = os.open(token_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(secrets.token_hex(32))
    private = PrivateRay(run_dir=run_dir, token_path=token_path,
                         saved_env={name: os.environ.get(name) for name in _MANAGED_VARIABLES},
                         saved_cluster_flag=ray_constants.ENABLE_RAY_CLUSTER)
    # Ray may already be imported (the constant is read at import), so set the constant for this process and
    # the variable for the processes it starts.
    os.environ[_LOOPBACK_FLAG] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    os.environ["RAY_AUTH_MODE"] = "token"
    os.environ.pop("RAY_AUTH_TOKEN", None)  # a token in the environment would win over the file
    os.environ["RAY_AUTH_TOKEN_PATH"] = str(token_path)
    os.environ["RAY_TMPDIR"] = str(run_dir)  # Ray's default temp folder becomes <run dir>/ray, the one we pass
    _reset_token_cache()
    return private


def _check_loopback() -> None:
    node_ip = ray._private.worker.global_worker.node.node_ip_address
    if node_ip != LOOPBACK:
        raise PrivateRayError(f"the embedded Ray started on {node_ip}, not on {LOOPBACK}; refusing to run")


def _is_loopback_address(address: str) -> bool:
    """`127.0.0.1:6379`, `localhost:6379`, `[::1]:6379`, `ray://127.0.0.1:10001`: a cluster on loopback."""
    host = address.split("://", 1)[-1].rsplit(":", 1)[0].strip("[]")
    return host in ("127.0.0.1", "localhost", "::1")


def connect(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Make sure Ray is initialised; returns True when this call started it (then call `disconnect()`).

    With no address (and no RAY_ADDRESS), starts a fresh private embedded Ray (loopback, token, private
    folder); an address (`ray://…`, `host:port`, `auto`) joins that cluster, whose token Ray finds as usual
    (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token).
    """
    global _local
    if ray.is_initialized():
        return False
    address = requested_address(address)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    _plain_worker_log_prefix()
    if address is not None:
        if _is_loopback_address(address):
            # Ray would otherwise swap 127.0.0.1 for the LAN address, where a loopback-only cluster is not
            from ray._private import ray_constants

            os.environ[_LOOPBACK_FLAG] = "0"
            ray_constants.ENABLE_RAY_CLUSTER = False
        check_cluster_reachable(address)
        try:
            with _sigterm_stops_cleanly_from_now():
                ray.init(address=address, logging_level="WARNING", log_to_driver=True)
        except BaseException:
            _restore_sigterm()
            raise
        return True
    private = make_private_ray()
    try:
        with _sigterm_stops_cleanly_from_now(), dashboard_agent_on_a_free_port():
            ray.init(
                address="local",
                num_cpus=num_cpus or os.cpu_count() or 1,
                include_dashboard=False,
                log_to_driver=True,
                logging_level="WARNING",
                configure_logging=True,
                _temp_dir=str(private.ray_dir),
                _node_ip_address=LOOPBACK,
            )
        _check_loopback()
    except BaseException:
        ray.shutdown()
        _kill_processes_naming(private.run_dir)
        private.release()
        _restore_sigterm()
        raise
    _local = private
    return True


@contextmanager
def dashboard_agent_on_a_free_port() -> Iterator[None]:
    """Around `ray.init` of a new local Ray: its dashboard agent's HTTP server listens on a port the system
    picks, instead of Ray's fixed default (52365).

    Why: when that port is taken (by another tamis run, the test suite's other Ray, any local Ray or cluster
    head on the machine), the agent retries for about 3.4 s before it gives its HTTP server up, and the raylet,
    hence `ray.init`, waits for the agent all that time: every embedded Ray started beside another one was
    3.4 s slower, for nothing (the agent runs on without that server). `ray.init` has no parameter for the port
    (`ray start --dashboard-agent-listen-port` has); port 0 is what Ray itself gives the extra nodes of a
    `ray.cluster_utils.Cluster`. This sets it as the default of Ray's private `RayParams` for the call; a Ray
    version without it starts as before. Also for tests that call `ray.init` themselves.
    """
    from ray._private import parameter

    original = getattr(parameter, "RayParams", None)
    if original is None:
        yield
        return

    class _RayParamsWithFreeAgentPort(original):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("dashboard_agent_listen_port", 0)
            super().__init__(*args, **kwargs)

    parameter.RayParams = _RayParamsWithFreeAgentPort
    try:
        yield
    finally:
        parameter.RayParams = original


def _plain_worker_log_prefix() -> None:
    """Forward workers' lines without colour codes where this process's output is not a terminal.

    Why: Ray wraps the prefix of each line it forwards from a worker (`(process_input pid=…)`, before a
    reader's "truncated near byte …" warning) in ANSI colour codes, which in a log, CI or a pipe are bytes
    in the middle of the line. RAY_COLOR_PREFIX=0 is Ray's own switch for it, read as the driver prints; a
    user's own setting of it is kept.
    """
    if not (sys.stdout.isatty() and sys.stderr.isatty()):
        os.environ.setdefault("RAY_COLOR_PREFIX", "0")


def _kill_processes_naming(folder: Path, wait_seconds: float = 5.0) -> list[int]:
    """SIGKILL this user's processes whose command line names `folder`; the pids killed.

    Why: a `ray.init` interrupted (Ctrl-C, SIGTERM) before it returned leaves the processes it had started
    (GCS, raylet, dashboard...) running with no handle for `ray.shutdown()`, and they kept writing into the
    private folder as it was removed (a folder, sometimes with its token, was left behind). Every one of them
    names the run's folder, a fresh random one, in its arguments. Reads Linux's /proc; elsewhere does nothing
    (Ray's own exit handler still stops them when this process ends).
    """
    needle = str(folder).encode()
    killed = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return killed
    for name in entries:
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            if os.stat(f"/proc/{name}").st_uid != os.getuid():
                continue
            with open(f"/proc/{name}/cmdline", "rb") as handle:
                if needle not in handle.read():
                    continue
            os.kill(int(name), signal.SIGKILL)
            killed.append(int(name))
        except (OSError, ValueError):
            continue
    deadline = time.monotonic() + wait_seconds
    alive = list(killed)
    while alive and time.monotonic() < deadline:
        alive = [pid for pid in alive if _running(pid)]
        time.sleep(0.02)
    return killed


def _running(pid: int) -> bool:
    """Whether `pid` still runs (a zombie, dead but not yet reaped, does not)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return False


def stop_autoscaler_monitor() -> bool:
    """Stop the embedded Ray's autoscaler monitor now (SIGKILL); True if there was one to stop.

    Why: `ray.shutdown()` stops the GCS before the monitor, then SIGTERMs the monitor, whose handler tries to
    report its own end to the GCS that is gone and so never exits within Ray's one-second grace period: 1.0 of
    the 1.4 s shutdown on the 2-core machine (docs/extraction.md), in every run. A local Ray of fixed size has
    nothing for the autoscaler to do and the monitor holds nothing to flush, so it is killed first. These are
    Ray's private internals: if a Ray version lacks them, nothing is done and the shutdown is only slower.
    """
    from ray._private import ray_constants

    node = getattr(ray._private.worker, "_global_node", None)
    processes = getattr(node, "all_processes", None) or {}
    kill_monitor = getattr(node, "kill_monitor", None)
    if not processes.get(getattr(ray_constants, "PROCESS_TYPE_MONITOR", "monitor")) or kill_monitor is None:
        return False
    try:
        kill_monitor(check_alive=False)
    except Exception as exc:  # noqa: BLE001 - a speed-up only: ray.shutdown() still stops it
        logger.debug("could not stop Ray's autoscaler monitor before shutdown: %r", exc)
        return False
    return True


#: the SIGTERM handler to put back at `disconnect()`: the caller's, never one that Ray installed meanwhile
_sigterm_before: Any = None
#: set when SIGTERM arrived while connected (Ray turns any KeyboardInterrupt raised during `ray.get` or
#: `ray.wait` into a plain one, so the exception's type cannot carry it)
_sigterm_received = False


def _raise_interrupt(signum: int, frame: Any) -> None:
    global _sigterm_received
    _sigterm_received = True
    raise KeyboardInterrupt("SIGTERM")


def stopped_by_sigterm() -> bool:
    """Whether the last KeyboardInterrupt of a connected driver came from SIGTERM (not Ctrl-C)."""
    return _sigterm_received


@contextmanager
def _sigterm_stops_cleanly_from_now() -> Iterator[None]:
    """Around `ray.init`: from here until `disconnect()`, SIGTERM stops the driver as Ctrl-C does, so Ray is shut
    down and the private folder and token removed as the interruption unwinds, and committed work is kept.

    Why: `ray.init` sets SIGTERM handlers of its own in the driver: `sys.exit(15)`, then the head node's (kill
    its processes, `sys.exit(1)`), then, in C++, a crash handler that prints a native stack dump (and sometimes
    aborted): a scheduler's stop ended a run with a dump or without a word. Ray's Python handlers are not
    installed during this call (Ray's private `set_sigterm_handler`) and the crash handler is left out of this
    process only (`RAY_DISABLE_FAILURE_SIGNAL_HANDLER`, read when the driver's core worker starts); Ray's workers
    keep theirs. If a Ray version lacks either, the same happens with Ray's behaviour during `ray.init`.
    Only in the main thread, the only one where Python sets handlers.
    """
    global _sigterm_before, _sigterm_received
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    from ray._private import ray_constants
    from ray._private import utils as ray_utils

    before = signal.getsignal(signal.SIGTERM)
    _sigterm_before = signal.SIG_DFL if before is None else before  # None: set from C, not from Python
    _sigterm_received = False
    signal.signal(signal.SIGTERM, _raise_interrupt)
    saved_setter = getattr(ray_utils, "set_sigterm_handler", None)
    saved_flag = getattr(ray_constants, "RAY_DISABLE_FAILURE_SIGNAL_HANDLER", None)
    if saved_setter is not None:
        ray_utils.set_sigterm_handler = lambda handler: None
    if saved_flag is not None:
        ray_constants.RAY_DISABLE_FAILURE_SIGNAL_HANDLER = True
    try:
        yield
    finally:
        if saved_setter is not None:
            ray_utils.set_sigterm_handler = saved_setter
        if saved_flag is not None:
            ray_constants.RAY_DISABLE_FAILURE_SIGNAL_HANDLER = saved_flag


def _restore_sigterm() -> None:
    global _sigterm_before
    if _sigterm_before is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _sigterm_before)
        _sigterm_before = None


def disconnect() -> None:
    """Shut down the Ray that `connect()` started, and remove the embedded Ray's private folder and token."""
    global _local
    if _local is not None:
        stop_autoscaler_monitor()
    ray.shutdown()
    if _local is not None:
        _local.release()
        _local = None
    _restore_sigterm()


@atexit.register
def _release_at_exit() -> None:
    if _local is not None:
        disconnect()


def cluster_cpus() -> int:
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def smallest_node_cpus() -> int:
    """CPUs of the smallest live node that has any (a head started with no CPUs does not count): a task that
    asks for no more fits on every node, so its retry after a node is lost never waits for a node as big as
    the one that died."""
    sizes = [node.get("Resources", {}).get("CPU", 0) for node in ray.nodes() if node.get("Alive")]
    return max(1, int(min((size for size in sizes if size >= 1), default=1)))
