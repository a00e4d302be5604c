"""Stream-json framing, encoding and interpretation, against the recorded real CLI streams."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import msgspec
import pytest

from session_worker.errors import ChildProtocolError
from session_worker.ndjson import (
    OVERLONG,
    ControlReply,
    ControlRequestFromCli,
    LineSplitter,
    Overlong,
    TurnEvent,
    TurnInterpreter,
    TurnOutcome,
    decode_line,
    encode_control_request,
    encode_control_response,
    encode_refusal,
    encode_user,
    route,
)
from tests.support import FIXTURES


@dataclass(frozen=True)
class Turn:
    subtype: str
    is_error: bool
    text: str  # the answer, or its beginning when it ends with "…"


@dataclass(frozen=True)
class Expected:
    session_id: str
    turns: tuple[Turn, ...]
    cli_requests: int = 0
    replies: int = 0


ECHO_SID = "502b2fbe-50c7-4f45-aac3-eaecb5a1ee2d"
INTERRUPTED = "error_during_execution"

EXPECTED: dict[str, Expected] = {
    # Killed by the recorder while the CLI was still retrying: no result at all.
    "api-error-401-2.1.197": Expected("2ae20058-f0bc-42a6-becd-69ab3b57043c", ()),
    "api-error-500-2.1.197": Expected(
        "b30c093b-0fc9-482e-8850-07a88c8afc5b", (Turn("success", True, "API Error: 500 fake…"),)
    ),
    "api-error-529-2.1.330": Expected(
        "7601990a-4d3e-4bdb-b9f5-6399493d123e", (Turn("success", True, "API Error: 529 fake…"),)
    ),
    "api-stall-2.1.197": Expected("4161eb95-6812-4885-ac67-ee933f4d2100", ()),
    "echo-two-turns-2.1.197": Expected(
        ECHO_SID,
        (
            Turn("success", False, "echo[1]: first message"),
            Turn("success", False, "echo[3]: second message"),
        ),
        replies=1,
    ),
    "interrupt-2.1.197": Expected(
        "3134c794-bd2d-40de-b689-44aa58485367",
        (
            Turn(INTERRUPTED, True, "chunk0 chunk1 chunk2 "),
            Turn("success", False, "echo[3]: [Request interrupted by user]\n | after interrupt"),
        ),
        replies=1,
    ),
    "interrupt-2.1.330": Expected(
        "aa5fa97d-f0d4-4806-9539-cd9024d2c699",
        (
            Turn(INTERRUPTED, True, "chunk0 chunk1 chunk2 "),
            Turn("success", False, "echo[4]: [Request interrupted by user]\n | after interrupt"),
        ),
        replies=1,
    ),
    "long-tool-2.1.197": Expected(
        "6c866928-f647-443b-8782-4bf6c6c855f8", (Turn(INTERRUPTED, True, ""),), replies=1
    ),
    "long-tool-2.1.330": Expected(
        "9a535cfd-e7ce-4ea1-a128-90540ff99df8", (Turn(INTERRUPTED, True, ""),), replies=1
    ),
    "partial-messages-2.1.197": Expected(
        "0e61310b-61a6-4c1a-89d3-dcc1486a4dc8", (Turn("success", False, "echo[1]: hello partial"),)
    ),
    "partial-messages-2.1.330": Expected(
        "2b54d464-e0c7-4005-8afd-fd12f2cdf1ab", (Turn("success", False, "echo[2]: hello partial"),)
    ),
    "permission-allow-2.1.197": Expected(
        "30345254-e983-4909-b5ab-893eb2a15396",
        (Turn("success", False, 'tool said: "42" is_error=False'),),
        cli_requests=1,
    ),
    "permission-allow-2.1.330": Expected(
        "28709695-f58a-4fb6-a1de-33b6bec47669",
        (Turn("success", False, 'tool said: "42" is_error=False'),),
        cli_requests=1,
    ),
    "permission-auto-denied-2.1.197": Expected(
        "3f40b877-4799-4743-b15f-fa0cd790fb6e",
        (Turn("success", False, 'tool said: "This command requires approval" is_error=True'),),
    ),
    "permission-deny-2.1.197": Expected(
        "5a63c8e4-c11c-4e05-90d4-586ff69160e3",
        (Turn("success", False, 'tool said: "not today" is_error=True'),),
        cli_requests=1,
    ),
    "resume-2.1.197": Expected(ECHO_SID, (Turn("success", False, "echo[5]: after resume"),)),
    "resume-unknown-session-2.1.197": Expected(
        "00000000-0000-4000-8000-000000000000", (Turn(INTERRUPTED, True, ""),)
    ),
}


@dataclass
class Replay:
    outcomes: list[TurnOutcome]
    session_id: str | None
    cli_requests: list[ControlRequestFromCli]
    replies: list[ControlReply]


def replay(name: str) -> Replay:
    """Feed a recorded stream the way the worker does: framed, decoded, routed, one
    interpreter per turn."""
    raw = (FIXTURES / f"{name}.jsonl").read_bytes()
    stdout = b"".join(
        json.dumps(record["ev"]).encode() + b"\n"
        for record in map(json.loads, raw.splitlines())
        if "ev" in record
    )
    splitter = LineSplitter()
    framed = [line for i in range(0, len(stdout), 7) for line in splitter.feed(stdout[i : i + 7])]
    lines = [line for line in framed if isinstance(line, bytes)]
    assert len(lines) == len(framed)  # no recorded line comes near MAX_LINE
    assert splitter.pending() == 0
    result = Replay([], None, [], [])
    interp = TurnInterpreter()
    for line in lines:
        match route(decode_line(line)):
            case TurnEvent(event=event):
                if event.get("type") == "control_request":  # can_use_tool: for the runner
                    request_id = str(event.get("request_id"))
                    result.cli_requests.append(
                        ControlRequestFromCli(request_id, "can_use_tool", b"")
                    )
                outcome = interp.feed(event)
                result.session_id = interp.session_id or result.session_id
                if outcome is not None:
                    result.outcomes.append(outcome)
                    interp = TurnInterpreter()
            case ControlRequestFromCli() as request:
                result.cli_requests.append(request)
            case ControlReply() as reply:
                result.replies.append(reply)
            case None:
                pass
    return result


def test_every_fixture_has_an_expectation() -> None:
    """Each recorded stream is covered by the table below (a new fixture needs a row)."""
    assert {p.stem for p in Path(FIXTURES).glob("*.jsonl")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_recorded_stream_interpretation(name: str) -> None:
    """The answer, error flag, subtype and session id of every turn of a real stream."""
    expected = EXPECTED[name]
    got = replay(name)
    assert got.session_id == expected.session_id
    assert len(got.outcomes) == len(expected.turns)
    for outcome, turn in zip(got.outcomes, expected.turns, strict=True):
        assert (outcome.subtype, outcome.is_error) == (turn.subtype, turn.is_error)
        if turn.text.endswith("…"):
            assert outcome.text.startswith(turn.text[:-1])
        else:
            assert outcome.text == turn.text
        assert outcome.session_id == expected.session_id
        assert outcome.interrupted == (turn.subtype == INTERRUPTED)
    assert len(got.cli_requests) == expected.cli_requests
    assert len(got.replies) == expected.replies


def test_unknown_resume_is_recognized() -> None:
    """The startup result of ``--resume <unknown id>`` says the conversation is missing."""
    (outcome,) = replay("resume-unknown-session-2.1.197").outcomes
    assert outcome.no_conversation
    (other,) = replay("resume-2.1.197").outcomes
    assert not other.no_conversation


def test_initialize_reply_carries_the_pid() -> None:
    """The initialize control_response is routed as a successful reply with a pid."""
    (reply,) = replay("echo-two-turns-2.1.197").replies
    assert reply.ok
    assert reply.request_id == "req_1"
    assert isinstance(reply.body.get("pid"), int)


def test_can_use_tool_goes_to_the_turn_not_refused() -> None:
    """A CLI permission request is a turn event (the runner asks the thread), not refused."""
    recorded = [
        json.loads(line)["ev"]
        for line in (FIXTURES / "permission-allow-2.1.330.jsonl").read_text().splitlines()
        if "ev" in json.loads(line)
    ]
    (request,) = [e for e in recorded if e.get("type") == "control_request"]
    assert route(request) == TurnEvent(request)
    cancel = {"type": "control_cancel_request", "request_id": "x"}
    assert route(cancel) == TurnEvent(cancel)
    assert route({"type": "keep_alive"}) is None


def test_answer_to_a_tool_request_is_well_formed() -> None:
    """Our allow answer is the control_response the CLI expects (§2.3)."""
    line = encode_control_response("r1", {"behavior": "allow", "updatedInput": {"a": 1}})
    assert line.endswith(b"\n")
    assert json.loads(line) == {
        "type": "control_response",
        "response": {
            "subtype": "success",
            "request_id": "r1",
            "response": {"behavior": "allow", "updatedInput": {"a": 1}},
        },
    }
    model = json.loads(encode_control_request("m1", "set_model", "claude-sonnet-4-5"))
    assert model["request"] == {"subtype": "set_model", "model": "claude-sonnet-4-5"}
    mode = json.loads(encode_control_request("p1", "set_permission_mode", "plan"))
    assert mode["request"] == {"subtype": "set_permission_mode", "mode": "plan"}


def test_other_cli_requests_get_an_error() -> None:
    """Any other CLI request subtype is refused with an error response."""
    reply = json.loads(encode_refusal("r9", "hook_callback"))
    assert reply == {
        "type": "control_response",
        "response": {"subtype": "error", "request_id": "r9", "error": reply["response"]["error"]},
    }


def test_unknown_event_types_are_noted_not_fatal() -> None:
    """Unknown types are collected for a one-time log line and otherwise ignored."""
    interp = TurnInterpreter()
    assert interp.feed({"type": "brand_new_thing"}) is None
    assert interp.feed({"type": "tool_progress"}) is None
    assert interp.unknown_types == {"brand_new_thing"}


def test_sub_agent_text_is_not_the_answer() -> None:
    """Assistant messages of sub-agents (parent_tool_use_id set) are left out."""
    interp = TurnInterpreter()
    sub = {"type": "text", "text": "sub"}
    main = {"type": "text", "text": "main"}
    interp.feed({"type": "assistant", "parent_tool_use_id": "t1", "message": {"content": [sub]}})
    interp.feed({"type": "assistant", "parent_tool_use_id": None, "message": {"content": [main]}})
    outcome = interp.feed({"type": "result", "subtype": "error_max_turns", "is_error": True})
    assert outcome is not None
    assert outcome.text == "main"


def test_splitter_frames_long_lines_across_chunks() -> None:
    """A multi-megabyte line split over many chunks comes out whole; blank lines are dropped."""
    big = b'{"type":"assistant","x":"' + b"a" * 3_000_000 + b'"}'
    stream = big + b"\n\n" + b'{"type":"result"}\n{"type":'
    splitter = LineSplitter()
    chunks = [stream[i : i + 65536] for i in range(0, len(stream), 65536)]
    lines = [line for chunk in chunks for line in splitter.feed(chunk)]
    assert lines == [big, b'{"type":"result"}']
    assert splitter.pending() == len(b'{"type":')


@pytest.mark.parametrize(
    "line", [b"this is not json", b'{"type":"assistant","message":{"id":"msg_trunc', b"[1, 2, 3]",
             b'{"no_type": 1}', b"\xff\xfe"],
)  # fmt: skip
def test_malformed_lines_raise_child_protocol_error(line: bytes) -> None:
    """Non-JSON, truncated or non-event lines are a ChildProtocolError (logged, skipped)."""
    with pytest.raises(ChildProtocolError):
        decode_line(line)


def test_stdin_lines_are_single_line_json() -> None:
    """User and control lines are one JSON object each, whatever the text holds."""
    text = 'line1\nline2 "quoted" \\ \u2028 end'
    user = encode_user(text)
    assert user.endswith(b"\n")
    assert user.count(b"\n") == 1
    assert msgspec.json.decode(user) == {
        "type": "user",
        "message": {"content": text, "role": "user"},
        "parent_tool_use_id": None,
    }
    assert msgspec.json.decode(encode_control_request("i1", "interrupt")) == {
        "type": "control_request",
        "request_id": "i1",
        "request": {"subtype": "interrupt"},
    }
    init = msgspec.json.decode(encode_control_request("i2", "initialize"))
    assert init["request"] == {"subtype": "initialize", "hooks": None}


def test_an_overlong_line_is_skipped_with_bounded_memory() -> None:
    """A line over the limit is never held whole: only its head is kept, the rest counted,
    and the lines around it come through intact."""
    splitter = LineSplitter(max_line=1000)
    head = b'{"type":"result","subtype":"success","result":"'
    out = splitter.feed(b'{"type":"a"}\n' + head)
    assert out == [b'{"type":"a"}']
    held = []
    for _ in range(100):
        assert splitter.feed(b"x" * 4096) == []
        held.append(splitter.held())
    assert max(held) <= 1000 + 4096
    out = splitter.feed(b'"}\n{"type":"b"}\n')
    assert len(out) == 2
    overlong = out[0]
    assert isinstance(overlong, Overlong)
    assert overlong.size == len(head) + 100 * 4096 + 2
    assert overlong.event_type == "result"
    assert out[1] == b'{"type":"b"}'
    assert splitter.pending() == splitter.held() == 0


def test_a_line_at_the_limit_is_kept() -> None:
    """Exactly max_line bytes is still a line; one more is over-long, within one chunk too."""
    splitter = LineSplitter(max_line=10)
    assert splitter.feed(b"0123456789\n") == [b"0123456789"]
    out = splitter.feed(b"0123456789A\n")
    assert out == [Overlong(11, b"0123456789A")]
    assert Overlong(11, b"0123456789A").event_type == ""


def test_an_overlong_event_is_noted_and_an_overlong_result_ends_the_turn() -> None:
    """The interpreter counts skipped lines into the outcome; a skipped result is the end."""
    interp = TurnInterpreter()
    assert interp.feed({"type": OVERLONG, "size": 5, "event_type": "user"}) is None
    outcome = interp.feed({"type": "result", "subtype": "success", "result": "ok"})
    assert outcome is not None
    assert outcome.skipped == (5,)
    interp = TurnInterpreter()
    outcome = interp.feed({"type": OVERLONG, "size": 7, "event_type": "result"})
    assert outcome is not None
    assert (outcome.is_error, outcome.subtype, outcome.skipped) == (True, OVERLONG, (7,))


def test_session_ids_and_unknown_types_from_claude_are_bounded() -> None:
    """Only a plain token is taken as the session id (it reaches argv and the journal);
    unknown event types are remembered up to a bound, each shortened."""
    interp = TurnInterpreter()
    interp.feed({"type": "system", "subtype": "init", "session_id": "--dangerous-flag"})
    interp.feed({"type": "system", "subtype": "init", "session_id": "x" * 1000})
    learnt = [interp.session_id]
    interp.feed({"type": "system", "subtype": "init", "session_id": ECHO_SID})
    learnt.append(interp.session_id)
    assert learnt == [None, ECHO_SID]
    for i in range(1000):
        interp.feed({"type": f"new_{i}_" + "y" * 500})
    assert len(interp.unknown_types) == 32
    assert max(map(len, interp.unknown_types)) <= 64


def test_no_conversation_rule_reads_any_error_list() -> None:
    """One rule for the outcome and the child's reader: the CLI's words in any error."""
    from session_worker.ndjson import NO_CONVERSATION, says_no_conversation

    assert says_no_conversation(["x", f"{NO_CONVERSATION}: abc"])
    assert says_no_conversation((f"{NO_CONVERSATION} abc",))
    assert not says_no_conversation(["something else"])
    assert not says_no_conversation(None)
    assert not says_no_conversation(NO_CONVERSATION)  # a string is not a list of errors
