"""A real `tamis run`, started with a clean (or hostile) environment, keeps its embedded Ray private: every socket
any of its processes binds is on loopback, Ray's token authentication refuses a client without the token, and
Ray's folder (sockets, logs, token) is a 0700 per-user one, removed after the run.

The run's processes are found by a marker variable in their environment (Ray's processes inherit it), so a
process that left the driver's tree is still seen; listening sockets come from /proc (no psutil needed).
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

import grpc
import pytest
from conftest import SAMPLE_DIR, clean_environment

MARKER = "TAMIS_TEST_RUN_MARKER"
PIPELINE = """\
name: private-ray-check
reader: {step: warc}
steps:
  - step: trafilatura
  - step: token_count
"""
# Variables a user's shell (or a hostile setup) might carry; none of them may open the embedded Ray up.
HOSTILE = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1",
    "RAY_AUTH_MODE": "disabled",
    "RAY_AUTH_TOKEN": "0" * 64,
    "RAY_TMPDIR": "/tmp",
    "TMPDIR": "/tmp",
}


def _address(hex_address: str) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]:
    """Decode /proc/net/tcp's `0100007F:1F90` (each 32-bit word in host byte order) into (ip, port)."""
    host, port = hex_address.split(":")
    raw = bytes.fromhex(host)
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return ipaddress.ip_address(words), int(port, 16)


def _bound_sockets() -> dict[int, tuple[str, str, int]]:
    """inode -> (protocol, ip, port) of every listening TCP socket and every bound UDP socket here."""
    found = {}
    for protocol in ("tcp", "tcp6", "udp", "udp6"):
        try:
            lines = Path(f"/proc/self/net/{protocol}").read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            state, inode = fields[3], int(fields[9])
            if protocol.startswith("tcp") and state != "0A":  # 0A: LISTEN
                continue
            ip, port = _address(fields[1])
            if port:
                found[inode] = (protocol, str(ip), port)
    return found


def _run_processes(marker: str, others: set[int], found: dict[int, str]) -> dict[int, str]:
    """pid -> name of every live process whose environment carries the marker. `others` caches the pids known
    not to (an environment never changes), so each call reads only new processes' environments."""
    needle = f"{MARKER}={marker}".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in others or int(entry) in found:
            continue
        try:
            environment = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        if needle in environment.split(b"\0"):
            found[int(entry)] = ""
        elif environment:  # empty while a process is still being exec'd: look again next time
            others.add(int(entry))
    for pid in list(found):  # a worker renames itself (`ray::IDLE`, `ray::process_input`) once it runs
        try:
            found[pid] = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            del found[pid]
    return found


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(int(target[8:-1]))
    except OSError:
        pass
    return inodes


def _is_loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def _environment_of(pid: int) -> dict[str, str]:
    pairs = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(p.decode(errors="replace").split("=", 1) for p in pairs if b"=" in p)


def _gcs_cluster_id(port: int, token: str | None) -> grpc.StatusCode:
    """Call the GCS's GetClusterId with or without the token; returns the gRPC status."""
    from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc

    metadata = [("authorization", f"Bearer {token}")] if token else []
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel)
        try:
            stub.GetClusterId(gcs_service_pb2.GetClusterIdRequest(), metadata=metadata, timeout=30)
        except grpc.RpcError as error:
            return error.code()
    return grpc.StatusCode.OK


@pytest.mark.slow
@pytest.mark.parametrize("hostile", [False, True], ids=["clean-env", "hostile-env"])
def test_tamis_run_listens_on_loopback_only_with_a_token(tmp_path: Path, hostile: bool) -> None:
    marker = uuid.uuid4().hex
    home = tmp_path / "home"
    home.mkdir()
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(PIPELINE)
    env = {**clean_environment(home), MARKER: marker, **(HOSTILE if hostile else {})}
    inputs = [SAMPLE_DIR / "cc-main-2024-22_whirlwind.warc.gz", SAMPLE_DIR / "dolma_sample-0000.warc.gz"]
    command = [sys.executable, "-m", "tamis.cli.main", "run", str(pipeline), "--output", str(tmp_path / "out"),
               "--no-progress", *(arg for path in inputs for arg in ("--input", str(path)))]
    driver = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    seen: dict[tuple[int, str, str, int], str] = {}
    auth: dict[str, grpc.StatusCode] = {}
    token_path, token = None, None
    run_dir_modes: dict[str, int] = {}
    others: set[int] = set()
    found: dict[int, str] = {}
    deadline = time.time() + 300
    while driver.poll() is None and time.time() < deadline:
        sockets = _bound_sockets()
        for pid, name in _run_processes(marker, others, found).items():
            for inode in _socket_inodes(pid) & sockets.keys():
                protocol, ip, port = sockets[inode]
                seen[(pid, protocol, ip, port)] = name
                if name == "gcs_server" and protocol.startswith("tcp") and auth.get("with") != grpc.StatusCode.OK:
                    try:
                        token_path = Path(_environment_of(pid)["RAY_AUTH_TOKEN_PATH"])
                        token = token_path.read_text().strip()
                        run_dir_modes = {str(p): stat.S_IMODE(os.lstat(p).st_mode)
                                         for p in (token_path, token_path.parent, token_path.parent.parent)}
                    except (OSError, KeyError):
                        continue
                    # once the GCS answers the right token (it may still be starting on a busy machine),
                    # ask it without a token and with a wrong one
                    auth["with"] = _gcs_cluster_id(port, token)
                    if auth["with"] == grpc.StatusCode.OK:
                        auth["without"] = _gcs_cluster_id(port, None)
                        auth["wrong"] = _gcs_cluster_id(port, "f" * 64)
        time.sleep(0.2)
    out, err = driver.communicate(timeout=60)
    assert driver.returncode == 0, err[-3000:]

    names = set(seen.values())
    assert {"gcs_server", "raylet"} <= names, f"the run's Ray processes were not seen listening: {seen}"
    assert any(name.startswith("ray::") for name in names), f"no Ray worker was seen listening: {seen}"
    exposed = {key: name for key, name in seen.items() if not _is_loopback(key[2])}
    assert not exposed, f"Ray processes of the run listen beyond loopback: {exposed}"

    # token authentication is really on: the GCS refuses a client without the token, or with a wrong one
    assert auth == {"without": grpc.StatusCode.UNAUTHENTICATED, "wrong": grpc.StatusCode.UNAUTHENTICATED,
                    "with": grpc.StatusCode.OK}, auth
    token_file, run_dir, base = (str(p) for p in (token_path, token_path.parent, token_path.parent.parent))
    assert run_dir_modes == {token_file: 0o600, run_dir: 0o700, base: 0o700}, run_dir_modes
    assert base.endswith(f"tamis-ray-{os.getuid()}") and os.stat(base).st_uid == os.getuid()
    assert not Path(run_dir).exists(), "the run's Ray folder (and its token) was left behind"
    assert not (home / ".ray").exists(), "Ray wrote a token to the shared ~/.ray"
    assert token and token not in out + err, "the token was printed"


def test_an_unsafe_ray_temp_folder_is_refused_or_tightened(tmp_path: Path, monkeypatch) -> None:
    """A per-user folder that is a symlink, or someone else's, would hand them the sockets and the token."""
    from tamis.engine.ray_runtime import PrivateRayError, private_base_dir

    short = Path(f"/tmp/tp-{os.getpid()}")
    short.mkdir(mode=0o777)
    try:
        os.chmod(short, 0o777)
        monkeypatch.setenv("TAMIS_RAY_TEMP_DIR", str(short))
        assert private_base_dir() == short and stat.S_IMODE(os.stat(short).st_mode) == 0o700
        link = Path(f"{short}-l")
        link.symlink_to(short)
        try:
            monkeypatch.setenv("TAMIS_RAY_TEMP_DIR", str(link))
            with pytest.raises(PrivateRayError, match="symlink"):
                private_base_dir()
        finally:
            link.unlink()
        if os.getuid() == 0:  # only root can make a folder that belongs to someone else
            os.chown(short, 65534, 65534)
            monkeypatch.setenv("TAMIS_RAY_TEMP_DIR", str(short))
            with pytest.raises(PrivateRayError, match="not to you"):
                private_base_dir()
        monkeypatch.setenv("TAMIS_RAY_TEMP_DIR", "/tmp/" + "x" * 40)
        with pytest.raises(PrivateRayError, match="characters long"):
            private_base_dir()
    finally:
        os.rmdir(short)


MONITOR_SCRIPT = """\
import ray
from ray._private import ray_constants
from tamis.engine import ray_runtime

ray_runtime.connect(num_cpus=1)
processes = ray._private.worker._global_node.all_processes
monitor = processes[ray_constants.PROCESS_TYPE_MONITOR][0].process
gcs = processes[ray_constants.PROCESS_TYPE_GCS_SERVER][0].process
real_shutdown = ray.shutdown


def observed_shutdown(*args, **kwargs):
    # what disconnect() has done by the time it calls Ray's shutdown, and whether Ray still works then
    task = ray.get(ray.remote(lambda: 7).remote())
    print("at shutdown: monitor", monitor.poll(), "gcs", gcs.poll(), "task", task)
    real_shutdown(*args, **kwargs)


ray.shutdown = observed_shutdown
ray_runtime.disconnect()
print("after: gcs stopped", gcs.poll() is not None, "initialized", ray.is_initialized())
"""


def test_disconnect_stops_the_embedded_rays_monitor_first_and_ray_keeps_working(tmp_path: Path) -> None:
    """disconnect() kills the autoscaler monitor before ray.shutdown() (else shutdown waits out Ray's 1 s grace
    for it, the GCS being gone); the embedded Ray still runs tasks without it, and shuts down cleanly after."""
    done = subprocess.run([sys.executable, "-c", MONITOR_SCRIPT], env=clean_environment(tmp_path), cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[-2] == "at shutdown: monitor -9 gcs None task 7", done.stdout
    assert lines[-1] == "after: gcs stopped True initialized False", done.stdout


AGENT_SCRIPT = """\
import json, socket, time
import ray
from ray._private import ray_constants
from ray.dashboard import consts
from ray.experimental import internal_kv
from tamis.engine import ray_runtime

taken = socket.socket()
try:
    taken.bind(("127.0.0.1", ray_constants.DEFAULT_DASHBOARD_AGENT_LISTEN_PORT))
    taken.listen()
except OSError:
    pass  # another Ray on this machine has it: taken all the same
ray_runtime.connect(num_cpus=1)
key = consts.DASHBOARD_AGENT_ADDR_NODE_ID_PREFIX + ray.get_runtime_context().get_node_id()
deadline = time.monotonic() + 30
while (address := internal_kv._internal_kv_get(key, namespace=ray_constants.KV_NAMESPACE_DASHBOARD)) is None:
    if time.monotonic() > deadline:
        break
    time.sleep(0.1)
ip, http_port = json.loads(address)[:2] if address else (None, None)
answers = False
if http_port:
    with socket.create_connection((ip, http_port), timeout=5):
        answers = True
ray_runtime.disconnect()
print(json.dumps([ip, http_port, answers, ray_constants.DEFAULT_DASHBOARD_AGENT_LISTEN_PORT]))
"""


def test_the_embedded_rays_agent_serves_on_a_free_loopback_port_when_rays_default_is_taken(tmp_path: Path) -> None:
    """With Ray's fixed agent port (52365) taken, as by another tamis run or any local Ray, the embedded Ray's
    dashboard agent still starts its HTTP server, on a port the system picked, on loopback. (On Ray's default
    it retried for 3.4 s, holding up `ray.init`, then ran without that server.)"""
    done = subprocess.run([sys.executable, "-c", AGENT_SCRIPT], env=clean_environment(tmp_path), cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    ip, http_port, answers, fixed_port = json.loads(done.stdout.strip().splitlines()[-1])
    assert ip == "127.0.0.1", done.stdout
    assert http_port not in (None, -1, 0, fixed_port), done.stdout
    assert answers


INTERRUPTED_START = """\
import json, os, signal, sys, threading, time
from tamis.engine import ray_runtime

threading.Timer(float(sys.argv[1]), lambda: os.kill(os.getpid(), signal.SIGTERM)).start()
try:
    ray_runtime.connect(num_cpus=1)
    outcome = "connected"
except KeyboardInterrupt:
    outcome = "interrupted"
print(json.dumps([outcome, ray_runtime.stopped_by_sigterm(), str(signal.getsignal(signal.SIGTERM))]))
"""


def test_sigterm_while_ray_starts_leaves_no_process_and_no_folder(short_private_dir: Path) -> None:
    """A SIGTERM while `ray.init` runs: an interruption (not Ray's `sys.exit(15)` or its native stack dump);
    the processes already started are stopped and the private folder, token included, is removed at once."""
    env = {"HOME": os.environ.get("HOME", "/root"), "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "TAMIS_RAY_TEMP_DIR": str(short_private_dir)}
    done = subprocess.run([sys.executable, "-c", INTERRUPTED_START, "0.5"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    outcome, by_sigterm, handler_after = json.loads(done.stdout.strip().splitlines()[-1])
    assert (outcome, by_sigterm) == ("interrupted", True), done.stderr[-2000:]
    assert handler_after == str(signal.SIG_DFL)  # the caller's handler is back
    assert "SIGTERM received" not in done.stderr
    assert list(short_private_dir.iterdir()) == [], "the run's folder was left behind"
    naming = [pid for pid in os.listdir("/proc") if pid.isdigit() and _cmdline_names(pid, short_private_dir)]
    assert naming == [], "processes of the interrupted start are still running"


def _cmdline_names(pid: str, folder: Path) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return str(folder).encode() in handle.read()
    except OSError:
        return False
