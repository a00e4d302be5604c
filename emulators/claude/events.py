"""Builders for the stdout events of the fake claude, shaped like Claude Code 2.1.197.

Every builder returns a plain dict whose keys are in the same order as the recorded real stream
(`shared/fixtures/claude-stream-json/*-2.1.197.jsonl`); the contract tests compare key lists, so
add a key here only together with the fixture that shows it. Values are plausible, not real.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

Event = dict[str, Any]

# Reported as claude_code_version; the "-fake" suffix keeps logs honest about who answered.
VERSION = "2.1.197-fake"
DEFAULT_MODEL = "claude-opus-4-8[1m]"
API_MODEL = "claude-opus-4-8"  # the model id inside assistant messages (no context suffix)
TOOLS = ["Bash", "Edit", "Read"]
AGENTS = ["claude", "Explore", "general-purpose", "Plan", "statusline-setup"]
SKILLS = ["update-config", "verify", "debug", "code-review", "simplify"]
SLASH_COMMANDS = [*SKILLS, "clear", "compact", "config", "context", "init", "review", "usage"]
INTERRUPT_MARKER = "[Request interrupted by user]"
# Per-token prices behind total_cost_usd ($5 / $25 per Mtok, as the real init lists).
_IN_PRICE, _OUT_PRICE = 5e-6, 25e-6


def new_uuid() -> str:
    return str(uuid.uuid4())


def timestamp() -> str:
    """UTC time in the CLI's ISO format with milliseconds, e.g. 2026-11-23T22:35:51.208Z."""
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


def _usage(input_tokens: int, output_tokens: int) -> Event:
    return {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_tokens,
        "server_tool_use": {"web_search_requests": 0, "web_fetch_requests": 0},
        "service_tier": "standard",
        "cache_creation": {"ephemeral_1h_input_tokens": 0, "ephemeral_5m_input_tokens": 0},
        "inference_geo": "",
        "iterations": [],
        "speed": "standard",
    }


def _model_usage(model: str, input_tokens: int, output_tokens: int, cost: float) -> Event:
    return {
        model: {
            "inputTokens": input_tokens,
            "outputTokens": output_tokens,
            "cacheReadInputTokens": 0,
            "cacheCreationInputTokens": 0,
            "webSearchRequests": 0,
            "costUSD": cost,
            "contextWindow": 1000000,
            "maxOutputTokens": 64000,
        }
    }


def initialize_response(request_id: str, model: str, api_key_source: str, pid: int) -> Event:
    """The success answer to `initialize`; 2.1.197's keys plus 2.1.330's claude_code_version."""
    commands = [
        {"name": name, "description": f"{name} (fake)", "argumentHint": ""}
        for name in SLASH_COMMANDS
    ]
    models = [
        {
            "value": "default",
            "resolvedModel": model,
            "displayName": "Default (recommended)",
            "description": "The fake claude's only model",
            "supportsEffort": True,
        }
    ]
    body = {
        "commands": commands,
        "agents": [{"name": name, "description": f"{name} (fake)"} for name in AGENTS],
        "output_style": "default",
        "available_output_styles": ["default"],
        "models": models,
        "account": {
            "tokenSource": "none",
            "apiKeySource": api_key_source,
            "apiProvider": "firstParty",
        },
        "pid": pid,
        "claude_code_version": VERSION,
    }
    return control_success(request_id, body)


def control_success(request_id: str, body: Event | None) -> Event:
    response: Event = {"subtype": "success", "request_id": request_id}
    if body is not None:
        response["response"] = body
    return {"type": "control_response", "response": response}


def control_error(request_id: str, error: str) -> Event:
    return {
        "type": "control_response",
        "response": {"subtype": "error", "request_id": request_id, "error": error},
    }


def system_init(
    session_id: str, cwd: str, model: str, permission_mode: str, api_key_source: str
) -> Event:
    return {
        "type": "system",
        "subtype": "init",
        "cwd": cwd,
        "session_id": session_id,
        "tools": TOOLS,
        "mcp_servers": [],
        "model": model,
        "permissionMode": permission_mode,
        "slash_commands": SLASH_COMMANDS,
        "apiKeySource": api_key_source,
        "claude_code_version": VERSION,
        "output_style": "default",
        "agents": AGENTS,
        "skills": SKILLS,
        "plugins": [],
        "analytics_disabled": True,
        "product_feedback_disabled": True,
        "uuid": new_uuid(),
        "fast_mode_state": "off",
    }


def stream_message(message_id: str) -> Event:
    """The ``message`` of a ``message_start`` stream event (empty content, as recorded)."""
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": API_MODEL,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 1},
    }


def stream_event(session_id: str, event: Event) -> Event:
    """One ``stream_event`` (only with --include-partial-messages)."""
    return {
        "type": "stream_event",
        "event": event,
        "session_id": session_id,
        "parent_tool_use_id": None,
        "uuid": new_uuid(),
    }


def new_message_id() -> str:
    return f"msg_{uuid.uuid4().hex[:24]}"


def assistant(session_id: str, content: list[Event], message_id: str = "") -> Event:
    message = {
        "id": message_id or new_message_id(),
        "type": "message",
        "role": "assistant",
        "model": API_MODEL,
        "content": content,
        "stop_reason": None,  # the CLI emits the assistant event before message_delta
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 1},
        "context_management": None,
    }
    return _assistant_event(session_id, message)


def _assistant_event(session_id: str, message: dict[str, Any], **extra: Any) -> Event:
    """The envelope every `assistant` event shares (key order as the recorded streams)."""
    return {
        "type": "assistant",
        "message": message,
        "parent_tool_use_id": None,
        "session_id": session_id,
        "uuid": new_uuid(),
        **extra,
    }


def assistant_text(session_id: str, text: str, message_id: str = "") -> Event:
    return assistant(session_id, [{"type": "text", "text": text}], message_id)


def assistant_api_error(session_id: str, text: str) -> Event:
    """The `<synthetic>` message the CLI writes when the API call failed for good."""
    usage = _usage(0, 0)
    usage.update(service_tier=None, inference_geo=None, iterations=None, speed=None)
    message = {
        "id": new_uuid(),
        "container": None,
        "model": "<synthetic>",
        "role": "assistant",
        "stop_details": None,
        "stop_reason": "stop_sequence",
        "stop_sequence": "",
        "type": "message",
        "usage": usage,
        "content": [{"type": "text", "text": text}],
        "context_management": None,
    }
    return _assistant_event(session_id, message, error="server_error")


def user_text(session_id: str, text: str) -> Event:
    """A user event the CLI itself writes, such as the interrupt marker."""
    return {
        "type": "user",
        "message": {"role": "user", "content": [{"type": "text", "text": text}]},
        "parent_tool_use_id": None,
        "session_id": session_id,
        "uuid": new_uuid(),
        "timestamp": timestamp(),
    }


def user_tool_result(session_id: str, tool_use_id: str, output: str) -> Event:
    block = {
        "tool_use_id": tool_use_id,
        "type": "tool_result",
        "content": output,
        "is_error": False,
    }
    return {
        "type": "user",
        "message": {"role": "user", "content": [block]},
        "parent_tool_use_id": None,
        "session_id": session_id,
        "uuid": new_uuid(),
        "timestamp": timestamp(),
        "tool_use_result": {
            "stdout": output,
            "stderr": "",
            "interrupted": False,
            "isImage": False,
            "noOutputExpected": False,
        },
    }


def api_retry(session_id: str, attempt: int, max_retries: int, status: int) -> Event:
    return {
        "type": "system",
        "subtype": "api_retry",
        "attempt": attempt,
        "max_retries": max_retries,
        "retry_delay_ms": 500.0 * 2 ** (attempt - 1),
        "error_status": status,
        "error": "server_error",
        "session_id": session_id,
        "uuid": new_uuid(),
    }


def result_success(
    session_id: str, text: str, model: str, duration_ms: int, num_turns: int, output_tokens: int
) -> Event:
    cost = 10 * num_turns * _IN_PRICE + output_tokens * _OUT_PRICE
    return {
        "type": "result",
        "subtype": "success",
        "is_error": False,
        "api_error_status": None,
        "duration_ms": duration_ms,
        "duration_api_ms": duration_ms,
        "ttft_ms": duration_ms,
        "ttft_stream_ms": duration_ms,
        "time_to_request_ms": 0,
        "num_turns": num_turns,
        "result": text,
        "stop_reason": "end_turn",
        "session_id": session_id,
        "total_cost_usd": cost,
        "usage": _usage(10 * num_turns, output_tokens),
        "modelUsage": _model_usage(model, 10 * num_turns, output_tokens, cost),
        "permission_denials": [],
        "terminal_reason": "completed",
        "fast_mode_state": "off",
        "uuid": new_uuid(),
    }


def result_api_error(session_id: str, text: str, status: int, duration_ms: int) -> Event:
    """API failures are subtype success with is_error true, as the real CLI reports them."""
    return {
        "type": "result",
        "subtype": "success",
        "is_error": True,
        "api_error_status": status,
        "duration_ms": duration_ms,
        "duration_api_ms": 0,
        "num_turns": 1,
        "result": text,
        "stop_reason": "stop_sequence",
        "session_id": session_id,
        "total_cost_usd": 0,
        "usage": _usage(0, 0),
        "modelUsage": {},
        "permission_denials": [],
        "terminal_reason": "completed",
        "fast_mode_state": "off",
        "uuid": new_uuid(),
    }


def result_interrupted(session_id: str, duration_ms: int) -> Event:
    return {
        "type": "result",
        "subtype": "error_during_execution",
        "duration_ms": duration_ms,
        "duration_api_ms": 0,
        "is_error": True,
        "num_turns": 2,  # the real CLI counts the interrupt marker as a turn
        "stop_reason": None,
        "session_id": session_id,
        "total_cost_usd": 0,
        "usage": _usage(0, 0),
        "modelUsage": {},
        "permission_denials": [],
        "terminal_reason": "aborted_streaming",
        "fast_mode_state": "off",
        "uuid": new_uuid(),
        "errors": ["[ede_diagnostic] result_type=user last_content_type=n/a stop_reason=null"],
    }


def result_no_conversation(session_id: str, error: str) -> Event:
    """The result written at startup for `--resume` of an unknown session (no terminal_reason)."""
    return {
        "type": "result",
        "subtype": "error_during_execution",
        "duration_ms": 0,
        "duration_api_ms": 0,
        "is_error": True,
        "num_turns": 0,
        "stop_reason": None,
        "session_id": session_id,
        "total_cost_usd": 0,
        "usage": _usage(0, 0),
        "modelUsage": {},
        "permission_denials": [],
        "uuid": new_uuid(),
        "errors": [error],
    }
