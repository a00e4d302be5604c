"""REST v4 routes and the middleware that gives every /api response its Mattermost framing:
X-Request-Id, AppError bodies, latency and rate-limit faults."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import TYPE_CHECKING, Any

from aiohttp import BodyPartReader, web

from .auth import REQUEST_ID, csrf_refused, request_token
from .core import RateLimitedError
from .errors import AppError, bad_body_param, bad_url_param, forbidden
from .faults import ceil_seconds
from .ids import is_valid_id
from .store import MAX_PER_PAGE, ChannelPostsQuery, PostPatch, ThreadQuery
from .websocket import publish_typing

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from aiohttp.typedefs import Middleware

    from .core import Core
    from .ids import IdGenerator
    from .model import User

    Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

log = logging.getLogger(__name__)
VERSION_ID = "10.11.0.0.emulator.false"
_SURROGATE_RE = re.compile(r"[\ud800-\udfff]")


def _clean(value: Any) -> Any:
    """Replace lone surrogates with U+FFFD, as Go's JSON decoder does, so echoes encode."""
    if isinstance(value, str):
        return _SURROGATE_RE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    return value


async def read_json(request: web.Request, name: str) -> Any:
    try:
        return _clean(json.loads(await request.read()))
    except ValueError as exc:
        raise bad_body_param(name) from exc


def json_response(body: Any, status: int = 200) -> web.Response:
    # Exactly `application/json`, as the server sets it: @mattermost/client's Client4 parses
    # a body as JSON only on that exact Content-Type (aiohttp's text= would add a charset).
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    return web.Response(body=text.encode(), status=status, content_type="application/json")


def _int_param(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise bad_url_param(name) from exc
    if value < 0:
        raise bad_url_param(name)
    return value


def make_middleware(core: Core, ids: IdGenerator) -> Middleware:
    is_ws = re.compile(r"/api/v4/websocket/?").fullmatch

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/api/") or is_ws(request.path) is not None:
            return await serve(request, handler)
        core.rest_in_flight += 1  # tests wait for it to drop to 0 (requests still landing)
        try:
            return await serve(request, handler)
        finally:
            core.rest_in_flight -= 1

    async def serve(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/api/"):
            return await handler(request)
        request_id = ids.new_id()
        request[REQUEST_ID] = request_id
        websocket = is_ws(request.path) is not None
        limiter = core.faults.rate_limiter
        decision = None
        try:
            if not websocket:
                core.counters.rest_requests += 1
                if core.faults.latency_s > 0:
                    await asyncio.sleep(core.faults.latency_s)
            if limiter is not None:
                key = request.headers.get("Authorization") or str(request.remote)
                decision = limiter.check(key)
                if decision.limited:
                    raise RateLimitedError(
                        decision.retry_after_s, decision.limit, 0, decision.reset_after_s
                    )
            resource = request.match_info.route.resource
            route = resource.canonical if resource is not None else ""
            failing = core.faults.take_route_failure(request.method, route)
            if failing is not None:
                raise AppError(f"api.context.{failing}.app_error", failing)
            response = await handler(request)
        except AppError as exc:
            response = json_response(exc.to_json(request_id), exc.status_code)
        except RateLimitedError as exc:
            core.counters.rate_limited += 1
            response = web.Response(text="limit exceeded\n", status=429)
            response.headers["Retry-After"] = str(ceil_seconds(exc.retry_after_s))
            response.headers["X-Ratelimit-Limit"] = str(exc.limit)
            response.headers["X-Ratelimit-Remaining"] = str(exc.remaining)
            response.headers["X-Ratelimit-Reset"] = str(ceil_seconds(exc.reset_s))
            decision = None
        except web.HTTPException as exc:
            error_id = {
                404: "api.context.404.app_error",
                405: "api.context.405.app_error",
                413: "api.context.request_body_too_large.app_error",
            }.get(exc.status, "api.context.500.app_error")
            response = json_response(AppError(error_id, exc.status).to_json(request_id), exc.status)
        except Exception:
            # Bad input must never take the server down: log and answer a generic 500.
            log.exception("request %s %s failed", request.method, request.path)
            error = AppError("api.context.500.app_error", 500)
            response = json_response(error.to_json(request_id), 500)
        if response.prepared:
            return response  # the upgraded socket already sent its headers
        response.headers["X-Request-Id"] = request_id
        response.headers["X-Version-Id"] = VERSION_ID
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        if request.method == "GET":
            response.headers["Expires"] = "0"
        if decision is not None:
            response.headers["X-Ratelimit-Limit"] = str(decision.limit)
            response.headers["X-Ratelimit-Remaining"] = str(decision.remaining)
            response.headers["X-Ratelimit-Reset"] = str(ceil_seconds(decision.reset_after_s))
        return response

    return middleware


class RestApi:
    """Handlers for the documented REST v4 subset."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.store = core.store

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/api/v4/system/ping", self.system_ping),
            web.get("/api/v4/users/me", self.get_user),
            web.post("/api/v4/users/usernames", self.users_by_usernames),
            web.get("/api/v4/users/username/{username}", self.user_by_username),
            web.get("/api/v4/users/{user_id}", self.get_user),
            web.post("/api/v4/users/{user_id}/typing", self.typing),
            web.delete(
                "/api/v4/users/{user_id}/posts/{post_id}/reactions/{emoji_name}",
                self.delete_reaction,
            ),
            web.get("/api/v4/channels/{channel_id}", self.get_channel),
            web.get("/api/v4/channels/{channel_id}/posts", self.channel_posts),
            web.post("/api/v4/posts", self.create_post),
            web.get("/api/v4/posts/{post_id}", self.get_post),
            web.delete("/api/v4/posts/{post_id}", self.delete_post),
            web.get("/api/v4/posts/{post_id}/thread", self.thread),
            web.put("/api/v4/posts/{post_id}/patch", self.patch_post),
            web.get("/api/v4/posts/{post_id}/reactions", self.list_reactions),
            web.post("/api/v4/reactions", self.add_reaction),
            web.post("/api/v4/files", self.upload_files),
            web.get("/api/v4/files/{file_id}", self.get_file),
            web.get("/api/v4/files/{file_id}/info", self.get_file_info),
        ]

    def session_user(self, request: web.Request) -> User:
        token = request_token(request)
        user = self.store.user_by_token(token) if token else None
        if user is None or csrf_refused(request):
            raise AppError("api.context.session_expired.app_error", 401)
        return user

    def _user_param(self, request: web.Request, me: User) -> str:
        user_id = request.match_info.get("user_id", "me")
        return me.id if user_id == "me" else user_id

    async def system_ping(self, request: web.Request) -> web.Response:
        return json_response({"status": "OK"})

    async def get_user(self, request: web.Request) -> web.Response:
        me = self.session_user(request)
        user = self.store.get_user(self._user_param(request, me))
        return json_response(user.to_json(as_self=user.id == me.id))

    async def users_by_usernames(self, request: web.Request) -> web.Response:
        me = self.session_user(request)
        names = await read_json(request, "usernames")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise bad_body_param("usernames")
        found = [self.store.user_by_name(n) for n in names]
        return json_response([u.to_json(as_self=u.id == me.id) for u in found if u is not None])

    async def user_by_username(self, request: web.Request) -> web.Response:
        me = self.session_user(request)
        user = self.store.user_by_name(request.match_info["username"])
        if user is None:
            raise AppError("app.user.get_by_username.app_error", 404)
        return json_response(user.to_json(as_self=user.id == me.id))

    async def typing(self, request: web.Request) -> web.Response:
        me = self.session_user(request)
        if self._user_param(request, me) != me.id:
            raise forbidden()  # typing as someone else needs manage_system
        body = await read_json(request, "typing")
        if not isinstance(body, dict):
            raise bad_body_param("typing")
        channel_id, parent_id = body.get("channel_id", ""), body.get("parent_id", "")
        if not is_valid_id(channel_id):
            raise AppError("api.context.invalid_param.app_error", 400, name="channel_id")
        if not isinstance(parent_id, str):
            raise AppError("api.context.invalid_param.app_error", 400, name="parent_id")
        self.store.require_member(me, channel_id)
        publish_typing(self.core.hub, me.id, channel_id, parent_id)
        return json_response({"status": "OK"})

    async def get_channel(self, request: web.Request) -> web.Response:
        me = self.session_user(request)
        return json_response(self.store.get_channel(me, request.match_info["channel_id"]).to_json())

    async def channel_posts(self, request: web.Request) -> web.Response:
        me = self.session_user(request)
        if request.query.get("include_deleted") == "true":
            raise forbidden()  # needs system admin
        since = request.query.get("since")
        query = ChannelPostsQuery(
            since=_int_param(request, "since", 0) if since is not None else None,
            page=_int_param(request, "page", 0),
            per_page=min(_int_param(request, "per_page", 60) or 60, MAX_PER_PAGE),
            before=request.query.get("before", ""),
            after=request.query.get("after", ""),
            skip_fetch_threads=request.query.get("skipFetchThreads") == "true",
        )
        channel_id = request.match_info["channel_id"]
        return json_response(self.store.channel_posts(me, channel_id, query))

    async def create_post(self, request: web.Request) -> web.Response:
        me = self.session_user(request)
        body = await read_json(request, "post")
        if not isinstance(body, dict):
            raise bad_body_param("post")
        set_online = request.query.get("set_online", "true") != "false"
        post = await self.core.create_post(me, body, set_online=set_online)
        return json_response(post, 201)

    async def get_post(self, request: web.Request) -> web.Response:
        me = self.session_user(request)
        post = self.store.get_post(me, request.match_info["post_id"])
        return json_response(self.store.render(post))

    async def delete_post(self, request: web.Request) -> web.Response:
        me = self.session_user(request)
        self.core.delete_post(me, request.match_info["post_id"])
        return json_response({"status": "OK"})

    async def thread(self, request: web.Request) -> web.Response:
        me = self.session_user(request)
        query = ThreadQuery(
            per_page=_int_param(request, "perPage", 0),
            from_create_at=_int_param(request, "fromCreateAt", 0),
            from_post=request.query.get("fromPost", ""),
            direction=request.query.get("direction", ""),
        )
        if query.per_page > MAX_PER_PAGE:
            raise bad_url_param("perPage")
        if query.direction not in ("", "up", "down"):
            raise bad_url_param("direction")
        if query.from_post and (not query.from_create_at or not is_valid_id(query.from_post)):
            raise bad_url_param("fromPost")
        if query.from_create_at and request.query.get("fromUpdateAt"):
            raise bad_url_param("fromUpdateAt")
        return json_response(self.store.thread(me, request.match_info["post_id"], query))

    async def patch_post(self, request: web.Request) -> web.Response:
        me = self.session_user(request)
        body = await read_json(request, "patch")
        if not isinstance(body, dict):
            raise bad_body_param("patch")
        patch = PostPatch(
            message=body.get("message"),
            is_pinned=body.get("is_pinned"),
            props=body.get("props"),
            file_ids=body.get("file_ids"),
        )
        if not (
            isinstance(patch.message, str | None)
            and isinstance(patch.is_pinned, bool | None)
            and isinstance(patch.props, dict | None)
            and isinstance(patch.file_ids, list | None)
        ):
            raise bad_body_param("patch")
        return json_response(self.core.patch_post(me, request.match_info["post_id"], patch))

    async def add_reaction(self, request: web.Request) -> web.Response:
        me = self.session_user(request)
        body = await read_json(request, "reaction")
        if not isinstance(body, dict):
            raise AppError("api.reaction.save_reaction.invalid.app_error", 400)
        return json_response(self.core.add_reaction(me, body))  # 200, although docs say 201

    async def delete_reaction(self, request: web.Request) -> web.Response:
        me = self.session_user(request)
        info = request.match_info
        user_id = self._user_param(request, me)
        self.core.remove_reaction(me, user_id, info["post_id"], info["emoji_name"])
        return json_response({"status": "OK"})

    async def list_reactions(self, request: web.Request) -> web.Response:
        me = self.session_user(request)
        return json_response(self.store.list_reactions(me, request.match_info["post_id"]))

    # --- files --------------------------------------------------------------------------

    async def _read_limited(self, read: Callable[[int], Awaitable[bytes]], limit: int) -> bytes:
        """Read a body part, answering 413 as soon as it grows past `limit` bytes."""
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = await read(65536)
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > limit:
                raise AppError("api.file.upload_file.too_large_detailed.app_error", 413)
            chunks.append(chunk)

    async def upload_files(self, request: web.Request) -> web.Response:
        """POST /files: multipart (channel_id, files, optional client_ids, in any order) or
        the body of one file with channel_id and filename as query parameters."""
        me = self.session_user(request)
        limit = self.store.max_file_size
        channel_id = request.query.get("channel_id", "")
        uploads: list[tuple[str, bytes]] = []
        client_ids: list[str] = []
        if request.content_type.startswith("multipart/"):
            try:
                reader = await request.multipart()
                async for part in reader:
                    if not isinstance(part, BodyPartReader):
                        continue
                    if part.name == "files":
                        data = await self._read_limited(part.read_chunk, limit)
                        uploads.append((part.filename or "", data))
                    elif part.name == "channel_id":
                        channel_id = (await part.text()).strip()
                    elif part.name == "client_ids":
                        client_ids.append((await part.text()).strip())
            except (ValueError, AssertionError, RuntimeError) as exc:
                raise bad_body_param("files") from exc
        else:
            filename = request.query.get("filename", "")
            if not filename:
                raise AppError("api.context.invalid_param.app_error", 400, name="filename")
            uploads.append((filename, await self._read_limited(request.content.read, limit)))
        if not channel_id:
            raise AppError("api.context.invalid_param.app_error", 400, name="channel_id")
        if not uploads:
            raise AppError("api.file.upload_file.incorrect_number_of_files.app_error", 400)
        if client_ids and len(client_ids) != len(uploads):
            raise AppError("api.file.upload_file.incorrect_number_of_files.app_error", 400)
        infos = [self.store.upload_file(me, channel_id, n, d).to_json() for n, d in uploads]
        return json_response({"file_infos": infos, "client_ids": client_ids}, 201)

    async def get_file(self, request: web.Request) -> web.Response:
        me = self.session_user(request)
        info = self.store.get_file(me, request.match_info["file_id"])
        inline = info.is_image and request.query.get("download", "") not in ("1", "true")
        disposition = "inline" if inline else "attachment"
        headers = {
            "Content-Disposition": f'{disposition};filename="{info.name}"',
            "Cache-Control": "max-age=2592000, private",
        }
        content_type = info.mime_type or "application/octet-stream"
        return web.Response(body=info.data, headers=headers, content_type=content_type)

    async def get_file_info(self, request: web.Request) -> web.Response:
        me = self.session_user(request)
        return json_response(self.store.get_file(me, request.match_info["file_id"]).to_json())
