"""Live activity, attachments in and `!file` out, end to end: the emulator, a real worker and
gateways as processes, the fake claude (SLOW turns drip text deltas under
--include-partial-messages; image blocks show in its echo as ``[image <type> <n> bytes]``)."""

from __future__ import annotations

import struct
import zlib
from typing import TYPE_CHECKING, Any

import pytest

from tests.integration.test_gateway import Rig, run
from tests.support import async_wait_for

if TYPE_CHECKING:
    from pathlib import Path

    from tests.support import ProcessGroup

pytestmark = pytest.mark.slow

Post = dict[str, Any]


def tiny_png(width: int = 4, height: int = 3) -> bytes:
    """A valid RGB PNG (the real CLI decodes images and drops ones it cannot read)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = b"".join(b"\x00" + bytes([200, 30, 30]) * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


PNG = tiny_png()


def activity_posts(rig: Rig, post_id: str) -> list[Post]:
    return [
        p
        for p in rig.mm.posts(channel_id=rig.mm.channel.id)
        if (p.get("props") or {}).get("mmclaude_activity_for") == post_id
    ]


async def ask_with_files(rig: Rig, text: str, files: list[tuple[str, bytes]]) -> Post:
    thread = await rig.thread()
    ids = [rig.mm.upload_as("alice", name, data)["id"] for name, data in files]
    return await rig.mm.post_as("alice", text, root_id=thread, file_ids=ids)


def test_attachments_are_saved_listed_and_images_reach_claude_once(
    short_tmp: Path, procs: ProcessGroup
) -> None:
    async def scenario(rig: Rig) -> None:
        post = await ask_with_files(
            rig, "look at these", [("../../notes.txt", b"some notes"), ("shot.png", PNG)]
        )
        [answer] = await rig.answer(post["id"])
        text = answer["message"]
        folder = rig.dir / "work" / ".mmclaude" / "uploads" / post["id"]
        assert (folder / "notes.txt").read_bytes() == b"some notes"
        assert (folder / "shot.png").read_bytes() == PNG
        assert f".mmclaude/uploads/{post['id']}/notes.txt" in text
        assert f".mmclaude/uploads/{post['id']}/shot.png" in text
        assert text.count(f"[image image/png {len(PNG)} bytes]") == 1
        assert "Skipped, not given to Claude" not in text
        rig.assert_answered_once(post["id"])

    run(scenario, short_tmp, procs)


def test_an_attachment_over_the_limit_is_skipped_and_the_answer_says_so(
    short_tmp: Path, procs: ProcessGroup
) -> None:
    async def scenario(rig: Rig) -> None:
        rig.start_worker(max_upload_bytes=100)
        rig.start_gateway("g1", max_upload_bytes=100)
        post = await ask_with_files(rig, "two files", [("big.log", b"x" * 500), ("ok.txt", b"ok")])
        [answer] = await rig.answer(post["id"])
        text = answer["message"]
        assert text.startswith("⚠️ Skipped, not given to Claude: big.log")
        assert f".mmclaude/uploads/{post['id']}/ok.txt" in text
        folder = rig.dir / "work" / ".mmclaude" / "uploads" / post["id"]
        assert not (folder / "big.log").exists()
        downloads = rig.events("g1", "attachments.fetched")
        assert downloads
        assert downloads[0]["bytes"] == 2  # the big one was never downloaded

    run(scenario, short_tmp, procs, start=False)


def test_file_command_uploads_a_workdir_file_and_refuses_escapes(
    short_tmp: Path, procs: ProcessGroup
) -> None:
    async def scenario(rig: Rig) -> None:
        work = rig.dir / "work"
        (work / "src").mkdir(parents=True)
        (work / "src" / "app.py").write_bytes(b"print('hi')\n")
        (rig.dir / "secret.txt").write_text("secret")
        (work / "escape").symlink_to(rig.dir / "secret.txt")
        good = await rig.ask("!file src/app.py")
        bad = [await rig.ask(f"!file {p}") for p in ("../secret.txt", "escape", "/etc/passwd")]
        [reply] = await rig.answer(good["id"])
        assert len(reply["file_ids"]) == 1
        [info] = reply["metadata"]["files"]
        assert info["name"] == "app.py"
        assert rig.mm.file_bytes(reply["file_ids"][0]) == b"print('hi')\n"
        for post in bad:
            [refusal] = await rig.answer(post["id"])
            assert refusal["file_ids"] == []
            assert "secret" not in refusal["message"].replace("secret.txt", "")
            assert any(w in refusal["message"] for w in ("outside", "absolute"))
        # Not a prompt: claude never saw it (the fake would have echoed it).
        assert "echo[" not in reply["message"]
        for post in [good, *bad]:
            rig.assert_answered_once(post["id"])

    run(scenario, short_tmp, procs)


def test_a_drip_fed_answer_shows_in_one_activity_post_before_the_turn_ends(
    short_tmp: Path, procs: ProcessGroup
) -> None:
    async def scenario(rig: Rig) -> None:
        quick = await rig.ask("quick one")
        await rig.answer(quick["id"])
        post = await rig.ask("SLOW:6 a drip fed answer")

        def shows_text() -> Post | None:
            if rig.replies(post["id"]):
                raise AssertionError("the answer came before the activity showed any text")
            found = activity_posts(rig, post["id"])
            return next((p for p in found if "echo[" in p["message"]), None)

        live = await async_wait_for(shows_text, 15, "answer text in the activity post")
        assert live["root_id"] == await rig.thread()
        assert "mmclaude_reply_to" not in live["props"]
        [answer] = await rig.answer(post["id"], timeout=30)
        assert "a drip fed answer" in answer["message"]

        def reduced() -> Post | None:
            [only] = activity_posts(rig, post["id"])
            return only if only["message"].startswith("✅ Done in") else None

        final = await async_wait_for(reduced, 10, "the activity post reduced to one line")
        assert "\n" not in final["message"]
        assert "tool calls" in final["message"]
        assert activity_posts(rig, quick["id"]) == []  # under 2 s: no activity post
        rig.assert_answered_once(post["id"])

    run(scenario, short_tmp, procs)


def test_a_gateway_killed_mid_turn_continues_the_same_activity_post(
    short_tmp: Path, procs: ProcessGroup
) -> None:
    async def scenario(rig: Rig) -> None:
        post = await rig.ask("SLOW:8 survive the gateway")
        await async_wait_for(
            lambda: activity_posts(rig, post["id"]), 15, "the activity post is created"
        )
        rig.kill("g1")
        rig.start_gateway("g2")
        await rig.answer(post["id"], timeout=40)
        await async_wait_for(
            lambda: [p for p in activity_posts(rig, post["id"]) if p["message"].startswith("✅")],
            15,
            "the activity post reduced by the new gateway",
        )
        assert len(activity_posts(rig, post["id"])) == 1
        rig.assert_answered_once(post["id"])

    run(scenario, short_tmp, procs)


def test_live_off_makes_no_activity_post(short_tmp: Path, procs: ProcessGroup) -> None:
    async def scenario(rig: Rig) -> None:
        rig.start_worker(live=False)
        rig.start_gateway("g1", live=False)
        post = await rig.ask("SLOW:3 no live view")
        await rig.answer(post["id"])
        assert activity_posts(rig, post["id"]) == []
        assert not rig.events("g1", "activity.")

    run(scenario, short_tmp, procs, start=False)


def test_a_worker_killed_mid_turn_continues_the_same_activity_post(
    short_tmp: Path, procs: ProcessGroup
) -> None:
    async def scenario(rig: Rig) -> None:
        post = await rig.ask("SLOW:5 survive the worker")
        await async_wait_for(
            lambda: activity_posts(rig, post["id"]), 15, "the activity post is created"
        )
        assert rig.worker is not None
        rig.worker.kill()
        rig.worker.wait(timeout=5)
        rig.start_worker()  # the turn runs again from the journal
        await rig.answer(post["id"], timeout=40)
        await async_wait_for(
            lambda: [p for p in activity_posts(rig, post["id"]) if p["message"].startswith("✅")],
            15,
            "the activity post reduced after the retried turn",
        )
        assert len(activity_posts(rig, post["id"])) == 1
        rig.assert_answered_once(post["id"])

    run(scenario, short_tmp, procs)


def test_file_reply_is_posted_once_through_lost_replies_and_a_gateway_kill(
    short_tmp: Path, procs: ProcessGroup
) -> None:
    async def scenario(rig: Rig) -> None:
        work = rig.dir / "work"
        work.mkdir(exist_ok=True)
        (work / "report.txt").write_bytes(b"the report\n")
        await rig.thread()
        rig.mm.fail_posts(2, status=500, after_create=True)  # posted, but the reply is lost
        post = await rig.ask("!file report.txt")
        [reply] = await rig.answer(post["id"])
        assert len(reply["file_ids"]) == 1
        assert rig.mm.file_bytes(reply["file_ids"][0]) == b"the report\n"
        # Through a gateway restart too.
        rig.kill("g1")
        rig.start_gateway("g2")
        again = await rig.ask("!file report.txt")
        await rig.answer(again["id"])
        for asked in (post, again):
            rig.assert_answered_once(asked["id"])
            assert len(rig.replies(asked["id"])) == 1
        state = rig.dir / "outfiles"
        await async_wait_for(
            lambda: not any(state.glob("*/*")), 10, "the copies dropped once delivered"
        )

    run(scenario, short_tmp, procs)


def test_file_command_is_answered_while_a_turn_runs(short_tmp: Path, procs: ProcessGroup) -> None:
    async def scenario(rig: Rig) -> None:
        work = rig.dir / "work"
        work.mkdir(exist_ok=True)
        (work / "notes.md").write_text("# notes\n")
        slow = await rig.ask("SLOW:8 a long turn")
        await async_wait_for(lambda: activity_posts(rig, slow["id"]), 15, "the turn is running")
        command = await rig.ask("!file notes.md")
        [reply] = await rig.answer(command["id"], timeout=10)
        assert rig.replies(slow["id"]) == []  # answered beside the running turn, not after it
        assert len(reply["file_ids"]) == 1
        await rig.answer(slow["id"], timeout=30)

    run(scenario, short_tmp, procs)
