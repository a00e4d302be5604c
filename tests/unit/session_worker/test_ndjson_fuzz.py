"""claude's stdout is a boundary: any line is an event or a ChildProtocolError (skipped with
one log line by the reader), and no event, however odd, breaks the turn's interpreter."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from session_worker.errors import ChildProtocolError
from session_worker.ndjson import LineSplitter, TurnInterpreter, decode_line, route

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
EVENT_TYPES = ["system", "assistant", "user", "result", "stream_event", "control_request",
               "control_response", "control_cancel_request", "tool_progress", "junk"]  # fmt: skip
events = st.fixed_dictionaries(
    {"type": st.sampled_from(EVENT_TYPES)},
    optional={
        "subtype": st.sampled_from(["init", "success", "error_during_execution", "can_use_tool"]),
        "session_id": json_values,
        "result": json_values,
        "is_error": json_values,
        "message": json_values,
        "request": json_values,
        "request_id": json_values,
        "response": json_values,
        "event": json_values,
        "errors": json_values,
        "total_cost_usd": json_values,
        "usage": json_values,
    },
)


def _judge(line: bytes, interpreter: TurnInterpreter) -> None:
    try:
        event = decode_line(line)
    except ChildProtocolError:
        return
    route(event)
    interpreter.feed(event)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.one_of(events.map(lambda e: json.dumps(e).encode()), st.binary(max_size=60)),
        max_size=20,
    )
)
def test_any_lines_are_events_or_protocol_errors(lines: list[bytes]) -> None:
    interpreter = TurnInterpreter()
    splitter = LineSplitter()
    for line in splitter.feed(b"\n".join(lines) + b"\n"):
        if isinstance(line, bytes):
            _judge(line, interpreter)


def test_a_line_nested_past_msgspecs_limit_is_a_protocol_error() -> None:
    """msgspec raises RecursionError, not DecodeError, past ~1000 levels."""
    deep = b'{"type":"assistant","x":' + b"[" * 5000 + b"]" * 5000 + b"}"
    with pytest.raises(ChildProtocolError, match="nested too deep"):
        decode_line(deep)
