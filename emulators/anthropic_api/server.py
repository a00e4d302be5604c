"""A fake Anthropic Messages API (aiohttp) that echoes, enough to run the real Claude Code offline.

`POST /v1/messages` answers `echo[N]: <last user text>`, N being the number of user and
assistant messages in the request, so a client that keeps its context makes N grow 1, 3, 5, ...
Keywords in the last text block of the last user message change the answer:

* `SLOW:s` (bare `SLOW` = 1 s): the text arrives in 5 deltas spread over s seconds.
* `HANG`: headers and `message_start` (streaming) or nothing (non-streaming), then silence
  until the client goes away. The real CLI does not time such a stream out.
* `ERR400`, `ERR401`, `ERR429`, `ERR500`, `ERR529`: that status with an Anthropic error body.
* `BASH:command` (to the end of the line): a `tool_use` block asking to run that command with
  the Bash tool (so the CLI asks for permission); `ASKUSER`: an `AskUserQuestion` tool_use
  ("Which colour?", options Red and Blue). When the last user message carries a
  `tool_result`, the turn ends with `tool_result[error]: <content>` or `tool_result: <content>`.

`POST /v1/messages/count_tokens` returns a chars/4 estimate; `/api/hello` (the CLI's
connectivity preflight, sent unless CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC is set) answers
200. Any other route is a 404 error JSON, recorded in `unknown` (and logged to stderr) so new
calls of a CLI upgrade show up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sys
import uuid
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

ERRORS = {
    400: "invalid_request_error",
    401: "authentication_error",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
_ERR = re.compile(r"\bERR(400|401|429|500|529)\b")
_SLOW = re.compile(r"\bSLOW(?::(\d+(?:\.\d*)?|\.\d+))?(?!\w)")
_HANG = re.compile(r"\bHANG\b")
_BASH = re.compile(r"\bBASH:(.+)")
_ASKUSER = re.compile(r"\bASKUSER\b")
QUESTION = {
    "questions": [
        {
            "question": "Which colour?",
            "header": "Colour",
            "options": [
                {"label": "Red", "description": "warm"},
                {"label": "Blue", "description": "cool"},
            ],
            "multiSelect": False,
        }
    ]
}
SLOW_DELTAS = 5
POLL_S = 0.05  # how often a hanging handler checks whether its client is gone


def user_texts(message: dict[str, Any]) -> list[str]:
    """A message's texts: the string content, or its text blocks."""
    content = message.get("content")
    if isinstance(content, str):
        return [content]
    texts = []
    for block in content if isinstance(content, list) else []:
        if isinstance(block, dict) and block.get("type") == "text":
            text = str(block.get("text", ""))
            # Context the CLI injects is not what the user typed; leave it out of the echo.
            if not text.startswith("<system-reminder>"):
                texts.append(text)
    return texts


def last_user_texts(body: dict[str, Any]) -> list[str]:
    """The text blocks of the request's last user message.

    The CLI merges consecutive user turns into one message: after an interrupted `HANG` the
    next request's last message holds "HANG", the interrupt marker and the new text as three
    blocks. Keywords therefore look at the last block only; the echo shows all of them.
    """
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            return user_texts(message)
    return []


def last_tool_result(body: dict[str, Any]) -> str | None:
    """``tool_result[error]: …`` for a tool_result in the last user message, else None."""
    for message in reversed(body.get("messages") or []):
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        for block in content if isinstance(content, list) else []:
            if isinstance(block, dict) and block.get("type") == "tool_result":
                inner = block.get("content")
                if isinstance(inner, list):
                    inner = " ".join(str(b.get("text", "")) for b in inner if isinstance(b, dict))
                tag = "tool_result[error]" if block.get("is_error") else "tool_result"
                return f"{tag}: {inner}"
        return None
    return None


def conversation_size(body: dict[str, Any]) -> int:
    """N of `echo[N]`: the request's user and assistant messages.

    CLI 2.1.330 also slips a `{"role": "system", "content": [], "output_config": ...}` entry into
    `messages`; it is not conversation, so it is not counted (the recorded 2.1.330 fixtures,
    made with a fake that counted it, show echo[2] on a first turn; this fake says echo[1]).
    """
    messages = body.get("messages") or []
    return sum(
        1 for m in messages if isinstance(m, dict) and m.get("role") in ("user", "assistant")
    )


def error_body(status: int) -> dict[str, Any]:
    return {
        "type": "error",
        "error": {"type": ERRORS.get(status, "api_error"), "message": f"fake {status}"},
        "request_id": f"req_{uuid.uuid4().hex[:24]}",
    }


def sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class FakeAnthropicApi:
    """The app's state: every request seen, so tests can assert on what the client sent."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []  # bodies of POST /v1/messages, in order
        self.log: list[str] = []  # "METHOD /path" of every request
        self.unknown: list[str] = []  # the ones answered 404
        self.url = ""
        self.closing = asyncio.Event()

    def __repr__(self) -> str:
        counts = f"requests={len(self.requests)} unknown={len(self.unknown)}"
        return f"<FakeAnthropicApi {self.url} {counts}>"

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._record], client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/messages", self.messages)
        app.router.add_post("/v1/messages/count_tokens", self.count_tokens)
        # The CLI's connectivity preflight (HEAD) when nonessential traffic is not disabled.
        app.router.add_route("*", "/api/hello", self.hello)
        app.router.add_route("*", "/{tail:.*}", self.not_found)
        return app

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.log.append(f"{request.method} {request.path}")
        response: web.StreamResponse = await handler(request)
        return response

    async def not_found(self, request: web.Request) -> web.Response:
        what = f"{request.method} {request.path_qs}"
        self.unknown.append(what)
        print(f"fake-anthropic-api: unknown request {what}", file=sys.stderr, flush=True)
        body = {
            "type": "error",
            "error": {"type": "not_found_error", "message": f"Not found: {what}"},
        }
        return web.json_response(body, status=404)

    async def hello(self, request: web.Request) -> web.Response:
        return web.json_response({"message": "hello"})

    async def count_tokens(self, request: web.Request) -> web.Response:
        body = await request.json()
        size = len(json.dumps(body.get("messages", []))) + len(json.dumps(body.get("system", "")))
        return web.json_response({"input_tokens": max(1, size // 4)})

    async def messages(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            return web.json_response(error_body(400), status=400)
        if not isinstance(body, dict):
            return web.json_response(error_body(400), status=400)
        self.requests.append(body)
        texts = last_user_texts(body)
        text = "\n | ".join(texts)  # how the recorded fixtures show merged user turns
        keys = texts[-1] if texts else ""
        err = _ERR.search(keys)
        if err:
            status = int(err.group(1))
            return web.json_response(error_body(status), status=status)
        answer = f"echo[{conversation_size(body)}]: {text}"
        tool: dict[str, Any] | None = None
        result = last_tool_result(body)
        if result is not None:
            answer = result
        elif bash := _BASH.search(keys):
            tool = {
                "name": "Bash",
                "input": {"command": bash.group(1).strip(), "description": "fake"},
            }
        elif _ASKUSER.search(keys):
            tool = {"name": "AskUserQuestion", "input": QUESTION}
        if tool is not None:
            tool = {"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:24]}", **tool}
        slow_match = _SLOW.search(keys)
        slow = (float(slow_match.group(1)) if slow_match.group(1) else 1.0) if slow_match else 0.0
        hang = bool(_HANG.search(keys))
        model = str(body.get("model") or "claude-fake")
        if body.get("stream"):
            if tool is not None:
                return await self._stream_tool(request, model, tool)
            return await self._stream(request, model, answer, slow, hang)
        if hang:
            await self._hang(request)
            return web.Response(status=503)  # nobody is listening any more
        await asyncio.sleep(slow)
        message = self._message(model, answer, done=True)
        if tool is not None:
            message.update(content=[tool], stop_reason="tool_use")
        return web.json_response(message)

    async def _stream_tool(
        self, request: web.Request, model: str, tool: dict[str, Any]
    ) -> web.StreamResponse:
        """One tool_use block, its input as one input_json_delta, stop_reason tool_use."""
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        start = {"type": "message_start", "message": self._message(model, "", False)}
        await response.write(sse("message_start", start))
        block = {"type": "tool_use", "id": tool["id"], "name": tool["name"], "input": {}}
        await response.write(
            sse(
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": block},
            )
        )
        delta = {"type": "input_json_delta", "partial_json": json.dumps(tool["input"])}
        await response.write(
            sse("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta})
        )
        await response.write(sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
        end = {"stop_reason": "tool_use", "stop_sequence": None}
        await response.write(
            sse(
                "message_delta",
                {"type": "message_delta", "delta": end, "usage": {"output_tokens": 20}},
            )
        )
        await response.write(sse("message_stop", {"type": "message_stop"}))
        await response.write_eof()
        return response

    def _message(self, model: str, text: str, done: bool) -> dict[str, Any]:
        return {
            "id": f"msg_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": text}] if done else [],
            "stop_reason": "end_turn" if done else None,
            "stop_sequence": None,
            "usage": {"input_tokens": 10, "output_tokens": max(1, len(text) // 4) if done else 1},
        }

    async def _hang(self, request: web.Request) -> None:
        """Stay silent until the client disconnects or the server closes."""
        while not self.closing.is_set():
            transport = request.transport
            if transport is None or transport.is_closing():
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.closing.wait(), POLL_S)

    async def _stream(
        self, request: web.Request, model: str, answer: str, slow: float, hang: bool
    ) -> web.StreamResponse:
        try:
            return await self._stream_text(request, model, answer, slow, hang)
        except ConnectionResetError:  # the client went away (an interrupted turn): normal
            return web.StreamResponse()

    async def _stream_text(
        self, request: web.Request, model: str, answer: str, slow: float, hang: bool
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "request-id": f"req_{uuid.uuid4().hex[:24]}",
            }
        )
        await response.prepare(request)
        await response.write(
            sse(
                "message_start",
                {"type": "message_start", "message": self._message(model, "", False)},
            )
        )
        if hang:
            await self._hang(request)
            return response
        block = {"type": "text", "text": ""}
        await response.write(
            sse(
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": block},
            )
        )
        pieces = SLOW_DELTAS if slow else 1
        step = -(-len(answer) // pieces) or 1
        for i in range(0, max(len(answer), 1), step):
            if slow:
                await asyncio.sleep(slow / pieces)
            delta = {"type": "text_delta", "text": answer[i : i + step]}
            await response.write(
                sse(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": 0, "delta": delta},
                )
            )
        await response.write(sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
        usage = {"output_tokens": max(1, len(answer) // 4)}
        delta_end = {"stop_reason": "end_turn", "stop_sequence": None}
        await response.write(
            sse("message_delta", {"type": "message_delta", "delta": delta_end, "usage": usage})
        )
        await response.write(sse("message_stop", {"type": "message_stop"}))
        await response.write_eof()
        return response


@contextlib.asynccontextmanager
async def open_anthropic_api(
    host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[FakeAnthropicApi]:
    """Serve a FakeAnthropicApi on `host:port` (0 = any free port) for the `async with` body."""
    api = FakeAnthropicApi()
    # shutdown_timeout: a hanging stream must not hold the close for aiohttp's default 60 s.
    runner = web.AppRunner(api.app(), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0]
        api.url = f"http://{bound[0]}:{bound[1]}"
        yield api
    finally:
        api.closing.set()
        await runner.cleanup()
