"""`python -m emulators.mattermost`: run the emulator until SIGTERM/SIGINT.

Prints one JSON line (the seed info, as GET /_admin/seed) on stdout once it listens.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from pathlib import Path

from .server import MattermostEmulator


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m emulators.mattermost")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--seed", type=int, default=None, help="makes ids reproducible")
    parser.add_argument(
        "--seed-file", type=Path, default=None, help="also write the seed JSON here"
    )
    parser.add_argument("--resume-window-s", type=float, default=300.0)
    parser.add_argument("--ping-interval-s", type=float, default=60.0)
    parser.add_argument("--auth-timeout-s", type=float, default=5.0)
    parser.add_argument("--dedup-ttl-s", type=float, default=30.0)
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    emulator = MattermostEmulator(
        host=args.host,
        port=args.port,
        seed=args.seed,
        resume_window_s=args.resume_window_s,
        ping_interval_s=args.ping_interval_s,
        auth_timeout_s=args.auth_timeout_s,
        dedup_ttl_s=args.dedup_ttl_s,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)  # handlers only enqueue the stop
    await emulator.start()
    try:
        line = json.dumps(emulator.seed_info())
        if args.seed_file is not None:
            # Write-then-rename so a reader never sees half a file.
            tmp = args.seed_file.with_name(args.seed_file.name + ".tmp")
            tmp.write_text(line + "\n")
            os.replace(tmp, args.seed_file)
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
        await stop.wait()
    finally:
        await emulator.aclose()


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(serve(parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
