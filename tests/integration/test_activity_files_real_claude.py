"""Live activity and image attachments with the pinned real Claude Code CLI against the fake
Anthropic API: the whole path (emulator → gateway → worker → claude → fake API and back)."""

from __future__ import annotations

import asyncio
import base64
from typing import TYPE_CHECKING, Any

import pytest

from emulators.anthropic_api import REAL_CLAUDE_ARGS, real_claude_env
from emulators.anthropic_api.server import open_anthropic_api
from emulators.mattermost import open_emulator
from tests.integration.test_activity_files import PNG, activity_posts, ask_with_files
from tests.integration.test_gateway import Rig
from tests.integration.test_worker_real_claude import pinned_claude
from tests.support import REPO, async_wait_for

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from pathlib import Path

    from emulators.anthropic_api import FakeAnthropicApi
    from tests.support import ProcessGroup

pytestmark = [pytest.mark.slow, pytest.mark.real_claude]


class RealRig(Rig):
    api_env: dict[str, str]

    def env(self) -> dict[str, str]:
        return {**self.api_env, "PYTHONPATH": str(REPO)}


def run_real(
    scenario: Callable[[RealRig, FakeAnthropicApi], Awaitable[None]],
    state_dir: Path,
    procs: ProcessGroup,
) -> None:
    claude = pinned_claude()
    home = state_dir / "home"
    home.mkdir()

    async def main() -> None:
        async with open_anthropic_api(port=0) as api, open_emulator(port=0) as mm:
            rig = RealRig(mm, state_dir, procs)
            rig.api_env = real_claude_env(api.url, str(home))
            rig.start_worker(claude_path=claude, claude_args=REAL_CLAUDE_ARGS)
            rig.start_gateway("g1")
            try:
                await scenario(rig, api)
            finally:
                procs.close()

    asyncio.run(asyncio.wait_for(main(), 150))


def image_blocks(api: FakeAnthropicApi) -> list[dict[str, Any]]:
    found = []
    for body in api.requests:
        for message in body.get("messages") or []:
            content = message.get("content") if isinstance(message, dict) else None
            for block in content if isinstance(content, list) else []:
                if isinstance(block, dict) and block.get("type") == "image":
                    found.append(block)
    return found


def test_real_cli_streams_into_the_activity_post_and_gets_the_image(
    short_tmp: Path, procs: ProcessGroup
) -> None:
    async def scenario(rig: RealRig, api: FakeAnthropicApi) -> None:
        post = await rig.ask("SLOW:6 dripping slowly")

        def partial() -> dict[str, Any] | None:
            assert not rig.replies(post["id"]), "the answer came before any activity text"
            return next(
                (p for p in activity_posts(rig, post["id"]) if "echo[" in p["message"]), None
            )

        await async_wait_for(partial, 60, "streamed text in the activity post")
        [answer] = await rig.answer(post["id"], timeout=60)
        assert "dripping slowly" in answer["message"]
        await async_wait_for(
            lambda: [p for p in activity_posts(rig, post["id"]) if p["message"].startswith("✅")],
            15,
            "the activity post reduced to its summary",
        )
        assert "$" in activity_posts(rig, post["id"])[0]["message"]  # the cost is shown

        shot = await ask_with_files(rig, "what is in this picture?", [("shot.png", PNG)])
        await rig.answer(shot["id"], timeout=60)
        blocks = image_blocks(api)
        assert blocks, "no image block reached the API"
        assert blocks[-1]["source"]["media_type"] == "image/png"
        assert base64.b64decode(blocks[-1]["source"]["data"]) == PNG

    run_real(scenario, short_tmp, procs)
