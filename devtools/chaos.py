"""``mmclaude chaos``: kill processes at random while a user posts; prove nothing is lost,
duplicated or reordered.

The whole tree runs against the built-in emulator (fake claude, or the real CLI against the
fake Anthropic API). A simulated user posts at a steady rate while, at seeded random moments,
the gateway, the worker or the claude child is SIGKILLed (pids from the status file that
``mmclaude status --json`` prints), the WebSocket is dropped or refused for a while, REST
answers 500/429 bursts, and some turns are slow. With the fake claude some turns ask a tool
approval (the fake claude's APPROVE; with the real CLI the fake API's ``BASH:`` asking to run
a command), which a simulated allowed user answers with a reaction (+1, ✅ or -1),
sometimes late, sometimes never (then it times out); the user also sends ``!status`` and
``!stop`` now and then. Then it waits (bounded) for the system to settle and reports. Exit 0
only when nothing is lost, duplicated, out of order, answered with the wrong text, decided
wrongly (an answer whose outcome is not the decision made on its prompt's last approval post)
or left waiting (an approval post still claiming to wait once everything is answered), and no
process is left behind.

"In order" is per user: the worker shares turns fairly between users (a user's posts keep
their order; after five turns in a row of one user, another user's waiting post goes next),
so alice's answers must come in the order of alice's posts and bob's in the order of bob's.
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
from typing import TYPE_CHECKING, Any

from devtools.harness import Tree, open_tree, replies
from protocol.procfs import descendants, pid_alive

if TYPE_CHECKING:
    from supervisor.status import Status

__all__ = ["ChaosReport", "chaos", "check", "run_chaos"]

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
    commands: int = 0
    approval_turns: int = 0
    approval_posts: int = 0
    reactions: dict[str, int] = field(default_factory=dict)
    wrong_decision: list[str] = field(default_factory=list)
    left_waiting: list[str] = field(default_factory=list)
    settle_s: float = 0.0
    log_path: str = ""

    @property
    def ok(self) -> bool:
        return not (
            self.lost
            or self.duplicated
            or self.out_of_order
            or self.mismatched
            or self.leftover_pids
            or self.wrong_decision
            or self.left_waiting
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
            f"  commands      {self.commands} (!status, !stop; each answered like a post)",
            f"  approvals     {self.approval_turns} turns, {self.approval_posts} posts, "
            "reactions "
            + (", ".join(f"{k} {v}" for k, v in sorted(self.reactions.items())) or "-"),
            f"  wrong decision {len(self.wrong_decision)}  (outcome not the one decided)",
            f"  left waiting  {len(self.left_waiting)}  (approval posts still pending at the end)",
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
                + self.mismatched
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
    authors: dict[str, str],
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
        roll = rng.random()
        if slow_ok and roll < 0.1:
            text += f" SLOW:{rng.uniform(0.3, 1.5):.2f}"
        elif roll < 0.2:
            # A turn that asks a tool approval and waits for it.
            text += " APPROVE" if slow_ok else f" BASH:echo {text} | tee chaos-{i}.txt"
        elif roll < 0.23:
            text = "!stop"
        elif roll < 0.26:
            text = "!status"
        elif slow_ok and extras.random() < 0.06:
            text += f" SLOW:{extras.uniform(2.5, 4.0):.2f}"  # long enough for an activity post
        user = "alice" if rng.random() < 0.8 else "bob"
        file_ids: list[str] = []
        name = ""
        plain = not text.startswith("!") and " APPROVE" not in text and " BASH:" not in text
        if extras.random() < 0.12 and plain:  # attachments ride on ordinary prompts only
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
        authors[post["id"]] = user
        if file_ids:
            files[post["id"]] = name
        await asyncio.sleep(rng.expovariate(rate))


APPROVAL_CHOICES = (("+1", 0.45), ("white_check_mark", 0.15), ("-1", 0.25), ("", 0.15))


def _props(post: dict[str, Any]) -> dict[str, Any]:
    value = post.get("props")
    return value if isinstance(value, dict) else {}


async def _approver(
    tree: Tree,
    thread: str,
    rng: random.Random,
    reacted: dict[str, str],
    report: ChaosReport,
    stop: asyncio.Event,
) -> None:
    """An allowed user who answers approval posts by reaction: +1, ✅, -1, or never; after
    a random delay, sometimes late (the request may have expired or timed out by then)."""
    names = [n for n, _ in APPROVAL_CHOICES]
    weights = [w for _, w in APPROVAL_CHOICES]
    seen: set[str] = set()
    waiting: set[asyncio.Task[None]] = set()

    async def react(post_id: str, emoji: str, delay: float) -> None:
        await asyncio.sleep(delay)
        with contextlib.suppress(Exception):  # the emulator's fault injection may refuse
            await tree.mm.react_as("alice", post_id, emoji)
            reacted[post_id] = emoji

    while not stop.is_set():
        for post in tree.mm.posts(root_id=thread):
            if post["id"] in seen or not _props(post).get("mmclaude_approval"):
                continue
            seen.add(post["id"])
            emoji = rng.choices(names, weights)[0]
            report.reactions[emoji or "none"] = report.reactions.get(emoji or "none", 0) + 1
            if emoji:
                delay = rng.uniform(0.0, 6.0) if rng.random() < 0.2 else rng.uniform(0.0, 1.0)
                task = asyncio.create_task(react(post["id"], emoji, delay))
                waiting.add(task)
                task.add_done_callback(waiting.discard)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.2)
    for task in waiting:
        task.cancel()


def _check_approvals(
    mm: Any,
    thread: str,
    posted: list[tuple[str, str]],
    reacted: dict[str, str],
    report: ChaosReport,
) -> None:
    """Each APPROVE turn's answer must match the decision on its last approval post, and no
    approval post may still claim to wait."""
    posts = mm.posts(root_id=thread)
    by_prompt: dict[str, list[dict[str, Any]]] = {}
    for post in posts:
        props = _props(post)
        if props.get("mmclaude_approval"):
            report.approval_posts += 1
            by_prompt.setdefault(str(props.get("mmclaude_prompt")), []).append(post)
            if "without an answer.)" in post["message"]:  # the pending text
                report.left_waiting.append(post["id"])
    answers = replies(mm, thread)
    for post_id, text in posted:
        if not text.endswith(" APPROVE") and " BASH:" not in text:
            continue
        report.approval_turns += 1
        body = "".join(p["message"] for p in answers.get(post_id, []))
        mine = sorted(by_prompt.get(post_id, []), key=lambda p: (p["create_at"], p["id"]))
        if not body or "Stopped by" in body or not mine:
            continue  # stopped (withdrawn), or lost (counted above)
        last = mine[-1]
        outcome = last["message"]
        reaction = reacted.get(last["id"])
        if body.startswith("tool_result: "):  # the real CLI ran the command
            ok = ("Allowed once" in outcome and reaction == "+1") or (
                "Allowed by" in outcome and reaction == "white_check_mark"
            )
        elif body.startswith("tool_result[error]:") and "in time" in body:
            ok = "No answer in time" in outcome
        elif body.startswith("tool_result[error]:"):
            ok = "Denied by" in outcome and reaction == "-1"
        elif body.endswith("[allowed: approved-run]"):
            ok = "Allowed once" in outcome and reacted.get(last["id"]) == "+1"
        elif body.endswith("[allowed always: approved-run]"):
            ok = "Allowed by" in outcome and reacted.get(last["id"]) == "white_check_mark"
        elif "[denied: The user did not answer in time" in body:
            ok = "No answer in time" in outcome
        elif "[denied:" in body:
            ok = "Denied by" in outcome and reacted.get(last["id"]) == "-1"
        else:
            ok = body.startswith("⚠️")  # an error answer (every try used)
        if not ok:
            report.wrong_decision.append(post_id)


def _pid_of(status: Status | None, role: str) -> int | None:
    if status is None:
        return None
    if role == "claude":
        return status.claude.pid or None
    return (status.gateway if role == "gateway" else status.worker).pid or None


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


def check(
    grouped: dict[str, list[dict[str, Any]]],
    posted: list[tuple[str, str]],
    created: dict[str, int],
    authors: dict[str, str],
    report: ChaosReport,
) -> None:
    """Judge the answers: ``grouped`` is the bot's replies by the post they answer (as
    ``replies`` returns them), ``posted`` the user's (post id, text) in posting order and
    ``created`` each post's create_at. Fills the report's counts; no I/O."""
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
        if text.startswith("!"):
            report.commands += 1
        elif " BASH:" in text or text.endswith(" APPROVE"):
            pass  # an approval turn: its answer is checked against the decision below
        elif text.split(" SLOW:")[0] not in body and "Stopped by" not in body:
            report.mismatched.append(post_id)
        first = min(parts, key=lambda p: (p["create_at"], p["id"]))
        first_answer_at.append(((first["create_at"], first["id"]), post_id))
    # Mattermost orders a thread by (create_at in ms, id): two posts made in the same
    # millisecond are ordered by id, not by which call returned first.
    # Each user's answers in the order of that user's posts (turns are shared fairly
    # between users, so the order across users is not the order of the posts). Commands are
    # answered beside the queue (before the running turn's answer, by design): the order
    # promise is about the answers to prompts.
    commands = {pid for pid, text in posted if text.startswith("!")}
    order = sorted(
        (pid for pid, _ in posted if pid in grouped and pid not in commands),
        key=lambda p: (created[p], p),
    )
    answered_order = [pid for _, pid in sorted(first_answer_at) if pid not in commands]
    rank = {pid: i for i, pid in enumerate(order)}
    highest: dict[str, int] = {}
    for pid in answered_order:
        user = authors.get(pid, "")
        if rank[pid] < highest.get(user, -1):
            report.out_of_order.append(pid)
        highest[user] = max(highest.get(user, -1), rank[pid])


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
        "MMCLAUDE_APPROVAL_TIMEOUT": "4",  # a request nobody answers is denied soon
        "MMCLAUDE_MAX_RESTARTS": "1000",  # chaos kills far more often than a real crash loop
        "MMCLAUDE_LOG_LEVEL": "DEBUG",  # every step of every post, for the report's pointers
    }
    async with open_tree(real_claude=real_claude, extra_env=extra_env, keep_scratch=True) as tree:
        report.log_path = str(tree.log_path)
        thread = await tree.wait_thread(timeout=60)
        await tree.wait_status(lambda s: s.claude.pid and s.gateway.pid, 60)
        posted: list[tuple[str, str]] = []
        created: dict[str, int] = {}
        authors: dict[str, str] = {}
        files: dict[str, str] = {}
        kill_times: list[tuple[str, float]] = []
        until = time.monotonic() + duration
        reacted: dict[str, str] = {}
        approving = asyncio.Event()
        approver = asyncio.create_task(
            _approver(tree, thread, random.Random(seed + 1), reacted, report, approving)
        )
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
                    authors,
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
        approving.set()
        await approver
        report.posts = len(posted)
        check(replies(tree.mm, thread), posted, created, authors, report)
        _check_approvals(tree.mm, thread, posted, reacted, report)
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
