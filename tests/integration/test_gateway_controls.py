"""The gateway's side of the controls against the Mattermost emulator, with an in-memory bus:
commands become Command messages, approval posts are made once and edited, reactions by
allowed users (and only theirs) become decisions, also those made while the gateway was away.
"""

from __future__ import annotations

from typing import Any

import pytest

from emulators.mattermost import open_emulator
from protocol import (
    Accepted,
    ApprovalShow,
    ApprovalShown,
    Command,
    Decision,
    Prompt,
)
from tests.integration.test_gateway_service import make_config, run, running
from tests.support import async_wait_for

pytestmark = pytest.mark.slow


def approval_of(post: dict[str, Any]) -> object:
    props = post.get("props")
    return props.get("mmclaude_approval") if isinstance(props, dict) else None


def show(state: str, text: str, request_id: str = "req-1", create_at: int = 0) -> ApprovalShow:
    return ApprovalShow(
        request_id=request_id,
        prompt_post_id="p-1",
        create_at=create_at,
        kind="approval",
        state=state,
        text=text,
    )


def test_commands_are_their_own_message_and_unknown_ones_are_prompts() -> None:
    async def main() -> None:
        async with open_emulator(port=0) as mm:
            root = await mm.post_as("alice", "thread")
            config = make_config(mm.url, mm.bot.token, thread_id=root["id"])
            async with running(config) as (gateway, bus):
                bus.welcome(root["id"], mm.channel.id)
                await async_wait_for(lambda: gateway.connected, 10, "the socket")
                stop = await mm.post_as("alice", "!stop", root_id=root["id"])
                await async_wait_for(lambda: bus.of(Command), 10, "a Command")
                bus.inbox.put_nowait(Accepted(post_id=stop["id"]))
                odd = await mm.post_as("alice", "!unknown thing", root_id=root["id"])
                await async_wait_for(lambda: bus.of(Prompt), 10, "a Prompt")
                [command] = bus.of(Command)
                assert (command.post_id, command.name, command.args) == (stop["id"], "stop", "")
                [prompt] = bus.of(Prompt)
                assert (prompt.post_id, prompt.text) == (odd["id"], "!unknown thing")

    run(main())


def test_approval_post_once_reactions_decide_and_the_post_is_edited() -> None:
    """One post per request (a repeat show finds it) offering the three reactions, a reaction
    of a stranger or of the bot itself changes nothing, alice's +1 is a Decision, the outcome
    edits the same post."""

    async def main() -> None:
        async with open_emulator(port=0) as mm:
            root = await mm.post_as("alice", "thread")
            config = make_config(mm.url, mm.bot.token, thread_id=root["id"])
            async with running(config) as (gateway, bus):
                bus.welcome(root["id"], mm.channel.id)
                await async_wait_for(lambda: gateway.connected, 10, "the socket")
                bus.inbox.put_nowait(show("pending", "Claude wants Bash"))
                shown = await async_wait_for(lambda: bus.of(ApprovalShown), 10, "shown")
                post_id = shown[0].post_id
                assert shown[0].post_create_at > root["create_at"]
                offered = await gateway.client.reactions(post_id)  # one click to decide
                assert sorted(e for u, e in offered if u == mm.bot.id) == [
                    "+1",
                    "-1",
                    "white_check_mark",
                ]
                bus.inbox.put_nowait(show("pending", "Claude wants Bash"))
                await async_wait_for(lambda: len(bus.of(ApprovalShown)) == 2, 10, "shown again")
                mine = [p for p in mm.posts() if approval_of(p) == "req-1"]
                assert [p["id"] for p in mine] == [post_id]
                await mm.react_as("mallory", post_id, "+1")
                await mm.react_as("alice", post_id, "+1")
                decisions = await async_wait_for(lambda: bus.of(Decision), 10, "a Decision")
                assert [(d.request_id, d.behavior, d.username) for d in decisions] == [
                    ("req-1", "allow", "alice")
                ]
                bus.inbox.put_nowait(show("allowed", "Allowed once by @alice"))
                await async_wait_for(
                    lambda: any(s.state == "allowed" for s in bus.of(ApprovalShown)), 10, "edit"
                )
                [edited] = [p for p in mm.posts() if p["id"] == post_id]
                assert edited["message"] == "Allowed once by @alice"
                await mm.react_as("alice", post_id, "-1")  # decided: no more decisions
                # A barrier instead of a pause: the socket's events are handled in order, so
                # once a reaction made after that one decides req-2, the -1 was judged.
                bus.inbox.put_nowait(show("pending", "Claude wants Edit", request_id="req-2"))
                later = await async_wait_for(
                    lambda: [s for s in bus.of(ApprovalShown) if s.request_id == "req-2"],
                    10,
                    "req-2 shown",
                )
                await mm.react_as("alice", later[0].post_id, "-1")
                await async_wait_for(lambda: len(bus.of(Decision)) == 2, 10, "req-2 decided")
                assert [(d.request_id, d.behavior) for d in bus.of(Decision)] == [
                    ("req-1", "allow"),
                    ("req-2", "deny"),
                ]

    run(main())


def test_reactions_made_while_no_gateway_watched_are_read_back() -> None:
    """A new gateway is shown a pending request whose post exists: it finds the post (no
    second one) and turns the reaction already on it into a decision."""

    async def main() -> None:
        async with open_emulator(port=0) as mm:
            root = await mm.post_as("alice", "thread")
            config = make_config(mm.url, mm.bot.token, thread_id=root["id"])
            async with running(config) as (gateway, bus):
                bus.welcome(root["id"], mm.channel.id)
                await async_wait_for(lambda: gateway.connected, 10, "the socket")
                bus.inbox.put_nowait(show("pending", "Claude wants Bash"))
                shown = await async_wait_for(lambda: bus.of(ApprovalShown), 10, "shown")
                post_id = shown[0].post_id
            await mm.react_as("alice", post_id, "white_check_mark")
            async with running(config) as (gateway, bus):
                bus.welcome(root["id"], mm.channel.id)
                await async_wait_for(lambda: gateway.thread_id, 10, "the thread")
                bus.inbox.put_nowait(show("pending", "Claude wants Bash"))
                decisions = await async_wait_for(lambda: bus.of(Decision), 10, "a Decision")
                assert [(d.request_id, d.behavior) for d in decisions] == [("req-1", "always")]
                assert bus.of(ApprovalShown)[0].post_id == post_id
            mine = [p for p in mm.posts() if approval_of(p) == "req-1"]
            assert len(mine) == 1

    run(main())
