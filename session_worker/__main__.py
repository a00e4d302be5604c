"""``python -m session_worker CONFIG.json``: one worker from a JSON WorkerConfig (tests, dev).

Production starts it through ``mmclaude worker``, which builds the config from TOML and the
environment.
"""

from __future__ import annotations

import sys
from pathlib import Path

import msgspec

from session_worker import run_worker
from session_worker.config import WorkerConfig


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m session_worker CONFIG.json", file=sys.stderr)
        return 2
    try:
        config = msgspec.json.decode(Path(args[0]).read_bytes(), type=WorkerConfig)
    except (OSError, msgspec.DecodeError) as exc:
        print(f"session_worker: bad config {args[0]}: {exc}", file=sys.stderr)
        return 2
    return run_worker(config)


if __name__ == "__main__":
    sys.exit(main())
