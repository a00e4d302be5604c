"""A claude that writes one enormous stdout line per turn when asked: it runs the fake claude
and, for a prompt with HUGEUSER, writes a ``user`` event line of OVERLONG_BYTES (100 MB by
default) before the turn's first assistant event; for a prompt with HUGERESULT, pads the
turn's ``result`` line itself to that size. The line is streamed in 1 MB pieces, so this
process stays small. Used as CLAUDE_PATH by the line-limit tests."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

PIECE = b"x" * (1 << 20)


def huge(out: object, prefix: bytes, suffix: bytes, size: int) -> None:
    assert hasattr(out, "write")
    out.write(prefix)
    left = size - len(prefix) - len(suffix)
    while left > 0:
        out.write(PIECE[: min(left, len(PIECE))])
        left -= len(PIECE)
    out.write(suffix)


def main() -> int:
    size = int(os.environ.get("OVERLONG_BYTES", str(100 * 1024 * 1024)))
    child = subprocess.Popen(
        [sys.executable, "-m", "emulators.claude", *sys.argv[1:]],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=os.environ,
    )
    assert child.stdin is not None
    assert child.stdout is not None
    mode = {"now": ""}

    def pump_in() -> None:
        assert child.stdin is not None
        for line in sys.stdin.buffer:
            if line.startswith(b'{"type":"user"'):
                mode["now"] = next(
                    (k for k in ("HUGEUSER", "HUGERESULT") if k.encode() in line), ""
                )
            child.stdin.write(line)
            child.stdin.flush()
        child.stdin.close()

    threading.Thread(target=pump_in, daemon=True).start()
    out = sys.stdout.buffer
    for line in child.stdout:
        if mode["now"] == "HUGEUSER" and line.startswith(b'{"type":"assistant"'):
            mode["now"] = ""
            huge(out, b'{"type":"user","message":{"role":"user","content":"', b'"}}\n', size)
        elif mode["now"] == "HUGERESULT" and line.startswith(b'{"type":"result"'):
            mode["now"] = ""
            huge(out, b'{"type":"result","pad":"', b'",' + line[1:], size)
            out.flush()
            continue
        out.write(line)
        out.flush()
    return child.wait()


if __name__ == "__main__":
    sys.exit(main())
