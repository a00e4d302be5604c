"""The bot's own flows in the demo page, in a real (headless) Chromium, on the whole tree with
the pinned real Claude Code CLI against the fake Anthropic API: a tool approved with a click
(and ignored when mallory clicks), a slow turn's live activity post; and how the page sets the
bot's activity posts apart."""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from devtools.harness import Tree, answer_of, open_tree
from emulators.claude_cli import find_pinned_claude
from emulators.mattermost import open_emulator
from tests.browser.conftest import open_browser, open_page, screenshot

if TYPE_CHECKING:
    from collections.abc import Awaitable

pytestmark = pytest.mark.slow

pytest.importorskip("playwright", reason="playwright is in the test dependency group")
from playwright.async_api import expect  # noqa: E402

DEADLINE_S = 110


def run(scenario: Awaitable[None]) -> None:
    asyncio.run(asyncio.wait_for(scenario, DEADLINE_S))


def post_locator(post_id: str) -> str:
    return f'.post[data-post-id="{post_id}"]'


def props(post: dict[str, Any]) -> dict[str, Any]:
    value = post.get("props")
    return value if isinstance(value, dict) else {}


def real_cli() -> None:
    """The pinned Claude Code CLI must be there (npm ci): CI fails without it."""
    if find_pinned_claude() is None:
        if os.environ.get("CI"):
            pytest.fail("the pinned Claude Code CLI is missing (run `npm ci`)")
        pytest.skip("the pinned Claude Code CLI is not installed (node_modules/.bin/claude)")


async def log_line(tree: Tree, event: str, timeout: float, **fields: str) -> dict[str, Any]:
    """The first line of the tree's JSON log with message ``event`` and these fields."""
    deadline = time.monotonic() + timeout
    while True:
        for line in tree.log_path.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if (
                isinstance(record, dict)
                and record.get("message") == event
                and all(record.get(k) == v for k, v in fields.items())
            ):
                return record
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {event} {fields} in the log within {timeout} s")
        await asyncio.sleep(0.1)


async def offered(mm: Any, post_id: str, timeout: float = 30) -> None:
    """Once the bot's own 👍 ✅ 👎 are on its approval post, its gateway reads reactions."""
    deadline = time.monotonic() + timeout
    while True:
        [post] = [p for p in mm.posts() if p["id"] == post_id]
        if len((post.get("metadata") or {}).get("reactions") or []) >= 3:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"the bot never offered its reactions on {post_id}")
        await asyncio.sleep(0.05)


def test_a_tool_approved_with_a_click_runs_and_its_result_is_answered(chromium: str) -> None:
    """Alice asks for a Bash command (the real CLI asks can_use_tool); the approval post
    appears in the page with its buttons. Mallory's click is ignored by the bot; alice's
    "Allow once" runs the command, its output comes back in the answer, and the approval post
    is edited to say who allowed it."""
    real_cli()

    async def scenario() -> None:
        extra_env = {"MMCLAUDE_LOG_LEVEL": "DEBUG"}  # to see mallory's reaction ignored
        async with open_tree(real_claude=True, extra_env=extra_env) as tree:
            mm = tree.mm
            thread = await tree.wait_thread()
            async with open_browser(chromium) as browser, open_page(browser, mm.url) as page:
                await page.select_option("#user", label="alice")
                # A command that writes (the CLI runs read-only ones like a bare echo unasked).
                ran = Path(tree.env["CLAUDE_WORKDIR"]) / "ran.txt"
                command = "echo from-the-browser-$((6*7)) | tee ran.txt"
                prompt_text = f"BASH:{command}"
                await page.fill("#message", prompt_text)
                await page.click("#send")
                prompt = await mm.wait_for_post(lambda p: p["message"] == prompt_text, 30)
                assert prompt["root_id"] == thread
                approval = await mm.wait_for_post(
                    lambda p: (
                        props(p).get("mmclaude_prompt") == prompt["id"]
                        and bool(props(p).get("mmclaude_approval"))
                    ),
                    60,
                )
                shown = page.locator(post_locator(approval["id"]))
                await expect(shown.locator(".body")).to_contain_text("Bash")
                await expect(shown.locator(".body pre code")).to_contain_text(command)
                await expect(shown.locator(".kind-tag")).to_have_text("waiting for you")
                # The bot's own 👍 ✅ 👎 come once the gateway waits for reactions on it.
                await expect(shown.locator('.reaction[data-emoji="-1"]')).to_have_text("👎 1")
                allow = shown.locator('.approval button[data-approve="+1"]')

                # Mallory is not on the allowlist: her click is a reaction the bot ignores.
                await page.select_option("#user", label="mallory")
                await allow.click()
                mallory = mm.users["mallory"].id
                await expect(shown.locator('.reaction.mine[data-emoji="+1"]')).to_have_count(1)
                ignored = {"post_id": approval["id"], "user_id": mallory}
                await log_line(tree, "reaction.ignored", 30, **ignored)
                await expect(allow).to_be_visible()  # still waiting: nothing was decided
                assert not ran.exists()

                await page.select_option("#user", label="alice")
                await allow.click()
                answer = await answer_of(mm, prompt["id"], 60)
                assert answer == "tool_result: from-the-browser-42", answer
                assert ran.read_text().strip() == "from-the-browser-42"
                reply = await mm.wait_for_post(
                    lambda p: props(p).get("mmclaude_reply_to") == prompt["id"], 5
                )
                await expect(page.locator(post_locator(reply["id"]) + " .body")).to_have_text(
                    "tool_result: from-the-browser-42"
                )
                await expect(shown.locator(".body")).to_contain_text("Allowed once by @alice")
                await expect(shown.locator(".kind-tag")).to_have_text("decided")
                await expect(shown.locator(".approval button")).to_have_count(0)
                await screenshot(page, "approval-decided")

    run(scenario())


def test_an_activity_post_is_set_apart_live_then_as_its_summary(chromium: str) -> None:
    """A bot reply with props.mmclaude_activity_for is shown muted and tagged live while it
    shows the running view (⏳…), edits change it in place, and once reduced to its summary
    line it is tagged as activity; a user's post with the same props is an ordinary post."""

    async def scenario() -> None:
        async with open_emulator(port=0) as mm:
            root = await mm.post_as("claudebot", "The session is ready.")
            prompt = await mm.post_as("alice", "SLOW:5 think", root_id=root["id"])
            for_prompt = {"mmclaude_activity_for": prompt["id"]}
            activity = await mm.post_as(
                "claudebot", "⏳ Working… 2 s", root_id=root["id"], props=for_prompt
            )
            forged = await mm.post_as("mallory", "⏳ fake", root_id=root["id"], props=for_prompt)
            async with open_browser(chromium) as browser, open_page(browser, mm.url) as page:
                shown = page.locator(post_locator(activity["id"]))
                await expect(shown).to_have_class(re.compile(r"\bactivity-live\b"))
                await expect(shown.locator(".kind-tag")).to_have_text("live")
                assert (
                    await shown.locator(".body").evaluate("b => getComputedStyle(b).fontStyle")
                    == "italic"
                )
                await expect(page.locator(post_locator(forged["id"]))).not_to_have_class(
                    re.compile(r"\bactivity\b")
                )
                await mm.patch_as("claudebot", activity["id"], "⏳ Working… 3 s\n\nSo far")
                await expect(shown.locator(".body")).to_contain_text("So far")
                await mm.patch_as("claudebot", activity["id"], "✅ Done in 5.0 s · 0 tool calls")
                await expect(shown).to_have_class(re.compile(r"\bactivity-done\b"))
                await expect(shown.locator(".kind-tag")).to_have_text("activity")
                await expect(shown.locator(".body")).to_have_text("✅ Done in 5.0 s · 0 tool calls")

    run(scenario())


# Every text the page shows for the bot's activity posts, in order, with whether a post came
# after it then (the answer): recorded in the page itself, so no view can slip between polls.
RECORD_ACTIVITY = """() => {
    window.activitySeen = [];
    const look = () => {
        for (const node of document.querySelectorAll('.post.activity')) {
            const text = node.querySelector('.body').textContent;
            const id = node.dataset.postId;
            const mine = window.activitySeen.filter((s) => s.id === id);
            if (mine.length === 0 || mine[mine.length - 1].text !== text) {
                window.activitySeen.push({
                    id, text, live: node.classList.contains('activity-live'),
                    answered: node.nextElementSibling !== null,
                });
            }
        }
    };
    new MutationObserver(look).observe(
        document.getElementById('threads'), {childList: true, subtree: true, characterData: true});
    look();
}"""


def test_a_slow_turn_shows_a_live_activity_post_then_its_summary(chromium: str) -> None:
    """With MMCLAUDE_LIVE on (the default), a slow turn (the fake API drip-feeds its answer)
    gets an activity post that the page shows live, changing while the turn runs, and reduced
    to one summary line when the answer arrives. The thread also holds a decided approval: its
    screenshot is the README's."""
    real_cli()

    async def scenario() -> None:
        async with open_tree(real_claude=True, extra_env={"MMCLAUDE_LIVE": "true"}) as tree:
            mm = tree.mm
            thread = await tree.wait_thread()
            # A decided approval first, over the API (the page's clicks have their own test).
            asked = await mm.post_as(
                "alice", "BASH:echo hello from Bash | tee hello.txt", root_id=thread
            )
            approval = await mm.wait_for_post(
                lambda p: props(p).get("mmclaude_prompt") == asked["id"], 60
            )
            await offered(mm, approval["id"])
            await mm.react_as("alice", approval["id"], "+1")
            await answer_of(mm, asked["id"], 60)
            async with open_browser(chromium) as browser, open_page(browser, mm.url) as page:
                await page.evaluate(RECORD_ACTIVITY)
                await page.select_option("#user", label="alice")
                prompt_text = "SLOW:6 think it over slowly"
                await page.fill("#message", prompt_text)
                await page.press("#message", "Enter")
                prompt = await mm.wait_for_post(lambda p: p["message"] == prompt_text, 30)
                activity = await mm.wait_for_post(
                    lambda p: props(p).get("mmclaude_activity_for") == prompt["id"], 60
                )
                shown = page.locator(post_locator(activity["id"]))
                await expect(shown.locator(".kind-tag")).to_have_text("live")
                await screenshot(page, "activity-live")
                answer = await answer_of(mm, prompt["id"], 60)
                assert "think it over slowly" in answer
                await expect(shown).to_have_class(re.compile(r"\bactivity-done\b"))
                await expect(shown.locator(".kind-tag")).to_have_text("activity")
                await expect(shown.locator(".body")).to_have_text(
                    re.compile(r"^✅ Done in [\d.]+ s · 0 tool calls · \$\d+\.\d{4}$")
                )
                await expect(shown.locator(".body p")).to_have_count(1)
                seen = await page.evaluate("window.activitySeen")
                mine = [s for s in seen if s["id"] == activity["id"]]
                live = [s["text"] for s in mine if s["live"] and not s["answered"]]
                assert len(live) >= 2, mine  # it changed while the turn ran
                assert all(text.startswith("⏳") for text in live), mine
                assert any("echo[" in text for text in live), mine  # the text so far, streamed
                assert not mine[-1]["live"], mine
                assert len([p for p in mm.posts(root_id=thread) if p["id"] == activity["id"]]) == 1
                await expect(
                    page.locator(post_locator(approval["id"]) + " .kind-tag")
                ).to_have_text("decided")
                await page.set_viewport_size({"width": 1100, "height": 900})
                await screenshot(page, "thread")

    run(scenario())


def test_a_question_post_is_tagged_until_answered(chromium: str) -> None:
    """A bot post with props.mmclaude_question is tagged as a question (answered with
    `!answer`, so no reaction buttons), and as answered once the bot edits it."""

    async def scenario() -> None:
        async with open_emulator(port=0) as mm:
            root = await mm.post_as("claudebot", "The session is ready.")
            question = await mm.post_as(
                "claudebot",
                "❓ **Claude asks**\n\nWhich colour?\n1. Red\n2. Blue\n\n"
                "Answer with `!answer N` (an option's number).",
                root_id=root["id"],
                props={"mmclaude_question": "req-q"},
            )
            async with open_browser(chromium) as browser, open_page(browser, mm.url) as page:
                shown = page.locator(post_locator(question["id"]))
                await expect(shown.locator(".kind-tag")).to_have_text("question")
                await expect(shown.locator(".approval")).to_have_count(0)
                await mm.patch_as("claudebot", question["id"], "**✅ Answered by @alice: Red**")
                await expect(shown.locator(".kind-tag")).to_have_text("answered")

    run(scenario())
