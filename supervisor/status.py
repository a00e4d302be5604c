"""``status.json`` in the run dir (written atomically by the supervisor) and ``mmclaude status``.

The file keeps what the supervisor knows; the command adds what only a reader can know (is
that supervisor still alive, how long has it been up) and prints it as contract.md says.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from protocol.procfs import start_ticks

if TYPE_CHECKING:
    from supervisor.config import Settings

__all__ = ["read_status", "status_command", "status_path", "write_status"]


def status_path(state_dir: str | Path) -> Path:
    return Path(state_dir) / "run" / "status.json"


def write_status(path: Path, status: dict[str, Any]) -> None:
    """Replace ``path`` atomically: a reader sees the old file or the new one, never half."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(status, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_status(state_dir: str | Path) -> dict[str, Any] | None:
    """The status of a LIVE supervisor, or None when none runs (no file, or its pid is dead)."""
    try:
        status = json.loads(status_path(state_dir).read_text(encoding="utf-8"))
        sup = status["supervisor"]
        pid = int(sup["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if sup.get("state") == "stopped" or start_ticks(pid) != sup.get("start_ticks"):
        return None
    sup["uptime_s"] = round(max(0.0, time.time() - float(sup.get("started_at", 0))), 1)
    return dict(status)


def _table(status: dict[str, Any]) -> str:
    rows = [("process", "pid", "state", "restarts", "detail")]
    sup = status["supervisor"]
    rows.append(
        ("supervisor", str(sup["pid"]), sup.get("state", ""), "", f"up {sup['uptime_s']} s")
    )
    for gw in status.get("gateways", []):
        detail = "connected" if gw.get("connected") else "not connected"
        rows.append((gw["name"], str(gw["pid"]), gw["state"], str(gw["restarts"]), detail))
    w = status["worker"]
    rows.append(("worker", str(w["pid"]), w["state"], str(w["restarts"]), ""))
    c = status["claude"]
    rows.append(
        (
            "claude",
            str(c["pid"]),
            "running" if c["pid"] else "down",
            str(c["restarts"]),
            f"session {c['session_id'] or '-'}, queue {c['queue']}",
        )
    )
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip() for r in rows]
    lines.append(f"thread: {status.get('thread_id') or '(not bound yet)'}")
    return "\n".join(lines)


def status_command(settings: Settings, *, as_json: bool) -> int:
    """Print the running supervisor's status; 1 when none is running."""
    status = read_status(settings.state_dir)
    if status is None:
        print(
            f"mmclaude: no supervisor is running (state dir {settings.state_dir})", file=sys.stderr
        )
        return 1
    print(json.dumps(status) if as_json else _table(status))
    return 0
