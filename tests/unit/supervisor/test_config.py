"""Configuration: required settings, malformed values, env over file, the token kept secret."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from supervisor.config import load_settings
from supervisor.errors import ConfigError

if TYPE_CHECKING:
    from pathlib import Path

TOKEN = "tok-abcdefghijklmnopqrstuvwxyz"
CHANNEL = "4xp9fdt77pncbef59f4k1qe83o"


def base_env(tmp_path: Path) -> dict[str, str]:
    return {
        "MATTERMOST_URL": "http://127.0.0.1:8065",
        "MATTERMOST_TOKEN": TOKEN,
        "MATTERMOST_CHANNEL_ID": CHANNEL,
        "MATTERMOST_ALLOWED_USERS": "alice, bob",
        "MMCLAUDE_STATE_DIR": str(tmp_path / "state"),
        "CLAUDE_WORKDIR": str(tmp_path),
        "HOME": str(tmp_path),
    }


def test_defaults(tmp_path: Path) -> None:
    """A minimal environment gives the documented defaults."""
    s = load_settings(base_env(tmp_path))
    assert s.url == "http://127.0.0.1:8065"
    assert s.allowed_users == ("alice", "bob")
    assert s.claude_path == "claude"
    assert s.claude_args == ()
    assert s.log_level == "INFO"
    assert s.log_format is None
    assert s.gateways == 1
    assert s.worker_endpoint == f"ipc://{tmp_path}/state/run/inbox"


def test_state_dir_defaults_to_xdg(tmp_path: Path) -> None:
    """Without MMCLAUDE_STATE_DIR the state lives in $XDG_STATE_HOME/mmclaude."""
    env = base_env(tmp_path)
    del env["MMCLAUDE_STATE_DIR"]
    env["XDG_STATE_HOME"] = str(tmp_path / "xdg")
    assert load_settings(env).state_dir == str(tmp_path / "xdg" / "mmclaude")


@pytest.mark.parametrize(
    "name",
    ["MATTERMOST_URL", "MATTERMOST_TOKEN", "MATTERMOST_CHANNEL_ID", "MATTERMOST_ALLOWED_USERS"],
)
def test_each_required_setting_missing(tmp_path: Path, name: str) -> None:
    """Each required setting, when missing, gives an error that names it."""
    env = base_env(tmp_path)
    del env[name]
    with pytest.raises(ConfigError, match=name):
        load_settings(env)


def test_worker_needs_no_mattermost(tmp_path: Path) -> None:
    """The worker alone starts without any Mattermost setting."""
    env = {k: v for k, v in base_env(tmp_path).items() if not k.startswith("MATTERMOST_")}
    assert load_settings(env, need="worker").token == ""


def test_since_post_reaches_the_gateway(tmp_path: Path) -> None:
    """MMCLAUDE_SINCE_POST (the operator's opt-in to a thread's history) is passed on."""
    env = base_env(tmp_path)
    env["MMCLAUDE_SINCE_POST"] = "qg5mo8pb3inyzbjpu6cs5kzc5w"
    settings = load_settings(env)
    assert settings.gateway_config("g").since_post == "qg5mo8pb3inyzbjpu6cs5kzc5w"
    assert load_settings(base_env(tmp_path)).gateway_config("g").since_post == ""


def test_thread_replaces_channel(tmp_path: Path) -> None:
    """A configured thread makes the channel optional."""
    env = base_env(tmp_path)
    del env["MATTERMOST_CHANNEL_ID"]
    env["MATTERMOST_THREAD_ID"] = "qg5mo8pb3inyzbjpu6cs5kzc5w"
    assert load_settings(env).thread_id == "qg5mo8pb3inyzbjpu6cs5kzc5w"


@pytest.mark.parametrize(
    ("name", "value", "needle"),
    [
        ("MATTERMOST_URL", "ftp://x", "http"),
        ("MATTERMOST_URL", "not a url", "http"),
        ("MATTERMOST_URL", "http://host:99999", "port"),
        ("MMCLAUDE_LOG_LEVEL", "LOUD", "DEBUG"),
        ("MMCLAUDE_LOG_FORMAT", "xml", "text or json"),
        ("MATTERMOST_CHANNEL_ID", "short", "26-character"),
        ("MATTERMOST_THREAD_ID", "UPPERCASEUPPERCASEUPPERCAS", "26-character"),
        ("MMCLAUDE_SINCE_POST", "not-an-id", "26-character"),
        ("CLAUDE_ARGS", "--x 'unclosed", "split"),
        ("CLAUDE_IDLE_LIMIT", "soon", "number"),
        ("CLAUDE_IDLE_LIMIT", "-3", "greater"),
        ("MMCLAUDE_GATEWAYS", "0", "must be at least 1, got '0'"),
        ("MMCLAUDE_MAX_RESTARTS", "-1", "must be at least 1"),
        ("MMCLAUDE_GATEWAYS", "two", "whole number"),
        ("MMCLAUDE_MAX_QUEUED_PER_USER", "0", "must be at least 1"),
        ("MMCLAUDE_MAX_QUEUED_PER_USER", "many", "whole number"),
        ("MATTERMOST_ALLOWED_USERS", "alice,bad name!", "username"),
        ("MMCLAUDE_WORKER_ENDPOINT", "udp://x:1", "endpoint"),
        ("MMCLAUDE_STATE_DIR", "/" + "d" * 100, "too long"),
    ],
)
def test_malformed_values(tmp_path: Path, name: str, value: str, needle: str) -> None:
    """A malformed value is refused with a message naming the setting and what is wrong."""
    env = base_env(tmp_path)
    env[name] = value
    with pytest.raises(ConfigError, match=name) as info:
        load_settings(env)
    assert needle in str(info.value)


def test_max_queued_per_user_reaches_the_worker(tmp_path: Path) -> None:
    """The per-user queue cap defaults to 20 and is passed to the worker."""
    env = base_env(tmp_path)
    assert load_settings(env).worker_config().max_queued_per_user == 100
    env["MMCLAUDE_MAX_QUEUED_PER_USER"] = "3"
    settings = load_settings(env)
    assert settings.worker_config().max_queued_per_user == 3
    assert settings.describe()["MMCLAUDE_MAX_QUEUED_PER_USER"] == 3


def test_unreadable_token_file(tmp_path: Path) -> None:
    """A token file that cannot be read names MATTERMOST_TOKEN_FILE."""
    env = base_env(tmp_path)
    del env["MATTERMOST_TOKEN"]
    env["MATTERMOST_TOKEN_FILE"] = str(tmp_path / "missing")
    with pytest.raises(ConfigError, match="MATTERMOST_TOKEN_FILE"):
        load_settings(env)


def test_token_file(tmp_path: Path) -> None:
    """The token is read from the file, trimmed."""
    (tmp_path / "tok").write_text(TOKEN + "\n")
    env = base_env(tmp_path)
    del env["MATTERMOST_TOKEN"]
    env["MATTERMOST_TOKEN_FILE"] = str(tmp_path / "tok")
    assert load_settings(env).token == TOKEN


def test_env_overrides_file(tmp_path: Path) -> None:
    """The environment wins over the TOML file; the file fills what the env leaves out."""
    config = tmp_path / "c.toml"
    config.write_text(
        '[mattermost]\nurl = "http://file:1"\nallowed-users = ["carol"]\n'
        '[claude]\nargs = ["--bare", "--model", "x"]\n[mmclaude]\nlog-level = "debug"\n'
    )
    env = base_env(tmp_path)
    del env["MATTERMOST_ALLOWED_USERS"]
    s = load_settings(env, config)
    assert s.url == "http://127.0.0.1:8065"
    assert s.allowed_users == ("carol",)
    assert s.claude_args == ("--bare", "--model", "x")
    assert s.log_level == "DEBUG"


def test_file_value_errors_say_where(tmp_path: Path) -> None:
    """A bad value from the file names the variable and its place in the file."""
    config = tmp_path / "c.toml"
    config.write_text('[mmclaude]\nlog-level = "LOUD"\n')
    with pytest.raises(ConfigError, match=r"MMCLAUDE_LOG_LEVEL \(mmclaude.log-level in"):
        load_settings(base_env(tmp_path), config)


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("[nope]\na = 1\n", "unknown setting or section 'nope'"),
        ("NOT_A_SETTING = 1\n", "unknown setting or section 'NOT_A_SETTING'"),
        ("[claude]\nmodel = 'x'\n", "unknown setting claude.model"),
        ("not toml at all [", "not valid TOML"),
    ],
)
def test_bad_files(tmp_path: Path, body: str, needle: str) -> None:
    """Unknown settings, a token in the file and broken TOML are refused."""
    config = tmp_path / "c.toml"
    config.write_text(body)
    with pytest.raises(ConfigError, match=needle):
        load_settings(base_env(tmp_path), config)


def test_flat_variable_names_in_the_file(tmp_path: Path) -> None:
    """The file may name settings by their variables at the top level, in any case."""
    config = tmp_path / "c.toml"
    config.write_text(
        f'MATTERMOST_URL = "http://flat:1"\nmattermost_token = "{TOKEN}"\n'
        f'MATTERMOST_CHANNEL_ID = "{CHANNEL}"\nMATTERMOST_ALLOWED_USERS = "alice"\n'
        f'MMCLAUDE_STATE_DIR = "{tmp_path / "s"}"\nCLAUDE_ARGS = "--bare --x"\n'
    )
    s = load_settings({"HOME": str(tmp_path), "CLAUDE_WORKDIR": str(tmp_path)}, config)
    assert s.url == "http://flat:1"
    assert s.token == TOKEN
    assert s.allowed_users == ("alice",)
    assert s.claude_args == ("--bare", "--x")


def test_environment_token_wins_over_the_files_token_file(tmp_path: Path) -> None:
    """MATTERMOST_TOKEN in the environment beats token-file in the TOML (env wins)."""
    (tmp_path / "tok").write_text("from-the-file-token\n")
    config = tmp_path / "c.toml"
    config.write_text(f'[mattermost]\ntoken-file = "{tmp_path / "tok"}"\n')
    assert load_settings(base_env(tmp_path), config).token == TOKEN


def test_environment_token_file_wins_over_the_files_token(tmp_path: Path) -> None:
    """MATTERMOST_TOKEN_FILE in the environment beats a token written in the TOML."""
    (tmp_path / "tok").write_text("from-the-env-file\n")
    config = tmp_path / "c.toml"
    config.write_text('[mattermost]\ntoken = "in-the-toml-file"\n')
    env = base_env(tmp_path)
    del env["MATTERMOST_TOKEN"]
    env["MATTERMOST_TOKEN_FILE"] = str(tmp_path / "tok")
    assert load_settings(env, config).token == "from-the-env-file"


def test_missing_file(tmp_path: Path) -> None:
    """A --config that does not exist is an error naming --config."""
    with pytest.raises(ConfigError, match="--config"):
        load_settings(base_env(tmp_path), tmp_path / "nope.toml")


def test_token_never_in_repr_or_description(tmp_path: Path) -> None:
    """Neither the repr nor the printed configuration shows the token."""
    s = load_settings(base_env(tmp_path))
    assert TOKEN not in repr(s)
    assert TOKEN not in json.dumps(s.describe())
    assert TOKEN not in repr(s.gateway_config("g1"))
    assert TOKEN not in repr(s.worker_config())


def run_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "supervisor.cli", *args],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_cli_config_prints_redacted(tmp_path: Path) -> None:
    """`mmclaude config` prints the effective configuration without the token, exit 0."""
    result = run_cli(["config"], base_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert TOKEN not in result.stdout + result.stderr
    shown = json.loads(result.stdout)
    assert shown["MATTERMOST_URL"] == "http://127.0.0.1:8065"
    assert shown["MATTERMOST_TOKEN"].startswith("[REDACTED]")


def test_cli_config_error_is_one_line_exit_2(tmp_path: Path) -> None:
    """A bad setting gives exit 2 and one stderr line naming it, no traceback."""
    env = base_env(tmp_path)
    env["MATTERMOST_URL"] = "nope"
    result = run_cli(["config"], env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "MATTERMOST_URL" in lines[0]
    assert "Traceback" not in result.stderr
    assert TOKEN not in result.stderr


def test_cli_version() -> None:
    """`mmclaude --version` prints the version."""
    result = run_cli(["--version"], {})
    assert result.returncode == 0
    assert result.stdout.startswith("mmclaude ")


def test_control_settings(tmp_path: Path) -> None:
    """Permission mode, the bypass flag and the approval timeout: defaults, values, errors."""
    s = load_settings(base_env(tmp_path))
    assert (s.permission_mode, s.allow_bypass, s.approval_timeout) == ("default", False, 600.0)
    env = {
        **base_env(tmp_path),
        "CLAUDE_PERMISSION_MODE": "acceptEdits",
        "MMCLAUDE_ALLOW_BYPASS": "true",
        "MMCLAUDE_APPROVAL_TIMEOUT": "30",
    }
    s = load_settings(env)
    assert (s.permission_mode, s.allow_bypass, s.approval_timeout) == ("acceptEdits", True, 30.0)
    worker = s.worker_config()
    assert (worker.permission_mode, worker.allow_bypass, worker.approval_timeout) == (
        "acceptEdits",
        True,
        30.0,
    )
    for name, bad in (
        ("CLAUDE_PERMISSION_MODE", "yolo"),
        ("MMCLAUDE_ALLOW_BYPASS", "maybe"),
        ("MMCLAUDE_APPROVAL_TIMEOUT", "-1"),
    ):
        with pytest.raises(ConfigError, match=name):
            load_settings({**base_env(tmp_path), name: bad})


# --- remote gateways (CURVE) and separate users ------------------------------------------


def test_plain_tcp_is_refused_naming_the_setting(tmp_path: Path) -> None:
    """A tcp endpoint without the CURVE keys its roles read is a configuration error."""
    env = {**base_env(tmp_path), "MMCLAUDE_WORKER_ENDPOINT": "tcp://127.0.0.1:7700"}
    for need in ("run", "worker", "gateway"):
        with pytest.raises(ConfigError, match=r"^MMCLAUDE_WORKER_ENDPOINT: .*mmclaude keys"):
            load_settings(env, need=need)
    env = {**base_env(tmp_path), "MMCLAUDE_GATEWAY_ENDPOINT": "tcp://10.0.0.2:7701"}
    with pytest.raises(ConfigError, match=r"^MMCLAUDE_GATEWAY_ENDPOINT: .*gateway.key_secret"):
        load_settings(env, need="gateway")


def test_tcp_with_keys_is_accepted_and_an_open_secret_refused(tmp_path: Path) -> None:
    """After `mmclaude keys` tcp works; a secret key readable by others is refused."""
    from protocol import curve

    env = {
        **base_env(tmp_path),
        "MMCLAUDE_WORKER_ENDPOINT": "tcp://127.0.0.1:7700",
        "MMCLAUDE_GATEWAY_ENDPOINT": "tcp://127.0.0.1:7701",
    }
    made = curve.make_keys(tmp_path / "state")
    assert all(new for _, new in made)
    secrets = [p for p, _ in made if p.name.endswith(".key_secret")]
    assert {oct(p.stat().st_mode & 0o777) for p in secrets} == {"0o600"}
    assert not any(new for _, new in curve.make_keys(tmp_path / "state"))  # never overwrites
    settings = load_settings(env)
    assert settings.gateway_config("g1").endpoint == "tcp://127.0.0.1:7701"
    secrets[0].chmod(0o644)
    with pytest.raises(ConfigError, match="readable by others"):
        load_settings(env)


def test_no_listed_gateway_key_is_refused(tmp_path: Path) -> None:
    """A tcp inbox that would let no gateway in is a mistake worth stopping for."""
    from protocol import curve

    curve.make_keys(tmp_path / "state")
    for listed in (tmp_path / "state" / "keys" / "allowed-gateways").iterdir():
        listed.unlink()
    env = {**base_env(tmp_path), "MMCLAUDE_WORKER_ENDPOINT": "tcp://127.0.0.1:7700"}
    with pytest.raises(ConfigError, match="no gateway key"):
        load_settings(env, need="worker")


@pytest.mark.parametrize(
    ("value", "needle"),
    [("tcp://*:7701", "not \\*"), ("udp://x:1", "endpoint must be"), ("ipc://rel", "absolute")],
)
def test_bad_gateway_endpoints(tmp_path: Path, value: str, needle: str) -> None:
    env = {**base_env(tmp_path), "MMCLAUDE_GATEWAY_ENDPOINT": value}
    with pytest.raises(ConfigError, match=f"^MMCLAUDE_GATEWAY_ENDPOINT: .*{needle}"):
        load_settings(env)


def test_one_tcp_gateway_endpoint_cannot_serve_two_gateways(tmp_path: Path) -> None:
    env = {
        **base_env(tmp_path),
        "MMCLAUDE_GATEWAY_ENDPOINT": "ipc:///tmp/gw",
        "MMCLAUDE_GATEWAYS": "2",
    }
    with pytest.raises(ConfigError, match=r"^MMCLAUDE_GATEWAY_ENDPOINT: one endpoint"):
        load_settings(env)


def test_the_worker_never_reads_the_token(tmp_path: Path) -> None:
    """`mmclaude worker` ignores the token settings: an unreadable token file is no error."""
    env = {**base_env(tmp_path), "MATTERMOST_TOKEN_FILE": str(tmp_path / "nope")}
    del env["MATTERMOST_TOKEN"]
    settings = load_settings(env, need="worker")
    assert settings.token == ""
    assert settings.worker_config().redact == ()


@pytest.mark.parametrize(
    ("worker", "gateway", "needle"),
    [
        ("root", "", "MMCLAUDE_GATEWAY_USER: required"),
        ("no-such-user-x", "root", "MMCLAUDE_WORKER_USER: no such user"),
        ("root", "root", "MMCLAUDE_GATEWAY_USER: must differ"),
    ],
)
def test_bad_role_users(tmp_path: Path, worker: str, gateway: str, needle: str) -> None:
    env = {**base_env(tmp_path), "MMCLAUDE_WORKER_USER": worker, "MMCLAUDE_GATEWAY_USER": gateway}
    with pytest.raises(ConfigError, match=f"^{needle}"):
        load_settings(env)


def test_live_and_max_upload_defaults_and_values(tmp_path: Path) -> None:
    """MMCLAUDE_LIVE defaults to true and MMCLAUDE_MAX_UPLOAD_MB to 20; both reach the
    gateway's and the worker's configurations."""
    s = load_settings(base_env(tmp_path))
    assert s.live is True
    assert s.max_upload_mb == 20
    assert s.gateway_config("g").max_upload_bytes == 20 * 1024 * 1024
    assert s.worker_config().live is True
    s = load_settings(
        {**base_env(tmp_path), "MMCLAUDE_LIVE": "false", "MMCLAUDE_MAX_UPLOAD_MB": "1.5"}
    )
    assert s.live is False
    assert s.gateway_config("g").live is False
    assert s.worker_config().max_upload_bytes == int(1.5 * 1024 * 1024)
    assert s.describe()["MMCLAUDE_LIVE"] is False


@pytest.mark.parametrize(
    ("name", "value"), [("MMCLAUDE_LIVE", "maybe"), ("MMCLAUDE_MAX_UPLOAD_MB", "lots")]
)
def test_bad_live_or_upload_limit_names_the_setting(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings({**base_env(tmp_path), name: value})


def test_live_and_upload_limit_from_the_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "mmclaude.toml"
    path.write_text("[mmclaude]\nlive = false\nmax-upload-mb = 5\n")
    s = load_settings(base_env(tmp_path), path)
    assert s.live is False
    assert s.max_upload_mb == 5


def test_every_setting_has_one_place_in_the_file_structs() -> None:
    """SETTINGS (variable → TOML place) and the section Structs name the same settings."""
    import msgspec

    from supervisor.config import SETTINGS, ConfigFile

    info = msgspec.inspect.type_info(ConfigFile)
    assert isinstance(info, msgspec.inspect.StructType)
    places = set()
    for section in info.fields:
        assert isinstance(section.type, msgspec.inspect.StructType)
        places |= {(section.encode_name, f.encode_name) for f in section.type.fields}
    assert places == {place for place in SETTINGS.values() if place is not None}


@pytest.mark.parametrize(
    ("value", "expected"),
    [("yes", True), ("on", True), ("1", True), (" TRUE ", True), ("no", False), ("off", False)],
)
def test_flag_forms(tmp_path: Path, value: str, expected: bool) -> None:
    """A flag takes true/false, 1/0, yes/no, on/off, in any case."""
    s = load_settings(
        {**base_env(tmp_path), "MMCLAUDE_ALLOW_BYPASS": value, "MMCLAUDE_LIVE": value}
    )
    assert (s.allow_bypass, s.live) == (expected, expected)


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("[claude]\nargs = ['--x', 3]\n", r"^CLAUDE_ARGS \(claude.args in .*list of strings"),
        ("[supervisor]\ngateways = 2.5\n", r"^MMCLAUDE_GATEWAYS \(supervisor.gateways in .*whole"),
        ("[claude]\nidle-limit = true\n", r"^CLAUDE_IDLE_LIMIT \(claude.idle-limit in .*number"),
        ("[mmclaude]\nlog-format = 3\n", r"^MMCLAUDE_LOG_FORMAT \(mmclaude.log-format in .*json"),
        ("[claude]\npath = ''\n", r"^CLAUDE_PATH \(claude.path in .*must not be empty"),
        ("claude = 3\n", r"--config: .*\[claude\] must be a table"),
    ],
)
def test_file_type_errors_name_the_setting(tmp_path: Path, body: str, needle: str) -> None:
    """A value of the wrong type in the file is one line naming its variable and its place."""
    config = tmp_path / "c.toml"
    config.write_text(body)
    with pytest.raises(ConfigError, match=needle) as info:
        load_settings(base_env(tmp_path), config)
    assert "\n" not in str(info.value)
    assert "$." not in str(info.value)


def test_empty_state_dir_means_the_default(tmp_path: Path) -> None:
    """MMCLAUDE_STATE_DIR="" is unset (the XDG default), not the current directory."""
    env = {**base_env(tmp_path), "MMCLAUDE_STATE_DIR": "", "XDG_STATE_HOME": str(tmp_path / "x")}
    assert load_settings(env).state_dir == str(tmp_path / "x" / "mmclaude")


@pytest.mark.parametrize("name", ["MMCLAUDE_STATE_DIR", "CLAUDE_WORKDIR"])
def test_a_path_name_too_long_for_the_disk_names_the_setting(tmp_path: Path, name: str) -> None:
    """A directory whose name no file system takes is a ConfigError, not an OSError."""
    with pytest.raises(ConfigError, match=f"^{name}: "):
        load_settings({**base_env(tmp_path), name: "9" * 400})


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_gateways_option_takes_a_count(tmp_path: Path, value: str) -> None:
    """`run --gateways N` needs N >= 1 (0 used to mean the default, -1 no gateway at all)."""
    result = run_cli(["run", "--gateways", value], base_env(tmp_path))
    assert result.returncode == 2
    assert "--gateways" in result.stderr
    assert not (tmp_path / "state").exists()  # refused before anything started
