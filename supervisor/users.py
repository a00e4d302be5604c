"""Each role under its own user: ``mmclaude run`` as root, the gateway and the worker dropped
to ``MMCLAUDE_GATEWAY_USER`` and ``MMCLAUDE_WORKER_USER``.

Claude Code runs tools as the worker's user, so the gateway, the one role that holds the
Mattermost token, runs as another: the worker and claude cannot read its memory,
``/proc/<pid>/environ`` or the token file (readable by root, which reads it and hands the
token to the gateway alone). The supervisor stays root to spawn, signal and reap.

The state dir is shared so that both can reach their sockets, and nothing more:

* ``<state dir>``: owner the worker, group the worker's primary group, mode 0710 (the gateway
  may pass through, not list); everything in it (journal, lock, keys) belongs to the worker;
* ``<state dir>/run``: owner the worker, same group, mode 2770 (setgid: every socket bound
  there gets that group); every process of the tree runs with umask 007, so sockets are 0660;
* ``<state dir>/keys`` (CURVE, when used): 0710 in that group, ``gateway.key_secret`` the
  gateway's own, public keys readable.

The gateway gets the worker's primary group as a supplementary group; the worker gets nothing
of the gateway's.
"""

from __future__ import annotations

import contextlib
import os
import pwd
from dataclasses import dataclass
from pathlib import Path

from protocol.statedir import SHARED_RUN_MODE, SHARED_STATE_MODE

__all__ = ["RunAs", "become", "layout_state_dir", "resolve"]

STATE_MODE = SHARED_STATE_MODE  # protocol.statedir accepts exactly this layout
RUN_MODE = SHARED_RUN_MODE
UMASK = 0o007


@dataclass(frozen=True)
class RunAs:
    """Who a child becomes right after it is spawned."""

    user: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str


def _run_as(name: str, extra_groups: tuple[int, ...] = ()) -> RunAs:
    entry = pwd.getpwnam(name)
    groups = set(os.getgrouplist(entry.pw_name, entry.pw_gid)) | set(extra_groups)
    return RunAs(entry.pw_name, entry.pw_uid, entry.pw_gid, tuple(sorted(groups)), entry.pw_dir)


def resolve(worker_user: str, gateway_user: str) -> dict[str, RunAs]:
    """The identities of both roles (the configuration loader checked that they exist)."""
    worker = _run_as(worker_user)
    return {"worker": worker, "gateway": _run_as(gateway_user, (worker.gid,))}


def layout_state_dir(state_dir: str | Path, worker: RunAs, gateway: RunAs) -> None:
    """Give the state dir to the worker and share its run dir with the gateway (see above).

    CURVE keys, if any: ``keys/`` 0710 in the worker's group; the gateway's secret key is the
    gateway's (0600), the public keys are world-readable (they are public).
    """
    state = Path(state_dir)
    run = state / "run"
    run.mkdir(parents=True, exist_ok=True)
    for path in [p for p in state.rglob("*") if p != run and run not in p.parents]:
        os.lchown(path, worker.uid, worker.gid)
    for path in run.iterdir():
        with contextlib.suppress(OSError):
            os.lchown(path, worker.uid, worker.gid)
    os.chown(state, worker.uid, worker.gid)
    os.chmod(state, STATE_MODE)
    os.chown(run, worker.uid, worker.gid)
    os.chmod(run, RUN_MODE)
    keys = state / "keys"
    if keys.is_dir():
        os.chmod(keys, STATE_MODE)
        for public in keys.glob("*.key"):
            os.chmod(public, 0o644)
        secret = keys / "gateway.key_secret"
        if secret.exists():
            os.lchown(secret, gateway.uid, gateway.gid)
            os.chmod(secret, 0o600)


def become(run_as: RunAs) -> None:
    """Drop this (root) process to ``run_as`` for good; its environment says who it is."""
    os.setgroups(list(run_as.groups))
    os.setgid(run_as.gid)
    os.setuid(run_as.uid)
    if os.getuid() != run_as.uid or os.geteuid() != run_as.uid:  # pragma: no cover
        raise PermissionError(f"could not become {run_as.user}")
    os.environ.update(HOME=run_as.home, USER=run_as.user, LOGNAME=run_as.user)
    os.umask(UMASK)
