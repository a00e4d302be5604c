"""``status.json`` in the run dir (written atomically by the supervisor) and ``mmclaude status``.

The file is a :class:`Status` Struct, written and read through one codec. It keeps what the
supervisor knows; the reader adds what only a reader can know (is that supervisor still
alive, how long has it been up). ``mmclaude status --json`` prints it as contract.md says:
those keys are a contract (more may be added, none removed or renamed).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from protocol.procfs import start_ticks

if TYPE_CHECKING:
    from supervisor.config import Settings

__all__ = [
    "ChildStatus",
    "ClaudeStatus",
    "Status",
    "SupervisorStatus",
    "read_status",
    "status_command",
    "status_path",
    "write_status",
]


class SupervisorStatus(msgspec.Struct, frozen=True, kw_only=True):
    pid: int
    state: str  # running, stopping, stopped
    started_at: float  # time.time() at start
    start_ticks: int | None  # /proc/<pid>/stat's start time: tells a reused pid apart
    uptime_s: float


class ChildStatus(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The worker, or one gateway."""

    name: str
    pid: int | None  # None while down
    state: str  # starting, running, backoff, stopping, stopped, failed
    restarts: int
    last_exit: int | None
    # A gateway's, once it has sent a heartbeat (left out otherwise).
    connected: bool | None = None
    gateway_id: str | None = None


class ClaudeStatus(msgspec.Struct, frozen=True, kw_only=True):
    pid: int | None  # None while down
    session_id: str | None
    restarts: int  # every claude process after the first
    queue: int
    model: str | None  # None until claude has reported it
    permission_mode: str | None
    pending_approvals: int
    turns: int
    cost_usd: float


class Status(msgspec.Struct, frozen=True, kw_only=True):
    supervisor: SupervisorStatus
    gateway: ChildStatus  # the first gateway (contract.md)
    gateways: list[ChildStatus]
    worker: ChildStatus
    claude: ClaudeStatus
    thread_id: str | None
    state_dir: str


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Status)


def encode_status(status: Status) -> bytes:
    return _encoder.encode(status)


def status_path(state_dir: str | Path) -> Path:
    return Path(state_dir) / "run" / "status.json"


def write_status(path: Path, status: Status) -> None:
    """Replace ``path`` atomically: a reader sees the old file or the new one, never half."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(msgspec.json.format(encode_status(status), indent=1) + b"\n")
    os.replace(tmp, path)


def read_status(state_dir: str | Path) -> Status | None:
    """The status of a LIVE supervisor, or None when none runs (no file, or its pid is dead)."""
    try:
        status = _decoder.decode(status_path(state_dir).read_bytes())
    except (OSError, msgspec.DecodeError):
        return None
    sup = status.supervisor
    ticks = start_ticks(sup.pid) if sup.pid > 0 else None
    if sup.state == "stopped" or ticks is None or ticks != sup.start_ticks:
        return None
    uptime = round(max(0.0, time.time() - sup.started_at), 1)
    return msgspec.structs.replace(status, supervisor=msgspec.structs.replace(sup, uptime_s=uptime))


def _table(status: Status) -> str:
    rows = [("process", "pid", "state", "restarts", "detail")]
    sup = status.supervisor
    rows.append(("supervisor", str(sup.pid), sup.state, "", f"up {sup.uptime_s} s"))
    for gw in status.gateways:
        detail = "connected" if gw.connected else "not connected"
        rows.append((gw.name, str(gw.pid), gw.state, str(gw.restarts), detail))
    w = status.worker
    rows.append(("worker", str(w.pid), w.state, str(w.restarts), ""))
    c = status.claude
    rows.append(
        (
            "claude",
            str(c.pid),
            "running" if c.pid else "down",
            str(c.restarts),
            f"session {c.session_id or '-'}, queue {c.queue}",
        )
    )
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip() for r in rows]
    lines.append(f"thread: {status.thread_id or '(not bound yet)'}")
    return "\n".join(lines)


def status_command(settings: Settings, *, as_json: bool) -> int:
    """Print the running supervisor's status; 1 when none is running."""
    status = read_status(settings.state_dir)
    if status is None:
        print(
            f"mmclaude: no supervisor is running (state dir {settings.state_dir})", file=sys.stderr
        )
        return 1
    print(encode_status(status).decode() if as_json else _table(status))
    return 0
