"""The gateway's error tree: aiohttp and zmq exceptions are translated into these at the
boundary (mattermost.py, bus.py), so the service reasons about categories, not libraries;
and how long each category waits before a retry (``retry_delay``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from protocol.backoff import Backoff

__all__ = [
    "AuthError",
    "BadRequestError",
    "BusError",
    "FatalError",
    "ForbiddenError",
    "GatewayError",
    "MattermostError",
    "NotFoundError",
    "PendingPostError",
    "RateLimitedError",
    "ServerError",
    "TransportError",
    "WebSocketClosedError",
    "endpoint_missing",
    "retry_delay",
]


class GatewayError(Exception):
    """Root of every error raised by :mod:`gateway`."""


class FatalError(GatewayError):
    """Something only an operator can fix (a configured thread that does not exist)."""


class BusError(GatewayError):
    """The ZeroMQ side could not be set up (bad endpoint, address in use)."""


class MattermostError(GatewayError):
    """Mattermost answered with an error, or could not be reached.

    ``status`` is the HTTP status (0 when no response came back) and ``error_id`` the
    ``id`` field of Mattermost's error body (empty when the body was not JSON).
    """

    def __init__(self, message: str, *, status: int = 0, error_id: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.error_id = error_id


class TransportError(MattermostError):
    """No usable response: connection refused or reset, a timeout, a malformed body.

    The request may or may not have taken effect, so retries must be idempotent.
    """


class ServerError(MattermostError):
    """A 5xx: the server broke; retry with backoff."""


class PendingPostError(ServerError):
    """500 ``api.post.deduplicate_create_post.pending``: the same ``pending_post_id`` is
    still being created; retry shortly and the server returns that post."""


class RateLimitedError(MattermostError):
    """A 429; ``retry_after`` is the wait in seconds the server asked for."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message, status=429)
        self.retry_after = retry_after


class AuthError(MattermostError):
    """A 401: the token is wrong, revoked or expired. Fatal: retrying cannot fix it."""


class ForbiddenError(MattermostError):
    """A 403: typically the bot is not a member of the channel."""


class NotFoundError(MattermostError):
    """A 404: the post, channel or user does not exist (or is not visible to the bot)."""


class BadRequestError(MattermostError):
    """Another 4xx: the request itself is wrong; retrying the same request cannot help."""


class WebSocketClosedError(MattermostError):
    """The WebSocket closed or broke; the caller reconnects."""


PENDING_RETRY_S = 0.25  # the duplicate create is still in flight on the server
FORBIDDEN_RETRY_S = 10.0  # the bot is not a member: an operator must add it; poll slowly


def retry_delay(error: MattermostError, backoff: Backoff) -> float | None:
    """Seconds to wait before retrying after ``error``, or None when retrying is pointless."""
    if isinstance(error, AuthError):
        return None
    if isinstance(error, RateLimitedError):
        return max(0.05, error.retry_after)
    if isinstance(error, PendingPostError):
        return PENDING_RETRY_S
    if isinstance(error, ServerError | TransportError):
        return backoff.next()
    if isinstance(error, ForbiddenError):
        return FORBIDDEN_RETRY_S
    return None


def endpoint_missing(error: MattermostError, *, objects: tuple[str, ...]) -> bool:
    """True when ``error`` says the server has no such route (a 405, or a 404 whose error id
    does not start with one of ``objects``: those name a missing user, post…, not a route)."""
    if error.status == 405 and isinstance(error, BadRequestError):
        return True
    return isinstance(error, NotFoundError) and not error.error_id.startswith(objects)
