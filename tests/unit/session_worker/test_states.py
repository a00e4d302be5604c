"""The pure life of a prompt: which events each state allows and what they change."""

from __future__ import annotations

from dataclasses import replace

import pytest

from session_worker.errors import TransitionError
from session_worker.states import (
    Deliver,
    Finish,
    GiveUp,
    PromptEvent,
    PromptRow,
    Recover,
    Requeue,
    Start,
    State,
    transition,
)

ROW = PromptRow(
    post_id="p1", create_at=10, user_id="u", username="alice", text="hi", gateway_id="gw"
)


def at(state: State, tries: int = 1) -> PromptRow:
    return replace(ROW, state=state, tries=tries)


def test_happy_path() -> None:
    """queued → running → answered → delivered, counting one try."""
    row = transition(ROW, Start())
    assert (row.state, row.tries) == (State.RUNNING, 1)
    row = transition(row, Finish("hello", is_error=False))
    assert (row.state, row.answer, row.is_error) == (State.ANSWERED, "hello", False)
    row = transition(row, Deliver(("r1", "r2")))
    assert (row.state, row.reply_ids) == (State.DELIVERED, ("r1", "r2"))


def test_requeue_keeps_or_refunds_the_try() -> None:
    """A dead turn keeps its try; a clean shutdown gives it back."""
    assert transition(at(State.RUNNING, 2), Requeue()) == at(State.QUEUED, 2)
    assert transition(at(State.RUNNING, 2), Requeue(refund=True)) == at(State.QUEUED, 1)


def test_retries_count_up() -> None:
    """Each Start after a Requeue is one more try."""
    row = ROW
    for _ in range(3):
        row = transition(transition(row, Start()), Requeue())
    assert (row.state, row.tries) == (State.QUEUED, 3)


def test_recover_only_touches_running_rows() -> None:
    """At start a running row is queued again (tries kept); other states are unchanged."""
    assert transition(at(State.RUNNING, 2), Recover()) == at(State.QUEUED, 2)
    for state in (State.QUEUED, State.ANSWERED, State.DELIVERED):
        assert transition(at(state), Recover()) == at(state)


def test_give_up_answers_a_queued_prompt_with_an_error() -> None:
    """A prompt that used every try gets its error answer without another run."""
    row = transition(at(State.QUEUED, 3), GiveUp("died 3 times"))
    assert (row.state, row.answer, row.is_error, row.tries) == (
        State.ANSWERED, "died 3 times", True, 3,
    )  # fmt: skip


def test_repeated_deliver_is_harmless() -> None:
    """A second Delivered (from another gateway, or re-sent) changes nothing."""
    delivered = transition(at(State.ANSWERED), Deliver(("r1",)))
    assert transition(delivered, Deliver(("other",))) == delivered


@pytest.mark.parametrize(
    ("state", "event"),
    [
        (State.QUEUED, Finish("x", is_error=False)),
        (State.QUEUED, Deliver(())),
        (State.QUEUED, Requeue()),
        (State.RUNNING, Start()),
        (State.RUNNING, GiveUp("x")),
        (State.ANSWERED, GiveUp("x")),
        (State.RUNNING, Deliver(())),
        (State.ANSWERED, Start()),
        (State.ANSWERED, Finish("again", is_error=False)),
        (State.ANSWERED, Requeue()),
        (State.DELIVERED, Start()),
        (State.DELIVERED, Finish("again", is_error=False)),
    ],
)
def test_forbidden_transitions_raise(state: State, event: PromptEvent) -> None:
    """Events that would answer twice or lose an answer are refused."""
    with pytest.raises(TransitionError, match=state.value):
        transition(at(state), event)
