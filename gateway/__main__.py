"""``python -m gateway CONFIG.json``: one gateway from a JSON GatewayConfig (tests, dev).

Production starts it through ``mmclaude gateway``, which builds the config from TOML and the
environment.
"""

from __future__ import annotations

import sys
from pathlib import Path

import msgspec

from gateway import run_gateway
from gateway.config import GatewayConfig


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m gateway CONFIG.json", file=sys.stderr)
        return 2
    try:
        config = msgspec.json.decode(Path(args[0]).read_bytes(), type=GatewayConfig)
    except (OSError, msgspec.DecodeError) as exc:
        print(f"gateway: bad config {args[0]}: {exc}", file=sys.stderr)
        return 2
    return run_gateway(config)


if __name__ == "__main__":
    sys.exit(main())
