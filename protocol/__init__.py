"""The wire layer shared by every mmclaude process: messages, codec, endpoints, sockets, logs.

It imports nothing else of ours; every other package may import it.
"""

from protocol.codec import Codec, encode, gateway_codec, supervisor_codec, worker_codec
from protocol.endpoints import (
    IPC_PATH_MAX,
    check_endpoint,
    gateway_endpoint,
    run_dir,
    supervisor_endpoint,
    worker_endpoint,
)
from protocol.errors import DecodeError, EndpointError, ProtocolError
from protocol.logs import LOG_FORMATS, LOG_LEVELS, REDACTED, Redactor, setup_logging
from protocol.messages import (
    PROTOCOL_VERSION,
    Accepted,
    Activity,
    Answer,
    Attachment,
    BindThread,
    Delivered,
    FileRequest,
    GatewayBye,
    GatewayHeartbeat,
    GatewayHello,
    OutFile,
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

__all__ = [
    "IPC_PATH_MAX",
    "LOG_FORMATS",
    "LOG_LEVELS",
    "PROTOCOL_VERSION",
    "REDACTED",
    "Accepted",
    "Activity",
    "Answer",
    "Attachment",
    "BindThread",
    "Codec",
    "DecodeError",
    "Delivered",
    "EndpointError",
    "FileRequest",
    "GatewayBye",
    "GatewayHeartbeat",
    "GatewayHello",
    "OutFile",
    "Progress",
    "Prompt",
    "ProtocolError",
    "Receiver",
    "Redactor",
    "Role",
    "Sender",
    "ToGateway",
    "ToSupervisor",
    "ToWorker",
    "Welcome",
    "WorkerHeartbeat",
    "check_endpoint",
    "context",
    "encode",
    "gateway_codec",
    "gateway_endpoint",
    "run_dir",
    "setup_logging",
    "supervisor_codec",
    "supervisor_endpoint",
    "worker_codec",
    "worker_endpoint",
]
