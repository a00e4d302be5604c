"""Session files of the fake claude: one JSON Lines file per session id, appended to.

`<dir>/<id>.jsonl` holds one JSON object per line: `{"role", "text"}` for a message of the
conversation, `{"crashonce_seen": prompt}` for a CRASHONCE prompt already crashed on. Each
save appends only what is new (then fsyncs), so a turn costs the same on the 10,000th
message as on the first; a rewrite of the whole conversation per turn grew with its length
and dominated long benchmark runs. A torn last line (killed mid-append) is ignored on load.

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
    """The conversation of one session id, persisted in `<dir>/<id>.jsonl`."""

    def __init__(self, directory: str, session_id: str) -> None:
        self.directory = directory
        self.session_id = session_id
        self.messages: list[dict[str, str]] = []
        self.crashonce_seen: list[str] = []
        self._saved_messages = 0
        self._saved_crashonce = 0
        self._size = 0  # request_size() of `messages`, kept as they are added
        self._last_role = ""

    def __repr__(self) -> str:
        return f"<Session {self.session_id} messages={len(self.messages)}>"

    @property
    def path(self) -> str:
        return os.path.join(self.directory, f"{self.session_id}.jsonl")

    def exists(self) -> bool:
        return bool(_SAFE_ID.match(self.session_id)) and os.path.isfile(self.path)

    def load(self) -> None:
        with open(self.path, encoding="utf-8") as f:
            rows = f.read().split("\n")
        for row in rows:
            if not row:
                continue
            try:
                item: dict[str, Any] = json.loads(row)
            except ValueError:
                continue  # a torn last line
            if "crashonce_seen" in item:
                self.crashonce_seen.append(str(item["crashonce_seen"]))
            else:
                self.add(str(item["role"]), str(item["text"]))
        self._saved_messages = len(self.messages)
        self._saved_crashonce = len(self.crashonce_seen)

    def save(self) -> None:
        """Append what is new, durably (fsync; the directory too when the file is new).

        Called before the turn's `result` is printed, so a reader that saw the result and then
        killed us still finds the turn on disk.
        """
        rows = [json.dumps(m, ensure_ascii=False) for m in self.messages[self._saved_messages :]]
        rows += [
            json.dumps({"crashonce_seen": p}, ensure_ascii=False)
            for p in self.crashonce_seen[self._saved_crashonce :]
        ]
        os.makedirs(self.directory, exist_ok=True)
        new = not os.path.exists(self.path)
        with open(self.path, "a", encoding="utf-8") as f:
            if rows:
                f.write("\n".join(rows) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self._saved_messages = len(self.messages)
        self._saved_crashonce = len(self.crashonce_seen)
        if new:
            dir_fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    def add(self, role: str, text: str) -> None:
        self.messages.append({"role": role, "text": text})
        if role != self._last_role or role != "user":
            self._size += 1
        self._last_role = role

    def request_size(self, extra: list[str] | None = None) -> int:
        """How many messages an API request would hold: `messages` + `extra`, users merged."""
        count, previous = self._size, self._last_role
        for role in extra or []:
            if role != previous or role != "user":
                count += 1
            previous = role
        return count
