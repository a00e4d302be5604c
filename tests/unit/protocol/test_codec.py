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

text = st.text(max_size=200)
ints = st.integers(min_value=-(2**63), max_value=2**63 - 1)
blobs = st.binary(max_size=64)
attachments = st.lists(
    st.builds(Attachment, file_id=text, name=text, size=ints, data=blobs, skipped=text),
    max_size=3,
).map(tuple)

TO_WORKER = st.one_of(
    st.builds(GatewayHello, gateway_id=text, endpoint=text, pid=ints, protocol_version=ints),
    st.builds(GatewayBye, gateway_id=text),
    st.builds(
        BindThread,
        gateway_id=text,
        thread_id=text,
        channel_id=text,
        bind_token=text,
        configured=st.booleans(),
    ),
    st.builds(
        Prompt,
        gateway_id=text,
        post_id=text,
        create_at=ints,
        user_id=text,
        text=text,
        username=text,
        attachments=attachments,
    ),
    st.builds(
        FileRequest,
        gateway_id=text,
        post_id=text,
        create_at=ints,
        user_id=text,
        path=text,
        username=text,
    ),
    st.builds(Delivered, gateway_id=text, post_id=text, reply_ids=st.tuples(text) | st.tuples()),
)
TO_GATEWAY = st.one_of(
    st.builds(
        Welcome,
        worker_pid=ints,
        incarnation=text,
        thread_id=text,
        channel_id=text,
        bind_token=text,
        catch_up_from=ints,
        protocol_version=ints,
    ),
    st.builds(Accepted, post_id=text, first=st.booleans()),
    st.builds(
        Answer,
        post_id=text,
        create_at=ints,
        text=text,
        is_error=st.booleans(),
        attempt=ints,
        files=st.lists(st.builds(OutFile, name=text, data=blobs), max_size=2).map(tuple),
        activity=text,
    ),
    st.builds(Progress, post_id=text, elapsed_s=st.floats(allow_nan=False)),
    st.builds(
        Activity,
        post_id=text,
        create_at=ints,
        text=text,
        elapsed_s=st.floats(allow_nan=False),
        seq=ints,
    ),
)
TO_SUPERVISOR = st.one_of(
    st.builds(
        WorkerHeartbeat,
        pid=ints,
        claude_pid=st.none() | ints,
        session_id=st.none() | text,
        queue=ints,
        thread_id=text,
        claude_restarts=ints,
        state=text,
    ),
    st.builds(GatewayHeartbeat, pid=ints, gateway_id=text, connected=st.booleans(), thread_id=text),
)


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
            "post_id": "p",
            "create_at": "soon",
            "user_id": "u",
            "text": "t",
        }
    )
    with pytest.raises(DecodeError, match=r"\$\.create_at"):
        worker_codec.decode(frame)


def test_wrong_direction_is_refused() -> None:
    """A worker→gateway message arriving on the worker's inbox is a decode error, not a crash."""
    with pytest.raises(DecodeError, match="Invalid value 'Accepted'"):
        worker_codec.decode(encode(Accepted(post_id="p")))


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    """A newer peer's extra field does not break an older decoder (schema evolution)."""
    frame = msgspec.msgpack.encode(
        {"type": "Accepted", "post_id": "p", "first": True, "brand_new": [1, 2]}
    )
    assert gateway_codec.decode(frame) == Accepted(post_id="p", first=True)


def test_messages_are_frozen() -> None:
    """Wire messages cannot be mutated after construction."""
    message = Accepted(post_id="p")
    with pytest.raises(AttributeError):
        message.post_id = "q"  # type: ignore[misc]


def test_hellos_carry_the_protocol_version() -> None:
    """Both hellos carry PROTOCOL_VERSION by default."""
    hello = GatewayHello(gateway_id="g", endpoint="ipc:///tmp/x", pid=1)
    welcome = Welcome(
        worker_pid=1,
        incarnation="i",
        thread_id="",
        channel_id="",
        bind_token="b",
        catch_up_from=0,
    )
    assert hello.protocol_version == welcome.protocol_version == protocol.PROTOCOL_VERSION
