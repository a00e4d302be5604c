"""Configuration: a TOML file (``--config``) and the environment (the environment wins).

Every setting has one name, its environment variable (``MATTERMOST_URL``), and a place in the
TOML file (``[mattermost] url``). A missing or malformed value raises :class:`ConfigError`
whose text names the setting; the CLI prints that one line and exits 2.
"""

from __future__ import annotations

import os
import shlex
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from gateway.config import GatewayConfig
from protocol import (
    LOG_FORMATS,
    LOG_LEVELS,
    EndpointError,
    Redactor,
    StateDirError,
    check_endpoint,
    curve,
    prepare_state_dir,
)
from protocol.endpoints import (
    GATEWAY_ID_LENGTH,
    IPC_PATH_MAX,
    gateway_endpoint,
    new_gateway_id,
    supervisor_endpoint,
    worker_endpoint,
)
from session_worker.config import WorkerConfig
from supervisor.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["SETTINGS", "Settings", "load_settings"]

Need = Literal["run", "gateway", "worker", "config", "keys"]

# env var → (TOML section, TOML key). The file may also name a setting by its variable, at
# the top level (``MATTERMOST_URL = "…"``). Prefer token-file over a token in a shared file.
SETTINGS: dict[str, tuple[str, str] | None] = {
    "MATTERMOST_URL": ("mattermost", "url"),
    "MATTERMOST_TOKEN": ("mattermost", "token"),
    "MATTERMOST_TOKEN_FILE": ("mattermost", "token-file"),
    "MATTERMOST_CHANNEL_ID": ("mattermost", "channel-id"),
    "MATTERMOST_THREAD_ID": ("mattermost", "thread-id"),
    "MATTERMOST_ALLOWED_USERS": ("mattermost", "allowed-users"),
    "MMCLAUDE_SINCE_POST": ("mattermost", "since-post"),
    "CLAUDE_PATH": ("claude", "path"),
    "CLAUDE_ARGS": ("claude", "args"),
    "CLAUDE_WORKDIR": ("claude", "workdir"),
    "CLAUDE_IDLE_LIMIT": ("claude", "idle-limit"),
    "CLAUDE_PERMISSION_MODE": ("claude", "permission-mode"),
    "MMCLAUDE_ALLOW_BYPASS": ("mmclaude", "allow-bypass"),
    "MMCLAUDE_APPROVAL_TIMEOUT": ("mmclaude", "approval-timeout"),
    "MMCLAUDE_STATE_DIR": ("mmclaude", "state-dir"),
    "MMCLAUDE_LOG_LEVEL": ("mmclaude", "log-level"),
    "MMCLAUDE_LOG_FORMAT": ("mmclaude", "log-format"),
    "MMCLAUDE_WORKER_ENDPOINT": ("mmclaude", "worker-endpoint"),
    "MMCLAUDE_MAX_QUEUED_PER_USER": ("mmclaude", "max-queued-per-user"),
    "MMCLAUDE_GATEWAY_ENDPOINT": ("mmclaude", "gateway-endpoint"),
    "MMCLAUDE_GATEWAYS": ("supervisor", "gateways"),
    "MMCLAUDE_HEARTBEAT_LIMIT": ("supervisor", "heartbeat-limit"),
    "MMCLAUDE_MAX_RESTARTS": ("supervisor", "max-restarts"),
    "MMCLAUDE_RESTART_PERIOD": ("supervisor", "restart-period"),
    "MMCLAUDE_WORKER_USER": ("supervisor", "worker-user"),
    "MMCLAUDE_GATEWAY_USER": ("supervisor", "gateway-user"),
    "MMCLAUDE_LIVE": ("mmclaude", "live"),
    "MMCLAUDE_MAX_UPLOAD_MB": ("mmclaude", "max-upload-mb"),
}

_ID_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789")


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """The effective configuration of the whole bot."""

    url: str
    token: str
    token_source: str
    channel_id: str
    thread_id: str
    allowed_users: tuple[str, ...]
    claude_path: str
    claude_args: tuple[str, ...]
    claude_workdir: str
    idle_limit: float
    permission_mode: str
    allow_bypass: bool
    approval_timeout: float
    state_dir: str
    log_level: str
    log_format: str | None
    worker_endpoint: str
    max_queued_per_user: int
    # The gateway's own endpoint (where the worker answers it); "" = ipc in the run dir.
    gateway_endpoint: str
    gateways: int
    heartbeat_limit: float
    max_restarts: int
    restart_period: float
    # `mmclaude run` started as root runs each role as this user ("" = as the supervisor).
    worker_user: str = ""
    gateway_user: str = ""
    since_post: str = ""  # binding a thread: its posts from this one on are run, not older
    live: bool = True
    max_upload_mb: float = 20.0

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    def __repr__(self) -> str:
        return f"Settings(url={self.url!r}, token=[REDACTED], state_dir={self.state_dir!r})"

    @property
    def redactor(self) -> Redactor:
        return Redactor([self.token])

    def worker_config(self) -> WorkerConfig:
        return WorkerConfig(
            state_dir=self.state_dir,
            claude_path=self.claude_path,
            claude_args=self.claude_args,
            claude_workdir=self.claude_workdir,
            endpoint=self.worker_endpoint,
            heartbeat_endpoint=None,
            log_level=self.log_level,
            log_format=self.log_format,
            idle_limit=self.idle_limit,
            max_queued_per_user=self.max_queued_per_user,
            permission_mode=self.permission_mode,
            allow_bypass=self.allow_bypass,
            approval_timeout=self.approval_timeout,
            # The worker never holds the Mattermost token (its claude child could read it):
            # nothing of it can reach a worker log line to be redacted.
            redact=(),
            live=self.live,
            max_upload_bytes=self.max_upload_bytes,
        )

    def gateway_config(self, gateway_id: str | None = None) -> GatewayConfig:
        gid = gateway_id or new_gateway_id()
        return GatewayConfig(
            url=self.url,
            token=self.token,
            channel_id=self.channel_id,
            thread_id=self.thread_id,
            allowed_users=self.allowed_users,
            state_dir=self.state_dir,
            gateway_id=gid,
            worker_endpoint=self.worker_endpoint,
            endpoint=self.gateway_endpoint or gateway_endpoint(Path(self.state_dir), gid),
            heartbeat_endpoint=None,
            log_level=self.log_level,
            log_format=self.log_format,
            since_post=self.since_post,
            live=self.live,
            max_upload_bytes=self.max_upload_bytes,
        )

    def supervisor_endpoint(self) -> str:
        return supervisor_endpoint(Path(self.state_dir))

    def describe(self) -> dict[str, Any]:
        """The effective configuration as the ``config`` command prints it (no secret)."""
        return {
            "MATTERMOST_URL": self.url,
            "MATTERMOST_TOKEN": f"[REDACTED] (from {self.token_source})" if self.token else "",
            "MATTERMOST_CHANNEL_ID": self.channel_id,
            "MATTERMOST_THREAD_ID": self.thread_id,
            "MATTERMOST_ALLOWED_USERS": ",".join(self.allowed_users),
            "MMCLAUDE_SINCE_POST": self.since_post,
            "CLAUDE_PATH": self.claude_path,
            "CLAUDE_ARGS": shlex.join(self.claude_args),
            "CLAUDE_WORKDIR": self.claude_workdir,
            "CLAUDE_IDLE_LIMIT": self.idle_limit,
            "CLAUDE_PERMISSION_MODE": self.permission_mode,
            "MMCLAUDE_ALLOW_BYPASS": self.allow_bypass,
            "MMCLAUDE_APPROVAL_TIMEOUT": self.approval_timeout,
            "MMCLAUDE_STATE_DIR": self.state_dir,
            "MMCLAUDE_LOG_LEVEL": self.log_level,
            "MMCLAUDE_LOG_FORMAT": self.log_format or "auto (text on a terminal, else json)",
            "MMCLAUDE_WORKER_ENDPOINT": self.worker_endpoint,
            "MMCLAUDE_MAX_QUEUED_PER_USER": self.max_queued_per_user,
            "MMCLAUDE_GATEWAY_ENDPOINT": self.gateway_endpoint
            or f"ipc://{self.state_dir}/run/gw-<gateway id>",
            "MMCLAUDE_GATEWAYS": self.gateways,
            "MMCLAUDE_HEARTBEAT_LIMIT": self.heartbeat_limit,
            "MMCLAUDE_MAX_RESTARTS": self.max_restarts,
            "MMCLAUDE_RESTART_PERIOD": self.restart_period,
            "MMCLAUDE_WORKER_USER": self.worker_user,
            "MMCLAUDE_GATEWAY_USER": self.gateway_user,
            "MMCLAUDE_LIVE": self.live,
            "MMCLAUDE_MAX_UPLOAD_MB": self.max_upload_mb,
        }


def _read_file(path: Path) -> dict[str, dict[str, Any]]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"--config: cannot read {path}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--config: {path} is not valid TOML: {exc}") from None
    known: dict[str, set[str]] = {}
    for place in SETTINGS.values():
        if place is not None:
            known.setdefault(place[0], set()).add(place[1])
    out: dict[str, dict[str, Any]] = {}
    for name, body in data.items():
        place = SETTINGS.get(name.upper())
        if place is not None and not isinstance(body, dict):  # MATTERMOST_URL = "…"
            out.setdefault(place[0], {})[place[1]] = body
            continue
        if name not in known:
            raise ConfigError(f"--config: {path}: unknown setting or section {name!r}")
        if not isinstance(body, dict):
            raise ConfigError(f"--config: {path}: [{name}] must be a table")
        for key, value in body.items():
            if key not in known[name]:
                raise ConfigError(f"--config: {path}: unknown setting {name}.{key}")
            out.setdefault(name, {})[key] = value
    return out


class _Source:
    """Looks a setting up in the environment, then the file; says where it came from."""

    def __init__(self, env: Mapping[str, str], data: dict[str, dict[str, Any]], path: str):
        self._env = env
        self._data = data
        self._path = path

    def get(self, name: str) -> tuple[object, str] | None:
        if name in self._env:
            return self._env[name], name
        place = SETTINGS[name]
        if place is not None and place[1] in self._data.get(place[0], {}):
            return self._data[place[0]][place[1]], f"{name} ({place[0]}.{place[1]} in {self._path})"
        return None


def _text(value: object, label: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{label}: must be a string, got {value!r}")
    return value.strip()


def _number(value: object, label: str, *, integer: bool = False, minimum: float = 0) -> float:
    if isinstance(value, bool):
        raise ConfigError(f"{label}: must be a number, got {value!r}")
    try:
        number = float(value) if not integer else int(str(value).strip())  # type: ignore[arg-type]
    except (TypeError, ValueError):
        kind = "a whole number" if integer else "a number"
        raise ConfigError(f"{label}: must be {kind}, got {value!r}") from None
    if number != number or number <= minimum - (1 if integer else 0) or number == float("inf"):
        bound = f"at least {minimum}" if integer else f"greater than {minimum}"
        raise ConfigError(f"{label}: must be {bound}, got {value!r}")
    return number


PERMISSION_MODES = ("default", "acceptEdits", "plan", "bypassPermissions")


def _flag(value: object, label: str) -> bool:
    """``true``/``false`` (also 1/0, yes/no, on/off; a TOML boolean)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off", ""):
        return False
    raise ConfigError(f"{label}: must be true or false, got {value!r}")


def _check_id(value: str, label: str) -> str:
    if value and (len(value) != 26 or not set(value) <= _ID_CHARS):
        raise ConfigError(f"{label}: must be a 26-character Mattermost id, got {value!r}")
    return value


def _url(value: str, label: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{label}: must be an http:// or https:// URL, got {value!r}")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ConfigError(f"{label}: has an invalid port: {value!r}") from None
    return value.rstrip("/")


def _default_state_dir(env: Mapping[str, str]) -> str:
    base = env.get("XDG_STATE_HOME") or str(
        Path(env.get("HOME", "~")).expanduser() / ".local/state"
    )
    return str(Path(base) / "mmclaude")


def load_settings(
    env: Mapping[str, str] | None = None,
    config_file: str | Path | None = None,
    *,
    need: Need = "run",
) -> Settings:
    """Build the effective :class:`Settings`, or raise :class:`ConfigError` naming a setting.

    ``need`` says which command runs: ``worker`` needs nothing of Mattermost.
    """
    env = os.environ if env is None else env
    data = _read_file(Path(config_file)) if config_file else {}
    src = _Source(env, data, str(config_file))
    mattermost_needed = need in ("run", "gateway", "config")

    def text(name: str, default: str = "") -> tuple[str, str]:
        found = src.get(name)
        if found is None:
            return default, name
        return _text(found[0], found[1]), found[1]

    # Mattermost
    url, label = text("MATTERMOST_URL")
    if url:
        url = _url(url, label)
    elif mattermost_needed:
        raise ConfigError(
            "MATTERMOST_URL: required (the server base URL, e.g. http://127.0.0.1:8065)"
        )

    token, token_source = text("MATTERMOST_TOKEN")
    token_file, tf_label = text("MATTERMOST_TOKEN_FILE")
    if need in ("worker", "keys"):
        # The worker never holds the token (its claude could read it), and under its own
        # user it cannot read the token file anyway.
        token = token_file = ""
    if token and token_file:
        # The environment wins over the file; within one of them the token itself wins.
        if token_source.startswith("MATTERMOST_TOKEN ") and tf_label == "MATTERMOST_TOKEN_FILE":
            token = ""
        else:
            token_file = ""
    if token_file:
        try:
            token = Path(token_file).expanduser().read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or "not readable text"
            raise ConfigError(
                f"{tf_label}: cannot read the token file {token_file!r}: {reason}"
            ) from None
        if not token:
            raise ConfigError(f"{tf_label}: the token file {token_file!r} is empty")
        token_source = tf_label
    if not token and mattermost_needed:
        raise ConfigError(
            "MATTERMOST_TOKEN: required (or MATTERMOST_TOKEN_FILE naming a file that holds it)"
        )
    if token and any(c.isspace() for c in token):
        raise ConfigError(f"{token_source}: the token must not contain white space")

    channel_id, label = text("MATTERMOST_CHANNEL_ID")
    channel_id = _check_id(channel_id, label)
    thread_id, label = text("MATTERMOST_THREAD_ID")
    thread_id = _check_id(thread_id, label)
    if mattermost_needed and not channel_id and not thread_id:
        raise ConfigError(
            "MATTERMOST_CHANNEL_ID: required unless MATTERMOST_THREAD_ID names an existing thread"
        )

    since_post, label = text("MMCLAUDE_SINCE_POST")
    since_post = _check_id(since_post, label)

    found = src.get("MATTERMOST_ALLOWED_USERS")
    if found is None:
        if mattermost_needed:
            raise ConfigError(
                "MATTERMOST_ALLOWED_USERS: required (comma-separated usernames or user ids, "
                "or * for every member; empty refuses everyone)"
            )
        allowed: tuple[str, ...] = ()
    else:
        raw, label = found
        items = raw.split(",") if isinstance(raw, str) else raw
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise ConfigError(f"{label}: must be a comma-separated string or a list of strings")
        allowed = tuple(dict.fromkeys(i.strip().lstrip("@") for i in items if i.strip()))
        bad = [u for u in allowed if u != "*" and not all(c.isalnum() or c in "._-" for c in u)]
        if bad:
            raise ConfigError(f"{label}: {bad[0]!r} is not a username or user id")

    # Claude
    claude_path, _ = text("CLAUDE_PATH", "claude")
    if not claude_path:
        raise ConfigError("CLAUDE_PATH: must not be empty")
    found = src.get("CLAUDE_ARGS")
    claude_args: tuple[str, ...] = ()
    if found is not None:
        raw, label = found
        if isinstance(raw, list) and all(isinstance(a, str) for a in raw):
            claude_args = tuple(raw)
        elif isinstance(raw, str):
            try:
                claude_args = tuple(shlex.split(raw))
            except ValueError as exc:
                raise ConfigError(f"{label}: cannot be split into words: {exc}") from None
        else:
            raise ConfigError(f"{label}: must be a string or a list of strings")
    workdir, label = text("CLAUDE_WORKDIR", os.getcwd())
    workdir = str(Path(workdir).expanduser().resolve())
    if need in ("run", "worker") and not Path(workdir).is_dir():
        raise ConfigError(f"{label}: {workdir!r} is not a directory")
    found = src.get("CLAUDE_IDLE_LIMIT")
    idle_limit = _number(found[0], found[1]) if found else 600.0
    permission_mode, label = text("CLAUDE_PERMISSION_MODE", "default")
    if permission_mode not in PERMISSION_MODES:
        raise ConfigError(
            f"{label}: must be one of {', '.join(PERMISSION_MODES)}, got {permission_mode!r}"
        )
    found = src.get("MMCLAUDE_ALLOW_BYPASS")
    allow_bypass = _flag(found[0], found[1]) if found else False
    found = src.get("MMCLAUDE_APPROVAL_TIMEOUT")
    approval_timeout = _number(found[0], found[1]) if found else 600.0

    # Runtime
    state_dir, label = text("MMCLAUDE_STATE_DIR", _default_state_dir(env))
    state_path = Path(state_dir).expanduser().absolute()
    if state_path.exists() and not state_path.is_dir():
        raise ConfigError(f"{label}: {str(state_path)!r} exists and is not a directory")
    longest = len(f"{state_path}/run/gw-{'x' * GATEWAY_ID_LENGTH}".encode())
    if longest > IPC_PATH_MAX:
        raise ConfigError(
            f"{label}: {str(state_path)!r} is too long for ipc socket paths "
            f"({longest} > {IPC_PATH_MAX} bytes); choose a shorter directory"
        )
    log_level, label = text("MMCLAUDE_LOG_LEVEL", "INFO")
    log_level = log_level.upper()
    if log_level not in LOG_LEVELS:
        raise ConfigError(f"{label}: must be one of {', '.join(LOG_LEVELS)}, got {log_level!r}")
    log_format: str | None
    log_format, label = text("MMCLAUDE_LOG_FORMAT")
    log_format = log_format.lower() or None
    if log_format is not None and log_format not in LOG_FORMATS:
        raise ConfigError(f"{label}: must be text or json, got {log_format!r}")
    endpoint, label = text("MMCLAUDE_WORKER_ENDPOINT")
    if endpoint:
        try:
            check_endpoint(endpoint)
        except EndpointError as exc:
            raise ConfigError(f"{label}: {exc}") from None
    else:
        endpoint = worker_endpoint(state_path)
    gw_endpoint, gw_label = text("MMCLAUDE_GATEWAY_ENDPOINT")
    if gw_endpoint:
        try:
            check_endpoint(gw_endpoint)
        except EndpointError as exc:
            raise ConfigError(f"{gw_label}: {exc}") from None
        if gw_endpoint.startswith("tcp://*:"):
            raise ConfigError(
                f"{gw_label}: must name the address the worker connects to, not *: {gw_endpoint!r}"
            )

    found = src.get("MMCLAUDE_MAX_QUEUED_PER_USER")
    max_queued = int(_number(found[0], found[1], integer=True, minimum=1)) if found else 20

    found = src.get("MMCLAUDE_GATEWAYS")
    gateways = int(_number(found[0], found[1], integer=True, minimum=1)) if found else 1
    if gw_endpoint and gateways > 1 and need == "run":
        raise ConfigError(
            f"{gw_label}: one endpoint cannot serve {gateways} gateways; leave it unset under "
            "`mmclaude run` or start each remote gateway with `mmclaude gateway`"
        )
    if need in ("run", "gateway", "worker"):
        _check_curve(state_path, need, (endpoint, label), (gw_endpoint, gw_label))
    worker_user, _ = text("MMCLAUDE_WORKER_USER")
    gateway_user, _ = text("MMCLAUDE_GATEWAY_USER")
    if need == "run":
        _check_users(worker_user, gateway_user)
    found = src.get("MMCLAUDE_HEARTBEAT_LIMIT")
    heartbeat_limit = _number(found[0], found[1]) if found else 10.0
    found = src.get("MMCLAUDE_MAX_RESTARTS")
    max_restarts = int(_number(found[0], found[1], integer=True, minimum=1)) if found else 5
    found = src.get("MMCLAUDE_RESTART_PERIOD")
    restart_period = _number(found[0], found[1]) if found else 60.0
    found = src.get("MMCLAUDE_LIVE")
    live = _flag(found[0], found[1]) if found else True
    found = src.get("MMCLAUDE_MAX_UPLOAD_MB")
    max_upload_mb = _number(found[0], found[1]) if found else 20.0

    return Settings(
        url=url,
        token=token,
        token_source=token_source if token else "",
        channel_id=channel_id,
        thread_id=thread_id,
        allowed_users=allowed,
        claude_path=claude_path,
        claude_args=claude_args,
        claude_workdir=workdir,
        idle_limit=idle_limit,
        permission_mode=permission_mode,
        allow_bypass=allow_bypass,
        approval_timeout=approval_timeout,
        state_dir=str(state_path),
        log_level=log_level,
        log_format=log_format,
        worker_endpoint=endpoint,
        max_queued_per_user=max_queued,
        gateway_endpoint=gw_endpoint,
        gateways=gateways,
        heartbeat_limit=heartbeat_limit,
        max_restarts=max_restarts,
        restart_period=restart_period,
        worker_user=worker_user,
        gateway_user=gateway_user,
        since_post=since_post,
        live=live,
        max_upload_mb=max_upload_mb,
    )


def _check_curve(
    state_path: Path, need: Need, worker: tuple[str, str], gateway: tuple[str, str]
) -> None:
    """A tcp endpoint is CURVE or nothing: the keys its roles read must be there and private."""
    keys = curve.keys_dir(state_path)
    for endpoint, label in (worker, gateway):
        if not curve.is_tcp(endpoint):
            continue
        try:
            if need in ("run", "worker"):
                curve.load_pair(keys, curve.WORKER_KEY)
                allowed = keys / curve.ALLOWED_GATEWAYS
                if (endpoint, label) == worker and not curve.allowed_keys(allowed):
                    raise curve.CurveError(f"no gateway key in {allowed}/*.key")
            if need in ("run", "gateway"):
                curve.load_pair(keys, curve.GATEWAY_KEY)
                curve.load_public(keys / f"{curve.WORKER_KEY}.key")
        except curve.CurveError as exc:
            raise ConfigError(
                f"{label}: a tcp endpoint needs CURVE keys (`mmclaude keys`): {exc}"
            ) from None


def _check_users(worker_user: str, gateway_user: str) -> None:
    """Both or neither; they must exist, differ, and only root can switch to them."""
    if not worker_user and not gateway_user:
        return
    import pwd

    for name, label in (
        (worker_user, "MMCLAUDE_WORKER_USER"),
        (gateway_user, "MMCLAUDE_GATEWAY_USER"),
    ):
        if not name:
            raise ConfigError(f"{label}: required when the other role's user is set")
        try:
            pwd.getpwnam(name)
        except KeyError:
            raise ConfigError(f"{label}: no such user {name!r}") from None
    if pwd.getpwnam(worker_user).pw_uid == pwd.getpwnam(gateway_user).pw_uid:
        raise ConfigError(
            "MMCLAUDE_GATEWAY_USER: must differ from MMCLAUDE_WORKER_USER (the worker's claude "
            "must not be able to read the gateway's token)"
        )
    if os.geteuid() != 0:
        raise ConfigError("MMCLAUDE_WORKER_USER: switching users needs `mmclaude run` as root")


def ensure_state_dir(settings: Settings) -> None:
    """Create the state dir (0700) and its run dir, or raise :class:`ConfigError` when they
    are unsafe (another user's, writable by others): before anything binds."""
    try:
        prepare_state_dir(settings.state_dir)
    except StateDirError as exc:
        raise ConfigError(str(exc)) from None
    except (OSError, EndpointError) as exc:
        raise ConfigError(f"MMCLAUDE_STATE_DIR: cannot use {settings.state_dir!r}: {exc}") from None
