"""The session worker's configuration, built by the CLI's loader and passed in explicitly."""

from __future__ import annotations

import msgspec

from protocol.logs import LogFormat, LogLevel

__all__ = ["WorkerConfig"]


class WorkerConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the worker needs. It holds no Mattermost secret: the claude child must
    never see one, so the worker is not given any."""

    state_dir: str
    claude_path: str
    claude_args: tuple[str, ...]
    claude_workdir: str
    endpoint: str
    heartbeat_endpoint: str | None = None
    log_level: LogLevel = "INFO"
    log_format: LogFormat | None = None  # None: text on a terminal, else json
    # No stdout event from claude for this long during a turn → interrupt (seconds).
    idle_limit: float = 600.0
    # After an interrupt, how long to wait for the turn's result before killing claude.
    interrupt_grace: float = 5.0
    # How many times one prompt is sent to claude before it is answered with the failure.
    max_tries: int = 3
    # Prompts one user may have waiting (the running one not counted); beyond it a prompt
    # is answered with a short refusal instead of queued.
    max_queued_per_user: int = 100
    # Re-send an undelivered answer this often (seconds).
    redeliver_interval: float = 2.0
    # CLAUDE_PERMISSION_MODE: passed as --permission-mode (a !mode from the thread wins).
    permission_mode: str = "default"
    # MMCLAUDE_ALLOW_BYPASS: whether !mode bypassPermissions may be used from the thread.
    allow_bypass: bool = False
    # MMCLAUDE_APPROVAL_TIMEOUT: seconds a tool approval or question waits, then denied.
    approval_timeout: float = 600.0
    # Secrets to redact from log lines (the token, if the environment had one).
    redact: tuple[str, ...] = ()
    # MMCLAUDE_LIVE: run claude with --include-partial-messages and send activity views.
    live: bool = True
    # MMCLAUDE_MAX_UPLOAD_MB in bytes: the largest file `!file` sends.
    max_upload_bytes: int = 20 * 1024 * 1024

    def __repr__(self) -> str:
        return f"WorkerConfig(state_dir={self.state_dir!r}, claude_path={self.claude_path!r})"
