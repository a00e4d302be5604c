"""status.json: one Struct written and read through one codec, in contract.md's shape."""

from __future__ import annotations

import json
import os
import time
from typing import TYPE_CHECKING

import msgspec

from protocol.procfs import start_ticks
from supervisor.status import (
    ChildStatus,
    ClaudeStatus,
    Status,
    SupervisorStatus,
    encode_status,
    read_status,
    status_path,
    write_status,
)

if TYPE_CHECKING:
    from pathlib import Path


def make_status(*, state: str = "running", claude_pid: int | None = None) -> Status:
    gateway = ChildStatus(
        name="gateway-0",
        pid=None,
        state="backoff",
        restarts=2,
        last_exit=-9,
        connected=True,
        gateway_id="g1",
    )
    return Status(
        supervisor=SupervisorStatus(
            pid=os.getpid(),
            state=state,
            started_at=time.time() - 5,
            start_ticks=start_ticks(os.getpid()),
            uptime_s=0.0,
        ),
        gateway=gateway,
        gateways=[gateway],
        worker=ChildStatus(name="worker", pid=123, state="running", restarts=0, last_exit=None),
        claude=ClaudeStatus(
            pid=claude_pid,
            session_id=None,
            restarts=1,
            queue=0,
            model=None,
            permission_mode="default",
            pending_approvals=0,
            turns=3,
            cost_usd=0.25,
        ),
        thread_id=None,
        state_dir="/x",
    )


def test_json_has_the_contract_keys_with_null_pids_while_down() -> None:
    """contract.md's keys are all there; a pid is null while its process is down."""
    shown = json.loads(encode_status(make_status()))
    assert set(shown) >= {"supervisor", "gateway", "worker", "claude", "thread_id"}
    assert set(shown["supervisor"]) >= {"pid", "uptime_s"}
    for role in ("gateway", "worker"):
        assert set(shown[role]) >= {"pid", "state", "restarts"}
    assert set(shown["claude"]) >= {
        *("pid", "session_id", "restarts", "queue", "model", "permission_mode"),
        *("pending_approvals", "turns", "cost_usd"),
    }
    assert shown["gateway"]["pid"] is None
    assert shown["claude"]["pid"] is None
    assert shown["claude"]["model"] is None
    assert shown["gateway"]["connected"] is True
    assert "connected" not in shown["worker"]  # only a gateway's heartbeat says it


def test_written_status_reads_back_with_the_uptime(tmp_path: Path) -> None:
    path = status_path(tmp_path)
    path.parent.mkdir()
    status = make_status(claude_pid=77)
    write_status(path, status)
    read = read_status(tmp_path)
    assert read is not None
    assert read.supervisor.uptime_s >= 5
    assert msgspec.structs.replace(read, supervisor=status.supervisor) == status


def test_no_live_supervisor_reads_as_none(tmp_path: Path) -> None:
    """No file, a garbled file, a stopped supervisor, a reused pid: no supervisor runs."""
    assert read_status(tmp_path) is None
    path = status_path(tmp_path)
    path.parent.mkdir()
    for text in ("{", "[]", '{"supervisor": {"pid": "x"}}', "null"):
        path.write_text(text)
        assert read_status(tmp_path) is None
    write_status(path, make_status(state="stopped"))
    assert read_status(tmp_path) is None
    status = make_status()
    other = msgspec.structs.replace(status.supervisor, start_ticks=-1)
    write_status(path, msgspec.structs.replace(status, supervisor=other))
    assert read_status(tmp_path) is None
