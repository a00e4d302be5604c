"""Entry point of the fake claude CLI: `python -m emulators.claude` or `fake-claude`.

Parses the real CLI's flags (unknown ones are ignored), checks them the way the real one does,
opens or creates the session, then hands over to `engine.FakeClaude`. See README.md for the
keywords. Imports are stdlib only and kept few: the fake must start in well under 0.2 s.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import TYPE_CHECKING

from emulators.claude import events as ev
from emulators.claude.engine import FakeClaude, Options, fatal
from emulators.claude.session import Session, is_uuid, sessions_dir

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType

# Flags whose next argument is their value; everything else is a switch or ignored.
_VALUED = {
    "--output-format",
    "--input-format",
    "--session-id",
    "--resume",
    "-r",
    "--model",
    "--permission-mode",
}


def parse_args(argv: list[str]) -> dict[str, str]:
    """Return the flags we care about; `--x=v` and `--x v` both work, the rest is dropped."""
    found: dict[str, str] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        name, eq, value = arg.partition("=")
        if name in _VALUED and name.startswith("--") and eq:
            found[name] = value
        elif arg in _VALUED and i + 1 < len(argv):
            found["--resume" if arg == "-r" else arg] = argv[i + 1]
            i += 1
        elif arg.startswith("-"):
            found[arg] = ""
        i += 1
    return found


def _exit_on(status: int) -> Callable[[int, FrameType | None], None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        os._exit(status)

    return handler


def install_signals() -> None:
    # Node's defaults, as observed on the real CLI: 128+signal, and SIGINT ends it with 0.
    signal.signal(signal.SIGTERM, _exit_on(143))
    signal.signal(signal.SIGHUP, _exit_on(129))
    signal.signal(signal.SIGINT, _exit_on(0))


def open_session(flags: dict[str, str], options: Options) -> Session:
    directory = sessions_dir()
    wanted, resume = flags.get("--session-id"), flags.get("--resume")
    if wanted is not None and resume is not None:
        fatal(
            "Error: --session-id can only be used with --continue or --resume "
            "if --fork-session is also specified."
        )
    if resume is not None:
        session = Session(directory, resume)
        if not session.exists():
            error = f"No conversation found with session ID: {resume}"
            # The real CLI writes this result at startup, before reading any input.
            FakeClaude(options, session).emit(ev.result_no_conversation(resume, error))
            fatal(error)
        session.load()
        return session
    if wanted is not None:
        if not is_uuid(wanted):
            fatal("Error: Invalid session ID. Must be a valid UUID.")
        session = Session(directory, wanted)
        if session.exists():
            fatal(f"Error: Session ID {wanted} is already in use.")
        return session
    return Session(directory, ev.new_uuid())


def main(argv: list[str] | None = None) -> None:
    install_signals()
    flags = parse_args(sys.argv[1:] if argv is None else argv)
    if "--version" in flags or "-v" in flags:
        print(f"{ev.VERSION} (Claude Code)")
        return
    if flags.get("--input-format", "stream-json") != "stream-json":
        fatal("Error: fake-claude only supports --input-format stream-json")
    if flags.get("--output-format") != "stream-json":
        fatal("Error: fake-claude only supports --output-format stream-json")
    if "--verbose" not in flags:
        fatal("Error: When using --print, --output-format=stream-json requires --verbose")
    delay_ms = float(os.environ.get("FAKE_CLAUDE_DELAY_MS") or 0)
    options = Options(
        model=flags.get("--model") or ev.DEFAULT_MODEL,
        permission_mode=flags.get("--permission-mode") or "default",
        delay_s=delay_ms / 1000,
        max_retries=int(os.environ.get("CLAUDE_CODE_MAX_RETRIES") or 10),
        partial="--include-partial-messages" in flags,
    )
    claude = FakeClaude(options, open_session(flags, options))
    threading.Thread(target=claude.read_stdin, name="stdin", daemon=True).start()
    status = claude.run()
    sys.stdout.flush()
    sys.stderr.flush()
    # os._exit: skip interpreter teardown (the stdin thread may sit in read()) and leave the
    # TOOL grandchildren running, as the real CLI leaves a Bash tool's setsid'd jobs.
    os._exit(status)


if __name__ == "__main__":
    main()
