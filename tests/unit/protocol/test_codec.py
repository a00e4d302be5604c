"""Every wire message survives the codec, and no byte string crashes the decoder."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

import protocol
from protocol import (
    Accepted,
    Activity,
    Answer,
    Attachment,
    BindThread,
    DecodeError,
    Delivered,
    FileRequest,
    GatewayBye,
    GatewayHeartbeat,
    GatewayHello,
    OutFile,
    Progress,
    Prompt,
    Welcome,
    WorkerHeartbeat,
    encode,
    gateway_codec,
    supervisor_codec,
    worker_codec,
)
from protocol.limits import COUNT_MAX, MAX_PROMPT_CHARS, MILLIS_MAX

text = st.text(max_size=200)
ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=26, max_size=26)
maybe_ids = st.just("") | ids
gateway_ids = st.from_regex(r"\A[A-Za-z0-9_.-]{1,40}\Z")
endpoints = st.sampled_from(["ipc:///tmp/x", "tcp://10.200.0.2:7700", "tcp://[::1]:1"])
millis = st.integers(min_value=0, max_value=MILLIS_MAX)
pids = st.integers(min_value=1, max_value=2**22)
counts = st.integers(min_value=0, max_value=COUNT_MAX)
sizes = st.integers(min_value=-(2**63), max_value=2**63 - 1)
blobs = st.binary(max_size=64)
attachments = st.lists(
    st.builds(Attachment, file_id=text, name=text, size=sizes, data=blobs, skipped=text),
    max_size=3,
).map(tuple)

TO_WORKER = st.one_of(
    st.builds(
        GatewayHello, gateway_id=gateway_ids, endpoint=endpoints, pid=pids, protocol_version=counts
    ),
    st.builds(GatewayBye, gateway_id=gateway_ids),
    st.builds(
        BindThread,
        gateway_id=gateway_ids,
        thread_id=ids,
        channel_id=ids,
        bind_token=text,
        configured=st.booleans(),
    ),
    st.builds(
        Prompt,
        gateway_id=gateway_ids,
        post_id=ids,
        create_at=millis,
        user_id=ids,
        text=text,
        username=text,
        attachments=attachments,
    ),
    st.builds(
        FileRequest,
        gateway_id=gateway_ids,
        post_id=ids,
        create_at=millis,
        user_id=ids,
        path=text,
        username=text,
    ),
    st.builds(
        Delivered, gateway_id=gateway_ids, post_id=ids, reply_ids=st.tuples(ids) | st.tuples()
    ),
)
TO_GATEWAY = st.one_of(
    st.builds(
        Welcome,
        worker_pid=pids,
        incarnation=text,
        thread_id=maybe_ids,
        channel_id=maybe_ids,
        bind_token=text,
        catch_up_from=millis,
        protocol_version=counts,
    ),
    st.builds(Accepted, post_id=ids, first=st.booleans()),
    st.builds(
        Answer,
        post_id=ids,
        create_at=millis,
        text=text,
        is_error=st.booleans(),
        attempt=counts,
        files=st.lists(st.builds(OutFile, name=text, data=blobs), max_size=2).map(tuple),
        activity=text,
    ),
    st.builds(Progress, post_id=ids, elapsed_s=st.floats(min_value=0, max_value=1e9)),
    st.builds(
        Activity,
        post_id=ids,
        create_at=millis,
        text=text,
        elapsed_s=st.floats(min_value=0, max_value=1e9),
        seq=counts,
    ),
)
TO_SUPERVISOR = st.one_of(
    st.builds(
        WorkerHeartbeat,
        pid=pids,
        claude_pid=st.none() | pids,
        session_id=st.none() | text,
        queue=counts,
        thread_id=maybe_ids,
        claude_restarts=counts,
        state=text,
    ),
    st.builds(
        GatewayHeartbeat,
        pid=pids,
        gateway_id=gateway_ids,
        connected=st.booleans(),
        thread_id=maybe_ids,
    ),
)

POST = "a" * 26
USER = "u" * 26


@given(TO_WORKER)
def test_gateway_to_worker_round_trip(message: protocol.ToWorker) -> None:
    """Each gateway→worker message decodes to an equal message."""
    assert worker_codec.decode(encode(message)) == message


@given(TO_GATEWAY)
def test_worker_to_gateway_round_trip(message: protocol.ToGateway) -> None:
    """Each worker→gateway message decodes to an equal message."""
    assert gateway_codec.decode(encode(message)) == message


@given(TO_SUPERVISOR)
def test_child_to_supervisor_round_trip(message: protocol.ToSupervisor) -> None:
    """Each heartbeat decodes to an equal heartbeat."""
    assert supervisor_codec.decode(encode(message)) == message


@given(st.binary(max_size=512))
def test_arbitrary_bytes_raise_our_error(frame: bytes) -> None:
    """Arbitrary bytes either decode to a message or raise DecodeError, never anything else."""
    for codec in (worker_codec, gateway_codec, supervisor_codec):
        error: DecodeError | None = None
        try:
            codec.decode(frame)
        except DecodeError as exc:
            error = exc
        assert error is None or error.size == len(frame)


def test_decode_error_names_the_field() -> None:
    """A schema mismatch keeps msgspec's $.path so the log line says which field was wrong."""
    frame = msgspec.msgpack.encode(
        {
            "type": "Prompt",
            "gateway_id": "g",
            "post_id": POST,
            "create_at": "soon",
            "user_id": USER,
            "text": "t",
        }
    )
    with pytest.raises(DecodeError, match=r"\$\.create_at"):
        worker_codec.decode(frame)


def test_wrong_direction_is_refused() -> None:
    """A worker→gateway message arriving on the worker's inbox is a decode error, not a crash."""
    with pytest.raises(DecodeError, match="Invalid value 'Accepted'"):
        worker_codec.decode(encode(Accepted(post_id=POST)))


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    """A newer peer's extra field does not break an older decoder (schema evolution)."""
    frame = msgspec.msgpack.encode(
        {"type": "Accepted", "post_id": POST, "first": True, "brand_new": [1, 2]}
    )
    assert gateway_codec.decode(frame) == Accepted(post_id=POST, first=True)


def test_messages_are_frozen() -> None:
    """Wire messages cannot be mutated after construction."""
    message = Accepted(post_id="p")
    with pytest.raises(AttributeError):
        message.post_id = "q"  # type: ignore[misc]


# --- hostile values: every out-of-bounds field makes the frame undecodable -------------------

_PROMPT = {
    "type": "Prompt",
    "gateway_id": "g1",
    "post_id": POST,
    "create_at": 1,
    "user_id": USER,
    "text": "t",
}


def _prompt_with(**fields: object) -> bytes:
    return msgspec.msgpack.encode({**_PROMPT, **fields})


def test_a_valid_prompt_decodes() -> None:
    """The baseline of the hostile cases below is itself accepted."""
    assert isinstance(worker_codec.decode(_prompt_with()), Prompt)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("create_at", 2**64 - 1),  # crashed the worker's journal with OverflowError
        ("create_at", -1),
        ("create_at", MILLIS_MAX + 1),
        ("post_id", "p"),
        ("post_id", "A" * 26),
        ("post_id", "a" * 27),
        ("post_id", "../../etc/passwd0000000000"),
        ("user_id", ""),
        ("gateway_id", ""),
        ("gateway_id", "g" * 41),
        ("gateway_id", "a/b"),
        ("text", "x" * (MAX_PROMPT_CHARS + 1)),
        ("username", "x" * 257),
    ],
)
def test_out_of_bounds_prompt_fields_are_refused(field: str, value: object) -> None:
    """Range, id format and size: each refused with the field named."""
    with pytest.raises(DecodeError, match=rf"\$\.{field}"):
        worker_codec.decode(_prompt_with(**{field: value}))


@given(
    field=st.sampled_from(["post_id", "user_id", "gateway_id"]),
    value=st.text(max_size=60).filter(lambda v: len(v) != 26),
)
def test_ids_of_the_wrong_length_never_decode(field: str, value: str) -> None:
    """Any id that is not 26 characters (gateway ids: 1-40 of a small alphabet) is refused."""
    if field == "gateway_id" and 1 <= len(value) <= 40:
        allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
        if set(value) <= allowed:
            return
    with pytest.raises(DecodeError):
        worker_codec.decode(_prompt_with(**{field: value}))


@given(st.integers(min_value=-(2**63), max_value=2**64 - 1))
def test_any_create_at_either_decodes_in_range_or_is_refused(create_at: int) -> None:
    """No integer a msgpack peer can send gets past the decoder out of range."""
    try:
        message = worker_codec.decode(_prompt_with(create_at=create_at))
    except DecodeError:
        assert not 0 <= create_at <= MILLIS_MAX
    else:
        assert isinstance(message, Prompt)
        assert 0 <= message.create_at <= MILLIS_MAX


@pytest.mark.parametrize(
    "message",
    [
        {"type": "GatewayHello", "gateway_id": "g", "endpoint": "bogus://x", "pid": 1},
        {"type": "GatewayHello", "gateway_id": "g", "endpoint": "ipc:///x", "pid": 0},
        {"type": "GatewayHello", "gateway_id": "g", "endpoint": "ipc:///x", "pid": 2**40},
        {"type": "GatewayHello", "gateway_id": "g", "endpoint": "ipc:///" + "x" * 200, "pid": 1},
        {"type": "BindThread", "gateway_id": "g", "thread_id": "t", "channel_id": POST},
        {"type": "BindThread", "gateway_id": "g", "thread_id": POST, "channel_id": ""},
        {"type": "Delivered", "gateway_id": "g", "post_id": POST, "reply_ids": ["r"]},
        {"type": "GatewayBye", "gateway_id": "x" * 1000},
    ],
)
def test_other_hostile_messages_to_the_worker_are_refused(message: dict[str, object]) -> None:
    """Hellos, bindings, deliveries and byes with values out of bounds do not decode."""
    with pytest.raises(DecodeError):
        worker_codec.decode(msgspec.msgpack.encode(message))


@pytest.mark.parametrize(
    ("codec", "message"),
    [
        (gateway_codec, {"type": "Answer", "post_id": POST, "create_at": -5, "text": "x"}),
        (gateway_codec, {"type": "Answer", "post_id": POST, "create_at": 1, "text": "x",
                         "attempt": -1}),
        (gateway_codec, {"type": "Progress", "post_id": POST, "elapsed_s": float("nan")}),
        (gateway_codec, {"type": "Welcome", "worker_pid": 1, "incarnation": "i",
                         "thread_id": "x", "channel_id": "", "bind_token": "b",
                         "catch_up_from": 0}),
        (supervisor_codec, {"type": "WorkerHeartbeat", "pid": 1, "claude_pid": None,
                            "session_id": None, "queue": -1, "thread_id": ""}),
        (supervisor_codec, {"type": "GatewayHeartbeat", "pid": -3, "gateway_id": "g",
                            "connected": True}),
    ],
)  # fmt: skip
def test_hostile_messages_to_gateways_and_supervisor_are_refused(
    codec: protocol.Codec[object], message: dict[str, object]
) -> None:
    """The worker→gateway and child→supervisor directions are bounded too."""
    with pytest.raises(DecodeError):
        codec.decode(msgspec.msgpack.encode(message))


_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats()
    | st.text(max_size=40)
    | st.sampled_from([POST, USER, "g1", "ipc:///tmp/x", "tcp://10.0.0.1:1"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
_FIELDS = ["gateway_id", "post_id", "create_at", "user_id", "text", "username", "endpoint",
           "pid", "thread_id", "channel_id", "bind_token", "configured", "reply_ids"]  # fmt: skip
_TYPES = ["GatewayHello", "GatewayBye", "BindThread", "Prompt", "Delivered", "Accepted"]


@given(
    kind=st.sampled_from(_TYPES),
    fields=st.dictionaries(st.sampled_from(_FIELDS), _values, max_size=len(_FIELDS)),
)
def test_hostile_maps_decode_within_bounds_or_raise_our_error(
    kind: str, fields: dict[str, object]
) -> None:
    """Any map a peer can send decodes to an in-bounds message or raises DecodeError."""
    frame = msgspec.msgpack.encode({"type": kind, **fields})
    try:
        message = worker_codec.decode(frame)
    except DecodeError:
        return
    if isinstance(message, Prompt):
        assert 0 <= message.create_at <= MILLIS_MAX
        assert len(message.post_id) == len(message.user_id) == 26
        assert len(message.text) <= MAX_PROMPT_CHARS
    if isinstance(message, GatewayHello):
        assert 1 <= message.pid <= 2**22


def test_a_frame_nested_too_deep_is_a_decode_error_not_a_crash() -> None:
    """An unknown field nested 100 000 deep (msgspec raises RecursionError while skipping
    it) is our DecodeError, for every direction."""
    deep = b"\x91" * 100_000 + b"\x90"  # [[[ ... [] ... ]]] in msgpack, 100 KB
    frame = b"\x82\xa4type\xa8Accepted\xa4junk" + deep
    for codec in (worker_codec, gateway_codec, supervisor_codec):
        with pytest.raises(DecodeError):
            codec.decode(frame)
