#!/usr/bin/env python3
"""The old design's cost, as a CLAUDE_PATH for the worker: one `claude -p` process per message.

It speaks persistent stream-json to the worker (answers ``initialize`` and ``interrupt``,
reads ``user`` lines) but, for each user message, spawns a fresh one-shot real CLI::

    claude -p --output-format stream-json --verbose [--resume SID] EXTRA_ARGS... "<text>"

relays every stdout line of it, and remembers the session id for the next message's
``--resume``. Stdlib only (it is run directly as an executable). The real CLI is
$BENCH_REAL_CLAUDE, else the repo's pinned node_modules/.bin/claude.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

_FLAGS_WITH_VALUE = {"--input-format", "--output-format", "--resume"}
_DROPPED = {"-p", "--print", "--verbose"}


def parse(argv: list[str]) -> tuple[str | None, list[str]]:
    """The --resume session id and the extra arguments to pass on (e.g. --bare)."""
    session, extra, i = None, [], 0
    while i < len(argv):
        arg = argv[i]
        if arg in _FLAGS_WITH_VALUE:
            if arg == "--resume" and i + 1 < len(argv):
                session = argv[i + 1]
            i += 2
            continue
        if arg not in _DROPPED:
            extra.append(arg)
        i += 1
    return session, extra


def emit(obj: object) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def text_of(message: dict[str, object]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def main() -> int:
    real = os.environ.get("BENCH_REAL_CLAUDE") or str(
        Path(__file__).resolve().parent.parent / "node_modules" / ".bin" / "claude"
    )
    session, extra = parse(sys.argv[1:])
    for raw in sys.stdin:
        try:
            event = json.loads(raw)
        except ValueError:
            continue
        kind = event.get("type")
        if kind == "control_request":
            emit(
                {
                    "type": "control_response",
                    "response": {
                        "subtype": "success",
                        "request_id": event.get("request_id"),
                        "response": {"pid": os.getpid()},
                    },
                }
            )
            continue
        if kind != "user":
            continue
        text = text_of(event.get("message") or {})
        argv = [real, "-p", "--output-format", "stream-json", "--verbose"]
        if session:
            argv += ["--resume", session]
        argv += [*extra, "--", text]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        assert proc.stdout is not None
        for out in proc.stdout:
            try:
                parsed = json.loads(out)
            except ValueError:
                continue
            if isinstance(parsed, dict) and parsed.get("session_id"):
                session = str(parsed["session_id"])
            sys.stdout.buffer.write(out if out.endswith(b"\n") else out + b"\n")
            sys.stdout.flush()
        proc.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
