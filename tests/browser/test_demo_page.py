"""The emulator's demo page in a real (headless) Chromium: a conversation with the bot, live
edits, clickable reactions, the allowlist, and Markdown that cannot inject markup."""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Any

import pytest

from devtools.harness import answer_of, open_tree
from emulators.mattermost import open_emulator
from tests.browser.conftest import open_browser, open_page, screenshot

if TYPE_CHECKING:
    from collections.abc import Awaitable

pytestmark = pytest.mark.slow

pytest.importorskip("playwright", reason="playwright is in the test dependency group")
from playwright.async_api import expect  # noqa: E402

DEADLINE_S = 100


def run(scenario: Awaitable[None]) -> None:
    asyncio.run(asyncio.wait_for(scenario, DEADLINE_S))


def post_locator(post_id: str) -> str:
    return f'.post[data-post-id="{post_id}"]'


def reply_to(post_id: str) -> Any:
    return lambda p: (p.get("props") or {}).get("mmclaude_reply_to") == post_id


def test_prompt_typed_in_the_page_gets_its_answer(chromium: str) -> None:
    """Alice types a prompt (with a code block) in the composer; it is posted in the bot's
    thread, and Claude's answer appears in the page, its code block rendered."""

    async def scenario() -> None:
        async with open_tree(real_claude=None) as tree:
            mm = tree.mm
            thread = await tree.wait_thread()
            async with open_browser(chromium) as browser, open_page(browser, mm.url) as page:
                root = page.locator(f'section.thread[data-root-id="{thread}"]')
                await expect(root).to_have_class(re.compile(r"\bselected\b"))
                await page.select_option("#user", label="alice")
                prompt = "Please print this:\n```python\nprint('hello from the browser')\n```"
                await page.fill("#message", prompt)
                await page.click("#send")
                post = await mm.wait_for_post(lambda p: p["message"] == prompt, timeout=30)
                assert post["root_id"] == thread
                assert post["user_id"] == mm.users["alice"].id
                await answer_of(mm, post["id"], 60)
                answer = await mm.wait_for_post(reply_to(post["id"]), timeout=5)
                shown = page.locator(post_locator(answer["id"]))
                await expect(shown.locator(".author")).to_have_text("claudebot")
                await expect(shown.locator("pre code").first).to_contain_text(
                    "print('hello from the browser')"
                )
                await expect(page.locator("#message")).to_have_value("")
                await screenshot(page, "conversation")

    run(scenario())


def test_mallory_is_not_answered(chromium: str) -> None:
    """Mallory (not on the allowlist) posts from the page and gets no answer, while bob's
    later post is answered: the page shows both posts and only bob's answer."""

    async def scenario() -> None:
        async with open_tree(real_claude=None) as tree:
            mm = tree.mm
            thread = await tree.wait_thread()
            async with open_browser(chromium) as browser, open_page(browser, mm.url) as page:
                for user, text in (("mallory", "mallory wants in"), ("bob", "bob says hi")):
                    await page.select_option("#user", label=user)
                    await page.fill("#message", text)
                    await page.press("#message", "Enter")
                    await expect(page.locator(".post .body", has_text=text)).to_have_count(1)
                mallory = await mm.wait_for_post(lambda p: p["message"] == "mallory wants in")
                bob = await mm.wait_for_post(lambda p: p["message"] == "bob says hi")
                assert mallory["user_id"] == mm.users["mallory"].id
                assert mallory["root_id"] == bob["root_id"] == thread
                await answer_of(mm, bob["id"], 60)
                answer = await mm.wait_for_post(reply_to(bob["id"]), timeout=5)
                await expect(page.locator(post_locator(answer["id"]))).to_be_visible()
                # Posts are taken in order: bob's answer means mallory's post was decided.
                assert [p for p in mm.posts(root_id=thread) if reply_to(mallory["id"])(p)] == []
                await expect(page.locator(post_locator(mallory["id"]))).to_be_visible()
                await screenshot(page, "allowlist")

    run(scenario())


def test_an_edited_post_updates_live(chromium: str) -> None:
    """A bot post edited over the API (as the activity post is) changes in the open page,
    without a reload, and is marked edited; a garbage frame on the socket is skipped."""

    async def scenario() -> None:
        async with open_emulator(port=0) as mm:
            root = await mm.post_as("claudebot", "The session is ready.")
            status = await mm.post_as("claudebot", "⏳ working: reading files", root_id=root["id"])
            async with open_browser(chromium) as browser, open_page(browser, mm.url) as page:
                shown = page.locator(post_locator(status["id"]))
                await expect(shown.locator(".body")).to_have_text("⏳ working: reading files")
                await expect(shown.locator(".edited")).to_have_count(0)
                assert await mm.send_garbage_frame() == 1  # skipped by the page, no error
                await mm.patch_as("claudebot", status["id"], "✅ done: **3 files** read")
                await expect(shown.locator(".body")).to_have_text("✅ done: 3 files read")
                await expect(shown.locator(".body strong")).to_have_text("3 files")
                await expect(shown.locator(".edited")).to_have_count(1)

    run(scenario())


def test_the_page_catches_up_after_its_socket_is_cut(chromium: str) -> None:
    """A post made while the page's socket is down appears once it reconnects (the new
    hello makes it read the channel again over REST)."""

    async def scenario() -> None:
        async with open_emulator(port=0) as mm:
            await mm.post_as("claudebot", "The session is ready.")
            async with open_browser(chromium) as browser, open_page(browser, mm.url) as page:
                mm.restart_sockets()
                missed = await mm.post_as("bob", "posted while the page was away")
                shown = page.locator(post_locator(missed["id"]))
                await expect(shown.locator(".body")).to_have_text("posted while the page was away")
                await expect(page.locator("#status")).to_have_attribute("data-state", "live")

    run(scenario())


def test_clicking_a_reaction_adds_it_as_the_chosen_user(chromium: str) -> None:
    """Bob clicks 👍 on the bot's post: the server records bob's +1 and the page shows it as
    his; a second click takes it back."""

    async def scenario() -> None:
        async with open_emulator(port=0) as mm:
            root = await mm.post_as("claudebot", "Allow `Bash(ls)`? React 👍 to allow.")
            bob = mm.users["bob"].id

            def reactions() -> list[tuple[str, str]]:
                post = next(p for p in mm.posts() if p["id"] == root["id"])
                found = post.get("metadata", {}).get("reactions") or []
                return [(r["user_id"], r["emoji_name"]) for r in found]

            async with open_browser(chromium) as browser, open_page(browser, mm.url) as page:
                await page.select_option("#user", label="bob")
                shown = page.locator(post_locator(root["id"]))
                await shown.locator('.actions button[data-react="+1"]').click()
                chip = shown.locator('.reaction[data-emoji="+1"]')
                await expect(chip).to_have_text("👍 1")
                await expect(chip).to_have_class(re.compile(r"\bmine\b"))
                assert reactions() == [(bob, "+1")]
                await screenshot(page, "reaction")
                await chip.click()
                await expect(chip).to_have_count(0)
                assert reactions() == []

    run(scenario())


def test_an_approval_post_offers_its_answers_as_buttons(chromium: str) -> None:
    """A post with props.mmclaude_approval shows Allow once / Always allow / Deny; a click
    is the matching reaction by the chosen user (what the bot reads as the decision)."""

    async def scenario() -> None:
        async with open_emulator(port=0) as mm:
            approval = await mm.post_as(
                "claudebot",
                "🔐 **Claude wants to use `Bash`**\n```\nls -la\n```\n\nReact :+1: to allow once.",
                props={"mmclaude_approval": "req-1"},
            )
            plain = await mm.post_as("claudebot", "just an answer")
            async with open_browser(chromium) as browser, open_page(browser, mm.url) as page:
                await page.select_option("#user", label="alice")
                await expect(page.locator(post_locator(plain["id"]) + " .approval")).to_have_count(
                    0
                )
                shown = page.locator(post_locator(approval["id"]))
                await shown.locator('.approval button[data-approve="white_check_mark"]').click()
                await expect(
                    shown.locator('.reaction[data-emoji="white_check_mark"]')
                ).to_have_text("✅ 1")
                post = next(p for p in mm.posts() if p["id"] == approval["id"])
                found = [(r["user_id"], r["emoji_name"]) for r in post["metadata"]["reactions"]]
                assert found == [(mm.users["alice"].id, "white_check_mark")]
                await expect(shown.locator(".kind-tag")).to_have_text("waiting for you")
                await screenshot(page, "approval")
                # Decided (the bot edits its how-to line away): no more buttons, tagged decided.
                await mm.patch_as("claudebot", approval["id"], "**✅ Allowed once by @alice.**")
                await expect(shown.locator(".approval button")).to_have_count(0)
                await expect(shown.locator(".kind-tag")).to_have_text("decided")

    run(scenario())


def test_markdown_renders_and_never_injects_markup(chromium: str) -> None:
    """Code blocks, lists and links render; HTML, script and javascript: links in a post stay
    text."""
    hostile = (
        '<img src=x onerror="window.pwned=1"> <script>window.pwned=2</script>\n'
        "[click](javascript:window.pwned=3) and [docs](https://example.org/x)\n\n"
        "- one\n- **two**\n\n"
        "```js\nconst a = '<b>not bold</b>';\n```"
    )

    async def scenario() -> None:
        async with open_emulator(port=0) as mm:
            post = await mm.post_as("alice", hostile)
            async with open_browser(chromium) as browser, open_page(browser, mm.url) as page:
                body = page.locator(post_locator(post["id"]) + " .body")
                await expect(body.locator("pre code")).to_have_text("const a = '<b>not bold</b>';")
                await expect(body.locator("li")).to_have_count(2)
                await expect(body.locator("li strong")).to_have_text("two")
                await expect(body).to_contain_text("<script>window.pwned=2</script>")
                await expect(body.locator("img, script, b")).to_have_count(0)
                links = body.locator("a")
                await expect(links).to_have_count(1)
                await expect(links).to_have_attribute("href", "https://example.org/x")
                await expect(body).to_contain_text("[click](javascript:window.pwned=3)")
                assert await page.evaluate("window.pwned === undefined")

    run(scenario())
