"""Helpers for tests that run the whole tree (emulator + fake claude + `mmclaude run`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from devtools.harness import Tree, answer_of, open_tree

Scenario = Callable[[Tree, str], Awaitable[None]]


def run_tree(scenario: Scenario, **options: Any) -> None:
    """Start the tree with the fake claude, wait until it serves its thread, run ``scenario``."""

    async def main() -> None:
        async with open_tree(real_claude=False, **options) as tree:
            thread = await tree.wait_thread(timeout=30)
            await tree.wait_status(lambda s: s.claude.pid and s.gateway.state == "running", 30)
            await scenario(tree, thread)

    asyncio.run(main())


async def ask(tree: Tree, thread: str, text: str, timeout: float = 30.0) -> str:
    """Post ``text`` as alice in the thread and return the whole answer."""
    post = await tree.mm.post_as("alice", text, root_id=thread)
    return await answer_of(tree.mm, post["id"], timeout)
