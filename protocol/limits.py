"""Value constraints of the wire messages, checked by the decoder (msgspec ``Meta``).

Every frame comes from a peer that may be hostile or broken (a tcp inbox, a garbage writer on
an ipc socket): a value out of these bounds makes the whole frame undecodable, so the receiver
drops it with one log line (``protocol.Codec``) instead of failing later on it (a ``create_at``
of 2**64-1 used to raise ``OverflowError`` in the journal).
"""

from __future__ import annotations

from typing import Annotated

import msgspec

__all__ = [
    "COUNT_MAX",
    "MAX_ANSWER_CHARS",
    "MAX_PROMPT_CHARS",
    "MILLIS_MAX",
    "AnswerText",
    "Count",
    "Endpoint",
    "GatewayId",
    "MattermostId",
    "MaybeMattermostId",
    "Millis",
    "Pid",
    "PromptText",
    "Seconds",
    "ShortText",
]

# Mattermost ids (model.IsValidId): 26 characters of lowercase base32-ish alphanumerics.
MattermostId = Annotated[str, msgspec.Meta(pattern="^[a-z0-9]{26}$")]
# The same, or empty (no thread bound yet).
MaybeMattermostId = Annotated[str, msgspec.Meta(pattern="^([a-z0-9]{26})?$")]
# protocol.endpoints.gateway_endpoint's rule for a gateway id.
GatewayId = Annotated[str, msgspec.Meta(pattern="^[A-Za-z0-9_.-]{1,40}$")]
# ipc:///absolute/path (at most 107 bytes of path) or tcp://host:port; check_endpoint decides
# the rest when the worker connects.
Endpoint = Annotated[
    str, msgspec.Meta(max_length=120, pattern="^(ipc:///[^\\x00]+|tcp://[A-Za-z0-9.:\\[\\]*-]+)$")
]
# Unix milliseconds: 0 … 2**53 (exact in a float, far beyond any real date, inside SQLite's
# int64).
MILLIS_MAX = 2**53
Millis = Annotated[int, msgspec.Meta(ge=0, le=MILLIS_MAX)]
# Linux pid_max is at most 2**22.
Pid = Annotated[int, msgspec.Meta(ge=1, le=2**22)]
# Counters (queue lengths, attempts, restarts, protocol versions).
COUNT_MAX = 2**31 - 1
Count = Annotated[int, msgspec.Meta(ge=0, le=COUNT_MAX)]
Seconds = Annotated[float, msgspec.Meta(ge=0, le=1e9)]
# Mattermost refuses posts over 65535 characters (its hard MaxPostSize); a prompt is one post's
# text, with room for what the gateway adds around it.
MAX_PROMPT_CHARS = 262_144
PromptText = Annotated[str, msgspec.Meta(max_length=MAX_PROMPT_CHARS)]
# An answer is split into posts by the gateway. No tighter than the 64 MiB frame limit
# (protocol.sockets.MAX_FRAME): a bound the worker's answer could exceed would make the gateway
# drop it on every re-send, and the answer would never be delivered.
MAX_ANSWER_CHARS = 64 * 1024 * 1024
AnswerText = Annotated[str, msgspec.Meta(max_length=MAX_ANSWER_CHARS)]
# Names, tokens, incarnations, session ids, states.
ShortText = Annotated[str, msgspec.Meta(max_length=256)]
