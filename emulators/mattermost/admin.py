"""/_admin/: fault injection and acting-as-users over HTTP, for the emulator run as a process.

No authentication: the server only listens on loopback, and these routes also refuse any
non-loopback peer.
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .errors import AppError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from .server import MattermostEmulator

    AdminHandler = Callable[[web.Request], Awaitable[web.Response]]

_LOOPBACK = {"127.0.0.1", "::1"}


class AdminInputError(Exception):
    """A malformed admin request: answered 400 with the reason."""


def _reply(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        text=json.dumps(body, ensure_ascii=False), status=status, content_type="application/json"
    )


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise AdminInputError("body is not JSON") from exc
    if not isinstance(body, dict):
        raise AdminInputError("body must be a JSON object")
    return body


def _get(
    body: dict[str, Any], name: str, kind: type | tuple[type, ...], default: Any = None
) -> Any:
    value = body.get(name, default)
    if value is None and default is None:
        raise AdminInputError(f"missing field {name!r}")
    if isinstance(value, bool) and kind in (int, float, (int, float)):
        raise AdminInputError(f"field {name!r} must be a number")
    if not isinstance(value, kind):
        raise AdminInputError(f"field {name!r} has the wrong type")
    return value


def admin_routes(mm: MattermostEmulator) -> list[web.RouteDef]:
    number = (int, float)

    def guarded(handler: AdminHandler) -> AdminHandler:
        async def wrapper(request: web.Request) -> web.Response:
            if request.remote not in _LOOPBACK:
                return _reply({"error": "admin API is loopback only"}, 403)
            try:
                return await handler(request)
            except AdminInputError as exc:
                return _reply({"error": str(exc)}, 400)
            except KeyError as exc:
                return _reply({"error": str(exc.args[0])}, 404)
            except ValueError as exc:
                return _reply({"error": str(exc)}, 400)
            except AppError as exc:
                return _reply(exc.to_json(None), exc.status_code)

        return wrapper

    async def seed(request: web.Request) -> web.Response:
        return _reply(mm.seed_info())

    async def stats(request: web.Request) -> web.Response:
        return _reply(mm.statistics().to_json())

    async def timings(request: web.Request) -> web.Response:
        return _reply([t.to_json() for t in mm.post_timings.values()])

    async def posts(request: web.Request) -> web.Response:
        q = request.query
        rows = mm.posts(
            root_id=q.get("root_id") or None,
            channel_id=q.get("channel_id") or None,
            include_deleted=q.get("include_deleted") == "true",
        )
        for row in rows:
            row["deleted"] = row["delete_at"] > 0
        return _reply(rows)

    async def post(request: web.Request) -> web.Response:
        body = await _body(request)
        created = await mm.post_as(
            _get(body, "username", str),
            _get(body, "message", str),
            root_id=_get(body, "root_id", str, ""),
            channel_id=body.get("channel_id") or None,
            props=_get(body, "props", dict, {}),
            file_ids=_get(body, "file_ids", list, []),
        )
        return _reply(created, 201)

    async def upload(request: web.Request) -> web.Response:
        body = await _body(request)
        try:
            data = base64.b64decode(_get(body, "data_base64", str), validate=True)
        except (ValueError, TypeError) as exc:
            raise AdminInputError("data_base64 is not base64") from exc
        info = mm.upload_as(
            _get(body, "username", str),
            _get(body, "name", str),
            data,
            channel_id=body.get("channel_id") or None,
        )
        return _reply(info, 201)

    async def max_file_size(request: web.Request) -> web.Response:
        body = await _body(request)
        mm.set_max_file_size(int(_get(body, "bytes", number)))
        return _reply({"status": "OK"})

    async def patch(request: web.Request) -> web.Response:
        body = await _body(request)
        user, post_id = _get(body, "username", str), _get(body, "post_id", str)
        return _reply(await mm.patch_as(user, post_id, _get(body, "message", str)))

    async def delete(request: web.Request) -> web.Response:
        body = await _body(request)
        await mm.delete_as(_get(body, "username", str), _get(body, "post_id", str))
        return _reply({"status": "OK"})

    async def drop_sockets(request: web.Request) -> web.Response:
        return _reply({"dropped": mm.drop_sockets()})

    async def restart_sockets(request: web.Request) -> web.Response:
        mm.restart_sockets()
        return _reply({"status": "OK"})

    async def refuse_sockets(request: web.Request) -> web.Response:
        mm.refuse_sockets(float(_get(await _body(request), "seconds", number)))
        return _reply({"status": "OK"})

    async def fail_posts(request: web.Request) -> web.Response:
        body = await _body(request)
        mm.fail_posts(
            _get(body, "n", int),
            status=_get(body, "status", int, 500),
            retry_after=float(_get(body, "retry_after", number, 1)),
            after_create=_get(body, "after_create", bool, False),
        )
        return _reply({"status": "OK"})

    async def latency(request: web.Request) -> web.Response:
        mm.set_latency(float(_get(await _body(request), "seconds", number)))
        return _reply({"status": "OK"})

    async def garbage_frame(request: web.Request) -> web.Response:
        return _reply({"sent": await mm.send_garbage_frame()})

    async def rate_limit(request: web.Request) -> web.Response:
        body = await _body(request)
        mm.set_rate_limit(
            _get(body, "enabled", bool),
            per_sec=float(_get(body, "per_sec", number, 10)),
            burst=_get(body, "burst", int, 100),
        )
        return _reply({"status": "OK"})

    gets = {"seed": seed, "stats": stats, "timings": timings, "posts": posts}
    posts_ = {
        "post": post,
        "patch": patch,
        "delete": delete,
        "drop_sockets": drop_sockets,
        "restart_sockets": restart_sockets,
        "refuse_sockets": refuse_sockets,
        "fail_posts": fail_posts,
        "latency": latency,
        "garbage_frame": garbage_frame,
        "rate_limit": rate_limit,
        "upload": upload,
        "max_file_size": max_file_size,
    }
    return [web.get(f"/_admin/{name}", guarded(h)) for name, h in gets.items()] + [
        web.post(f"/_admin/{name}", guarded(h)) for name, h in posts_.items()
    ]
