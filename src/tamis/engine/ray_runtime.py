"""Starting or joining Ray: an embedded local Ray sized to the machine, or an existing cluster."""

from __future__ import annotations

import os
import tempfile

import ray


def connect(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Make sure Ray is initialised; returns True when this call started it (so the caller shuts it down).

    With no address (and no RAY_ADDRESS), starts a fresh embedded Ray on loopback only; an address
    (`ray://…`, `host:port`, `auto`) joins that cluster.
    """
    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if address is None:
        # A private local cluster: keep its traffic on loopback, and never attach to a stale one.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        temp_dir = os.environ.get("TAMIS_RAY_TEMP_DIR") or os.path.join(tempfile.gettempdir(), "tamis-ray")
        ray.init(
            address="local",
            num_cpus=num_cpus or os.cpu_count() or 1,
            include_dashboard=False,
            log_to_driver=True,
            logging_level="WARNING",
            configure_logging=True,
            _temp_dir=temp_dir,
        )
    else:
        ray.init(address=address, logging_level="WARNING", log_to_driver=True)
    return True


def cluster_cpus() -> int:
    return max(1, int(ray.cluster_resources().get("CPU", 1)))
