"""The chaos checker as a pure function: each kind of fault it must see, and the verdict."""

from __future__ import annotations

from typing import Any

from devtools.chaos import ChaosReport, check


def answer(post_id: str, text: str, at: int, part: int = 1, parts: int = 1) -> dict[str, Any]:
    return {
        "id": f"a-{post_id}-{part}-{at}",
        "message": text,
        "create_at": at,
        "props": {"mmclaude_reply_to": post_id, "mmclaude_part": part, "mmclaude_parts": parts},
    }


POSTED = [("p1", "chaos message 1"), ("p2", "chaos message 2 SLOW:0.40")]
CREATED = {"p1": 1000, "p2": 1001}
AUTHORS = {"p1": "alice", "p2": "alice"}


def judge(grouped: dict[str, list[dict[str, Any]]]) -> ChaosReport:
    report = ChaosReport(seed=1, duration=1.0, posts=len(POSTED))
    check(grouped, POSTED, CREATED, AUTHORS, report)
    return report


def test_right_answers_in_order_pass() -> None:
    report = judge(
        {
            "p1": [answer("p1", "echo[chaos message 1]", 2000)],
            "p2": [answer("p2", "echo[chaos message 2 SLOW:0.40]", 2001)],
        }
    )
    assert report.answered == 2
    assert report.lost == report.duplicated == report.out_of_order == report.mismatched == []
    assert report.ok
    assert "verdict       PASS" in report.render()


def test_a_wrong_answer_fails_the_verdict() -> None:
    """An answer whose text is not about its post is a failure, not a footnote."""
    report = judge(
        {
            "p1": [answer("p1", "echo[chaos message 1]", 2000)],
            "p2": [answer("p2", "echo[chaos message 1]", 2001)],
        }
    )
    assert report.mismatched == ["p2"]
    assert report.lost == report.duplicated == report.out_of_order == []
    assert not report.ok
    assert "verdict       FAIL" in report.render()
    assert "p2" in report.render()


def test_lost_duplicated_and_out_of_order_are_each_seen() -> None:
    lost = judge({"p1": [answer("p1", "echo[chaos message 1]", 2000)]})
    assert lost.lost == ["p2"]
    assert not lost.ok

    twice = judge(
        {
            "p1": [
                answer("p1", "echo[chaos message 1]", 2000),
                answer("p1", "echo[chaos message 1]", 2002),
            ],
            "p2": [answer("p2", "echo[chaos message 2]", 2001)],
        }
    )
    assert twice.duplicated == ["p1"]
    assert not twice.ok

    swapped = judge(
        {
            "p1": [answer("p1", "echo[chaos message 1]", 2005)],
            "p2": [answer("p2", "echo[chaos message 2]", 2001)],
        }
    )
    assert swapped.out_of_order == ["p1"]
    assert not swapped.ok


def test_a_split_answer_counts_once() -> None:
    report = judge(
        {
            "p1": [
                answer("p1", "echo[chaos ", 2000, part=1, parts=2),
                answer("p1", "message 1]", 2001, part=2, parts=2),
            ],
            "p2": [answer("p2", "echo[chaos message 2]", 2002)],
        }
    )
    assert report.ok, report.render()
