"""The wire layer shared by every mmclaude process: messages, codec, endpoints, sockets, logs.

It imports nothing else of ours; every other package may import it.
"""

from protocol import curve
from protocol.codec import Codec, encode, gateway_codec, supervisor_codec, worker_codec
from protocol.endpoints import (
    IPC_PATH_MAX,
    check_endpoint,
    gateway_endpoint,
    run_dir,
    supervisor_endpoint,
    worker_endpoint,
)
from protocol.errors import DecodeError, EndpointError, ProtocolError, StateDirError
from protocol.logs import LOG_FORMATS, LOG_LEVELS, REDACTED, Redactor, setup_logging
from protocol.messages import (
    EMPTY_ANSWER,
    PROTOCOL_VERSION,
    Accepted,
    Answer,
    ApprovalShow,
    ApprovalShown,
    BindThread,
    Command,
    Decision,
    Delivered,
    GatewayBye,
    GatewayHeartbeat,
    GatewayHello,
    Progress,
    Prompt,
    Role,
    ToGateway,
    ToSupervisor,
    ToWorker,
    Welcome,
    WorkerHeartbeat,
)
from protocol.sockets import Receiver, Sender, context
from protocol.statedir import prepare_run_dir, prepare_state_dir, private_dir

__all__ = [
    "EMPTY_ANSWER",
    "IPC_PATH_MAX",
    "LOG_FORMATS",
    "LOG_LEVELS",
    "PROTOCOL_VERSION",
    "REDACTED",
    "Accepted",
    "Answer",
    "ApprovalShow",
    "ApprovalShown",
    "BindThread",
    "Codec",
    "Command",
    "Decision",
    "DecodeError",
    "Delivered",
    "EndpointError",
    "GatewayBye",
    "GatewayHeartbeat",
    "GatewayHello",
    "Progress",
    "Prompt",
    "ProtocolError",
    "Receiver",
    "Redactor",
    "Role",
    "Sender",
    "StateDirError",
    "ToGateway",
    "ToSupervisor",
    "ToWorker",
    "Welcome",
    "WorkerHeartbeat",
    "check_endpoint",
    "context",
    "curve",
    "encode",
    "gateway_codec",
    "gateway_endpoint",
    "prepare_run_dir",
    "prepare_state_dir",
    "private_dir",
    "run_dir",
    "setup_logging",
    "supervisor_codec",
    "supervisor_endpoint",
    "worker_codec",
    "worker_endpoint",
]
