"""Counting claude's restarts for ``status``: every new claude process after the first.

The worker owns claude; the supervisor sees it only through heartbeats, which carry the
current claude pid (None while it is down or starting) and the worker's own count of the
claude processes it started after its first. A count kept by watching the pid alone misses a
replacement whenever a heartbeat fell in the gap (pid None) between the old and the new
claude; the worker's count alone restarts at 0 with every new worker. So: within one worker
incarnation take the worker's count (and never less than one per pid change); a new worker's
first claude is itself a new claude process once any claude ran before.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ClaudeRestarts"]


@dataclass
class ClaudeRestarts:
    """``count`` grows by one for every claude process after the first, across workers."""

    count: int = 0
    _worker_pid: int | None = None
    _worker_count: int = 0  # the worker's own count at its last heartbeat
    _last_claude_pid: int | None = None  # kept while claude is down: not reset by None

    def seen(self, worker_pid: int, claude_pid: int | None, worker_count: int) -> None:
        """One worker heartbeat."""
        if claude_pid is None:
            return
        if worker_pid != self._worker_pid:  # a new worker: its first claude is new too
            fresh = worker_count + (1 if self._last_claude_pid is not None else 0)
            self._worker_pid = worker_pid
            self._worker_count = worker_count
        else:
            fresh = max(worker_count - self._worker_count, 0)
            if claude_pid != self._last_claude_pid:
                fresh = max(fresh, 1)  # a new process even if the worker's count lags
            self._worker_count += fresh
        self.count += fresh
        self._last_claude_pid = claude_pid
