"""Configuration is a boundary too: whatever the environment or the TOML file holds, loading
it gives settings or one ConfigError line that names the setting, never another exception."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, get_args

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from supervisor.config import SETTINGS, Need, load_settings
from supervisor.errors import ConfigError
from tests.unit.supervisor.test_config import base_env

NAMES = sorted(SETTINGS)
TOML_KEYS = sorted({f"{place[0]}.{place[1]}" for place in SETTINGS.values() if place})

# What an operator (or a hostile template) may put in a value: numbers of any size, words of
# the enumerations, paths, and plain junk; no NUL (an environment cannot hold one).
hostile_text = st.one_of(
    st.text(st.characters(blacklist_characters="\x00"), max_size=40),
    st.integers().map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", " ", "*", "true", "false", "0", "-1", "1e400", "nan", "inf", "9" * 400]),
    st.sampled_from(["default", "bypassPermissions", "json", "text", "DEBUG", "tcp://*:1"]),
    st.sampled_from(["ipc:///tmp/x", "tcp://127.0.0.1:1", "/nonexistent", "..", "~"]),
)

_FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check_error(exc: ConfigError) -> None:
    text = str(exc)
    assert "\n" not in text, text
    assert any(name in text for name in [*NAMES, *TOML_KEYS, "--config", "MMCLAUDE_", "token"]), (
        text
    )


def load(env: dict[str, str], config_file: Path | None = None) -> None:
    for need in get_args(Need):
        try:
            load_settings(env, config_file, need=need)
        except ConfigError as exc:
            check_error(exc)


@_FUZZ
@given(st.dictionaries(st.sampled_from(NAMES), hostile_text, max_size=6))
def test_any_environment_loads_or_names_the_setting(values: dict[str, str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        load({**base_env(Path(tmp)), **values})


def _toml_value() -> st.SearchStrategy[Any]:
    scalar = st.one_of(
        st.text(max_size=20),
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
        st.floats(allow_nan=False, allow_infinity=False),
        st.booleans(),
    )
    return st.one_of(scalar, st.lists(scalar, max_size=3))


def _toml(doc: dict[str, dict[str, Any]]) -> str:
    """A TOML text (JSON's scalars and arrays are TOML's, for what is generated here)."""
    lines: list[str] = []
    for section, body in doc.items():
        lines.append(f"[{json.dumps(section)}]")
        lines.extend(f"{json.dumps(key)} = {json.dumps(value)}" for key, value in body.items())
    return "\n".join(lines) + "\n"


@_FUZZ
@given(
    st.dictionaries(
        st.sampled_from(["mattermost", "claude", "mmclaude", "supervisor", "junk"]),
        st.dictionaries(
            st.one_of(st.sampled_from([k.split(".")[1] for k in TOML_KEYS]), st.text(max_size=8)),
            _toml_value(),
            max_size=4,
        ),
        max_size=3,
    )
)
def test_any_toml_file_loads_or_names_the_setting(doc: dict[str, dict[str, Any]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mmclaude.toml"
        path.write_text(_toml(doc), encoding="utf-8")
        load(base_env(Path(tmp)), path)


@_FUZZ
@given(st.binary(max_size=200))
def test_any_bytes_as_the_file_are_refused_or_read(junk: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mmclaude.toml"
        path.write_bytes(junk)
        load(base_env(Path(tmp)), path)


def test_a_key_with_a_line_break_is_named_on_one_line(tmp_path: Path) -> None:
    """Found by the fuzz test above: a TOML key holding a newline made a two-line error."""
    path = tmp_path / "mmclaude.toml"
    path.write_text('[mattermost]\n"\\n" = ""\n', encoding="utf-8")
    try:
        load_settings(base_env(tmp_path), path)
    except ConfigError as exc:
        check_error(exc)
    else:
        raise AssertionError("an unknown key was accepted")
