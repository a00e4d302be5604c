"""The error tree of the session worker.

``WorkerError`` is the root. The categories separate "the claude child broke" (it exited,
it wrote something that is not stream-json, it did not become ready) from "we refused a
state change" (a journal transition that the prompt's state does not allow).
"""

from __future__ import annotations

__all__ = [
    "AlreadyRunningError",
    "ChildError",
    "ChildExitedError",
    "ChildProtocolError",
    "ChildStartError",
    "JournalError",
    "TransitionError",
    "WorkerError",
]


class WorkerError(Exception):
    """Root of every error raised by :mod:`session_worker`."""


class AlreadyRunningError(WorkerError):
    """Another worker holds this state dir's lock (``pid``: its pid, when it wrote one)."""

    def __init__(self, pid: int | None) -> None:
        who = f"pid {pid}" if pid is not None else "pid unknown"
        super().__init__(f"another worker is running on this state dir ({who})")
        self.pid = pid


class ChildError(WorkerError):
    """Something went wrong with the ``claude`` child process."""


class ChildExitedError(ChildError):
    """The child is gone (stdout EOF or exit) while we needed it.

    ``returncode`` is its exit status (negative: killed by that signal), ``None`` when it
    could not be collected; ``stderr_tail`` is the end of what it wrote on stderr.
    """

    def __init__(self, message: str, *, returncode: int | None, stderr_tail: str) -> None:
        super().__init__(message)
        self.returncode = returncode
        self.stderr_tail = stderr_tail


class ChildStartError(ChildExitedError):
    """The child did not become ready (exited early, or no ``initialize`` answer in time).

    ``no_conversation`` is true when the CLI refused ``--resume`` because it does not know
    the session id: the caller then starts a fresh session instead.
    """

    def __init__(
        self,
        message: str,
        *,
        returncode: int | None,
        stderr_tail: str,
        no_conversation: bool = False,
    ) -> None:
        super().__init__(message, returncode=returncode, stderr_tail=stderr_tail)
        self.no_conversation = no_conversation


class ChildProtocolError(ChildError):
    """The child wrote a stdout line that is not a stream-json object (logged, skipped)."""


class JournalError(WorkerError):
    """The journal cannot do what was asked (unknown post id, corrupt row)."""


class TransitionError(JournalError):
    """A prompt's state does not allow this event (e.g. ``Delivered`` before an answer)."""
