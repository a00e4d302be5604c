"""Test helpers: a gateway played over the worker's real sockets, and a scripted claude child.

:class:`FakeGateway` binds its own endpoint, says hello (and keeps saying it while a test
waits, as a real gateway does every second), sends prompts and ``Delivered``, and records
every message the worker pushes to it. :func:`write_config` writes the JSON config read by
``python -m session_worker``. :class:`ScriptedChild` (made by :class:`ScriptedClaude`) stands
for the claude child in the runner's unit tests: no process, its turns are a test's script.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import msgspec

import protocol
from protocol import (
    Accepted,
    Answer,
    ApprovalShow,
    ApprovalShown,
    Command,
    Decision,
    Delivered,
    GatewayBye,
    GatewayHello,
    Progress,
    Prompt,
    Receiver,
    Sender,
    ToGateway,
    Welcome,
)
from session_worker.config import WorkerConfig
from session_worker.errors import ChildExitedError, ChildStartError
from session_worker.ndjson import ControlReply, RequestSubtype

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = [
    "FakeGateway",
    "ScriptedChild",
    "ScriptedClaude",
    "result_event",
    "wire_id",
    "write_config",
]

M = TypeVar("M")

HELLO_EVERY = 1.0


def write_config(config: WorkerConfig, path: Path) -> Path:
    """Store ``config`` as the JSON file ``python -m session_worker`` reads."""
    path.write_bytes(msgspec.json.encode(config))
    return path


def wire_id(name: str) -> str:
    """A valid Mattermost id (26 of [a-z0-9]) standing for a test's short name like ``p1``:
    the worker's decoder refuses anything else. A valid id stands for itself."""
    if len(name) == 26 and all(c in _ID_CHARS for c in name):
        return name
    wire = hashlib.sha256(name.encode()).hexdigest()[:26]
    _NAMES[wire] = name
    return wire


_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_NAMES: dict[str, str] = {}  # wire id → the test's name, for every name ever mapped


class FakeGateway:
    """A scripted gateway. With ``auto_deliver`` every Answer is acknowledged at once.

    Tests name posts briefly (``"p1"``); on the wire each name is its :func:`wire_id`, and
    what comes back is shown under the test's name again.
    """

    def __init__(
        self,
        state_dir: Path,
        worker_endpoint: str,
        gateway_id: str = "gw1",
        *,
        auto_deliver: bool = True,
    ) -> None:
        self.gateway_id = gateway_id
        protocol.prepare_run_dir(state_dir)
        self.endpoint = protocol.gateway_endpoint(state_dir, gateway_id)
        self.receiver = Receiver(self.endpoint)
        self.sender = Sender(worker_endpoint)
        self.auto_deliver = auto_deliver
        self.received: list[ToGateway] = []
        self.delivered: set[str] = set()
        self._last_hello = 0.0
        self._next_create_at = 1_700_000_000_000

    # --- sending ------------------------------------------------------------------------

    def hello(self) -> None:
        self._last_hello = time.monotonic()
        self.sender.send(
            protocol.encode(
                GatewayHello(gateway_id=self.gateway_id, endpoint=self.endpoint, pid=os.getpid())
            )
        )

    def bye(self) -> None:
        self.sender.send(protocol.encode(GatewayBye(gateway_id=self.gateway_id)))

    def prompt(
        self,
        post_id: str,
        text: str,
        create_at: int | None = None,
        *,
        user_id: str = "user-1",
        username: str = "alice",
    ) -> Prompt:
        if create_at is None:
            self._next_create_at += 1000
            create_at = self._next_create_at
        message = Prompt(
            gateway_id=self.gateway_id,
            post_id=wire_id(post_id),
            create_at=create_at,
            user_id=wire_id(user_id),
            username=username,
            text=text,
        )
        self.sender.send(protocol.encode(message))
        return message

    def command(self, post_id: str, name: str, args: str = "") -> Command:
        """A command post (``!name args``) by the allowed test user."""
        self._next_create_at += 1000
        message = Command(
            gateway_id=self.gateway_id,
            post_id=wire_id(post_id),
            create_at=self._next_create_at,
            user_id=wire_id("user-1"),
            username="alice",
            name=name,
            args=args,
        )
        self.sender.send(protocol.encode(message))
        return message

    def decide(self, request_id: str, behavior: Literal["allow", "always", "deny"]) -> None:
        """A reaction of the allowed test user on the approval post of ``request_id``."""
        message = Decision(
            gateway_id=self.gateway_id,
            request_id=request_id,
            behavior=behavior,
            user_id=wire_id("user-1"),
            username="alice",
        )
        self.sender.send(protocol.encode(message))

    def shown(self, show: ApprovalShow) -> None:
        message = ApprovalShown(
            gateway_id=self.gateway_id,
            request_id=show.request_id,
            state=show.state,
            post_id=wire_id(f"ap-{show.request_id}"),
            post_create_at=self._next_create_at + 1,  # after the prompt, before the next post
        )
        self.sender.send(protocol.encode(message))

    def deliver(self, post_id: str) -> None:
        self.delivered.add(post_id)
        message = Delivered(
            gateway_id=self.gateway_id,
            post_id=wire_id(post_id),
            reply_ids=(wire_id(f"r-{post_id}"),),
        )
        self.sender.send(protocol.encode(message))

    def send_raw(self, frame: bytes) -> None:
        self.sender.send(frame)

    # --- receiving ----------------------------------------------------------------------

    async def pump(self, seconds: float) -> None:
        """Receive for ``seconds`` (saying hello on schedule)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self._keepalive()
            try:
                frame = await asyncio.wait_for(self.receiver.recv(), min(left, 0.2))
            except TimeoutError:
                continue
            self._got(protocol.gateway_codec.decode(frame))

    async def wait_for(
        self, predicate: Callable[[FakeGateway], M | bool | None], timeout: float, what: str
    ) -> M:
        """Pump until ``predicate(self)`` is truthy; AssertionError naming ``what`` if not."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate(self)
            if value:
                return value  # type: ignore[return-value]
            if time.monotonic() > deadline:
                kinds = [type(m).__name__ for m in self.received]
                raise AssertionError(f"timed out after {timeout} s waiting for {what}; got {kinds}")
            await self.pump(0.05)

    def _keepalive(self) -> None:
        if time.monotonic() - self._last_hello >= HELLO_EVERY:
            self.hello()

    def _got(self, message: ToGateway) -> None:
        if isinstance(message, Accepted | Answer | Progress):
            name = _NAMES.get(message.post_id, message.post_id)
            message = msgspec.structs.replace(message, post_id=name)
        self.received.append(message)
        if self.auto_deliver and isinstance(message, Answer):
            self.deliver(message.post_id)
        if self.auto_deliver and isinstance(message, ApprovalShow):
            self.shown(message)

    # --- views --------------------------------------------------------------------------

    def of(self, kind: type[M]) -> list[M]:
        return [m for m in self.received if isinstance(m, kind)]

    def answers(self, post_id: str | None = None) -> list[Answer]:
        return [a for a in self.of(Answer) if post_id is None or a.post_id == post_id]

    def first_answers(self) -> dict[str, Answer]:
        """One answer per post id (the first one received)."""
        found: dict[str, Answer] = {}
        for answer in self.of(Answer):
            found.setdefault(answer.post_id, answer)
        return found

    def accepted(self, post_id: str) -> list[Accepted]:
        return [a for a in self.of(Accepted) if a.post_id == post_id]

    def welcomes(self) -> list[Welcome]:
        return self.of(Welcome)

    def approvals(self, state: str | None = None) -> list[ApprovalShow]:
        return [a for a in self.of(ApprovalShow) if state is None or a.state == state]

    def progress(self, post_id: str) -> list[Progress]:
        return [p for p in self.of(Progress) if p.post_id == post_id]

    def close(self) -> None:
        self.receiver.close()
        self.sender.close()

    def __enter__(self) -> FakeGateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


FAKE_CLAUDE_WRAPPER = """#!/bin/sh
# The fake claude CLI as one executable (config.claude_path takes a single path).
export PYTHONPATH={repo}${{PYTHONPATH:+:$PYTHONPATH}}
exec {python} -m emulators.claude "$@"
"""


def fake_claude_executable(directory: Path, repo: Path, python: str) -> Path:
    """Write a wrapper that runs ``python -m emulators.claude`` (exec: same pid)."""
    path = directory / "fake-claude"
    path.write_text(FAKE_CLAUDE_WRAPPER.format(repo=repo, python=python))
    path.chmod(0o755)
    return path


def worker_config(state_dir: Path, **overrides: object) -> WorkerConfig:
    """A config for tests: everything under ``state_dir``, short limits unless overridden."""
    workdir = state_dir / "work"
    workdir.mkdir(parents=True, exist_ok=True)
    values: dict[str, object] = {
        "state_dir": str(state_dir),
        "claude_path": "claude",
        "claude_args": (),
        "claude_workdir": str(workdir),
        "endpoint": protocol.worker_endpoint(state_dir),
        "log_level": "DEBUG",
        "log_format": "json",
        "idle_limit": 30.0,
        "interrupt_grace": 2.0,
        "redeliver_interval": 0.5,
    }
    values.update({k: str(v) if isinstance(v, Path) else v for k, v in overrides.items()})
    return msgspec.convert(values, WorkerConfig)


# --- a scripted claude child (no process) -----------------------------------------------


def result_event(
    text: str | None, session_id: str = "s-1", subtype: str = "success", *, is_error: bool = False
) -> dict[str, Any]:
    """The stream-json ``result`` event that ends a turn (``text`` None: no ``result``
    field, as after an interrupt)."""
    event: dict[str, Any] = {
        "type": "result",
        "subtype": subtype,
        "is_error": is_error or subtype != "success",
        "session_id": session_id,
    }
    if text is not None:
        event["result"] = text
    return event


class ScriptedChild:
    """A claude child without a process (satisfies :class:`session_worker.child.ChildLike`).

    Every user message calls the factory's ``on_user(child, text)``, which plays the turn
    with :meth:`emit` and :meth:`die`; an interrupt calls ``on_interrupt(child)``.
    """

    def __init__(
        self,
        factory: ScriptedClaude,
        config: WorkerConfig,
        session_id: str | None,
        permission_mode: str | None,
        epoch: str,
    ) -> None:
        self.factory = factory
        self.config = config
        self.session_id = session_id
        self.permission_mode = permission_mode
        self.epoch = epoch
        self.pid: int | None = None
        self.cost_seen = 0.0
        self.last_activity = time.monotonic()
        self.no_conversation = False
        self.listening = False
        self.dropped_idle = 0
        self.returncode: int | None = None
        self.stderr = ""
        self.sent: list[str] = []  # the user messages written to it
        self.lines: list[bytes] = []  # other stdin lines (tool decisions)
        self.interrupts = 0
        self._events: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._eof = asyncio.Event()
        self._started = False

    # --- the test's side ---

    def emit(self, *events: dict[str, Any]) -> None:
        """Claude writes these events (to the running turn)."""
        self.last_activity = time.monotonic()
        for event in events:
            self._events.put_nowait(event)

    def die(self, returncode: int = -9, stderr: str = "", *, no_conversation: bool = False) -> None:
        """Claude exits now."""
        if self._eof.is_set():
            return
        self.returncode, self.stderr = returncode, stderr
        self.no_conversation = self.no_conversation or no_conversation
        self._eof.set()
        self._events.put_nowait(None)

    # --- ChildLike ---

    @property
    def alive(self) -> bool:
        return self._started and not self._eof.is_set()

    async def start(self, timeout: float = 30.0) -> None:
        if self.factory.start_failures:
            self._eof.set()
            raise self.factory.start_failures.pop(0)
        self.pid = self.factory.next_pid()
        self._started = True

    async def stop(self, grace: float = 2.0) -> int | None:
        if self.pid is not None and not self._eof.is_set():
            self.die(-15)
        return self.returncode

    async def wait_eof(self) -> None:
        await self._eof.wait()

    async def send_user(self, text: str, images: list[dict[str, Any]] | None = None) -> None:
        self._check()
        self.sent.append(text)
        self.last_activity = time.monotonic()
        self.factory.on_user(self, text)

    async def interrupt(self) -> None:
        self._check()
        self.interrupts += 1
        self.factory.on_interrupt(self)

    async def write_line(self, line: bytes) -> None:
        self._check()
        self.lines.append(line)

    async def request(
        self, subtype: RequestSubtype, timeout: float, value: str = ""
    ) -> ControlReply:
        self._check()
        return ControlReply(request_id=f"{subtype}-1", ok=True, body={"model": value})

    async def next_event(self, timeout: float) -> dict[str, Any] | None:
        try:
            event = await asyncio.wait_for(self._events.get(), timeout)
        except TimeoutError:
            return None
        if event is None:
            self._events.put_nowait(None)
            raise ChildExitedError(
                "claude exited during the turn", returncode=self.returncode, stderr_tail=self.stderr
            )
        return event

    def drain(self) -> int:
        return 0

    def stderr_tail(self) -> str:
        return self.stderr

    def _check(self) -> None:
        if not self.alive:
            raise ChildExitedError(
                "claude is not running", returncode=self.returncode, stderr_tail=self.stderr
            )


def _answer_echo(child: ScriptedChild, text: str) -> None:
    child.emit(result_event(f"echo[{text}]", child.session_id or "s-1"))


def _ignore(child: ScriptedChild) -> None:
    return None


class ScriptedClaude:
    """Makes :class:`ScriptedChild` children (pass it as the Runner's ``spawn``) and keeps
    every one it made in ``spawned``. ``start_failures`` are raised by the next starts."""

    def __init__(
        self,
        on_user: Callable[[ScriptedChild, str], None] = _answer_echo,
        on_interrupt: Callable[[ScriptedChild], None] = _ignore,
        start_failures: Sequence[ChildStartError] = (),
    ) -> None:
        self.on_user = on_user
        self.on_interrupt = on_interrupt
        self.start_failures = list(start_failures)
        self.spawned: list[ScriptedChild] = []
        self._pid = 40000

    def next_pid(self) -> int:
        self._pid += 1
        return self._pid

    def __call__(
        self, config: WorkerConfig, session_id: str | None, permission_mode: str | None, epoch: str
    ) -> ScriptedChild:
        child = ScriptedChild(self, config, session_id, permission_mode, epoch)
        self.spawned.append(child)
        return child
