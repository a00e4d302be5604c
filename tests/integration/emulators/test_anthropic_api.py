"""The fake Anthropic Messages API: SSE shape, JSON answers, N counting, errors, hangs, process."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest

from emulators.anthropic_api import open_anthropic_api

if TYPE_CHECKING:
    from tests.support import ProcessGroup

pytestmark = pytest.mark.slow

EVENT_ORDER = [
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
]


def body(*texts: str, stream: bool = True) -> dict[str, Any]:
    """A request whose messages alternate user/assistant, ending with the last text (a user)."""
    roles = ["user", "assistant"] * len(texts)
    start = len(texts) % 2 == 0  # make the last one a user message
    messages = [
        {"role": role, "content": text}
        for role, text in zip(roles[int(start) :], texts, strict=False)
    ]
    return {"model": "claude-test", "max_tokens": 100, "stream": stream, "messages": messages}


async def read_sse(response: aiohttp.ClientResponse) -> list[tuple[str, dict[str, Any]]]:
    """Parse an SSE body into (event name, data) pairs, checking each name matches data.type."""
    events = []
    raw = (await response.read()).decode()
    for chunk in raw.split("\n\n"):
        if not chunk.strip():
            continue
        lines = dict(line.split(": ", 1) for line in chunk.splitlines())
        data = json.loads(lines["data"])
        assert lines["event"] == data["type"]
        events.append((lines["event"], data))
    return events


def test_streaming_sse_shape() -> None:
    """A streaming request gets the Anthropic SSE sequence whose deltas spell the echo."""

    async def run() -> None:
        async with open_anthropic_api() as api, aiohttp.ClientSession() as http:
            async with http.post(f"{api.url}/v1/messages", json=body("hello")) as response:
                assert response.status == 200
                assert response.headers["Content-Type"].startswith("text/event-stream")
                events = await read_sse(response)
            names = [name for name, _ in events]
            assert [n for i, n in enumerate(names) if i == 0 or n != names[i - 1]] == EVENT_ORDER
            text = "".join(d["delta"]["text"] for n, d in events if n == "content_block_delta")
            assert text == "echo[1]: hello"
            assert events[0][1]["message"]["role"] == "assistant"
            assert events[-2][1]["delta"]["stop_reason"] == "end_turn"
            assert api.requests[0]["messages"][0]["content"] == "hello"

    asyncio.run(run())


def test_non_streaming_json_and_n_counting() -> None:
    """Without stream the answer is a message JSON; N counts user and assistant messages only."""

    async def run() -> None:
        async with open_anthropic_api() as api, aiohttp.ClientSession() as http:
            request = body("a", "echo[1]: a", "b", stream=False)
            # CLI 2.1.330 puts a role "system" entry into messages; it must not count.
            request["messages"].insert(1, {"role": "system", "content": []})
            async with http.post(f"{api.url}/v1/messages", json=request) as response:
                message = await response.json()
            assert message["type"] == "message"
            assert message["content"] == [{"type": "text", "text": "echo[3]: b"}]
            assert message["stop_reason"] == "end_turn"
            assert len(api.requests) == 1

    asyncio.run(run())


def test_keywords_use_last_text_block() -> None:
    """Merged user turns echo all blocks, but only the last block's keywords count."""

    async def run() -> None:
        content = [{"type": "text", "text": "HANG"}, {"type": "text", "text": "after"}]
        request = {
            "model": "m",
            "stream": False,
            "messages": [{"role": "user", "content": content}],
        }
        async with open_anthropic_api() as api, aiohttp.ClientSession() as http:
            async with http.post(f"{api.url}/v1/messages", json=request) as response:
                message = await response.json()
            assert message["content"][0]["text"] == "echo[1]: HANG\n | after"

    asyncio.run(run())


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (529, "overloaded_error"),
    ],
)
def test_error_keywords(status: int, kind: str) -> None:
    """ERRnnn answers that status with an Anthropic error body."""

    async def run() -> None:
        async with open_anthropic_api() as api, aiohttp.ClientSession() as http:
            async with http.post(f"{api.url}/v1/messages", json=body(f"x ERR{status}")) as resp:
                assert resp.status == status
                error = await resp.json()
            assert error["type"] == "error"
            assert error["error"] == {"type": kind, "message": f"fake {status}"}

    asyncio.run(run())


def test_count_tokens_and_unknown_route() -> None:
    """count_tokens counts, /api/hello answers, any other route is a recorded 404 JSON."""

    async def run() -> None:
        async with open_anthropic_api() as api, aiohttp.ClientSession() as http:
            url = f"{api.url}/v1/messages/count_tokens"
            async with http.post(url, json=body("some words here")) as response:
                count = await response.json()
            assert count["input_tokens"] > 0
            async with http.head(f"{api.url}/api/hello") as response:
                assert response.status == 200  # the CLI's connectivity preflight
            async with http.get(f"{api.url}/v1/nothing?x=1") as response:
                assert response.status == 404
                error = await response.json()
            assert error["error"]["type"] == "not_found_error"
            assert api.unknown == ["GET /v1/nothing?x=1"]
            assert api.log == [
                "POST /v1/messages/count_tokens",
                "HEAD /api/hello",
                "GET /v1/nothing",
            ]

    asyncio.run(run())


def test_slow_spaces_the_deltas() -> None:
    """SLOW:0.5 spreads several deltas over about half a second."""

    async def run() -> None:
        async with open_anthropic_api() as api, aiohttp.ClientSession() as http:
            started = time.monotonic()
            async with http.post(f"{api.url}/v1/messages", json=body("SLOW:0.5 hi")) as response:
                events = await read_sse(response)
            assert time.monotonic() - started >= 0.5
            deltas = [d for n, d in events if n == "content_block_delta"]
            assert len(deltas) >= 3
            assert "".join(d["delta"]["text"] for d in deltas) == "echo[1]: SLOW:0.5 hi"

    asyncio.run(run())


def test_hang_sends_message_start_then_silence() -> None:
    """HANG streams headers and message_start, then nothing until the client leaves."""

    async def run() -> None:
        async with open_anthropic_api() as api, aiohttp.ClientSession() as http:
            async with http.post(f"{api.url}/v1/messages", json=body("HANG")) as response:
                assert response.status == 200
                first = await asyncio.wait_for(response.content.readuntil(b"\n\n"), 5)
                assert first.startswith(b"event: message_start\n")
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(response.content.readuntil(b"\n\n"), 0.5)
            # Leaving the block closed the connection; the server keeps answering others.
            async with http.post(f"{api.url}/v1/messages", json=body("ok", stream=False)) as r:
                assert (await r.json())["content"][0]["text"] == "echo[1]: ok"
        # open_anthropic_api's exit did not wait aiohttp's default 60 s for the hung handler.

    started = time.monotonic()
    asyncio.run(run())
    assert time.monotonic() - started < 10


def test_runs_as_a_process(procs: ProcessGroup) -> None:
    """`python -m emulators.anthropic_api --port 0` prints its url, serves, exits 0 on SIGTERM."""
    proc = procs.python("-m", "emulators.anthropic_api", "--port", "0", stdout=-1, stderr=-1)
    assert proc.stdout is not None
    ready = json.loads(proc.stdout.readline())
    assert ready["url"].startswith("http://127.0.0.1:")

    async def ask() -> str:
        url = f"{ready['url']}/v1/messages"
        async with (
            aiohttp.ClientSession() as http,
            http.post(url, json=body("hi", stream=False)) as r,
        ):
            return str((await r.json())["content"][0]["text"])

    assert asyncio.run(ask()) == "echo[1]: hi"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0


def test_helpers_find_cli_and_build_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """find_pinned_claude finds node_modules/.bin/claude; real_claude_env scrubs and sets vars."""
    from emulators.claude_cli import find_pinned_claude, real_claude_env

    found = find_pinned_claude()
    if found is not None and "node_modules" in found:
        assert found.endswith("node_modules/.bin/claude")
    monkeypatch.setenv("ANTHROPIC_AUTH_TOKEN", "secret")
    monkeypatch.setenv("MATTERMOST_TOKEN", "secret")
    monkeypatch.setenv("CLAUDECODE", "1")
    env = real_claude_env("http://127.0.0.1:1", "/tmp/h")
    assert "ANTHROPIC_AUTH_TOKEN" not in env
    assert "MATTERMOST_TOKEN" not in env
    assert "CLAUDECODE" not in env
    assert env["HOME"] == "/tmp/h"
    assert env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:1"
    assert env["ANTHROPIC_API_KEY"] == "sk-test"
    assert env["CLAUDE_CODE_MAX_RETRIES"] == "2"
    assert env["PATH"] == os.environ["PATH"]
