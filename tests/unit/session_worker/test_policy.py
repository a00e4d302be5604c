"""Restart backoff and the texts users see when Claude fails."""

from __future__ import annotations

import protocol
from session_worker import policy
from session_worker.policy import Backoff


def test_backoff_grows_then_caps() -> None:
    """Consecutive deaths wait 0.2, 0.4, 0.8 … then 5 s at most."""
    backoff = Backoff()
    backoff.started(0.0)
    delays = [backoff.delay(1.0) for _ in range(7)]
    assert [round(d, 3) for d in delays] == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]


def test_backoff_resets_when_stable_or_after_a_turn() -> None:
    """A claude that lived long enough, or finished a turn, restarts quickly again."""
    backoff = Backoff()
    backoff.started(0.0)
    backoff.delay(1.0)
    backoff.delay(1.0)
    backoff.started(100.0)
    assert backoff.delay(100.0 + policy.STABLE_AFTER) == 0.2
    backoff.delay(200.0)
    backoff.reset()
    backoff.started(300.0)
    assert backoff.delay(300.1) == 0.2


def test_exit_descriptions() -> None:
    """Exit statuses are named in words, signals by name."""
    assert policy.describe_exit(3) == "exit code 3"
    assert policy.describe_exit(-9) == "killed by signal SIGKILL"
    assert policy.describe_exit(None) == "an unknown exit status"


def test_failed_answer_names_tries_and_code_only() -> None:
    """The give-up answer says how often and how it died; the details are in the log."""
    text = policy.failed_answer(3, 3)
    assert "died 3 times" in text
    assert "exit code 3" in text
    assert policy.SEE_LOG in text
    assert "killed by signal SIGKILL" in policy.failed_answer(3, -9)


def test_not_started_answer_is_one_line_of_ours() -> None:
    """A claude that cannot start: how the last try ended, in our words, one line."""
    assert "last: exit code 1" in policy.not_started_answer(2, 1)
    text = policy.not_started_answer(2, None)
    assert "did not become ready" in text
    assert "\n" not in text


def test_stopped_answer_keeps_the_partial_text() -> None:
    """A stopped turn says why and keeps what Claude had written."""
    assert "was stopped (it was interrupted)" in policy.stopped_answer(600, False, "")
    text = policy.stopped_answer(0.5, True, "half an answer")
    assert "0.5 s" in text
    assert "restarted" in text
    assert text.endswith("half an answer")


def test_error_results_use_the_cli_words() -> None:
    """An error result's own text is the answer; without one, the subtype and errors."""
    assert policy.turn_error_answer("success", "API Error: 500", ()) == "API Error: 500"
    text = policy.turn_error_answer("error_max_turns", "", ("Reached maximum number of turns",))
    assert "error_max_turns" in text
    assert "Reached maximum" in text


def test_an_error_list_is_shown_short_and_first_lines_only() -> None:
    """A stack trace in the CLI's errors stays in the log: the thread gets a short line."""
    trace = "TypeError: x is undefined\n    at foo (/usr/lib/node_modules/claude/cli.js:1:2)"
    text = policy.turn_error_answer("error_during_execution", "", (trace, "y" * 1000))
    assert "TypeError: x is undefined" in text
    assert "cli.js" not in text
    assert "\n" not in text
    assert len(text) < 400


def test_empty_answers_get_a_placeholder() -> None:
    """Mattermost refuses empty posts."""
    assert policy.non_empty("  \n") == protocol.EMPTY_ANSWER
    assert policy.non_empty("ok") == "ok"
    assert policy.context_lost("x").startswith(policy.CONTEXT_LOST_NOTE)
