"""Token extraction in the server's order (ParseAuthTokenFromRequest) and its failure modes."""

from __future__ import annotations

from aiohttp import web

from .errors import AppError

# Set by the middleware, so the WebSocket upgrade answer can carry the same X-Request-Id.
REQUEST_ID = web.RequestKey("request_id", str)


def request_token(request: web.Request) -> str | None:
    """Cookie MMAUTHTOKEN, then `Authorization: Bearer`/`Token`; None when absent.

    A token in the `access_token` query parameter is only valid for OAuth sessions; every
    token of this emulator is a bot/personal token, so that case is a 401.
    """
    cookie = request.cookies.get("MMAUTHTOKEN")
    if cookie:
        return cookie
    header = request.headers.get("Authorization", "")
    if len(header) > 6 and header[:6].upper() == "BEARER":
        return header[7:]
    if len(header) > 5 and header[:5].lower() == "token":
        return header[6:]
    if request.query.get("access_token"):
        raise AppError("api.context.token_provided.app_error", 401)
    return None


def csrf_refused(request: web.Request) -> bool:
    """The server's CSRF check: a session from the MMAUTHTOKEN cookie may change nothing
    (any method but GET) unless the request says `X-Requested-With: XMLHttpRequest` (what
    every Mattermost client sends; the emulator has no per-session MMCSRF token to match).
    Header tokens and the WebSocket upgrade (a trusted requester) are never checked."""
    return (
        request.method != "GET"
        and bool(request.cookies.get("MMAUTHTOKEN"))
        and request.headers.get("X-Requested-With") != "XMLHttpRequest"
    )
