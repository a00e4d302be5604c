"""``mmclaude chaos``: kill processes at random while a user posts; prove nothing is lost,
duplicated or reordered.

The whole tree runs against the built-in emulator (fake claude, or the real CLI against the
fake Anthropic API). A simulated user posts at a steady rate while, at seeded random moments,
the gateway, the worker or the claude child is SIGKILLed (pids from the status file that
``mmclaude status --json`` prints), the WebSocket is dropped or refused for a while, REST
answers 500/429 bursts, and some turns are slow. Then it waits (bounded) for the system to
settle and reports. Exit 0 only when lost, duplicated and out of order are all 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from supervisor.harness import Tree, open_tree, replies
from supervisor.process import descendants, pid_alive

__all__ = ["ChaosReport", "chaos", "run_chaos"]

KILLS = ("gateway", "worker", "claude")
ACTIONS = (
    ("gateway", 0.22),
    ("worker", 0.22),
    ("claude", 0.22),
    ("drop_ws", 0.10),
    ("refuse_ws", 0.08),
    ("rest_500", 0.08),
    ("rest_429", 0.08),
)


@dataclass
class ChaosReport:
    seed: int
    duration: float
    posts: int = 0
    answered: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    out_of_order: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    attachments: int = 0  # prompts posted with a file
    attachment_errors: list[str] = field(default_factory=list)  # not saved, or not once
    activity_posts: int = 0
    activity_doubled: list[str] = field(default_factory=list)  # prompts with > 1 activity post
    kills: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KILLS, 0))
    faults: dict[str, int] = field(default_factory=dict)
    recovery: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KILLS})
    leftover_pids: list[int] = field(default_factory=list)
    settle_s: float = 0.0
    log_path: str = ""

    @property
    def ok(self) -> bool:
        return not (
            self.lost
            or self.duplicated
            or self.out_of_order
            or self.leftover_pids
            or self.attachment_errors
            or self.activity_doubled
        )

    def render(self) -> str:
        def rec(values: list[float]) -> str:
            if not values:
                return "-"
            return f"median {statistics.median(values):.2f} s, max {max(values):.2f} s"

        lines = [
            f"chaos report (seed {self.seed}, {self.duration:.0f} s of chaos, "
            f"settled in {self.settle_s:.1f} s)",
            f"  posts         {self.posts}",
            f"  answered      {self.answered}",
            f"  lost          {len(self.lost)}",
            f"  duplicated    {len(self.duplicated)}  (a split answer counts once)",
            f"  out of order  {len(self.out_of_order)}",
            f"  wrong answer  {len(self.mismatched)}  (answer text not about its post)",
            f"  attachments   {self.attachments} posted, {len(self.attachment_errors)} not "
            "saved once or not given to Claude once",
            f"  activity      {self.activity_posts} activity posts, "
            f"{len(self.activity_doubled)} prompts with more than one",
            "  kills         "
            + ", ".join(f"{role} {n}" for role, n in self.kills.items())
            + f" ({sum(self.kills.values())} in all)",
            "  faults        "
            + (", ".join(f"{k} {v}" for k, v in sorted(self.faults.items())) or "-"),
        ]
        for role in KILLS:
            lines.append(f"  recovery {role:<8} {rec(self.recovery[role])} (kill → next answer)")
        if self.leftover_pids:
            lines.append(f"  LEFTOVER PROCESSES after stop: {self.leftover_pids}")
        verdict = "PASS" if self.ok else "FAIL"
        lines.append(f"  verdict       {verdict}")
        if not self.ok:
            ids = (
                self.lost
                + self.duplicated
                + self.out_of_order
                + self.attachment_errors
                + self.activity_doubled
            )[:5]
            lines.append(
                f"  look at: {self.log_path} (JSON lines); grep the post ids {ids} to follow "
                "each one through prompt.queued → prompt.sent → prompt.accepted → turn.started → "
                "turn.complete → answer.received → answer.posted → answer.delivered"
            )
        return "\n".join(lines)


async def _user(
    tree: Tree,
    thread: str,
    rng: random.Random,
    rate: float,
    until: float,
    posted: list[tuple[str, str]],
    created: dict[str, int],
    slow_ok: bool,
    files: dict[str, str],
) -> None:
    # Long turns and attachments draw from their own generator: the seeded kills and faults
    # of a given seed stay what they were before these were added.
    extras = random.Random(rng.getstate()[1][0])
    i = 0
    while time.monotonic() < until:
        i += 1
        text = f"chaos message {i}"
        if slow_ok and rng.random() < 0.1:
            text += f" SLOW:{rng.uniform(0.3, 1.5):.2f}"
        elif slow_ok and extras.random() < 0.06:
            text += f" SLOW:{extras.uniform(2.5, 4.0):.2f}"  # long enough for an activity post
        user = "alice" if rng.random() < 0.8 else "bob"
        file_ids: list[str] = []
        name = ""
        if extras.random() < 0.12:
            name = f"chaos-{i}.txt"
            with contextlib.suppress(Exception):
                info = tree.mm.upload_as(user, name, f"attachment {i}\n".encode())
                file_ids = [info["id"]]
        try:
            post = await tree.mm.post_as(user, text, root_id=thread, file_ids=file_ids)
        except Exception as exc:  # the emulator's own fault injection may refuse
            print(f"chaos: posting failed ({exc}); retrying", file=sys.stderr)
            await asyncio.sleep(0.1)
            continue
        posted.append((post["id"], text))
        created[post["id"]] = int(post["create_at"])
        if file_ids:
            files[post["id"]] = name
        await asyncio.sleep(rng.expovariate(rate))


def _pid_of(status: dict[str, Any] | None, role: str) -> int | None:
    if status is None:
        return None
    entry = status.get(role) or {}
    pid = entry.get("pid")
    return int(pid) if pid else None


async def _monkey(
    tree: Tree,
    thread: str,
    rng: random.Random,
    until: float,
    report: ChaosReport,
    kill_times: list[tuple[str, float]],
) -> None:
    names = [a for a, _ in ACTIONS]
    weights = [w for _, w in ACTIONS]
    mm = tree.mm
    while True:
        await asyncio.sleep(rng.uniform(1.5, 4.5))
        if time.monotonic() >= until:
            return
        action = rng.choices(names, weights)[0]
        if action in KILLS:
            pid = _pid_of(tree.status(), action)
            if pid is None:
                continue  # that role is down right now (restarting): pick again later
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                report.kills[action] += 1
                kill_times.append((action, time.monotonic()))
                print(f"chaos: SIGKILL {action} pid {pid}", file=sys.stderr)
            continue
        report.faults[action] = report.faults.get(action, 0) + 1
        print(f"chaos: fault {action}", file=sys.stderr)
        if action == "drop_ws":
            mm.drop_sockets()
        elif action == "refuse_ws":
            mm.refuse_sockets(rng.uniform(1.0, 4.0))
        elif action == "rest_500":
            mm.fail_posts(rng.randint(1, 4), status=500)
        elif action == "rest_429":
            mm.fail_posts(rng.randint(1, 3), status=429, retry_after=1)


def _check(
    mm: Any,
    thread: str,
    posted: list[tuple[str, str]],
    created: dict[str, int],
    report: ChaosReport,
) -> None:
    grouped = replies(mm, thread)
    first_answer_at: list[tuple[tuple[int, str], str]] = []  # (answer's thread order, post)
    for post_id, text in posted:
        parts = grouped.get(post_id, [])
        if not parts:
            report.lost.append(post_id)
            continue
        report.answered += 1
        numbers = [int((p.get("props") or {}).get("mmclaude_part", 1) or 1) for p in parts]
        expected = int((parts[0].get("props") or {}).get("mmclaude_parts", 1) or 1)
        if len(numbers) != len(set(numbers)) or len(parts) > expected:
            report.duplicated.append(post_id)
        body = "".join(p["message"] for p in parts)
        if text.split(" SLOW:")[0] not in body:
            report.mismatched.append(post_id)
        first = min(parts, key=lambda p: (p["create_at"], p["id"]))
        first_answer_at.append(((first["create_at"], first["id"]), post_id))
    # Mattermost orders a thread by (create_at in ms, id): two posts made in the same
    # millisecond are ordered by id, not by which call returned first.
    order = sorted((pid for pid, _ in posted if pid in grouped), key=lambda p: (created[p], p))
    answered_order = [pid for _, pid in sorted(first_answer_at)]
    rank = {pid: i for i, pid in enumerate(order)}
    highest = -1
    for pid in answered_order:
        if rank[pid] < highest:
            report.out_of_order.append(pid)
        highest = max(highest, rank[pid])


def _check_files_and_activity(
    tree: Any, thread: str, files: dict[str, str], report: ChaosReport
) -> None:
    """Every attachment saved once and named once in what Claude got (the fake echoes its
    prompt); at most one activity post per prompt, never one that claims to be an answer."""
    grouped = replies(tree.mm, thread)
    workdir = Path(tree.env.get("CLAUDE_WORKDIR", ""))
    report.attachments = len(files)
    for post_id, name in files.items():
        folder = workdir / ".mmclaude" / "uploads" / post_id
        saved = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
        body = "".join(p["message"] for p in grouped.get(post_id, []))
        path = f".mmclaude/uploads/{post_id}/{name}"
        if saved != [".manifest.json", name] or (
            not tree.claude.real and grouped.get(post_id) and body.count(path) != 1
        ):
            report.attachment_errors.append(post_id)
    per_prompt: dict[str, int] = {}
    for post in tree.mm.posts(root_id=thread):
        props = post.get("props") or {}
        target = props.get("mmclaude_activity_for")
        if target:
            report.activity_posts += 1
            per_prompt[str(target)] = per_prompt.get(str(target), 0) + 1
            if props.get("mmclaude_reply_to"):
                report.activity_doubled.append(str(target))
    report.activity_doubled += [pid for pid, n in per_prompt.items() if n > 1]


def _recovery(
    mm: Any, thread: str, kill_times: list[tuple[str, float]], report: ChaosReport
) -> None:
    answers = sorted(
        p["_mono"]
        for p in _posts_with_mono(mm, thread)
        if (p.get("props") or {}).get("mmclaude_reply_to")
    )
    for role, killed_at in kill_times:
        nxt = next((t for t in answers if t > killed_at), None)
        if nxt is not None:
            report.recovery[role].append(nxt - killed_at)


def _posts_with_mono(mm: Any, thread: str) -> list[dict[str, Any]]:
    """Posts with the emulator's monotonic creation time (wall-clock create_at as fallback)."""
    out = []
    offset = time.monotonic() - time.time()
    for post in mm.posts(root_id=thread):
        mono = mm.created_monotonic(post["id"]) if hasattr(mm, "created_monotonic") else None
        out.append(
            {**post, "_mono": mono if mono is not None else post["create_at"] / 1000 + offset}
        )
    return out


async def chaos(
    *, duration: float, seed: int, rate: float, real_claude: bool, settle_timeout: float = 120.0
) -> ChaosReport:
    """Run one seeded chaos session and return its report."""
    rng = random.Random(seed)
    report = ChaosReport(seed=seed, duration=duration)
    extra_env = {
        "MMCLAUDE_MAX_RESTARTS": "1000",  # chaos kills far more often than a real crash loop
        "MMCLAUDE_LOG_LEVEL": "DEBUG",  # every step of every post, for the report's pointers
    }
    async with open_tree(real_claude=real_claude, extra_env=extra_env, keep_scratch=True) as tree:
        report.log_path = str(tree.log_path)
        thread = await tree.wait_thread(timeout=60)
        await tree.wait_status(lambda s: s["claude"]["pid"] and s["gateway"]["pid"], 60)
        posted: list[tuple[str, str]] = []
        created: dict[str, int] = {}
        files: dict[str, str] = {}
        kill_times: list[tuple[str, float]] = []
        until = time.monotonic() + duration
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(
                _user(
                    tree,
                    thread,
                    rng,
                    rate,
                    until,
                    posted,
                    created,
                    slow_ok=not tree.claude.real,
                    files=files,
                )
            )
            tasks.create_task(_monkey(tree, thread, rng, until, report, kill_times))
        settle_start = time.monotonic()
        deadline = settle_start + settle_timeout
        while time.monotonic() < deadline:
            grouped = replies(tree.mm, thread)
            if all(pid in grouped for pid, _ in posted):
                await asyncio.sleep(3.0)  # let late duplicates, if any, show up
                break
            await asyncio.sleep(0.2)
        report.settle_s = time.monotonic() - settle_start
        report.posts = len(posted)
        _check(tree.mm, thread, posted, created, report)
        _check_files_and_activity(tree, thread, files, report)
        _recovery(tree.mm, thread, kill_times, report)
        tree_pids = descendants(tree.process.pid) | {tree.process.pid}
        tree.stop()
        await asyncio.sleep(0.5)
        report.leftover_pids = sorted(p for p in tree_pids if pid_alive(p))
    return report


def run_chaos(*, duration: float, seed: int, rate: float, real_claude: bool) -> int:
    """The CLI entry: run, print the report, exit 0 only on a clean run."""
    report = asyncio.run(chaos(duration=duration, seed=seed, rate=rate, real_claude=real_claude))
    print(report.render())
    return 0 if report.ok else 1
