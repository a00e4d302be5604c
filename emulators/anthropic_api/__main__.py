"""Run the fake Anthropic API as a process: `python -m emulators.anthropic_api --port N`.

Prints one JSON line `{"url": ...}` on stdout once it listens, then serves until SIGTERM or
SIGINT (exit 0). Unknown requests are logged on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys

from emulators.anthropic_api.server import open_anthropic_api


async def serve(host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with open_anthropic_api(host, port) as api:
        print(json.dumps({"url": api.url}), flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m emulators.anthropic_api", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.host, args.port))
    sys.exit(0)


if __name__ == "__main__":
    main()
