"""What a tool run by claude can read, written as JSON by a wrapper around the fake claude.

``python token_probe.py TOKEN_FILE OUT``: runs with claude's uid, groups and environment
(every tool claude starts has exactly these), tries the token file and every process's
``/proc/<pid>/environ`` and ``cmdline``, and records what it got.
"""

from __future__ import annotations

import json
import os
import sys


def _read(path: str) -> bytes | str:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        return f"error: {exc.strerror}"


def main(token_file: str, out: str) -> None:
    token = _read(token_file)
    readable: dict[str, list[str]] = {}  # pid → names of MATTERMOST_/ANTHROPIC_ variables
    for pid in [p for p in os.listdir("/proc") if p.isdigit()]:
        environ = _read(f"/proc/{pid}/environ")
        if isinstance(environ, bytes):
            names = [
                item.split(b"=", 1)[0].decode(errors="replace")
                for item in environ.split(b"\0")
                if item.startswith((b"MATTERMOST_", b"ANTHROPIC_"))
            ]
            readable[pid] = names
    report = {
        "uid": os.getuid(),
        "groups": os.getgroups(),
        "token_file": token if isinstance(token, str) else "READ",
        "environ_readable": readable,
        "own_env": sorted(k for k in os.environ if k.startswith(("MATTERMOST_", "ANTHROPIC_"))),
    }
    with open(out, "w", encoding="utf-8") as f:
        json.dump(report, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
