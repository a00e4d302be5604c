"""Controls in the thread: how fast approvals, reactions, ``!status`` and ``!stop`` act.

The whole tree against the emulator (``MMCLAUDE_LOG_LEVEL=DEBUG``: the worker's ``hop.*``
lines carry ``time.monotonic_ns()``, the same clock as the emulator's marks):

* can_use_tool → approval post visible: the worker read the CLI's request (``hop.can_use_tool``)
  → the emulator created the approval post;
* reaction → decision written to claude: the emulator stored the reaction → the worker wrote
  the control_response (``hop.decision_written``);
* ``!status`` reply while a turn runs: the command post created → its reply post created;
* ``!stop`` → the turn's result: the command post created → the worker read the interrupted
  turn's ``result`` (``hop.claude_result``).

    python -m benchmarks.controls [--reps 10] [--claude fake|real|both]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from benchmarks.common import line, read_hops, ready_tree, save, summary
from devtools.harness import Tree, open_tree


def approval_post(tree: Tree, thread: str, prompt_id: str) -> dict[str, Any] | None:
    posts: list[dict[str, Any]] = tree.mm.posts(root_id=thread)
    for post in posts:
        props = post.get("props") or {}
        if props.get("mmclaude_approval") and props.get("mmclaude_prompt") == prompt_id:
            return post
    return None


async def wait_post(tree: Tree, thread: str, prompt_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while (post := approval_post(tree, thread, prompt_id)) is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no approval post for {prompt_id}")
        await asyncio.sleep(0.01)
    return post


async def measure(real: bool, reps: int) -> dict[str, Any]:
    extra = {"MMCLAUDE_LOG_LEVEL": "DEBUG"}
    figures: dict[str, Any] = {}
    async with open_tree(real_claude=real, extra_env=extra) as tree:
        thread, watch = await ready_tree(tree, timeout=120)
        mm = tree.mm
        reacted: dict[str, float] = {}  # prompt id -> monotonic reaction stored
        posted_at: dict[str, float] = {}  # approval prompt id -> approval post created
        for rep in range(reps):
            text = f"BASH:touch rep-{rep}.txt" if real else f"approve rep {rep} APPROVE"
            prompt = await mm.post_as("alice", text, root_id=thread)
            post = await wait_post(tree, thread, prompt["id"])
            posted_at[prompt["id"]] = watch.timing(post["id"]).created_at
            await asyncio.sleep(0.05)
            reacted[prompt["id"]] = time.monotonic()
            await mm.react_as("alice", post["id"], "+1")
            await watch.answer(prompt["id"], timeout=60)
        status_ms: list[float] = []
        stop_ms: list[float] = []
        stops: dict[str, float] = {}  # the stopped prompt's id -> !stop post created
        for rep in range(reps):
            slow = await mm.post_as("alice", f"slow {rep} SLOW:20", root_id=thread)
            await asyncio.sleep(1.5)  # the turn runs
            command = await mm.post_as("alice", "!status", root_id=thread)
            created = watch.timing(command["id"]).created_at
            status_ms.append((await watch.answer(command["id"]) - created) * 1000)
            stop = await mm.post_as("alice", "!stop", root_id=thread)
            stops[slow["id"]] = watch.timing(stop["id"]).created_at
            await watch.answer(slow["id"], timeout=60)
            await watch.answer(stop["id"], timeout=60)
        await asyncio.sleep(0.5)  # the last log lines
        hops = read_hops(tree.log_path)
        visible = [
            (posted_at[p] - hops[p]["can_use_tool"] / 1e9) * 1000
            for p in posted_at
            if "can_use_tool" in hops.get(p, {})
        ]
        decided = [
            (hops[p]["decision_written"] / 1e9 - reacted[p]) * 1000
            for p in reacted
            if "decision_written" in hops.get(p, {})
        ]
        for p, at in stops.items():
            if "claude_result" in hops.get(p, {}):
                stop_ms.append((hops[p]["claude_result"] / 1e9 - at) * 1000)
        figures["can_use_tool_to_post_ms"] = summary(visible)
        figures["reaction_to_decision_ms"] = summary(decided)
        figures["status_reply_while_running_ms"] = summary(status_ms)
        figures["stop_to_result_ms"] = summary(stop_ms)
    for key, label in (
        ("can_use_tool_to_post_ms", "can_use_tool → approval post visible"),
        ("reaction_to_decision_ms", "reaction → decision written to claude"),
        ("status_reply_while_running_ms", "!status reply while a turn runs"),
        ("stop_to_result_ms", "!stop → the turn's result"),
    ):
        print(line(label, figures[key]))
    return figures


async def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.controls")
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--claude", choices=("fake", "real", "both"), default="both")
    args = parser.parse_args(argv)
    figures: dict[str, Any] = {}
    for which in ("fake", "real") if args.claude == "both" else (args.claude,):
        print(f"with the {which} claude:")
        figures[which] = await measure(which == "real", args.reps)
    save("controls", figures, argv)
    return figures


if __name__ == "__main__":
    asyncio.run(main())
