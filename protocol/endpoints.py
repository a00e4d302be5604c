"""Where each process listens.

By default every endpoint is an ``ipc://`` socket file in ``<state dir>/run`` (mode 0700, so
only this user can connect). ``tcp://`` endpoints are accepted from configuration, for a
gateway on another host.
"""

from __future__ import annotations

import os
import re
import stat
from typing import TYPE_CHECKING

from protocol.errors import EndpointError

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "IPC_PATH_MAX",
    "check_endpoint",
    "gateway_endpoint",
    "run_dir",
    "supervisor_endpoint",
    "worker_endpoint",
]

# Linux sun_path is 108 bytes with the NUL; libzmq refuses longer (zmq.IPC_PATH_MAX_LEN).
IPC_PATH_MAX = 107

_TCP = re.compile(r"^tcp://(\*|[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:]+\]):(\d{1,5})$")
_GATEWAY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")


# A run dir shared by roles under separate users (supervisor.users): setgid, group rwx.
SHARED_RUN_MODE = 0o2770


def run_dir(state_dir: Path) -> Path:
    """Create ``<state dir>/run`` with mode 0700 (tightening it if it exists) and return it.

    A run dir laid out for separate users (mode 2770, a group of ours; see
    ``supervisor.users``) is used as it is.
    """
    path = state_dir / "run"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    info = path.stat()
    mode = stat.S_IMODE(info.st_mode)
    shared = mode == SHARED_RUN_MODE and (
        os.geteuid() == 0 or info.st_gid in {os.getgid(), *os.getgroups()}
    )
    if info.st_uid != os.getuid() and not shared:
        raise EndpointError(f"{path} belongs to another user; refusing to put sockets there")
    if mode != 0o700 and not shared:
        path.chmod(0o700)
    return path


def check_endpoint(endpoint: str) -> str:
    """Return ``endpoint`` if it is a usable ``ipc://`` or ``tcp://`` address, else raise."""
    if endpoint.startswith("ipc://"):
        path = endpoint[len("ipc://") :]
        if not path.startswith("/"):
            raise EndpointError(f"ipc endpoint must be an absolute path: {endpoint!r}")
        if len(path.encode()) > IPC_PATH_MAX:
            raise EndpointError(
                f"ipc path is {len(path.encode())} bytes, over the limit of {IPC_PATH_MAX}: "
                f"{path!r}; choose a shorter MMCLAUDE_STATE_DIR"
            )
        return endpoint
    match = _TCP.match(endpoint)
    if match and 0 < int(match.group(2)) < 65536:
        return endpoint
    raise EndpointError(
        f"endpoint must be ipc:///absolute/path or tcp://host:port, got {endpoint!r}"
    )


def _ipc(state_dir: Path, name: str) -> str:
    return check_endpoint(f"ipc://{run_dir(state_dir)}/{name}")


def worker_endpoint(state_dir: Path) -> str:
    """The worker's inbox (every gateway pushes here)."""
    return _ipc(state_dir, "inbox")


def supervisor_endpoint(state_dir: Path) -> str:
    """The supervisor's heartbeat socket."""
    return _ipc(state_dir, "sup")


def gateway_endpoint(state_dir: Path, gateway_id: str) -> str:
    """A gateway's own socket, where the worker answers it."""
    if not _GATEWAY_ID.match(gateway_id):
        raise EndpointError(f"gateway id must be 1-40 of [A-Za-z0-9_.-], got {gateway_id!r}")
    return _ipc(state_dir, f"gw-{gateway_id}")
