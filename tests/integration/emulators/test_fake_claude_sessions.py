"""The fake claude's sessions: files, --session-id, --resume, durability across SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import uuid
from typing import TYPE_CHECKING

import pytest

from emulators.claude.testing import FAKE_CLAUDE_ARGS, StreamJsonProcess

if TYPE_CHECKING:
    from pathlib import Path

    from tests.integration.emulators.conftest import SpawnFakeClaude

pytestmark = pytest.mark.slow


def answer(claude: StreamJsonProcess, text: str) -> str:
    claude.user(text)
    return str(claude.until_result()[-1]["result"])


def test_session_id_names_the_file(fake_claude: SpawnFakeClaude, sessions_dir: Path) -> None:
    """--session-id ID is reported in the events and the conversation lands in <dir>/<ID>.jsonl."""
    session_id = str(uuid.uuid4())
    claude = fake_claude("--session-id", session_id)
    assert answer(claude, "hi") == "echo[1]: hi"
    assert claude.events[0]["session_id"] == session_id
    rows = (sessions_dir / f"{session_id}.jsonl").read_text().splitlines()
    assert [json.loads(row) for row in rows] == [
        {"role": "user", "text": "hi"},
        {"role": "assistant", "text": "echo[1]: hi"},
    ]


def test_no_id_means_new_uuid(fake_claude: SpawnFakeClaude) -> None:
    """Without --session-id or --resume each process gets a new uuid4 session."""
    ids = set()
    for _ in range(2):
        claude = fake_claude()
        answer(claude, "x")
        ids.add(str(uuid.UUID(str(claude.events[0]["session_id"]), version=4)))
    assert len(ids) == 2


def test_session_id_in_use_is_refused(fake_claude: SpawnFakeClaude) -> None:
    """--session-id of an existing session exits 1 with "already in use" on stderr."""
    session_id = str(uuid.uuid4())
    first = fake_claude("--session-id", session_id)
    answer(first, "hi")
    second = fake_claude("--session-id", session_id)
    assert second.wait() == 1
    assert f"Error: Session ID {session_id} is already in use." in second.stderr
    assert second.read_to_eof() == []


def test_session_id_must_be_uuid(fake_claude: SpawnFakeClaude) -> None:
    """--session-id that is not a uuid is refused like the real CLI does."""
    claude = fake_claude("--session-id", "../etc/passwd")
    assert claude.wait() == 1
    assert "Invalid session ID" in claude.stderr


def test_resume_after_sigkill_keeps_every_answered_turn(fake_claude: SpawnFakeClaude) -> None:
    """SIGKILL right after a result loses nothing: --resume continues echo[5] after two turns."""
    claude = fake_claude()
    assert answer(claude, "one") == "echo[1]: one"
    assert answer(claude, "two") == "echo[3]: two"
    claude.signal(signal.SIGKILL)  # at once, after seeing the result line
    assert claude.wait() == -signal.SIGKILL
    resumed = fake_claude("--resume", str(claude.events[0]["session_id"]))
    assert answer(resumed, "three") == "echo[5]: three"


def test_unfinished_turn_is_not_recorded(fake_claude: SpawnFakeClaude) -> None:
    """A turn killed before its result is not in the session (a documented simplification)."""
    claude = fake_claude()
    answer(claude, "one")
    claude.user("SLOW:5 never answered")
    claude.until("system", subtype="init")
    claude.signal(signal.SIGKILL)
    claude.wait()
    resumed = fake_claude("--resume", str(claude.events[0]["session_id"]))
    assert answer(resumed, "again") == "echo[3]: again"


def test_interrupted_partial_answer_is_context(fake_claude: SpawnFakeClaude) -> None:
    """An interrupted SLOW answer keeps its partial text in context, as the real CLI does."""
    claude = fake_claude()
    claude.user("SLOW:5 slow")
    claude.until("system", subtype="init")
    claude.control("interrupt", "i1")
    events = claude.until_result()
    assert [e["type"] for e in events] == ["control_response", "assistant", "user", "result"]
    # user SLOW, partial assistant, then the marker merged with "next": 3 messages.
    assert answer(claude, "next") == "echo[3]: next"


def test_default_dir_is_under_home(tmp_path: Path) -> None:
    """Without FAKE_CLAUDE_SESSIONS_DIR, sessions go to $HOME/.fake-claude/sessions."""
    env = {k: v for k, v in os.environ.items() if k != "FAKE_CLAUDE_SESSIONS_DIR"}
    env["HOME"] = str(tmp_path)
    with StreamJsonProcess(list(FAKE_CLAUDE_ARGS), env=env, cwd=str(tmp_path)) as claude:
        assert answer(claude, "hi") == "echo[1]: hi"
        session_id = claude.events[0]["session_id"]
    assert (tmp_path / ".fake-claude" / "sessions" / f"{session_id}.jsonl").is_file()
