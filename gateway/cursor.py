"""The WebSocket's ``connection_id`` and ``seq`` across reconnects: what each frame means
(a fresh connection, a resumed one, the next event, a duplicate, a gap to reconnect for)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from gateway.models import WsFrame

__all__ = ["WsCursor", "WsStep"]

WsStep = Literal["hello_new", "hello_same", "event", "duplicate", "gap", "response"]


@dataclass
class WsCursor:
    """Tracks ``connection_id`` and the next expected ``seq`` across reconnects."""

    connection_id: str = ""
    expected_seq: int = 0
    _last_gap: int | None = field(default=None, repr=False)

    def observe(self, frame: WsFrame) -> WsStep:
        """Classify a frame and advance: a ``gap`` means close and reconnect to get a replay."""
        if not frame.event:
            return "response"
        seq = frame.seq if frame.seq is not None else self.expected_seq
        if frame.event == "hello":
            data = frame.data or {}
            new_id = data.get("connection_id")
            new_id = new_id if isinstance(new_id, str) else ""
            fresh = new_id != self.connection_id or not new_id
            self.connection_id = new_id
            self.expected_seq = seq + 1
            self._last_gap = None
            return "hello_new" if fresh else "hello_same"
        if seq == self.expected_seq:
            self.expected_seq += 1
            self._last_gap = None
            return "event"
        if seq < self.expected_seq:
            return "duplicate"
        if self._last_gap == self.expected_seq:
            # The replay did not fill the same hole twice: give the connection up, so the
            # server starts a fresh one (new hello) and the REST catch-up covers the hole.
            self.connection_id = ""
            self.expected_seq = 0
            self._last_gap = None
        else:
            self._last_gap = self.expected_seq
        return "gap"
