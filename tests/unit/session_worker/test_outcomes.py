"""The pure verdicts on how a prompt's run ended: retry, resume, watchdog, give-up, !stop."""

from __future__ import annotations

from session_worker import policy
from session_worker.ndjson import MAX_LINE, NO_CONVERSATION, OVERLONG, TurnOutcome
from session_worker.outcomes import (
    Answered,
    Died,
    Rules,
    StartFailed,
    Stopped,
    Verdict,
    WorkerDied,
    decide,
)
from session_worker.states import Finish, GiveUp, Requeue

RULES = Rules(max_tries=3, idle_limit=2.5)


def ok(
    text: str = "hi",
    *,
    is_error: bool = False,
    subtype: str = "success",
    errors: tuple[str, ...] = (),
    skipped: tuple[int, ...] = (),
) -> TurnOutcome:
    return TurnOutcome(text, is_error, subtype, "s1", errors=errors, skipped=skipped)


def test_an_answer_is_finished_and_resets_the_backoff() -> None:
    verdict = decide(Answered(ok("hello")), tries=1, rules=RULES)
    assert verdict == Verdict(Finish("hello", False), subtype="success", reset_backoff=True)


def test_an_empty_answer_gets_the_placeholder() -> None:
    verdict = decide(Answered(ok("  ")), tries=1, rules=RULES)
    assert verdict.text == policy.non_empty("")
    assert verdict.text.strip()


def test_an_error_result_is_answered_with_the_cli_words_and_logged() -> None:
    outcome = ok("", is_error=True, subtype="error_during_execution", errors=("boom\ntrace",))
    verdict = decide(Answered(outcome), tries=1, rules=RULES)
    assert verdict.is_error
    assert verdict.errors == ("boom\ntrace",)
    assert "boom" in verdict.text
    assert "trace" not in verdict.text


def test_an_unreadable_result_names_its_size() -> None:
    outcome = ok("partial", is_error=True, subtype=OVERLONG, skipped=(MAX_LINE + 1,))
    verdict = decide(Answered(outcome), tries=1, rules=RULES)
    assert verdict.text == policy.overlong_result_answer(MAX_LINE + 1, MAX_LINE, "partial")
    assert verdict.errors == ()


def test_skipped_lines_are_noted_under_the_answer() -> None:
    verdict = decide(Answered(ok("answer", skipped=(MAX_LINE * 2,))), tries=1, rules=RULES)
    assert verdict.text.startswith("answer\n\n")
    assert verdict.text.endswith(policy.skipped_lines_note((MAX_LINE * 2,), MAX_LINE))


def test_claude_dying_requeues_the_prompt_until_the_last_try() -> None:
    for tries in (1, 2):
        verdict = decide(Died(-9, "tail"), tries=tries, rules=RULES)
        assert verdict == Verdict(Requeue())
        assert verdict.text == ""
        assert not verdict.session_lost


def test_claude_dying_on_the_last_try_gives_up_with_the_exit_status() -> None:
    verdict = decide(Died(-9, "secret stderr"), tries=3, rules=RULES)
    assert verdict.event == Finish(policy.failed_answer(3, -9), True)
    assert verdict.subtype == "died"
    assert "secret stderr" not in verdict.text


def test_an_unknown_session_requeues_with_the_try_back_in_a_fresh_session() -> None:
    verdict = decide(Died(1, NO_CONVERSATION, no_conversation=True), tries=3, rules=RULES)
    assert verdict == Verdict(Requeue(refund=True), session_lost=True)


def test_the_answer_after_a_lost_session_says_so_once_it_comes() -> None:
    verdict = decide(Answered(ok("fresh")), tries=1, rules=RULES, context_lost=True)
    assert verdict.text == policy.context_lost("fresh")
    assert decide(Answered(ok("x")), tries=1, rules=RULES).text == "x"


def test_the_watchdog_answer_names_the_idle_limit() -> None:
    verdict = decide(Stopped(killed=False, partial="so far"), tries=1, rules=RULES)
    assert verdict.event == Finish(policy.stopped_answer(2.5, False, "so far"), True)
    assert verdict.subtype == "stopped"
    assert not verdict.reset_backoff
    killed = decide(Stopped(killed=True, partial=""), tries=1, rules=RULES)
    assert killed.text == policy.stopped_answer(2.5, True, "")


def test_stop_by_a_user_answers_with_who_stopped() -> None:
    interrupted = ok("half", is_error=True, subtype="error_during_execution")
    verdict = decide(Answered(interrupted), tries=1, rules=RULES, stopped_by="alice")
    assert verdict.event == Finish(policy.user_stopped_answer("alice", "half"), True)
    assert verdict.subtype == "stopped_by_user"
    assert verdict.reset_backoff
    hard = decide(Stopped(killed=True, partial="p"), tries=1, rules=RULES, stopped_by="bob")
    assert hard.text == policy.user_stopped_answer("bob", "p", killed=True)
    assert hard.subtype == "stopped_by_user"


def test_a_turn_that_finished_before_the_stop_is_a_normal_answer() -> None:
    verdict = decide(Answered(ok("done")), tries=1, rules=RULES, stopped_by="alice")
    assert verdict.event == Finish("done", False)


def test_start_failures_charge_tries_then_answer() -> None:
    assert decide(StartFailed(None), tries=2, rules=RULES) == Verdict(Requeue())
    verdict = decide(StartFailed(127), tries=3, rules=RULES, context_lost=True)
    assert verdict.event == Finish(policy.context_lost(policy.not_started_answer(3, 127)), True)


def test_a_prompt_that_killed_the_worker_is_given_up_without_the_context_note() -> None:
    verdict = decide(WorkerDied(), tries=3, rules=RULES, context_lost=True)
    assert verdict.event == GiveUp(policy.worker_died_answer(3))
    assert verdict.is_error
    assert verdict.subtype == "worker_died"
