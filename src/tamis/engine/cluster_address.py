"""Whether anything answers at a Ray address; apart from tamis.engine.ray_runtime so that the command line
can name its error without importing Ray."""

from __future__ import annotations

import os
import socket


class ClusterUnreachableError(ConnectionError):
    """Nothing answers at the Ray address given (`--address`, RAY_ADDRESS)."""


def requested_address(address: str | None) -> str | None:
    """The cluster to join: `--address`, else RAY_ADDRESS, else None (tamis starts its own local Ray)."""
    return address or os.environ.get("RAY_ADDRESS") or None


#: how long a connection to the cluster's address may take before we say nothing answers there
CLUSTER_PROBE_SECONDS = 5.0


def check_cluster_reachable(address: str, timeout: float = CLUSTER_PROBE_SECONDS) -> None:
    """Raise ClusterUnreachableError when no TCP connection can be made to `address`'s host and port.

    Why: `ray.init` on an address where nothing listens waited about two minutes (Ray's GCS connection
    retries), printing native warnings, before failing. One connection attempt says it in seconds.
    Addresses without a port (`auto`) are left to Ray.
    """
    host, _, port = address.split("://", 1)[-1].rstrip("/").rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit():
        return
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as exc:
        why = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise ClusterUnreachableError(
            f"no Ray cluster answers at {address} ({why}): start one there (`ray start --head`) or give the "
            "right --address / RAY_ADDRESS; without either, tamis starts its own local Ray") from None
