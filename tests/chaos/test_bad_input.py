"""Bad input never crashes a process: garbage on every ZeroMQ socket, a claude whose stdout
is full of junk (invalid UTF-8, truncated JSON, a 4 MB line), a maximum-size post of emoji,
an answer of 1 MB. Everything accepted is answered, and the logs say what was dropped."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import msgspec
import pytest
import zmq

from devtools.harness import Tree, answer_of, replies
from gateway.splitting import reassemble
from protocol import Answer, Prompt, encode
from session_worker.answers import MAX_ANSWER_CHARS
from tests.support import REPO, async_wait_for
from tests.tree import ask, run_tree

pytestmark = pytest.mark.slow

GARBAGE_FRAMES = [
    b"",
    b"\xc1",  # never valid msgpack
    b"\x00" * 64,
    os.urandom(512),
    encode(Prompt(gateway_id="g", post_id="p", create_at=1, user_id="u", text="x"))[:-3],
    msgspec.msgpack.encode({"type": "Prompt", "post_id": 5}),
    msgspec.msgpack.encode({"type": "NoSuchMessage"}),
    msgspec.msgpack.encode([1, 2, 3]),
    # well-formed, values out of bounds (create_at = 2**64-1 crashed the worker's journal)
    msgspec.msgpack.encode(
        {
            "type": "Prompt",
            "gateway_id": "g",
            "post_id": "a" * 26,
            "create_at": 2**64 - 1,
            "user_id": "b" * 26,
            "text": "x",
        }
    ),
    # a valid message of the wrong direction
    encode(Answer(post_id="p", create_at=1, text="not for you")),
    b"x" * (1024 * 1024),
]


def test_garbage_on_every_zeromq_socket() -> None:
    """Garbage frames pushed into the worker's inbox, the gateway's socket and the
    supervisor's socket are logged and dropped; nothing restarts and the next post is
    answered."""

    async def scenario(tree: Tree, thread: str) -> None:
        assert "echo[1]" in await ask(tree, thread, "before")
        run_dir = Path(tree.state_dir) / "run"
        sockets = sorted(p.name for p in run_dir.iterdir() if p.is_socket())
        assert {"inbox", "sup"} <= set(sockets)
        assert any(name.startswith("gw-") for name in sockets)
        context = zmq.Context()
        try:
            for name in sockets:
                push = context.socket(zmq.PUSH)
                push.linger = 2000
                push.connect(f"ipc://{run_dir / name}")
                for frame in GARBAGE_FRAMES:
                    push.send(frame)
                push.close()
        finally:
            context.term()

        def logged_drops() -> bool:
            log = tree.log_path.read_text(errors="replace").splitlines()
            return all(
                any(f'"role":"{role}"' in line and ("undecodable" in line or "dropped" in line)
                    for line in log)
                for role in ("worker", "gateway", "supervisor")
            )  # fmt: skip

        await async_wait_for(logged_drops, 10, "every role to log a dropped frame")
        assert "echo[3]" in await ask(tree, thread, "after")
        status = tree.status()
        assert status is not None
        assert status.worker.restarts == 0
        assert status.gateway.restarts == 0
        assert status.claude.restarts == 0
        log = tree.log_path.read_text(errors="replace")
        for role in ("worker", "gateway", "supervisor"):
            dropped = [
                line
                for line in log.splitlines()
                if f'"role":"{role}"' in line and ("undecodable" in line or "dropped" in line)
            ]
            assert dropped, f"no log line says the {role} dropped a frame"

    run_tree(scenario)


def test_claude_stdout_full_of_junk() -> None:
    """Invalid UTF-8, truncated JSON, non-object JSON, unknown events and a 4 MB line on
    claude's stdout are skipped; every turn is answered and claude is never restarted."""
    wrapper_dir = Path(os.environ.get("TMPDIR", "/tmp"))
    wrapper = wrapper_dir / f"evil-claude-{os.getpid()}"
    wrapper.write_text(
        f'#!/bin/sh\ncd "{REPO}" && exec "{sys.executable}" -m tests.chaos.evil_claude "$@"\n'
    )
    wrapper.chmod(0o755)

    async def scenario(tree: Tree, thread: str) -> None:
        for i, expected in enumerate(("echo[1]", "echo[3]", "echo[5]")):
            assert expected in await ask(tree, thread, f"junk {i}")
        status = tree.status()
        assert status is not None
        assert status.claude.restarts == 0
        assert status.worker.restarts == 0
        assert "bad_line" in tree.log_path.read_text(errors="replace")

    try:
        run_tree(scenario, extra_env={"CLAUDE_PATH": str(wrapper)})
    finally:
        wrapper.unlink(missing_ok=True)


def test_largest_post_and_a_one_megabyte_answer() -> None:
    """A post of 16383 emoji (the Mattermost maximum) and an answer of 1 MB are both
    delivered: the answers' parts reassemble exactly and none is posted twice."""

    async def scenario(tree: Tree, thread: str) -> None:
        big_post = "🙂" * 16383
        post = await tree.mm.post_as("alice", big_post, root_id=thread)
        answer = await answer_of(tree.mm, post["id"], 60)
        parts = sorted(
            replies(tree.mm, thread)[post["id"]], key=lambda p: p["props"]["mmclaude_part"]
        )
        assert len(parts) >= 2
        assert reassemble([p["message"] for p in parts]) == f"echo[1]: {big_post}"
        assert answer

        post = await tree.mm.post_as("alice", "LONG:1000000", root_id=thread)
        await answer_of(tree.mm, post["id"], 120)
        parts = replies(tree.mm, thread)[post["id"]]
        numbers = [p["props"]["mmclaude_part"] for p in parts]
        assert len(numbers) == len(set(numbers)) == parts[0]["props"]["mmclaude_parts"]
        parts.sort(key=lambda p: p["props"]["mmclaude_part"])
        whole = reassemble([p["message"] for p in parts])
        # Cut to 256 KB in the thread; the whole megabyte is in the workdir.
        assert MAX_ANSWER_CHARS < len(whole) < MAX_ANSWER_CHARS + 500
        assert whole.startswith("echo[3]: ")
        assert f"`.mmclaude/answers/{post['id']}.md`" in whole
        assert all(len(p["message"]) <= 16383 for p in parts)

    run_tree(scenario)
