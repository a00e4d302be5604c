"""The gateway service's logic over in-memory fakes (gateway.testing): no sockets, no
emulator. Each case runs the real service and drives it through its seams: the worker's
messages on the bus, the feed's events, the fake server's thread."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from gateway.config import GatewayConfig
from gateway.models import Post, User
from gateway.service import GatewayService
from gateway.testing import FakeMattermost, ManualClock, MemoryBus
from protocol import (
    Accepted,
    Answer,
    ApprovalShow,
    ApprovalShown,
    Decision,
    Delivered,
    Prompt,
    Welcome,
)
from tests.support import async_wait_for

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

BOT = User(id="b" * 26, username="bot")
ALICE = User(id="a" * 26, username="alice")
MALLORY = User(id="m" * 26, username="mallory")
CHANNEL = "c" * 26
THREAD = "t" * 26
DEADLINE_S = 10.0


def config() -> GatewayConfig:
    return GatewayConfig(
        url="http://127.0.0.1:9",
        token="token",
        channel_id=CHANNEL,
        thread_id="",
        allowed_users=(ALICE.id,),
        state_dir="/tmp",
        gateway_id="g1",
        worker_endpoint="ipc:///tmp/unused-w",
        endpoint="ipc:///tmp/unused-g",
        resend_interval=0.5,
    )


def reply(post_id: str, create_at: int, user: User = ALICE) -> Post:
    return Post(
        id=post_id,
        create_at=create_at,
        user_id=user.id,
        channel_id=CHANNEL,
        root_id=THREAD,
        message=f"question {post_id}",
    )


def welcome() -> Welcome:
    return Welcome(
        worker_pid=1,
        incarnation="w1",
        thread_id=THREAD,
        channel_id=CHANNEL,
        bind_token="tok",
        catch_up_from=0,
    )


class Rig:
    def __init__(self) -> None:
        self.server = FakeMattermost(BOT, users=(ALICE, MALLORY))
        self.server.add(Post(id=THREAD, create_at=1, user_id=BOT.id, channel_id=CHANNEL))
        self.bus = MemoryBus()
        self.clock = ManualClock()
        self.service = GatewayService(config(), self.server, self.bus, clock=self.clock)

    def prompted(self) -> list[str]:
        return [p.post_id for p in self.bus.of(Prompt)]

    async def bound(self) -> None:
        """Welcome the service to the thread and wait until it serves it."""
        self.bus.inbox.put_nowait(welcome())
        await async_wait_for(lambda: self.service.thread_id == THREAD, DEADLINE_S, "bound")


@contextlib.asynccontextmanager
async def running() -> AsyncIterator[Rig]:
    rig = Rig()
    task = asyncio.create_task(rig.service.run())
    try:
        async with asyncio.timeout(DEADLINE_S * 2):
            yield rig
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def test_prompts_wait_while_a_catch_up_is_owed() -> None:
    """A post seen live while a catch-up is under way is not sent, even when its resend
    interval passes; the older post the catch-up finds goes first, the live one after it
    is accepted (stop-and-wait)."""

    async def main() -> None:
        async with running() as rig:
            rig.server.thread_gate.clear()  # the catch-up's read of the thread hangs
            rig.server.add(reply("o" * 26, 100))  # older, not yet seen
            await rig.bound()
            rig.service.post_seen(reply("n" * 26, 200), "alice")
            assert "n" * 26 in rig.service.prompts
            beats = len(rig.bus.beats)
            rig.clock.advance(2.0)  # past the resend interval and the hello interval
            await async_wait_for(lambda: len(rig.bus.beats) > beats, DEADLINE_S, "a tick")
            assert rig.prompted() == []
            rig.server.thread_gate.set()
            await async_wait_for(rig.prompted, DEADLINE_S, "the catch-up's prompt")
            assert rig.prompted() == ["o" * 26]
            rig.bus.inbox.put_nowait(Accepted(post_id="o" * 26))
            await async_wait_for(lambda: len(rig.prompted()) == 2, DEADLINE_S, "the live one")
            assert rig.prompted() == ["o" * 26, "n" * 26]

    asyncio.run(main())


def test_a_reaction_from_a_user_not_allowed_decides_nothing() -> None:
    """On a pending approval's post, 👍 by a user outside the allowlist sends no Decision
    (nor does another emoji, nor the bot's own offered reactions); 👍 by an allowed user
    sends exactly one, with their id."""

    async def main() -> None:
        async with running() as rig:
            await rig.bound()
            rig.bus.inbox.put_nowait(
                ApprovalShow(
                    request_id="r1",
                    prompt_post_id="o" * 26,
                    create_at=100,
                    kind="approval",
                    state="pending",
                    text="May Claude run `ls`?",
                )
            )
            shown = await async_wait_for(lambda: rig.bus.of(ApprovalShown), DEADLINE_S, "shown")
            post_id = shown[0].post_id
            rig.service.reaction_added(MALLORY.id, post_id, "+1")
            rig.service.reaction_added(ALICE.id, post_id, "smile")
            rig.service.reaction_added(BOT.id, post_id, "+1")
            assert rig.bus.of(Decision) == []
            rig.service.reaction_added(ALICE.id, post_id, "+1")
            decisions = rig.bus.of(Decision)
            assert [(d.request_id, d.behavior, d.user_id) for d in decisions] == [
                ("r1", "allow", ALICE.id)
            ]

    asyncio.run(main())


def test_an_answer_for_a_delivered_post_is_not_posted_again() -> None:
    """A re-sent answer for a post already delivered gets the same Delivered back from
    memory, without a look at the thread, and no new post in the thread."""

    async def main() -> None:
        async with running() as rig:
            await rig.bound()
            answer = Answer(post_id="o" * 26, create_at=100, text="the answer")
            rig.bus.inbox.put_nowait(answer)
            first = await async_wait_for(lambda: rig.bus.of(Delivered), DEADLINE_S, "posted")
            made = len(rig.server.created)
            assert [p.message for p in rig.server.created] == ["the answer"]
            # Posting it again would first read the thread (attempt 2): that read now hangs,
            # so only an answer from memory gets the Delivered below.
            rig.server.thread_gate.clear()
            rig.bus.inbox.put_nowait(Answer(post_id="o" * 26, create_at=100, text="x", attempt=2))
            await async_wait_for(lambda: len(rig.bus.of(Delivered)) == 2, DEADLINE_S, "again")
            again = rig.bus.of(Delivered)[1]
            assert again.reply_ids == first[0].reply_ids
            assert len(rig.server.created) == made

    asyncio.run(main())


def test_a_catch_up_never_prompts_a_post_answered_in_the_thread_nor_its_history() -> None:
    """Of the thread's replies, one made before the binding's floor and one the bot's own
    reply (``mmclaude_reply_to``) says is answered are never prompts; the rest is."""

    async def main() -> None:
        async with running() as rig:
            rig.server.add(reply("h" * 26, 50))  # history: made before the binding
            rig.server.add(reply("d" * 26, 150))  # answered by the bot's reply below
            answered = reply("r" * 26, 160, user=BOT)
            rig.server.add(
                Post(
                    id=answered.id,
                    create_at=answered.create_at,
                    user_id=BOT.id,
                    channel_id=CHANNEL,
                    root_id=THREAD,
                    message="an earlier answer",
                    props={"mmclaude_reply_to": "d" * 26},
                )
            )
            rig.server.add(reply("q" * 26, 170))
            rig.bus.inbox.put_nowait(
                Welcome(
                    worker_pid=1,
                    incarnation="w1",
                    thread_id=THREAD,
                    channel_id=CHANNEL,
                    bind_token="tok",
                    catch_up_from=0,
                    floor=100,
                )
            )
            await async_wait_for(rig.prompted, DEADLINE_S, "a prompt")
            assert rig.prompted() == ["q" * 26]
            assert "h" * 26 not in rig.service.prompts
            assert "d" * 26 not in rig.service.prompts

    asyncio.run(main())


def test_a_new_worker_gets_the_unaccepted_prompt_again_at_once() -> None:
    """A Welcome from a new worker incarnation re-sends the head prompt without waiting for
    its resend interval (the clock does not move)."""

    async def main() -> None:
        async with running() as rig:
            await rig.bound()
            await async_wait_for(lambda: not rig.service.catchups.owed, DEADLINE_S, "caught up")
            rig.service.post_seen(reply("n" * 26, 200), "alice")
            assert rig.prompted() == ["n" * 26]
            rig.bus.inbox.put_nowait(
                Welcome(
                    worker_pid=2,
                    incarnation="w2",
                    thread_id=THREAD,
                    channel_id=CHANNEL,
                    bind_token="tok",
                    catch_up_from=0,
                )
            )
            await async_wait_for(lambda: len(rig.prompted()) == 2, DEADLINE_S, "re-sent")
            assert rig.prompted() == ["n" * 26, "n" * 26]

    asyncio.run(main())
