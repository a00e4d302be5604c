"""What Linux says about a process, read from ``/proc/<pid>/stat``: one parser for every
package (the supervisor's orphan sweep and status, the worker's, the tests').

The command name (field 2) may hold spaces and parentheses, so the fields are split after
the last ``)``. A process that is gone, or a zombie, is not alive.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = [
    "ProcStat",
    "all_processes",
    "children_of",
    "descendants",
    "pid_alive",
    "read_stat",
    "session_members",
    "start_ticks",
]


@dataclass(frozen=True)
class ProcStat:
    """The fields of ``/proc/<pid>/stat`` that we use (proc(5))."""

    pid: int
    state: str  # R, S, D, T, Z (zombie), X (dead), …
    ppid: int
    pgid: int
    sid: int
    start_ticks: int  # clock ticks after boot: tells a reused pid apart

    @property
    def alive(self) -> bool:
        return self.state not in ("Z", "X")


def parse_stat(pid: int, text: str) -> ProcStat | None:
    """Parse one ``stat`` line; None when it is not one."""
    try:
        fields = text.rsplit(")", 1)[1].split()
        return ProcStat(
            pid=pid,
            state=fields[0],
            ppid=int(fields[1]),
            pgid=int(fields[2]),
            sid=int(fields[3]),
            start_ticks=int(fields[19]),
        )
    except (IndexError, ValueError):
        return None


def read_stat(pid: int) -> ProcStat | None:
    """``pid``'s stat, or None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    return parse_stat(pid, text)


def all_processes() -> list[ProcStat]:
    """Every process visible in /proc (zombies included)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = read_stat(int(entry))
            if stat is not None:
                found.append(stat)
    return found


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    stat = read_stat(pid)
    return stat is not None and stat.alive


def start_ticks(pid: int) -> int | None:
    """The kernel's start time of a live ``pid``; None when it is gone or a zombie."""
    stat = read_stat(pid)
    return stat.start_ticks if stat is not None and stat.alive else None


def children_of(pid: int) -> dict[int, str]:
    """Direct children of ``pid`` with their state letter (zombies included)."""
    return {p.pid: p.state for p in all_processes() if p.ppid == pid}


def descendants(pid: int) -> set[int]:
    """Every live process whose ancestry reaches ``pid`` (one scan of /proc)."""
    table = all_processes()
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {p.pid for p in table if p.ppid in frontier} - found
        found |= frontier
    alive = {p.pid for p in table if p.alive}
    return found & alive


def session_members(sid: int) -> set[int]:
    """Every live process of session ``sid``."""
    return {p.pid for p in all_processes() if p.sid == sid and p.alive}
