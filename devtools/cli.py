"""The ``mmclaude`` console script: the product's commands (``supervisor.cli``) plus
``mmclaude demo`` and ``mmclaude chaos``, which need the emulators."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from supervisor import cli

if TYPE_CHECKING:
    import argparse
    from collections.abc import Mapping, Sequence

__all__ = ["main"]


def _tools(sub: Any) -> Mapping[str, cli.Handler]:
    demo = sub.add_parser("demo", help="the whole tree against the built-in Mattermost emulator")
    demo.add_argument("--once", action="store_true", help="play the script, then exit")
    demo.add_argument(
        "--port",
        type=int,
        default=8065,
        metavar="N",
        help="the emulator's port for the browser page (default 8065; a free one if taken)",
    )
    chaos = sub.add_parser("chaos", help="kill processes at random while posting; report")
    chaos.add_argument("--duration", type=float, default=60.0, metavar="S")
    chaos.add_argument("--seed", type=int, default=1, metavar="N")
    chaos.add_argument("--rate", type=float, default=2.0, metavar="R", help="posts per second")
    chaos.add_argument("--real-claude", action="store_true", help="the pinned real CLI")
    return {"demo": _demo, "chaos": _chaos}


def _demo(args: argparse.Namespace) -> int:
    from devtools.demo import run_demo

    return run_demo(once=args.once, port=args.port)


def _chaos(args: argparse.Namespace) -> int:
    from devtools.chaos import run_chaos

    return run_chaos(
        duration=args.duration, seed=args.seed, rate=args.rate, real_claude=args.real_claude
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``mmclaude``: every command of contract.md, and the demo and chaos tools."""
    return cli.main(argv, extra=_tools)


if __name__ == "__main__":
    import sys

    sys.exit(main())
