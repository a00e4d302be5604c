"""A synchronous stream-json driver for tests and benchmarks, for the fake or the real CLI.

`StreamJsonProcess` starts the CLI in its own session (so one killpg takes its group), reads
stdout and stderr on threads, and offers deadline-bounded reads. `close()` kills the group and
reaps; use it as a context manager. Non-JSON stdout lines are kept in `garbage`, not raised.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from typing import Any

Event = dict[str, Any]

FAKE_CLAUDE_ARGS: tuple[str, ...] = (
    sys.executable,
    "-m",
    "emulators.claude",
    "-p",
    "--input-format",
    "stream-json",
    "--output-format",
    "stream-json",
    "--verbose",
)
STREAM_JSON_FLAGS: tuple[str, ...] = FAKE_CLAUDE_ARGS[3:]


class StreamJsonProcess:
    """One CLI process: write stdin lines, read stdout events with timeouts."""

    def __init__(
        self, args: list[str], env: dict[str, str] | None = None, cwd: str | None = None
    ) -> None:
        self.args = args
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
        self.pid = self.proc.pid
        self.events: list[Event] = []  # every JSON object read so far
        self.garbage: list[bytes] = []  # stdout lines that were not JSON objects
        self._lines: queue.Queue[bytes | None] = queue.Queue()
        self._stderr: list[bytes] = []
        self._threads = [
            threading.Thread(target=self._pump_stdout, daemon=True),
            threading.Thread(target=self._pump_stderr, daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        self._stdout_eof = False

    def __repr__(self) -> str:
        return f"<StreamJsonProcess pid={self.pid} rc={self.proc.poll()} events={len(self.events)}>"

    def _pump_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in iter(self.proc.stdout.readline, b""):
            self._lines.put(line)
        self._lines.put(None)

    def _pump_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in iter(self.proc.stderr.readline, b""):
            self._stderr.append(line)

    @property
    def stderr(self) -> str:
        return b"".join(self._stderr).decode("utf-8", "replace")

    # -- writing -----------------------------------------------------------------------------

    def send_raw(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def send(self, obj: object) -> None:
        self.send_raw(json.dumps(obj).encode() + b"\n")

    def user(self, text: str) -> None:
        self.send({"type": "user", "message": {"role": "user", "content": text}})

    def control(self, subtype: str, request_id: str, **fields: object) -> None:
        request = {"subtype": subtype, **fields}
        self.send({"type": "control_request", "request_id": request_id, "request": request})

    def close_stdin(self) -> None:
        assert self.proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self.proc.stdin.close()

    # -- reading -----------------------------------------------------------------------------

    def next_line(self, timeout: float) -> bytes | None:
        """The next stdout line, None at EOF; AssertionError if none within `timeout` s."""
        if self._stdout_eof:
            return None
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(
                f"no stdout line within {timeout} s from {self.args[:3]}; stderr={self.stderr!r}"
            ) from None
        if line is None:
            self._stdout_eof = True
        return line

    def next_event(self, timeout: float = 10.0) -> Event | None:
        """The next JSON object on stdout (other lines go to `garbage`), None at EOF."""
        deadline = time.monotonic() + timeout
        while True:
            line = self.next_line(max(0.0, deadline - time.monotonic()))
            if line is None:
                return None
            try:
                obj = json.loads(line)
            except ValueError:
                obj = None
            if isinstance(obj, dict):
                self.events.append(obj)
                return obj
            self.garbage.append(line)

    def until(self, kind: str, timeout: float = 10.0, subtype: str | None = None) -> list[Event]:
        """Events up to and including the first of type `kind` (and `subtype`, if given)."""
        deadline = time.monotonic() + timeout
        seen: list[Event] = []
        while True:
            event = self.next_event(max(0.0, deadline - time.monotonic()))
            if event is None:
                raise AssertionError(
                    f"stdout EOF before {kind}; saw {[e.get('type') for e in seen]}, "
                    f"rc={self.proc.poll()}, stderr={self.stderr!r}"
                )
            seen.append(event)
            if event.get("type") == kind and subtype in (None, event.get("subtype")):
                return seen

    def until_result(self, timeout: float = 10.0) -> list[Event]:
        return self.until("result", timeout)

    def read_to_eof(self, timeout: float = 10.0) -> list[Event]:
        deadline = time.monotonic() + timeout
        seen: list[Event] = []
        while (event := self.next_event(max(0.0, deadline - time.monotonic()))) is not None:
            seen.append(event)
        return seen

    def wait(self, timeout: float = 10.0) -> int:
        return self.proc.wait(timeout=timeout)

    # -- ending ------------------------------------------------------------------------------

    def signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signum)

    def close(self) -> None:
        """Kill the process group (and the pid), reap, and close the pipes."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        self.signal(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        for thread in self._threads:
            thread.join(timeout=2)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()

    def __enter__(self) -> StreamJsonProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
