"""The gateway's pure queues: prompts (stop-and-wait, oldest first), answers (held behind
a failed head, then a fallback), chores (bounded, typing de-duplicated, kinds switched off)."""

from __future__ import annotations

import asyncio
import contextlib

from gateway.chores import Chores, missing_endpoint, run_chores
from gateway.errors import BadRequestError, NotFoundError, ServerError
from gateway.outbox import FALLBACK_AFTER, Outbox
from gateway.prompts import PromptQueue
from protocol import Answer, Prompt
from protocol.backoff import Backoff


def prompt(post_id: str, create_at: int) -> Prompt:
    return Prompt(gateway_id="g", post_id=post_id, create_at=create_at, user_id="u", text="t")


def answer(post_id: str) -> Answer:
    return Answer(post_id=post_id, create_at=1, text="a")


# --- prompts -------------------------------------------------------------------------------


def test_prompts_go_oldest_first_one_at_a_time() -> None:
    """Only the oldest unaccepted prompt is ever due; it is re-sent after the interval."""
    queue = PromptQueue()
    assert queue.add(prompt("b", 20))
    assert queue.add(prompt("a", 10))
    assert not queue.add(prompt("a", 10))  # already queued
    assert queue.due(0.0, 1.0) == (prompt("a", 10), 1)
    assert queue.due(0.5, 1.0) is None  # sent, not yet stale
    assert queue.due(1.0, 1.0) == (prompt("a", 10), 2)
    assert queue.accepted("a") == prompt("a", 10)
    assert queue.due(1.1, 1.0) == (prompt("b", 20), 1)
    assert not queue.add(prompt("a", 10))  # accepted recently: not queued again
    assert len(queue) == 1


def test_a_new_worker_gets_the_head_at_once() -> None:
    queue = PromptQueue()
    queue.add(prompt("a", 10))
    queue.due(0.0, 10.0)
    queue.resend_now()
    assert queue.due(0.1, 10.0) == (prompt("a", 10), 2)
    assert queue.accepted("zzz") is None


# --- answers -------------------------------------------------------------------------------


def test_later_answers_wait_behind_a_failed_head_then_a_fallback_unblocks() -> None:
    """X fails: Y stays queued behind it; X is retried (looking in the thread first), and
    after FALLBACK_AFTER failures the fallback text is posted instead."""
    outbox = Outbox(Backoff(initial=1.0, cap=8.0, jitter=0.0))
    assert outbox.push(answer("x"))
    assert outbox.push(answer("y"))
    assert not outbox.push(answer("x"))
    assert "y" in outbox
    assert outbox.head() == answer("x")
    assert outbox.fallback() is None
    error = BadRequestError("create post: HTTP 400", status=400, error_id="api.post.bad")
    delays = [outbox.failed(error) for _ in range(FALLBACK_AFTER)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0]
    head = outbox.head()
    assert head is not None
    assert (head.post_id, head.attempt) == ("x", 2)  # look for parts already posted
    assert outbox.fallback() == "⚠️ mmclaude could not post this answer: api.post.bad"
    assert outbox.posted().post_id == "x"
    assert outbox.head() == answer("y")
    assert outbox.fallback() is None


def test_the_fallback_names_the_status_when_there_is_no_error_id() -> None:
    outbox = Outbox()
    for _ in range(FALLBACK_AFTER):
        outbox.push(answer("x"))
        outbox.failed(NotFoundError("gone", status=404))
    assert outbox.fallback() == "⚠️ mmclaude could not post this answer: HTTP 404"


def test_outbox_next_waits_for_an_answer() -> None:
    async def scenario() -> str:
        outbox = Outbox()
        waiter = asyncio.create_task(outbox.next())
        for _ in range(5):
            await asyncio.sleep(0)  # let it run until it blocks (no clock involved)
        assert not waiter.done()
        outbox.push(answer("x"))
        return (await asyncio.wait_for(waiter, 1)).post_id

    assert asyncio.run(scenario()) == "x"


# --- chores --------------------------------------------------------------------------------


def test_typing_is_queued_at_most_once_and_the_queue_is_bounded() -> None:
    chores = Chores(maxsize=3)
    assert chores.add("typing")
    assert not chores.add("typing")
    assert chores.add("react", "p1")
    assert chores.add("react", "p2")
    assert not chores.add("react", "p3")  # full: dropped
    assert chores.dropped == 1
    assert chores.take() == ("typing", "")
    assert chores.add("typing")  # taken, so one may wait again
    assert [chores.take(), chores.take(), chores.take(), chores.take()] == [
        ("react", "p1"),
        ("react", "p2"),
        ("typing", ""),
        None,
    ]


def test_a_disabled_kind_is_neither_queued_nor_run() -> None:
    chores = Chores()
    chores.add("typing")
    chores.add("react", "p1")
    chores.disable("typing", BadRequestError("typing: HTTP 405", status=405))
    chores.disable("typing", BadRequestError("again", status=405))  # logged once
    assert not chores.add("typing")
    assert chores.take() == ("react", "p1")
    assert chores.take() is None
    assert chores.disabled == {"typing"}


def test_missing_endpoint_means_404_or_405_but_not_a_missing_post() -> None:
    assert missing_endpoint(BadRequestError("x", status=405))
    assert missing_endpoint(NotFoundError("x", status=404, error_id="api.context.404.app_error"))
    assert missing_endpoint(NotFoundError("x", status=404))
    assert not missing_endpoint(NotFoundError("x", status=404, error_id="app.post.get.app_error"))
    assert not missing_endpoint(BadRequestError("x", status=400))
    assert not missing_endpoint(ServerError("x", status=500))


class FakeChoreClient:
    """Records chore calls; fails them as told."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.calls: list[tuple[str, dict[str, str]]] = []

    async def add_reaction(self, *, user_id: str, post_id: str, emoji_name: str) -> None:
        self.calls.append(
            ("react", {"user_id": user_id, "post_id": post_id, "emoji_name": emoji_name})
        )
        if self.error is not None:
            raise self.error

    async def typing(self, *, user_id: str, channel_id: str, parent_id: str) -> None:
        self.calls.append(
            ("typing", {"user_id": user_id, "channel_id": channel_id, "parent_id": parent_id})
        )
        if self.error is not None:
            raise self.error


def _run_chores(chores: Chores, client: FakeChoreClient, calls: int) -> None:
    """Run the chore loop until it has made ``calls`` calls (bounded), then stop it. A call
    and the handling of its failure happen in one step of the loop, so both are done."""

    async def main() -> None:
        task = asyncio.create_task(run_chores(chores, client, lambda: ("bot1", "chan1", "thread1")))
        try:
            async with asyncio.timeout(5):
                while len(client.calls) < calls:
                    await asyncio.sleep(0.001)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    asyncio.run(main())


def test_typing_uses_the_bots_own_id_and_reactions_the_eyes() -> None:
    chores = Chores()
    chores.add("typing")
    chores.add("react", "p1")
    client = FakeChoreClient()
    _run_chores(chores, client, calls=2)
    assert client.calls == [
        ("typing", {"user_id": "bot1", "channel_id": "chan1", "parent_id": "thread1"}),
        ("react", {"user_id": "bot1", "post_id": "p1", "emoji_name": "eyes"}),
    ]


def test_a_missing_typing_endpoint_switches_typing_off_for_good() -> None:
    chores = Chores()
    chores.add("typing")
    client = FakeChoreClient(NotFoundError("typing: HTTP 404", status=404))
    _run_chores(chores, client, calls=1)
    assert [kind for kind, _ in client.calls] == ["typing"]
    assert chores.disabled == {"typing"}
    assert not chores.add("typing")
    assert chores.add("react", "p")


def test_a_reaction_on_a_deleted_post_does_not_switch_reactions_off() -> None:
    chores = Chores()
    chores.add("react", "p1")
    client = FakeChoreClient(NotFoundError("x", status=404, error_id="app.post.get.app_error"))
    _run_chores(chores, client, calls=1)
    assert [kind for kind, _ in client.calls] == ["react"]
    assert chores.disabled == set()
    assert chores.add("react", "p2")


def test_a_reserved_post_holds_back_later_prompts_until_it_is_filled() -> None:
    """A post whose attachments are downloading keeps its place: nothing after it is sent."""

    def prompt(post_id: str, at: int) -> Prompt:
        return Prompt(gateway_id="g", post_id=post_id, create_at=at, user_id="u", text="t")

    queue = PromptQueue()
    assert queue.reserve("a", 1)
    assert not queue.reserve("a", 1)
    assert queue.add(prompt("b", 2))
    assert queue.due(0.0, 1.0) is None  # "a" is not ready, and "b" must wait for it
    assert queue.add(prompt("a", 1))  # filled
    due = queue.due(0.0, 1.0)
    assert due is not None
    assert due[0].post_id == "a"
    queue.accepted("a")
    due = queue.due(0.0, 1.0)
    assert due is not None
    assert due[0].post_id == "b"
    assert queue.reserve("c", 3)
    queue.release("c")
    assert "c" not in queue
