"""The demo web app: a small page at `/` that shows the channel live over the emulator's own
REST and WebSocket API and posts as a chosen seeded user.

Plain files in `web/` (no build step, nothing fetched at run time). The page learns the
users' tokens from `GET /_web/session`, which, like the admin API, answers loopback peers
only: those tokens exist only in the emulator and in the page it serves.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from .server import MattermostEmulator

WEB_DIR = Path(__file__).with_name("web")
_LOOPBACK = {"127.0.0.1", "::1"}
_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}
# The page runs only our own files: no inline script, no other origin.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
DEMO_USERS = ("alice", "bob", "mallory")


def web_routes(mm: MattermostEmulator) -> list[web.RouteDef]:
    def static(name: str) -> web.Response:
        path = WEB_DIR / name
        response = web.Response(body=path.read_bytes(), content_type=_TYPES[path.suffix])
        response.headers["Content-Security-Policy"] = _CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "no-store"
        return response

    async def index(request: web.Request) -> web.Response:
        return static("index.html")

    async def asset(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in {p.name for p in WEB_DIR.iterdir()} or Path(name).suffix not in _TYPES:
            raise web.HTTPNotFound()
        return static(name)

    async def session(request: web.Request) -> web.Response:
        if request.remote not in _LOOPBACK:
            return web.json_response({"error": "the demo page is loopback only"}, status=403)
        seed = mm.seed_info()

        def user(name: str) -> dict[str, Any]:
            u = seed["users"][name]
            return {"id": u["id"], "username": name, "token": u["token"]}

        body = {
            "channel": seed["channel"],
            "team": seed["team"],
            "bot": {"id": seed["bot"]["id"], "username": seed["bot"]["username"]},
            "users": [user(name) for name in DEMO_USERS if name in seed["users"]],
            # The page's own socket reads the channel as a member who sees every event.
            "viewer": user(DEMO_USERS[0]),
        }
        response = web.Response(text=json.dumps(body), content_type="application/json")
        response.headers["Cache-Control"] = "no-store"
        return response

    return [
        web.get("/", index),
        web.get("/_web/session", session),
        web.get("/_web/{name}", asset),
    ]
