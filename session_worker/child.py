"""The one ``claude`` child: spawn it, make sure it is ready, talk stream-json, stop it.

One :class:`ClaudeChild` is one OS process; a restart is a new object. Two owned reader
tasks (stdout, stderr) run for its whole life and are always cancelled and awaited in
:meth:`ClaudeChild.stop`, on every path. The stdout reader answers the CLI's own control
requests at once and resolves our pending ones, so the caller only sees turn events.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from loguru import logger

from protocol.proctree import child_preexec, without_mattermost
from session_worker.errors import ChildExitedError, ChildProtocolError, ChildStartError
from session_worker.ndjson import (
    MAX_LINE,
    NO_CONVERSATION,
    OVERLONG,
    ControlReply,
    ControlRequestFromCli,
    LineSplitter,
    Overlong,
    RequestSubtype,
    TurnEvent,
    decode_line,
    encode_control_request,
    encode_user,
    route,
    says_no_conversation,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from session_worker.config import WorkerConfig

__all__ = ["ChildLike", "ClaudeChild", "SpawnChild", "claude_argv", "claude_command", "claude_env"]

READ_CHUNK = 1 << 20
STDERR_TAIL = 8192  # bytes of stderr kept for error answers and logs
WRITE_TIMEOUT = 30.0  # a claude that does not read its stdin for this long is wedged
KILL_GRACE = 2.0  # SIGTERM → SIGKILL

_EOF: dict[str, Any] = {"type": "__eof__"}


def claude_argv(
    config: WorkerConfig, session_id: str | None, permission_mode: str | None = None
) -> list[str]:
    """The command line (contract.md): tool approvals over stdio, partial messages when the
    turn's activity is shown (MMCLAUDE_LIVE), the permission mode (the one chosen with
    ``!mode``, else the configured one), resume the session when one is known."""
    return claude_command(
        config.claude_path,
        config.claude_args,
        session_id,
        permission_mode or config.permission_mode,
        live=config.live,
    )


def claude_command(
    path: str,
    args: Sequence[str],
    session_id: str | None = None,
    permission_mode: str | None = "default",
    *,
    live: bool = True,
) -> list[str]:
    """:func:`claude_argv` from its parts (the benchmarks measure this very command line)."""
    resume = ["--resume", session_id] if session_id else []
    mode = permission_mode
    return [
        path,
        "-p",
        "--input-format",
        "stream-json",
        "--output-format",
        "stream-json",
        "--verbose",
        "--permission-prompt-tool",
        "stdio",
        *(["--include-partial-messages"] if live else []),
        *(["--permission-mode", mode] if mode else []),
        *resume,
        *args,
    ]


def claude_env(environ: dict[str, str] | os._Environ[str] = os.environ) -> dict[str, str]:
    """Our environment minus every ``MATTERMOST_*`` variable: claude never sees the token."""
    return without_mattermost(environ)


class ChildLike(Protocol):
    """What the runner uses of a claude child (:class:`ClaudeChild`; in unit tests the
    scripted :class:`session_worker.testing.ScriptedChild`)."""

    session_id: str | None  # the session it was started to resume (None: a fresh one)
    epoch: str
    pid: int | None
    cost_seen: float
    last_activity: float  # monotonic time of its last stdout byte (the idle watchdog's)
    no_conversation: bool  # it said it does not know ``session_id``
    listening: bool  # a turn reads its events (else they are dropped as they come)
    dropped_idle: int

    @property
    def alive(self) -> bool: ...
    async def start(self, timeout: float = 30.0) -> None: ...
    async def stop(self, grace: float = KILL_GRACE) -> int | None: ...
    async def wait_eof(self) -> None: ...
    async def send_user(self, text: str, images: list[dict[str, Any]] | None = None) -> None: ...
    async def interrupt(self) -> None: ...
    async def write_line(self, line: bytes) -> None: ...
    async def request(
        self, subtype: RequestSubtype, timeout: float, value: str = ""
    ) -> ControlReply: ...
    async def next_event(self, timeout: float) -> dict[str, Any] | None: ...
    def drain(self) -> int: ...
    def stderr_tail(self) -> str: ...


# Makes the child of a spawn: (config, session id to resume, permission mode, epoch).
SpawnChild: TypeAlias = "Callable[[WorkerConfig, str | None, str | None, str], ChildLike]"


class ClaudeChild:
    """One running ``claude`` process in its own session and process group."""

    def __init__(
        self,
        config: WorkerConfig,
        session_id: str | None,
        permission_mode: str | None = None,
        epoch: str = "",
    ) -> None:
        self.config = config
        self.session_id = session_id
        self.permission_mode = permission_mode
        self.epoch = epoch  # the journal's session epoch at spawn (!new changes it)
        self.cost_seen = 0.0  # result.total_cost_usd is cumulative per process
        self.pid: int | None = None
        self.last_activity = time.monotonic()
        self.bad_lines = 0
        self.no_conversation = False
        # True while a turn reads events (the runner sets it): between turns nobody would,
        # so turn events are dropped as they come instead of piling up in the queue until
        # the next turn (a claude that writes while idle must not grow the worker).
        self.listening = False
        self.dropped_idle = 0
        self._proc: asyncio.subprocess.Process | None = None
        self._events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._pending: dict[str, asyncio.Future[ControlReply]] = {}
        self._ids = itertools.count(1)
        self._stderr: deque[bytes] = deque()
        self._stderr_size = 0
        self._eof = asyncio.Event()
        self._write_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._log = logger.bind(resume=bool(session_id))

    # --- life ---------------------------------------------------------------------------

    async def start(self, timeout: float = 30.0) -> None:
        """Spawn and wait for the ``initialize`` answer; :class:`ChildStartError` otherwise."""
        try:
            self._proc = await asyncio.create_subprocess_exec(
                *claude_argv(self.config, self.session_id, self.permission_mode),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=self.config.claude_workdir,
                env=claude_env(),
                start_new_session=True,
                preexec_fn=child_preexec(os.getpid()),
                limit=READ_CHUNK,
            )
        except OSError as exc:
            raise ChildStartError(
                f"cannot run {self.config.claude_path!r}: {exc}", returncode=None, stderr_tail=""
            ) from exc
        self.pid = self._proc.pid
        self._tasks = [
            asyncio.create_task(self._read_stdout(), name=f"claude-{self.pid}-stdout"),
            asyncio.create_task(self._read_stderr(), name=f"claude-{self.pid}-stderr"),
        ]
        try:
            reply = await self.request("initialize", timeout=timeout)
        except (ChildExitedError, TimeoutError) as exc:
            returncode = await self._wait(KILL_GRACE) if self._eof.is_set() else None
            what = "no answer to initialize" if isinstance(exc, TimeoutError) else "exited"
            raise ChildStartError(
                f"claude did not start ({what}, {self.exit_text(returncode)})",
                returncode=returncode,
                stderr_tail=self.stderr_tail(),
                no_conversation=self.no_conversation or NO_CONVERSATION in self.stderr_tail(),
            ) from exc
        if not reply.ok:
            raise ChildStartError(
                f"claude refused initialize: {reply.error}",
                returncode=None,
                stderr_tail=self.stderr_tail(),
            )

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.returncode is None and not self._eof.is_set()

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.returncode

    async def wait_eof(self) -> None:
        """Return when claude closed its stdout (it died or is dying)."""
        await self._eof.wait()

    async def stop(self, grace: float = KILL_GRACE) -> int | None:
        """End the process group (SIGTERM, then SIGKILL after ``grace``) and the readers.

        Safe to call on every path and more than once; returns the exit status.
        """
        proc = self._proc
        if proc is None:
            return None
        if proc.returncode is None:
            self._signal_group(signal.SIGTERM)
            if await self._wait(grace) is None:
                self._log.bind(claude_pid=self.pid).warning("claude.kill_escalated")
                self._signal_group(signal.SIGKILL)
                await self._wait(5.0)
        # The group may outlive its leader (MCP servers stay in claude's group).
        self._signal_group(signal.SIGKILL)
        if proc.stdin is not None:
            proc.stdin.close()
        # The readers end at EOF right after the exit; cancel them if a pipe stays open.
        _, pending = await asyncio.wait(self._tasks, timeout=1.0) if self._tasks else ((), ())
        for task in pending:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        return proc.returncode

    def _signal_group(self, sig: int) -> None:
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, sig)

    async def _wait(self, timeout: float) -> int | None:
        assert self._proc is not None
        try:
            return await asyncio.wait_for(self._proc.wait(), timeout)
        except TimeoutError:
            return None

    # --- talking ------------------------------------------------------------------------

    async def send_user(self, text: str, images: list[dict[str, Any]] | None = None) -> None:
        """Write one user message; :class:`ChildExitedError` if claude is gone."""
        await self._write(encode_user(text, images))
        self.last_activity = time.monotonic()

    async def interrupt(self) -> None:
        """Ask claude to stop the running turn (a control request, never SIGINT)."""
        await self._write(encode_control_request(f"int-{next(self._ids)}", "interrupt"))

    async def write_line(self, line: bytes) -> None:
        """Write one well-formed stdin line (an answer to a can_use_tool); ChildExitedError."""
        await self._write(line)

    async def request(
        self, subtype: RequestSubtype, timeout: float, value: str = ""
    ) -> ControlReply:
        """Send a control request and wait for its answer (TimeoutError, ChildExitedError)."""
        request_id = f"{subtype}-{next(self._ids)}"
        future: asyncio.Future[ControlReply] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            await self._write(encode_control_request(request_id, subtype, value))
            eof = asyncio.ensure_future(self._eof.wait())
            waits: set[asyncio.Future[Any]] = {future, eof}
            try:
                await asyncio.wait(waits, timeout=timeout, return_when="FIRST_COMPLETED")
            finally:
                eof.cancel()
            if future.done():
                return future.result()
            if self._eof.is_set():
                raise self._exited("claude exited before answering " + subtype)
            raise TimeoutError(f"no answer to {subtype} within {timeout} s")
        finally:
            self._pending.pop(request_id, None)

    async def next_event(self, timeout: float) -> dict[str, Any] | None:
        """The next turn event, None after ``timeout``; :class:`ChildExitedError` at EOF."""
        try:
            event = await asyncio.wait_for(self._events.get(), timeout)
        except TimeoutError:
            return None
        if event is _EOF:
            self._events.put_nowait(_EOF)  # every later call sees the EOF too
            raise self._exited("claude exited during the turn")
        return event

    def drain(self) -> int:
        """Drop events left over from an earlier turn; returns how many."""
        dropped = 0
        while not self._events.empty():
            event = self._events.get_nowait()
            if event is _EOF:
                self._events.put_nowait(_EOF)
                break
            dropped += 1
        return dropped

    def stderr_tail(self) -> str:
        return b"".join(self._stderr)[-STDERR_TAIL:].decode("utf-8", "replace")

    def exit_text(self, returncode: int | None) -> str:
        return "still running" if returncode is None else f"exit status {returncode}"

    def _exited(self, message: str) -> ChildExitedError:
        return ChildExitedError(message, returncode=self.returncode, stderr_tail=self.stderr_tail())

    async def _write(self, line: bytes) -> None:
        proc = self._proc
        async with self._write_lock:
            if proc is None or proc.stdin is None or proc.stdin.is_closing() or self._eof.is_set():
                raise self._exited("claude is not running")
            try:
                proc.stdin.write(line)
                await asyncio.wait_for(proc.stdin.drain(), WRITE_TIMEOUT)
            except (BrokenPipeError, ConnectionResetError, TimeoutError) as exc:
                raise self._exited(f"cannot write to claude: {exc!r}") from exc

    # --- readers ------------------------------------------------------------------------

    async def _read_stdout(self) -> None:
        assert self._proc is not None
        assert self._proc.stdout is not None
        stream = self._proc.stdout
        splitter = LineSplitter()
        try:
            while chunk := await stream.read(READ_CHUNK):
                self.last_activity = time.monotonic()
                for line in splitter.feed(chunk):
                    if isinstance(line, Overlong):
                        self._overlong(line)
                    else:
                        await self._dispatch(line)
            if splitter.pending():
                self._bad_line(ChildProtocolError(f"truncated last line ({splitter.pending()} B)"))
        except (OSError, ValueError) as exc:  # a broken pipe ends the stream like EOF
            self._log.bind(claude_pid=self.pid, error=repr(exc)).warning("claude.stdout_failed")
        finally:
            self._eof.set()
            self._events.put_nowait(_EOF)

    async def _dispatch(self, line: bytes) -> None:
        try:
            event = decode_line(line)
        except ChildProtocolError as exc:
            self._bad_line(exc)
            return
        match route(event):
            case ControlReply(request_id=request_id) as reply:
                future = self._pending.get(request_id)
                if future is not None and not future.done():
                    future.set_result(reply)
            case ControlRequestFromCli(subtype=subtype, reply=reply):
                self._log.bind(subtype=subtype).info("claude.control_request_refused")
                with contextlib.suppress(ChildExitedError):
                    await self._write(reply)
            case TurnEvent(event=turn_event):
                if turn_event.get("type") == "result" and says_no_conversation(
                    turn_event.get("errors")
                ):
                    self.no_conversation = True
                if not self.listening:
                    self.dropped_idle += 1
                    return
                self._events.put_nowait(dict(turn_event))
            case None:
                pass

    def _overlong(self, line: Overlong) -> None:
        """A line over MAX_LINE was skipped (never held whole): the turn hears of it."""
        kind = line.event_type
        self._log.bind(
            claude_pid=self.pid, size=line.size, limit=MAX_LINE, event_type=kind or None
        ).warning("claude.line_too_long")
        if self.listening:
            self._events.put_nowait({"type": OVERLONG, "size": line.size, "event_type": kind})

    def _bad_line(self, exc: ChildProtocolError) -> None:
        self.bad_lines += 1
        self._log.bind(claude_pid=self.pid, count=self.bad_lines, error=str(exc)).warning(
            "claude.bad_line"
        )

    async def _read_stderr(self) -> None:
        assert self._proc is not None
        assert self._proc.stderr is not None
        stream = self._proc.stderr
        with contextlib.suppress(OSError, ValueError):
            while chunk := await stream.read(65536):
                self._stderr.append(chunk)
                self._stderr_size += len(chunk)
                while self._stderr_size - len(self._stderr[0]) >= STDERR_TAIL:
                    self._stderr_size -= len(self._stderr.popleft())

    def __repr__(self) -> str:
        state = "alive" if self.alive else f"exited {self.returncode}"
        return f"<ClaudeChild pid={self.pid} {state} session={self.session_id}>"
