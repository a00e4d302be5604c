"""The live view of a running turn (MMCLAUDE_LIVE): a pure fold of claude's events.

:class:`ActivityView` takes the turn's stdout events one by one (``stream_event`` text deltas,
``assistant`` text and ``tool_use`` blocks, ``user`` tool results, ``tool_progress``) and
renders a short Markdown view: one line per tool call (``Bash: npm test`` ✓/✗) and the text
Claude has written so far. :func:`summary_line` is the one line the activity post keeps when
the turn is over. No I/O, no clock: the caller passes elapsed times.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "ACTIVITY_AFTER",
    "ACTIVITY_EVERY",
    "MAX_VIEW",
    "ActivityView",
    "activity_key",
    "summary_line",
    "tool_label",
]

ACTIVITY_AFTER = 2.0  # seconds of turn before there is an activity post (contract)
ACTIVITY_EVERY = 1.0  # at most one view a second

MAX_VIEW = 3500  # characters of a rendered view; the text shows its newest part
MAX_TOOL_LINES = 12  # newest tool lines shown; older ones are counted
_ARG = 70  # characters of a tool's argument in its line

# Which input field names a tool call best, by tool name.
_ARG_KEYS: dict[str, tuple[str, ...]] = {
    "Bash": ("command",),
    "Read": ("file_path",),
    "Edit": ("file_path",),
    "MultiEdit": ("file_path",),
    "Write": ("file_path",),
    "NotebookEdit": ("notebook_path",),
    "Glob": ("pattern",),
    "Grep": ("pattern",),
    "WebFetch": ("url",),
    "WebSearch": ("query",),
    "Task": ("description",),
    "Agent": ("description",),
    "TodoWrite": (),
}


def _short(value: str, limit: int = _ARG) -> str:
    value = " ".join(value.split())  # one line
    return value if len(value) <= limit else value[: limit - 1] + "…"


def tool_label(name: str, tool_input: object) -> str:
    """``Bash: npm test``, ``Edit: src/app.py``, or just the tool's name."""
    keys = _ARG_KEYS.get(name)
    args = tool_input if isinstance(tool_input, dict) else {}
    if keys is None:  # an unknown tool (MCP…): its first short string argument
        keys = tuple(k for k, v in args.items() if isinstance(v, str))[:1]
    for key in keys:
        value = args.get(key)
        if isinstance(value, str) and value.strip():
            return f"{name}: {_short(value)}"
    return name


@dataclass
class _Tool:
    label: str
    done: bool = False
    failed: bool = False
    elapsed_s: float = 0.0

    def line(self) -> str:
        mark = "✗" if self.failed else "✓" if self.done else "…"
        slow = f" ({self.elapsed_s:.0f} s)" if not self.done and self.elapsed_s else ""
        label = self.label.replace("`", "'")
        return f"{mark} `{label}`{slow}"


@dataclass
class ActivityView:
    """The fold of one turn's events; :meth:`feed` says whether the view changed."""

    texts: list[str] = field(default_factory=list)  # one per API message, in order
    tools: dict[str, _Tool] = field(default_factory=dict)  # tool_use id → line, in order
    _text_index: dict[str, int] = field(default_factory=dict)  # message id → texts index
    _streamed: set[str] = field(default_factory=set)  # message ids whose text came by deltas
    _current: str = ""  # message id of the stream being received
    cost_usd: float | None = None

    @property
    def tool_calls(self) -> int:
        return len(self.tools)

    def _text_slot(self, message_id: str) -> int:
        index = self._text_index.get(message_id)
        if index is None:
            index = len(self.texts)
            self.texts.append("")
            self._text_index[message_id] = index
        return index

    def feed(self, event: Mapping[str, Any]) -> bool:
        kind = event.get("type")
        if kind == "stream_event":
            return self._stream(event.get("event"))
        if kind == "assistant":
            return self._assistant(event.get("message"))
        if kind == "user":
            return self._results(event.get("message"))
        if kind == "tool_progress":
            tool = self.tools.get(str(event.get("parent_tool_use_id") or ""))
            seconds = event.get("elapsed_time_seconds")
            if tool is not None and isinstance(seconds, int | float) and not tool.done:
                tool.elapsed_s = float(seconds)
                return True
            return False
        if kind == "result":
            cost = event.get("total_cost_usd")
            if isinstance(cost, int | float) and not isinstance(cost, bool):
                self.cost_usd = float(cost)
        return False

    def _stream(self, inner: object) -> bool:
        if not isinstance(inner, dict):
            return False
        kind = inner.get("type")
        if kind == "message_start":
            message = inner.get("message")
            mid = message.get("id") if isinstance(message, dict) else None
            self._current = mid if isinstance(mid, str) else f"anon-{len(self.texts)}"
            return False
        if kind == "content_block_delta":
            delta = inner.get("delta")
            if isinstance(delta, dict) and delta.get("type") == "text_delta":
                text = delta.get("text")
                if isinstance(text, str) and text:
                    current = self._current or "anon"
                    self._streamed.add(current)
                    self.texts[self._text_slot(current)] += text
                    return True
        return False

    def _assistant(self, message: object) -> bool:
        if not isinstance(message, dict):
            return False
        content = message.get("content")
        if not isinstance(content, list):
            return False
        mid = message.get("id")
        mid = mid if isinstance(mid, str) else f"anon-{len(self.texts)}"
        changed = False
        for block in content:
            if not isinstance(block, dict):
                continue
            if block.get("type") == "text" and mid not in self._streamed:
                text = block.get("text")
                if isinstance(text, str) and text:
                    slot = self._text_slot(mid)
                    self.texts[slot] += text
                    changed = True
            elif block.get("type") == "tool_use":
                tool_id = block.get("id")
                name = block.get("name")
                if isinstance(tool_id, str) and isinstance(name, str) and tool_id not in self.tools:
                    self.tools[tool_id] = _Tool(tool_label(name, block.get("input")))
                    changed = True
        return changed

    def _results(self, message: object) -> bool:
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list):
            return False
        changed = False
        for block in content:
            if isinstance(block, dict) and block.get("type") == "tool_result":
                tool = self.tools.get(str(block.get("tool_use_id") or ""))
                if tool is not None and not tool.done:
                    tool.done, tool.failed = True, block.get("is_error") is True
                    changed = True
        return changed

    def render(self, elapsed_s: float) -> str:
        """The activity post's text while the turn runs (at most :data:`MAX_VIEW` chars)."""
        head = f"⏳ Working… {elapsed_s:.0f} s"
        if self.tools:
            head += f" · {self.tool_calls} tool call{'s' if self.tool_calls != 1 else ''}"
        lines = [head]
        tools = list(self.tools.values())
        if len(tools) > MAX_TOOL_LINES:
            lines.append(f"… {len(tools) - MAX_TOOL_LINES} earlier tool calls")
            tools = tools[-MAX_TOOL_LINES:]
        lines += [tool.line() for tool in tools]
        text = "\n\n".join(t.strip() for t in self.texts if t.strip())
        if text:
            room = MAX_VIEW - sum(len(line) + 1 for line in lines) - 8
            if len(text) > room:
                text = "…" + text[-max(room, 0) :]
            lines += ["", text]
        return "\n".join(lines)[:MAX_VIEW]


def activity_key(post_id: str) -> str:
    """The journal meta key holding a turn's summary line until its answer is delivered."""
    return f"activity:{post_id}"


def summary_line(
    elapsed_s: float, tool_calls: int, cost_usd: float | None, *, ok: bool = True
) -> str:
    """The one line the activity post keeps after the turn: duration, tool calls, cost."""
    head = "✅ Done in" if ok else "⚠️ Ended with an error after"
    parts = [f"{head} {_duration(elapsed_s)}"]
    parts.append(f"{tool_calls} tool call{'s' if tool_calls != 1 else ''}")
    if cost_usd is not None:
        parts.append(f"${cost_usd:.4f}")
    return " · ".join(parts)


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s"
