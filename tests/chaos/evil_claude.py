"""A claude that misbehaves on stdout: it runs the fake claude and, before every event line,
writes garbage — invalid UTF-8, truncated JSON, a non-object JSON value, an unknown event type
and (once) a line of several megabytes. Used as CLAUDE_PATH by the bad-input tests."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

GARBAGE = [
    b"\xff\xfe\xfa not utf-8 at all \xc3\x28\n",
    b'{"type": "assistant", "message": {"content": [{"type": "te\n',
    b"[1, 2, 3]\n",
    b'"just a string"\n',
    b'{"type": "brand_new_event", "payload": {"x": 1}}\n',
    b"\n",
]
ENORMOUS = b'{"type": "noise", "blob": "' + b"x" * (4 * 1024 * 1024) + b'"}\n'


def main() -> int:
    child = subprocess.Popen(
        [sys.executable, "-m", "emulators.claude", *sys.argv[1:]],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=os.environ,
    )
    assert child.stdin is not None
    assert child.stdout is not None

    def pump_in() -> None:
        assert child.stdin is not None
        for line in sys.stdin.buffer:
            child.stdin.write(line)
            child.stdin.flush()
        child.stdin.close()

    threading.Thread(target=pump_in, daemon=True).start()
    out = sys.stdout.buffer
    sent_enormous = False
    for line in child.stdout:
        for junk in GARBAGE:
            out.write(junk)
        if not sent_enormous:
            out.write(ENORMOUS)
            sent_enormous = True
        out.write(line)
        out.flush()
    return child.wait()


if __name__ == "__main__":
    sys.exit(main())
