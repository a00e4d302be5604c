"""The gateway's configuration, built by the CLI's loader and passed in explicitly."""

from __future__ import annotations

import msgspec

from protocol.logs import LogFormat, LogLevel

__all__ = ["GatewayConfig"]


class GatewayConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Everything one gateway process needs. ``token`` is a secret: never logged or shown."""

    url: str
    token: str
    channel_id: str
    thread_id: str
    allowed_users: tuple[str, ...]
    state_dir: str
    gateway_id: str
    worker_endpoint: str
    endpoint: str
    heartbeat_endpoint: str | None = None
    log_level: LogLevel = "INFO"
    log_format: LogFormat | None = None  # None: text on a terminal, else json
    # Seconds without a word from the worker before prompts and hellos are re-sent.
    resend_interval: float = 1.0
    # Binding a thread: its posts from this one on are run (default: only posts made after
    # the binding; older ones are the thread's history).
    since_post: str = ""
    # Seconds between two resolutions of the allowlist's usernames to user ids.
    allow_refresh_s: float = 30.0
    # MMCLAUDE_LIVE: keep an activity post per long turn.
    live: bool = True
    # MMCLAUDE_MAX_UPLOAD_MB in bytes: larger attachments are not downloaded.
    max_upload_bytes: int = 20 * 1024 * 1024

    def __repr__(self) -> str:
        return (
            f"GatewayConfig(url={self.url!r}, token=[REDACTED], channel_id={self.channel_id!r}, "
            f"thread_id={self.thread_id!r}, gateway_id={self.gateway_id!r})"
        )
