"""CURVE for ``tcp://`` endpoints: the keys, who may connect, and socket setup.

An ``ipc://`` socket is guarded by the file system (the run dir); a ``tcp://`` one by nothing,
so every tcp socket of ours is CURVE-encrypted and authenticated (ZeroMQ's CurveZMQ, with
pyzmq's ``zmq.auth`` ZAP handler deciding which client keys are let in). Plain tcp is refused
by the configuration loader.

The keys live in ``<state dir>/keys`` (mode 0700; every ``*.key_secret`` 0600), made by
``mmclaude keys``:

* ``worker.key`` / ``worker.key_secret``: the worker's pair. It serves the tcp inbox with it
  and presents it when it connects to a gateway's tcp endpoint.
* ``gateway.key`` / ``gateway.key_secret``: a gateway's pair. It connects to the worker's
  inbox with it and serves its own tcp endpoint with it. A remote gateway needs this pair and
  ``worker.key`` (the worker's public key) in its own ``<state dir>/keys``.
* ``allowed-gateways/*.key``: the public keys of the gateways the worker accepts (read again
  at every handshake, so adding or removing a file takes effect without a restart). A
  gateway's tcp endpoint accepts only the key in ``worker.key``.

A message that arrived over CURVE carries its sender's public key (ZeroMQ's ``User-Id``, the
z85 text of the key): the worker uses it as the server key when it connects back to that
gateway's tcp endpoint.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import zmq
import zmq.auth
from zmq.auth.asyncio import AsyncioAuthenticator

from protocol.errors import ProtocolError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "ALLOWED_GATEWAYS",
    "GATEWAY_KEY",
    "KEYS_DIR",
    "WORKER_KEY",
    "CurveError",
    "KeyPair",
    "allowed_keys",
    "check_secret_file",
    "is_tcp",
    "keys_dir",
    "load_pair",
    "load_public",
    "make_client",
    "make_keys",
    "make_server",
    "start_authenticator",
]

KEYS_DIR = "keys"
WORKER_KEY = "worker"
GATEWAY_KEY = "gateway"
ALLOWED_GATEWAYS = "allowed-gateways"


class CurveError(ProtocolError):
    """A key is missing, unreadable, malformed or too open."""


class KeyPair(NamedTuple):
    """A CURVE key pair, each key as its 40-character z85 text (bytes)."""

    public: bytes
    secret: bytes


def is_tcp(endpoint: str) -> bool:
    return endpoint.startswith("tcp://")


def keys_dir(state_dir: str | Path) -> Path:
    return Path(state_dir) / KEYS_DIR


def check_secret_file(path: Path) -> None:
    """A secret key must be a regular file of ours that nobody else can read."""
    try:
        info = path.stat()
    except OSError as exc:
        raise CurveError(f"{path}: {exc.strerror}; run `mmclaude keys`") from None
    if not stat.S_ISREG(info.st_mode):
        raise CurveError(f"{path} is not a regular file")
    if stat.S_IMODE(info.st_mode) & 0o077:
        raise CurveError(f"{path} is readable by others (mode {stat.S_IMODE(info.st_mode):o}); "
                         "chmod 600 it")  # fmt: skip


def load_pair(directory: Path, name: str) -> KeyPair:
    """``<directory>/<name>.key_secret``, checked to be private."""
    path = directory / f"{name}.key_secret"
    check_secret_file(path)
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise CurveError(f"{path}: not a CURVE secret key file ({exc})") from None
    if secret is None or len(public) != 40 or len(secret) != 40:
        raise CurveError(f"{path}: not a CURVE secret key file (no secret key in it)")
    return KeyPair(public, secret)


def load_public(path: Path) -> bytes:
    """The public key in a ``.key`` (or ``.key_secret``) certificate file."""
    try:
        public, _ = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise CurveError(f"{path}: cannot read a CURVE public key ({exc})") from None
    if len(public) != 40:
        raise CurveError(f"{path}: not a CURVE public key")
    return public


def allowed_keys(directory: Path) -> set[bytes]:
    """Every public key in ``directory/*.key`` (z85); unreadable files are skipped."""
    found: set[bytes] = set()
    with contextlib.suppress(OSError):
        for path in sorted(directory.glob("*.key")):
            with contextlib.suppress(CurveError):
                found.add(load_public(path))
    return found


def make_keys(state_dir: str | Path) -> list[tuple[Path, bool]]:
    """Create the worker's and a gateway's pair and allow that gateway; never overwrite.

    Returns every key file with whether it was made now. The directory is 0700, secret
    files 0600 (created so: never readable by others, even for a moment).
    """
    base = keys_dir(state_dir)
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    base.chmod(0o700)
    allowed = base / ALLOWED_GATEWAYS
    allowed.mkdir(exist_ok=True, mode=0o700)
    out: list[tuple[Path, bool]] = []
    old_umask = os.umask(0o077)
    try:
        for name in (WORKER_KEY, GATEWAY_KEY):
            secret = base / f"{name}.key_secret"
            made = not secret.exists()
            if made:
                zmq.auth.create_certificates(base, name)
            secret.chmod(0o600)
            out += [(base / f"{name}.key", made), (secret, made)]
        listed = allowed / f"{GATEWAY_KEY}.key"
        made = not listed.exists()
        if made:
            listed.write_bytes((base / f"{GATEWAY_KEY}.key").read_bytes())
        out.append((listed, made))
    finally:
        os.umask(old_umask)
    return out


class _Allowed:
    """pyzmq's credentials provider: a client key is let in when ``keys()`` has it."""

    def __init__(self, keys: Callable[[], set[bytes]]) -> None:
        self._keys = keys
        self.refused = 0

    def callback(self, domain: str, key: bytes) -> bool:
        allowed = key in self._keys()
        if not allowed:
            self.refused += 1
        return allowed


def start_authenticator(
    context: zmq.Context[Any], keys: Callable[[], set[bytes]]
) -> AsyncioAuthenticator:
    """Start the ZAP handler of ``context`` (call inside the running loop, before any bind):
    CURVE clients whose key ``keys()`` lists get in, every other one is refused."""
    auth = AsyncioAuthenticator(context)
    auth.start()
    auth.configure_curve_callback("*", credentials_provider=_Allowed(keys))
    return auth


def make_server(socket: zmq.Socket[Any], pair: KeyPair) -> None:
    """Make ``socket`` (before its bind) a CURVE server with ``pair``."""
    socket.curve_secretkey = pair.secret
    socket.curve_publickey = pair.public
    socket.curve_server = True


def make_client(socket: zmq.Socket[Any], pair: KeyPair, server_key: bytes) -> None:
    """Make ``socket`` (before its connect) a CURVE client of the server ``server_key``."""
    socket.curve_secretkey = pair.secret
    socket.curve_publickey = pair.public
    socket.curve_serverkey = server_key
