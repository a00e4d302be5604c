"""The fake claude's runtime: a stdin reader thread and a turn loop on the main thread.

Keywords in a prompt (whole words, case-sensitive; README.md has the details):
SLOW:s (answer after s seconds, interruptible, partial text kept), HANG (silent until
interrupted), CRASH (exit 3 after system/init), CRASHONCE (CRASH only the first time this prompt
is seen in the session), LONG:k (answer of exactly k characters), ERROR (API-error result, as
the real CLI reports a 500), TOOL (a setsid'd `sleep 300` that outlives us, pid in the answer),
GARBAGE (non-JSON lines on stdout first), APPROVE (asks `can_use_tool` for a Bash command and
waits for the decision; not asked in bypassPermissions), ASKQ (asks an AskUserQuestion and
waits). FAKE_CLAUDE_DELAY_MS adds a delay to every turn.

Threads rather than asyncio because importing asyncio costs a third of our startup budget. One
re-entrant lock guards both stdout and the turn state, so an `interrupt` either lands before a
turn's final events (and aborts it) or after its `result` (and is a no-op), never in between.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, NoReturn

from emulators.claude import events as ev

if TYPE_CHECKING:
    from emulators.claude.session import Session

_SLOW = re.compile(r"\bSLOW(?::(\d+(?:\.\d*)?|\.\d+))?(?!\w)")
_LONG = re.compile(r"\bLONG:(\d+)")
_WORD = {
    name: re.compile(rf"\b{name}\b")
    for name in ("HANG", "CRASH", "CRASHONCE", "ERROR", "TOOL", "GARBAGE", "APPROVE", "ASKQ")
}
CRASH_STATUS = 3
# Lines GARBAGE writes: not JSON, truncated JSON, and JSON that is not an object.
GARBAGE_LINES = (
    "this is not json",
    '{"type":"assistant","message":{"id":"msg_trunc',
    "[1, 2, 3",
    "\ufffd\u0000 binary-ish noise",
)


def keyword(name: str, text: str) -> bool:
    return bool(_WORD[name].search(text))


def slow_seconds(text: str) -> float:
    """Seconds asked for by SLOW:s (bare SLOW means 1 s); 0 without the keyword."""
    match = _SLOW.search(text)
    if match is None:
        return 0.0
    return float(match.group(1)) if match.group(1) else 1.0


def long_answer(prefix: str, size: int) -> str:
    """Exactly `size` characters: `prefix` then deterministic filler, lines of 79 + newline."""
    filler = "abcdefghijklmnopqrstuvwxyz" * 3
    parts = []
    length = 0
    line = 0
    while length < size:
        head = prefix if line == 0 else ""
        chunk = f"{head}line {line:07d} {filler}"[:79] + "\n"
        parts.append(chunk)
        length += len(chunk)
        line += 1
    return "".join(parts)[:size]


def content_text(content: Any) -> str:
    """The text of a user message's content: a string, or the text blocks joined by newlines.

    Each base64 image block adds a line ``[image <media type> <n> bytes]``, so an echo shows
    which images reached the model."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [
            b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text"
        ]
        texts += [
            _image_line(b) for b in content if isinstance(b, dict) and b.get("type") == "image"
        ]
        return "\n".join(str(t) for t in texts)
    return ""


def _image_line(block: dict[str, Any]) -> str:
    source = block.get("source")
    source = source if isinstance(source, dict) else {}
    data = source.get("data")
    size = (len(data) * 3) // 4 - data.count("=") if isinstance(data, str) else 0
    return f"[image {source.get('media_type', '?')} {size} bytes]"


class Options:
    """What the command line asked for."""

    def __init__(
        self,
        model: str,
        permission_mode: str,
        delay_s: float,
        max_retries: int,
        partial: bool = False,
    ) -> None:
        self.partial = partial  # --include-partial-messages: stream_event text deltas
        self.model = model
        self.permission_mode = permission_mode
        self.delay_s = delay_s
        self.max_retries = max_retries
        self.api_key_source = "ANTHROPIC_API_KEY" if os.environ.get("ANTHROPIC_API_KEY") else "none"


class FakeClaude:
    """One process's state: the session, queued prompts, and the running turn."""

    def __init__(self, options: Options, session: Session) -> None:
        self.options = options
        self.session = session
        self.cond = threading.Condition(threading.RLock())
        self.queue: list[str] = []
        self.eof = False
        self.running = False
        self.interrupted = threading.Event()
        self.last_is_error = False
        self.tools: list[
            subprocess.Popen[bytes]
        ] = []  # kept so they are never reaped or warned about
        self.tool_pid = 0
        self.responses: dict[str, dict[str, Any]] = {}  # can_use_tool answers by request id
        self.asking: str | None = None  # the request id of the pending can_use_tool
        self.stream_id = ""  # the message id of this turn's streamed text, if any

    def __repr__(self) -> str:
        state = f"running={self.running} queued={len(self.queue)}"
        return f"<FakeClaude {self.session.session_id} {state}>"

    # -- output ---------------------------------------------------------------------------

    def emit(self, event: dict[str, Any]) -> None:
        self.emit_raw(json.dumps(event, ensure_ascii=False, separators=(",", ":")))

    def emit_raw(self, line: str) -> None:
        with self.cond:
            try:
                sys.stdout.buffer.write(line.encode("utf-8", "surrogatepass") + b"\n")
                sys.stdout.buffer.flush()
            except BrokenPipeError:
                os._exit(1)  # our reader is gone: nobody to answer

    # -- stdin ----------------------------------------------------------------------------

    def read_stdin(self) -> None:
        """Reader thread: queue user messages, answer control requests, die on malformed input."""
        stdin = sys.stdin.buffer
        while True:
            raw = stdin.readline()
            if not raw:
                break
            text = raw.decode("utf-8", "replace").strip()
            if text:
                self.handle_line(text)
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def handle_line(self, text: str) -> None:
        try:
            obj = json.loads(text)
        except ValueError as exc:
            fatal(f"Error parsing streaming input line: {text[:200]}: SyntaxError: {exc}")
        if not isinstance(obj, dict):
            return  # the real CLI ignores arrays and scalars
        kind = obj.get("type")
        if kind == "user":
            message = obj.get("message")
            role = message.get("role") if isinstance(message, dict) else None
            if role != "user":
                fatal(f"Error: Expected message role 'user', got '{role or 'undefined'}'")
            with self.cond:
                self.queue.append(content_text(message.get("content")))  # type: ignore[union-attr]
                self.cond.notify_all()
        elif kind == "control_request":
            request = obj.get("request")
            if not isinstance(request, dict):
                fatal("Error: Missing request on control_request")
            self.control(str(obj.get("request_id", "")), request)
        elif kind == "control_response":
            response = obj.get("response")
            if isinstance(response, dict):
                with self.cond:
                    body = response.get("response")
                    request_id = str(response.get("request_id", ""))
                    self.responses[request_id] = body if isinstance(body, dict) else {}
                    self.cond.notify_all()
        # keep_alive, control_cancel_request and unknown types: ignored

    def control(self, request_id: str, request: dict[str, Any]) -> None:
        subtype = request.get("subtype")
        if subtype == "initialize":
            opts = self.options
            self.emit(
                ev.initialize_response(request_id, opts.model, opts.api_key_source, os.getpid())
            )
        elif subtype == "interrupt":
            with self.cond:
                still_queued: list[str] = []
                if request.get("cancel_queued"):
                    self.queue.clear()
                if self.asking is not None:  # as 2.1.332: withdraw the pending request first
                    self.emit({"type": "control_cancel_request", "request_id": self.asking})
                self.emit(ev.control_success(request_id, {"still_queued": still_queued}))
                if self.running:
                    self.interrupted.set()
        elif subtype == "set_model":
            model = request.get("model")
            self.options.model = model if isinstance(model, str) and model else ev.DEFAULT_MODEL
            self.emit(ev.control_success(request_id, {"model": self.options.model}))
        elif subtype == "set_permission_mode":
            self.options.permission_mode = str(request.get("mode") or "default")
            self.emit(ev.control_success(request_id, {"mode": self.options.permission_mode}))
        elif subtype == "mcp_status":
            self.emit(ev.control_success(request_id, {"mcpServers": []}))
        else:
            self.emit(
                ev.control_error(request_id, f"Unsupported control request subtype: {subtype}")
            )

    # -- turns ----------------------------------------------------------------------------

    def run(self) -> int:
        """Turn loop: run queued prompts (merged) until stdin EOF; return the exit status."""
        while True:
            with self.cond:
                while not self.queue and not self.eof:
                    self.cond.wait()
                if not self.queue:
                    return 1 if self.last_is_error else 0
                prompt = "\n".join(self.queue)
                self.queue.clear()
                self.running = True
                self.interrupted.clear()
            try:
                self.turn(prompt)
            finally:
                with self.cond:
                    self.running = False

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds` (forever if negative); True if an interrupt cut it short."""
        return self.interrupted.wait(None if seconds < 0 else seconds)

    def turn(self, prompt: str) -> None:
        started = time.monotonic()
        self.stream_id = ""
        sid = self.session.session_id
        opts = self.options
        self.emit(
            ev.system_init(sid, os.getcwd(), opts.model, opts.permission_mode, opts.api_key_source)
        )
        if keyword("CRASH", prompt):
            crash()
        if keyword("CRASHONCE", prompt) and prompt not in self.session.crashonce_seen:
            self.session.crashonce_seen.append(prompt)
            self.session.save()  # so the retry after --resume answers normally
            crash()
        if keyword("GARBAGE", prompt):
            for line in GARBAGE_LINES:
                self.emit_raw(line)
        pending = ["user"]  # roles this turn adds before the answer, for N
        if keyword("TOOL", prompt):
            pending += self.run_tool(sid)
        decision: str | None = ""
        if keyword("APPROVE", prompt) or keyword("ASKQ", prompt):
            decision = self.ask_permission(sid, ask_question=keyword("ASKQ", prompt))
            if decision is None:
                self.finish_interrupted(prompt, pending, "", started)
                return
            pending += ["assistant", "user"]
        if keyword("HANG", prompt):
            self.wait(-1)
            self.finish_interrupted(prompt, pending, "", started)
            return
        if keyword("ERROR", prompt):
            self.finish_error(prompt, started)
            return
        n = self.session.request_size(pending)
        answer = f"echo[{n}]: {prompt}"
        size = _LONG.search(prompt)
        if size:
            answer = long_answer(f"echo[{n}]: ", int(size.group(1)))
        if decision:
            answer = f"{answer} [{decision}]"
        if self.wait(opts.delay_s):
            self.finish_interrupted(prompt, pending, "", started)
            return
        slow = slow_seconds(prompt)
        slow_started = time.monotonic()
        if slow and opts.partial:
            if self.drip(answer, slow):
                done = (time.monotonic() - slow_started) / slow
                partial = answer[: max(1, int(len(answer) * done))]
                self.finish_interrupted(prompt, pending, partial, started)
                return
        elif slow and self.wait(slow):
            # The answer streams evenly over `slow` seconds: keep what had "arrived" so far.
            done = (time.monotonic() - slow_started) / slow
            partial = answer[: max(1, int(len(answer) * done))]
            self.finish_interrupted(prompt, pending, partial, started)
            return
        self.finish_success(prompt, pending, answer, started)

    def drip(self, answer: str, seconds: float) -> bool:
        """Stream ``answer`` as text deltas evenly over ``seconds`` (4 a second), as the real
        CLI does with --include-partial-messages; True if an interrupt cut it short."""
        sid = self.session.session_id
        steps = max(1, int(seconds * 4))
        self.stream_id = ev.new_message_id()
        start = {"type": "message_start", "message": ev.stream_message(self.stream_id)}
        self.emit(ev.stream_event(sid, start))
        block = {"type": "text", "text": ""}
        self.emit(
            ev.stream_event(
                sid, {"type": "content_block_start", "index": 0, "content_block": block}
            )
        )
        sent = 0
        for step in range(1, steps + 1):
            if self.wait(seconds / steps):
                return True
            upto = len(answer) * step // steps
            if upto > sent:
                delta = {"type": "text_delta", "text": answer[sent:upto]}
                self.emit(
                    ev.stream_event(
                        sid, {"type": "content_block_delta", "index": 0, "delta": delta}
                    )
                )
                sent = upto
        return False

    def run_tool(self, sid: str) -> list[str]:
        """Start a setsid'd `sleep 300` that outlives us, like a Bash tool's background job."""
        proc = subprocess.Popen(
            ["sleep", "300"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.tools.append(proc)
        tool_id = f"toolu_{ev.new_uuid().replace('-', '')[:24]}"
        command = {"command": "sleep 300 &", "description": "fake long tool"}
        self.emit(
            ev.assistant(
                sid, [{"type": "tool_use", "id": tool_id, "name": "Bash", "input": command}]
            )
        )
        self.emit(ev.user_tool_result(sid, tool_id, f"tool-pid={proc.pid}"))
        self.tool_pid = proc.pid
        return ["assistant", "user"]

    def ask_permission(self, sid: str, *, ask_question: bool) -> str | None:
        """A tool_use and its `can_use_tool`, then wait: the outcome for the answer, or None
        when interrupted (the request was withdrawn)."""
        tool_id = f"toolu_{ev.new_uuid().replace('-', '')[:24]}"
        request_id = ev.new_uuid()
        if ask_question:
            name = "AskUserQuestion"
            options = [
                {"label": "Red", "description": "warm"},
                {"label": "Blue", "description": "cool"},
            ]
            question = {"question": "Which colour?", "header": "Colour", "options": options}
            tool_input: dict[str, Any] = {"questions": [{**question, "multiSelect": False}]}
            suggestions: list[Any] = []
        else:
            name = "Bash"
            tool_input = {"command": "echo approved-run", "description": "fake approval"}
            suggestions = [
                {
                    "type": "addRules",
                    "rules": [{"toolName": "Bash", "ruleContent": "echo approved-run"}],
                    "behavior": "allow",
                    "destination": "session",
                }
            ]
        self.emit(
            ev.assistant(
                sid, [{"type": "tool_use", "id": tool_id, "name": name, "input": tool_input}]
            )
        )
        if name == "Bash" and self.options.permission_mode == "bypassPermissions":
            self.emit(ev.user_tool_result(sid, tool_id, "approved-run"))
            return "ran without asking"
        request = {
            "subtype": "can_use_tool",
            "tool_name": name,
            "display_name": name,
            "input": tool_input,
            "permission_suggestions": suggestions,
            "tool_use_id": tool_id,
        }
        with self.cond:
            self.asking = request_id
            self.emit({"type": "control_request", "request_id": request_id, "request": request})
            while request_id not in self.responses and not self.interrupted.is_set():
                self.cond.wait(0.05)
            self.asking = None
            body = self.responses.pop(request_id, None)
        if body is None:
            return None
        if body.get("behavior") == "allow":
            updated = body.get("updatedInput")
            if ask_question:
                answers = updated.get("answers") if isinstance(updated, dict) else None
                result = f"answers={json.dumps(answers, sort_keys=True)}"
            else:
                always = " always" if body.get("updatedPermissions") else ""
                result = f"allowed{always}: approved-run"
            self.emit(ev.user_tool_result(sid, tool_id, result))
            return result
        result = f"denied: {body.get('message', '')}"
        self.emit(ev.user_tool_result(sid, tool_id, result))
        return result

    def finish_success(self, prompt: str, pending: list[str], answer: str, started: float) -> None:
        sid = self.session.session_id
        if keyword("TOOL", prompt):
            answer = f"{answer} tool-pid={self.tool_pid}"
        with self.cond:
            if self.interrupted.is_set():
                self.finish_interrupted(prompt, pending, answer, started)
                return
            self.emit(ev.assistant_text(sid, answer, self.stream_id))
            self.record(prompt, pending[1:], answer)
            num_turns = len(pending[1:]) // 2 + 1
            ms = int((time.monotonic() - started) * 1000)
            self.emit(
                ev.result_success(
                    sid, answer, self.options.model, ms, num_turns, len(answer) // 4 + 1
                )
            )
            self.last_is_error = False

    def finish_interrupted(
        self, prompt: str, pending: list[str], partial: str, started: float
    ) -> None:
        """Partial assistant (if any text had arrived), the marker, then error_during_execution."""
        sid = self.session.session_id
        with self.cond:
            if partial:
                self.emit(ev.assistant_text(sid, partial, self.stream_id))
            self.emit(ev.user_text(sid, ev.INTERRUPT_MARKER))
            self.record(prompt, pending[1:], partial, marker=True)
            self.emit(ev.result_interrupted(sid, int((time.monotonic() - started) * 1000)))
            self.last_is_error = True

    def finish_error(self, prompt: str, started: float) -> None:
        """Retries, then the synthetic API error.

        Like the real CLI, the prompt stays in the conversation without an answer, so it merges
        with the next prompt into one API message (N grows by 2 only after the next answer).
        """
        sid = self.session.session_id
        text = "API Error: 500 fake"
        with self.cond:
            for attempt in range(1, self.options.max_retries + 1):
                self.emit(ev.api_retry(sid, attempt, self.options.max_retries, 500))
            self.emit(ev.assistant_api_error(sid, text))
            self.record(prompt, [], "")
            ms = int((time.monotonic() - started) * 1000)
            self.emit(ev.result_api_error(sid, text, 500, ms))
            self.last_is_error = True

    def record(self, prompt: str, tool_roles: list[str], answer: str, marker: bool = False) -> None:
        """Append the turn to the session and save it, before the caller prints `result`."""
        self.session.add("user", prompt)
        for role in tool_roles:
            self.session.add(role, "[tool_use Bash]" if role == "assistant" else "[tool_result]")
        if answer:
            self.session.add("assistant", answer)
        if marker:
            self.session.add("user", ev.INTERRUPT_MARKER)
        self.session.save()


def fatal(message: str) -> NoReturn:
    """Die like the real CLI on bad input: reason on stderr, nothing on stdout, exit 1."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()
    os._exit(1)


def crash() -> NoReturn:
    sys.stderr.write("fake-claude: CRASH keyword, exiting mid-turn\n")
    sys.stderr.flush()
    os._exit(CRASH_STATUS)
