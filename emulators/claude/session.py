"""Session files of the fake claude: one JSON file per session id, replaced atomically.

A file holds `{"session_id", "messages": [{"role", "text"}...], "crashonce_seen": [...]}`.
`messages` is the conversation as the API would see it; consecutive user entries (an interrupt
marker followed by the next prompt) merge into one API message, exactly as the real CLI merges
them, so `request_size()` gives the real CLI's N for `echo[N]`.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

# The real CLI only accepts uuids for --session-id; we also use this to keep ids out of paths.
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def is_uuid(value: str) -> bool:
    return bool(_UUID.match(value))


def sessions_dir() -> str:
    """FAKE_CLAUDE_SESSIONS_DIR, else $HOME/.fake-claude/sessions."""
    configured = os.environ.get("FAKE_CLAUDE_SESSIONS_DIR")
    if configured:
        return configured
    return os.path.join(os.path.expanduser("~"), ".fake-claude", "sessions")


class Session:
    """The conversation of one session id, persisted in `<dir>/<id>.json`."""

    def __init__(self, directory: str, session_id: str) -> None:
        self.directory = directory
        self.session_id = session_id
        self.messages: list[dict[str, str]] = []
        self.crashonce_seen: list[str] = []

    def __repr__(self) -> str:
        return f"<Session {self.session_id} messages={len(self.messages)}>"

    @property
    def path(self) -> str:
        return os.path.join(self.directory, f"{self.session_id}.json")

    def exists(self) -> bool:
        return bool(_SAFE_ID.match(self.session_id)) and os.path.isfile(self.path)

    def load(self) -> None:
        with open(self.path, encoding="utf-8") as f:
            data: dict[str, Any] = json.load(f)
        self.messages = list(data.get("messages", []))
        self.crashonce_seen = list(data.get("crashonce_seen", []))

    def save(self) -> None:
        """Write durably: temp file, fsync, rename, fsync of the directory.

        Called before the turn's `result` is printed, so a reader that saw the result and then
        killed us still finds the turn on disk.
        """
        os.makedirs(self.directory, exist_ok=True)
        data = {
            "session_id": self.session_id,
            "messages": self.messages,
            "crashonce_seen": self.crashonce_seen,
        }
        tmp = f"{self.path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def add(self, role: str, text: str) -> None:
        self.messages.append({"role": role, "text": text})

    def request_size(self, extra: list[str] | None = None) -> int:
        """How many messages an API request would hold: `messages` + `extra`, users merged."""
        roles = [m["role"] for m in self.messages] + list(extra or [])
        count = 0
        previous = ""
        for role in roles:
            if role != previous or role != "user":
                count += 1
            previous = role
        return count
