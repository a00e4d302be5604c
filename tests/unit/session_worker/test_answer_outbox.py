"""The worker's outbox of undelivered answers: journal order, attempts, when each is due."""

from __future__ import annotations

from session_worker.answer_outbox import AnswerOutbox
from session_worker.states import PromptRow, State


def answered(post_id: str, create_at: int) -> PromptRow:
    return PromptRow(
        post_id=post_id, create_at=create_at, user_id="u", username="a", text="q",
        gateway_id="g1", state=State.ANSWERED, answer=f"answer {post_id}",
    )  # fmt: skip


def test_outbox_keeps_journal_order_and_counts_attempts() -> None:
    """Answers come out in (create_at, post_id) order, each send one attempt more."""
    outbox = AnswerOutbox()
    outbox.add(answered("b", 2))
    outbox.add(answered("a", 2))
    outbox.add(answered("z", 1), attempt=2)
    assert [p.post_id for p in outbox.ordered()] == ["z", "a", "b"]
    first = outbox.ordered()[0]
    assert outbox.sent(first, now=10.0).attempt == 2
    assert outbox.sent(first, now=11.0).attempt == 3
    assert [p.post_id for p in outbox.due(now=11.5, interval=2.0)] == ["a", "b"]
    assert [p.post_id for p in outbox.due(now=13.0, interval=2.0)] == ["z", "a", "b"]
    assert outbox.remove("z")
    assert "z" not in outbox
    assert len(outbox) == 2


def test_outbox_order_survives_late_older_answers_and_removals() -> None:
    """In-order adds append; an older post answered late still comes out first."""
    outbox = AnswerOutbox()
    for post_id, create_at in [("c", 3), ("d", 4), ("a", 1)]:
        outbox.add(answered(post_id, create_at))
    assert outbox.remove("d")
    outbox.add(answered("b", 2))
    outbox.add(answered("e", 5))
    outbox.add(answered("c", 3), attempt=3)  # a re-add keeps its place
    assert [p.post_id for p in outbox.ordered()] == ["a", "b", "c", "e"]
    for post_id in ("a", "b", "c", "e"):
        outbox.remove(post_id)
    outbox.add(answered("z", 0))
    assert [p.post_id for p in outbox.ordered()] == ["z"]
