"""Configuration: a TOML file (``--config``) and the environment (the environment wins).

Every setting has one name, its environment variable (``MATTERMOST_URL``), and a place in the
TOML file (``[mattermost] url``). The file's shape is four msgspec Structs, one per section
(kebab-case keys, unknown keys refused, ranges as ``Meta`` constraints, enumerations as
``Literal``); the environment's strings are laid over the file's values and the whole is
converted by ``msgspec.convert``. What a type cannot say (a URL, the token file, endpoints,
CURVE keys, users) is checked after. A missing or malformed value raises :class:`ConfigError`
whose one line names the setting; the CLI prints it and exits 2.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

import msgspec
from msgspec import Meta

from gateway.config import GatewayConfig
from protocol import (
    EndpointError,
    LogFormat,
    LogLevel,
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

__all__ = ["SETTINGS", "ConfigFile", "Need", "Settings", "load_settings"]

Need = Literal["run", "gateway", "worker", "config", "keys"]
PermissionMode = Literal["default", "acceptEdits", "plan", "bypassPermissions"]
PERMISSION_MODES: tuple[PermissionMode, ...] = get_args(PermissionMode)

# --- the file's shape (and the environment's, once laid over it) ------------------------------

# A finite number above zero (seconds, megabytes); msgspec refuses nan, the bound refuses inf.
Positive = Annotated[float, Meta(gt=0, le=sys.float_info.max)]
# A count of at least one.
Count = Annotated[int, Meta(ge=1)]
# A Mattermost id (26 lower-case letters and digits), or "" for none.
MattermostId = Annotated[str, Meta(pattern="^([a-z0-9]{26})?$")]
NonEmpty = Annotated[str, Meta(min_length=1)]
# Words: a list, or one string (comma-separated users; shell-split claude arguments).
Words = str | list[str]


class _Section(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class MattermostSection(_Section, frozen=True, rename="kebab"):
    url: str = ""
    token: str = ""
    token_file: str = ""
    channel_id: MattermostId = ""
    thread_id: MattermostId = ""
    allowed_users: Words | None = None  # None: not given (required for a gateway)
    since_post: MattermostId = ""


class ClaudeSection(_Section, frozen=True, rename="kebab"):
    path: NonEmpty = "claude"
    args: Words = ""
    workdir: str = ""  # "" = the current directory
    idle_limit: Positive = 600.0
    permission_mode: PermissionMode = "default"


class MmclaudeSection(_Section, frozen=True, rename="kebab"):
    allow_bypass: bool = False
    approval_timeout: Positive = 600.0
    state_dir: str = ""  # "" = $XDG_STATE_HOME/mmclaude
    log_level: LogLevel = "INFO"
    log_format: LogFormat | None = None  # None = text on a terminal, else json
    worker_endpoint: str = ""  # "" = ipc in the run dir
    max_queued_per_user: Count = 100
    gateway_endpoint: str = ""  # "" = ipc in the run dir, per gateway
    live: bool = True
    max_upload_mb: Positive = 20.0


class SupervisorSection(_Section, frozen=True, rename="kebab"):
    gateways: Count = 1
    heartbeat_limit: Positive = 10.0
    max_restarts: Count = 5
    restart_period: Positive = 60.0
    worker_user: str = ""
    gateway_user: str = ""


class ConfigFile(_Section, frozen=True):
    """The TOML file, and the environment laid over it."""

    mattermost: MattermostSection = msgspec.field(default_factory=MattermostSection)
    claude: ClaudeSection = msgspec.field(default_factory=ClaudeSection)
    mmclaude: MmclaudeSection = msgspec.field(default_factory=MmclaudeSection)
    supervisor: SupervisorSection = msgspec.field(default_factory=SupervisorSection)


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
_NAME_OF = {place: name for name, place in SETTINGS.items() if place is not None}


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
    permission_mode: PermissionMode
    allow_bypass: bool
    approval_timeout: float
    state_dir: str
    log_level: LogLevel
    log_format: LogFormat | None
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


# --- loading ------------------------------------------------------------------------------------

_SECTIONS: dict[str, type[_Section]] = {
    "mattermost": MattermostSection,
    "claude": ClaudeSection,
    "mmclaude": MmclaudeSection,
    "supervisor": SupervisorSection,
}
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off", "")


def _field_types() -> dict[tuple[str, str], msgspec.inspect.Type]:
    """(section, key) → the key's type, constraints included, ``None`` left out."""
    out: dict[tuple[str, str], msgspec.inspect.Type] = {}
    for section, struct in _SECTIONS.items():
        info = msgspec.inspect.type_info(struct)
        assert isinstance(info, msgspec.inspect.StructType)
        for field in info.fields:
            kind = field.type
            if isinstance(kind, msgspec.inspect.UnionType):
                kinds = [k for k in kind.types if not isinstance(k, msgspec.inspect.NoneType)]
                kind = kinds[0] if len(kinds) == 1 else msgspec.inspect.UnionType(tuple(kinds))
            out[(section, field.encode_name)] = kind
    return out


_TYPES = _field_types()


def _one_of(values: tuple[Any, ...]) -> str:
    words = [str(v) for v in values]
    if len(words) == 2:
        return f"must be {words[0]} or {words[1]}"
    return f"must be one of {', '.join(words)}"


def _complaint(place: tuple[str, str], problem: str) -> str:
    """What a value of this setting must be, from its type (``problem`` is msgspec's text)."""
    kind = _TYPES[place]
    wrong_type = "got `" in problem
    if isinstance(kind, msgspec.inspect.IntType):
        return "must be a whole number" if wrong_type else f"must be at least {kind.ge}"
    if isinstance(kind, msgspec.inspect.FloatType):
        return f"must be a number greater than {kind.gt:g}"
    if isinstance(kind, msgspec.inspect.BoolType):
        return "must be true or false"
    if isinstance(kind, msgspec.inspect.LiteralType):  # in the order written, not sorted
        literals = (get_args(t) for t in (LogLevel, LogFormat, PermissionMode))
        return _one_of(next((v for v in literals if set(v) == set(kind.values)), kind.values))
    if isinstance(kind, msgspec.inspect.StrType):
        if wrong_type:
            return "must be a string"
        if kind.pattern is not None:
            return "must be a 26-character Mattermost id"
        return "must not be empty"
    if place == ("mattermost", "allowed-users"):
        return "must be a comma-separated string or a list of strings"
    return "must be a string or a list of strings"


def _normal(key: str, value: object) -> object:
    """The forms a type alone does not take: trimmed text, yes/no/on/off, any case."""
    if not isinstance(value, str):
        return value
    value = value.strip()
    if key in ("allow-bypass", "live") and value.lower() in (*_TRUE, *_FALSE):
        return value.lower() in _TRUE
    if key == "log-level":
        return value.upper()
    if key == "log-format":
        return value.lower() or None
    return value


class _Sources:
    """The file's values with the environment's laid over them; where each one came from."""

    def __init__(self, env: Mapping[str, str], config_file: str | Path | None) -> None:
        self.path = str(config_file)
        self.values: dict[str, Any] = {}
        self.given: dict[tuple[str, str], object] = {}  # as written, for error messages
        self.labels: dict[tuple[str, str], str] = {}
        if config_file:
            self._read_file(Path(config_file))
        for name, place in SETTINGS.items():
            if place is not None and name in env:
                self._set(place, env[name], name)

    def _set(self, place: tuple[str, str], value: object, label: str) -> None:
        self.values.setdefault(place[0], {})[place[1]] = _normal(place[1], value)
        self.given[place] = value
        self.labels[place] = label

    def _read_file(self, path: Path) -> None:
        try:
            doc = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"--config: cannot read {path}: {exc.strerror}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"--config: {path} is not valid TOML: {exc}") from None
        for name, body in doc.items():
            place = SETTINGS.get(name.upper())
            if place is not None and not isinstance(body, dict):  # MATTERMOST_URL = "…"
                self._set(place, body, f"{name.upper()} ({place[0]}.{place[1]} in {path})")
            elif name not in _SECTIONS:
                self.values[name] = body  # ConfigFile refuses it by name
            elif not isinstance(body, dict):
                raise ConfigError(f"--config: {path}: [{name}] must be a table")
            else:
                for key, value in body.items():
                    where = f"{name}.{key}"
                    self._set(
                        (name, key),
                        value,
                        f"{_NAME_OF.get((name, key), where)} ({where} in {path})",
                    )

    def label(self, section: str, key: str) -> str:
        return self.labels.get((section, key), _NAME_OF.get((section, key), f"{section}.{key}"))

    def from_env(self, section: str, key: str) -> bool:
        return self.labels.get((section, key)) == _NAME_OF.get((section, key))

    def convert(self) -> ConfigFile:
        try:
            return msgspec.convert(self.values, ConfigFile, strict=False)
        except msgspec.ValidationError as exc:
            raise ConfigError(self._explain(str(exc))) from None

    def _explain(self, error: str) -> str:
        """msgspec's ``… - at `$.section.key[0]``` as one line naming the setting."""
        problem, _, at = error.partition(" - at `$")
        path = re.findall(r"\.([^.\[`]+)", at)
        if problem.startswith("Object contains unknown field"):
            unknown = problem[problem.index("`") + 1 : problem.rindex("`")]
            if not path:
                return f"--config: {self.path}: unknown setting or section {unknown!r}"
            return f"--config: {self.path}: unknown setting {path[0]}.{unknown}"
        if len(path) < 2 or (path[0], path[1]) not in _TYPES:
            return f"--config: {self.path}: {problem} at {'.'.join(path) or 'the top'}"
        place = (path[0], path[1])
        return f"{self.label(*place)}: {_complaint(place, problem)}, got {self.given.get(place)!r}"


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
    src = _Sources(env, config_file)
    cfg = src.convert()
    mm, mc, sv = cfg.mattermost, cfg.mmclaude, cfg.supervisor
    mattermost_needed = need in ("run", "gateway", "config")

    url = _url(mm.url, src.label("mattermost", "url"), required=mattermost_needed)
    token, token_source = _token(src, mm, need)
    if not token and mattermost_needed:
        raise ConfigError(
            "MATTERMOST_TOKEN: required (or MATTERMOST_TOKEN_FILE naming a file that holds it)"
        )
    if mattermost_needed and not mm.channel_id and not mm.thread_id:
        raise ConfigError(
            "MATTERMOST_CHANNEL_ID: required unless MATTERMOST_THREAD_ID names an existing thread"
        )
    allowed = _allowed_users(
        mm.allowed_users, src.label("mattermost", "allowed-users"), required=mattermost_needed
    )
    claude_args = _words(cfg.claude.args, src.label("claude", "args"))
    workdir = _workdir(cfg.claude.workdir, src.label("claude", "workdir"), need)

    state_path = _state_dir(
        mc.state_dir or _default_state_dir(env), src.label("mmclaude", "state-dir")
    )
    endpoint_label = src.label("mmclaude", "worker-endpoint")
    endpoint = _endpoint(mc.worker_endpoint, endpoint_label) or worker_endpoint(state_path)
    gw_label = src.label("mmclaude", "gateway-endpoint")
    gw_endpoint = _endpoint(mc.gateway_endpoint, gw_label)
    if gw_endpoint.startswith("tcp://*:"):
        raise ConfigError(
            f"{gw_label}: must name the address the worker connects to, not *: {gw_endpoint!r}"
        )
    if gw_endpoint and sv.gateways > 1 and need == "run":
        raise ConfigError(
            f"{gw_label}: one endpoint cannot serve {sv.gateways} gateways; leave it unset under "
            "`mmclaude run` or start each remote gateway with `mmclaude gateway`"
        )
    if need in ("run", "gateway", "worker"):
        _check_curve(state_path, need, (endpoint, endpoint_label), (gw_endpoint, gw_label))
    if need == "run":
        _check_users(sv.worker_user, sv.gateway_user)

    return Settings(
        url=url,
        token=token,
        token_source=token_source if token else "",
        channel_id=mm.channel_id,
        thread_id=mm.thread_id,
        allowed_users=allowed,
        claude_path=cfg.claude.path,
        claude_args=claude_args,
        claude_workdir=workdir,
        idle_limit=cfg.claude.idle_limit,
        permission_mode=cfg.claude.permission_mode,
        allow_bypass=mc.allow_bypass,
        approval_timeout=mc.approval_timeout,
        state_dir=str(state_path),
        log_level=mc.log_level,
        log_format=mc.log_format,
        worker_endpoint=endpoint,
        max_queued_per_user=mc.max_queued_per_user,
        gateway_endpoint=gw_endpoint,
        gateways=sv.gateways,
        heartbeat_limit=sv.heartbeat_limit,
        max_restarts=sv.max_restarts,
        restart_period=sv.restart_period,
        worker_user=sv.worker_user,
        gateway_user=sv.gateway_user,
        since_post=mm.since_post,
        live=mc.live,
        max_upload_mb=mc.max_upload_mb,
    )


def _url(value: str, label: str, *, required: bool) -> str:
    from urllib.parse import urlsplit

    if not value:
        if required:
            raise ConfigError(
                "MATTERMOST_URL: required (the server base URL, e.g. http://127.0.0.1:8065)"
            )
        return ""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{label}: must be an http:// or https:// URL, got {value!r}")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ConfigError(f"{label}: has an invalid port: {value!r}") from None
    return value.rstrip("/")


def _token(src: _Sources, mm: MattermostSection, need: Need) -> tuple[str, str]:
    """The token and the setting it came from (the file it names, read here)."""
    if need in ("worker", "keys"):
        # The worker never holds the token (its claude could read it), and under its own
        # user it cannot read the token file anyway.
        return "", ""
    token, token_file = mm.token, mm.token_file
    if token and token_file:
        # The environment wins over the file; within one of them the token itself wins.
        if src.from_env("mattermost", "token-file") and not src.from_env("mattermost", "token"):
            token = ""
        else:
            token_file = ""
    source = src.label("mattermost", "token")
    if token_file:
        source = src.label("mattermost", "token-file")
        try:
            token = Path(token_file).expanduser().read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or "not readable text"
            raise ConfigError(
                f"{source}: cannot read the token file {token_file!r}: {reason}"
            ) from None
        if not token:
            raise ConfigError(f"{source}: the token file {token_file!r} is empty")
    if any(c.isspace() for c in token):
        raise ConfigError(f"{source}: the token must not contain white space")
    return token, source


def _allowed_users(value: Words | None, label: str, *, required: bool) -> tuple[str, ...]:
    if value is None:
        if required:
            raise ConfigError(
                "MATTERMOST_ALLOWED_USERS: required (comma-separated usernames or user ids, "
                "or * for every member; empty refuses everyone)"
            )
        return ()
    items = value.split(",") if isinstance(value, str) else value
    allowed = tuple(dict.fromkeys(i.strip().lstrip("@") for i in items if i.strip()))
    bad = [u for u in allowed if u != "*" and not all(c.isalnum() or c in "._-" for c in u)]
    if bad:
        raise ConfigError(f"{label}: {bad[0]!r} is not a username or user id")
    return allowed


def _words(value: Words, label: str) -> tuple[str, ...]:
    if isinstance(value, list):
        return tuple(value)
    try:
        return tuple(shlex.split(value))
    except ValueError as exc:
        raise ConfigError(f"{label}: cannot be split into words: {exc}") from None


def _workdir(value: str, label: str, need: Need) -> str:
    try:
        workdir = Path(value).expanduser().resolve()
        if need in ("run", "worker") and not workdir.is_dir():
            raise ConfigError(f"{label}: {str(workdir)!r} is not a directory")
    except (OSError, RuntimeError) as exc:  # a name too long, a symlink loop
        raise ConfigError(f"{label}: cannot use {value!r}: {exc}") from None
    return str(workdir)


def _state_dir(value: str, label: str) -> Path:
    state_path = Path(value).expanduser().absolute()
    longest = len(f"{state_path}/run/gw-{'x' * GATEWAY_ID_LENGTH}".encode())
    if longest > IPC_PATH_MAX:  # before any look at the disk: a name too long fails there
        raise ConfigError(
            f"{label}: {str(state_path)!r} is too long for ipc socket paths "
            f"({longest} > {IPC_PATH_MAX} bytes); choose a shorter directory"
        )
    try:
        not_a_dir = state_path.exists() and not state_path.is_dir()
    except OSError as exc:
        raise ConfigError(f"{label}: cannot use {str(state_path)!r}: {exc.strerror}") from None
    if not_a_dir:
        raise ConfigError(f"{label}: {str(state_path)!r} exists and is not a directory")
    return state_path


def _endpoint(value: str, label: str) -> str:
    if value:
        try:
            check_endpoint(value)
        except EndpointError as exc:
            raise ConfigError(f"{label}: {exc}") from None
    return value


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
