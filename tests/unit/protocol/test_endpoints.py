"""Endpoint naming: ipc files in a private run dir, tcp accepted, bad ones refused."""

from __future__ import annotations

import stat
from typing import TYPE_CHECKING

import pytest

from protocol import (
    EndpointError,
    StateDirError,
    check_endpoint,
    gateway_endpoint,
    prepare_run_dir,
    run_dir,
    supervisor_endpoint,
    worker_endpoint,
)
from protocol.endpoints import GATEWAY_ID_LENGTH, new_gateway_id

if TYPE_CHECKING:
    from pathlib import Path


def test_run_dir_is_private(tmp_path: Path) -> None:
    """The run dir is created with mode 0700, and tightened if it exists looser."""
    (tmp_path / "run").mkdir(mode=0o755)
    (tmp_path / "run").chmod(0o755)
    path = prepare_run_dir(tmp_path)
    assert path == run_dir(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o700


def test_naming_endpoints_creates_nothing(tmp_path: Path) -> None:
    """Naming is pure: the run dir is created by prepare_run_dir only."""
    worker_endpoint(tmp_path / "state")
    gateway_endpoint(tmp_path / "state", "g1")
    assert not (tmp_path / "state").exists()


def test_default_endpoints_are_ipc_in_run_dir(tmp_path: Path) -> None:
    """Worker, supervisor and gateway endpoints are ipc:// paths inside <state>/run."""
    run = tmp_path / "run"
    assert worker_endpoint(tmp_path) == f"ipc://{run}/inbox"
    assert supervisor_endpoint(tmp_path) == f"ipc://{run}/sup"
    assert gateway_endpoint(tmp_path, "abc") == f"ipc://{run}/gw-abc"


@pytest.mark.parametrize(
    "endpoint", ["tcp://127.0.0.1:5555", "tcp://*:7000", "tcp://[::1]:80", "ipc:///tmp/x"]
)
def test_good_endpoints(endpoint: str) -> None:
    """ipc with an absolute path and tcp with host and port are accepted."""
    assert check_endpoint(endpoint) == endpoint


@pytest.mark.parametrize(
    "endpoint",
    ["ipc://relative", "tcp://host", "tcp://host:0", "tcp://host:99999", "inproc://x", "udp://a:1"],
)
def test_bad_endpoints(endpoint: str) -> None:
    """Anything else raises EndpointError."""
    with pytest.raises(EndpointError):
        check_endpoint(endpoint)


def test_long_ipc_path_is_refused() -> None:
    """An ipc path over 107 bytes is refused with advice, instead of failing inside libzmq."""
    with pytest.raises(EndpointError, match="MMCLAUDE_STATE_DIR"):
        check_endpoint("ipc:///" + "x" * 120)


def test_gateway_id_is_checked(tmp_path: Path) -> None:
    """A gateway id that could escape the run dir is refused."""
    with pytest.raises(EndpointError):
        gateway_endpoint(tmp_path, "../evil")


def test_new_gateway_ids_are_distinct_valid_and_of_the_planned_length(tmp_path: Path) -> None:
    """The ipc path length check of the configuration assumes GATEWAY_ID_LENGTH."""
    ids = {new_gateway_id() for _ in range(100)}
    assert len(ids) == 100
    for gid in ids:
        assert len(gid) == GATEWAY_ID_LENGTH
        assert gateway_endpoint(tmp_path, gid).endswith(f"/gw-{gid}")


def test_a_shared_run_dir_of_our_group_is_kept_and_a_foreign_one_refused(tmp_path: Path) -> None:
    """Mode 2770 in one of our groups (roles under separate users) is used as it is; a run
    dir of another user that is not laid out so is refused."""
    import os

    run = tmp_path / "run"
    run.mkdir()
    run.chmod(0o2770)
    assert prepare_run_dir(tmp_path) == run
    assert stat.S_IMODE(run.stat().st_mode) == 0o2770
    if os.geteuid() == 0:  # make it another user's: only root can
        os.chown(run, 65534, 65534)
        run.chmod(0o777)
        with pytest.raises(StateDirError, match="belongs to uid 65534"):
            prepare_run_dir(tmp_path)
