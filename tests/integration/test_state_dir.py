"""An unsafe state dir stops every role before anything binds: exit 2, one line naming
MMCLAUDE_STATE_DIR, no socket made in it. Before this check the supervisor and the gateway
put their sockets there, and only the worker refused (the bot exited 1 after its restarts)."""

from __future__ import annotations

import os
import subprocess
from typing import TYPE_CHECKING

import msgspec
import pytest

from gateway.config import GatewayConfig
from session_worker.testing import worker_config, write_config
from tests.support import REPO

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tests.support import ProcessGroup

pytestmark = pytest.mark.slow

NOBODY = 65534
EXIT_WITHIN = 30.0  # seconds; a refused start takes well under one


def make_loose(state: Path) -> None:
    state.mkdir(mode=0o700)
    state.chmod(0o777)


def make_foreign(state: Path) -> None:
    state.mkdir(mode=0o700)
    os.chown(state, NOBODY, NOBODY)


UNSAFE: list[object] = [
    pytest.param(make_loose, id="mode-0777"),
    pytest.param(
        make_foreign,
        id="owner-65534",
        marks=pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root"),
    ),
]


def cli_env(state: Path, work: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "MATTERMOST_URL": "http://127.0.0.1:9",
        "MATTERMOST_TOKEN": "tok-for-the-state-dir-test",
        "MATTERMOST_CHANNEL_ID": "c" * 26,
        "MATTERMOST_ALLOWED_USERS": "alice",
        "CLAUDE_PATH": "/bin/false",
        "CLAUDE_WORKDIR": str(work),
        "MMCLAUDE_STATE_DIR": str(state),
        "MMCLAUDE_LOG_FORMAT": "text",
    }


def refused(procs: ProcessGroup, args: list[str], env: dict[str, str], state: Path) -> str:
    proc = procs.python(*args, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _, err = proc.communicate(timeout=EXIT_WITHIN)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"{args} still runs {EXIT_WITHIN} s after start") from None
    text = err.decode(errors="replace")
    assert proc.returncode == 2, text
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    assert "MMCLAUDE_STATE_DIR" in lines[0]
    assert list(state.iterdir()) == []  # no run/, no socket, no journal
    return lines[0]


@pytest.mark.parametrize("unsafe", UNSAFE)
@pytest.mark.parametrize("command", ["run", "worker", "gateway"])
def test_every_mmclaude_command_refuses_an_unsafe_state_dir(
    short_tmp: Path, procs: ProcessGroup, command: str, unsafe: Callable[[Path], None]
) -> None:
    """`mmclaude run|worker|gateway` exit 2 with one line naming the setting."""
    state = short_tmp / "state"
    unsafe(state)
    env = cli_env(state, short_tmp)
    line = refused(procs, ["-m", "supervisor.cli", command], env, state)
    assert line.startswith("mmclaude: configuration error: MMCLAUDE_STATE_DIR: ")


@pytest.mark.parametrize("unsafe", UNSAFE)
def test_the_service_entry_points_refuse_it_too(
    short_tmp: Path, procs: ProcessGroup, unsafe: Callable[[Path], None]
) -> None:
    """The worker and the gateway as the supervisor starts them (their own configs, no CLI)
    make the same check before they bind."""
    state = short_tmp / "state"
    configs = short_tmp / "configs"
    configs.mkdir()
    wconfig = write_config(worker_config(state.parent / "ok"), configs / "worker.json")
    raw = msgspec.json.decode(wconfig.read_bytes())
    raw["state_dir"] = str(state)
    raw["endpoint"] = f"ipc://{state}/run/inbox"
    wconfig.write_bytes(msgspec.json.encode(raw))
    gconfig = configs / "gateway.json"
    gconfig.write_bytes(
        msgspec.json.encode(
            GatewayConfig(
                url="http://127.0.0.1:9", token="t", channel_id="c" * 26, thread_id="",
                allowed_users=("alice",), state_dir=str(state), gateway_id="g1",
                worker_endpoint=f"ipc://{state}/run/inbox", endpoint=f"ipc://{state}/run/gw-g1",
                log_format="text",
            )
        )
    )  # fmt: skip
    unsafe(state)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for module, config in (("session_worker", wconfig), ("gateway", gconfig)):
        line = refused(procs, ["-m", module, str(config)], env, state)
        assert "MMCLAUDE_STATE_DIR: " in line
