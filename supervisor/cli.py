"""The ``mmclaude`` command line: one subcommand per entry of contract.md.

The console script is ``devtools.cli:main``, which adds the tools that run the product
against the emulators (``demo``, ``chaos``) through ``extra``: the supervisor itself imports
no emulator.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any, TypeAlias

from protocol.proctree import drop_mattermost
from supervisor.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["Extension", "Handler", "main"]

Handler: TypeAlias = Callable[[argparse.Namespace], int]
# Adds subcommands to the parser's subparsers and returns their handlers by name.
Extension: TypeAlias = Callable[[Any], Mapping[str, Handler]]


def _version() -> str:
    try:
        return version("mmclaude")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0+unknown"


def _count(text: str) -> int:
    """``--gateways N``: a whole number, at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text!r}")
    return value


def _parser(
    extra: Extension | None = None,
) -> tuple[argparse.ArgumentParser, Mapping[str, Handler]]:
    parser = argparse.ArgumentParser(
        prog="mmclaude",
        description=(
            "A Mattermost bot that serves one thread with one persistent Claude Code session."
        ),
    )
    parser.add_argument("--version", action="version", version=f"mmclaude {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--config", metavar="FILE", help="TOML file (the environment wins)")
        return p

    run = with_config(sub.add_parser("run", help="the supervisor: gateway + worker, restarted"))
    run.add_argument("--gateways", type=_count, metavar="N", help="number of gateways (default 1)")
    with_config(sub.add_parser("gateway", help="one gateway in the foreground"))
    with_config(sub.add_parser("worker", help="one session worker in the foreground"))
    with_config(sub.add_parser("config", help="print the effective configuration"))
    with_config(
        sub.add_parser("keys", help="make the CURVE keys for tcp endpoints (never overwrites)")
    )
    status = sub.add_parser("status", help="what the running supervisor reports")
    status.add_argument("--json", action="store_true", help="one JSON object on stdout")
    with_config(status)
    handlers = extra(sub) if extra is not None else {}
    return parser, handlers


def main(
    argv: Sequence[str] | None = None,
    *,
    extra: Extension | None = None,
) -> int:
    """Run the CLI; returns the exit status (2 for a configuration error). ``extra`` adds
    subcommands: it gets the subparsers and returns a handler for each command it added."""
    parser, handlers = _parser(extra)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        if args.command in handlers:
            return handlers[args.command](args)
        return _dispatch(args)
    except ConfigError as exc:
        print(f"mmclaude: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    from supervisor.config import ensure_state_dir, load_settings

    command = args.command
    if command == "config":
        import json

        settings = load_settings(config_file=args.config, need="config")
        print(json.dumps(settings.describe(), indent=2))
        return 0
    if command == "keys":
        return _keys(load_settings(config_file=args.config, need="keys").state_dir)
    if command == "status":
        from supervisor.status import status_command

        settings = load_settings(config_file=args.config, need="worker")
        return status_command(settings, as_json=args.json)
    if command == "worker":
        from session_worker import run_worker

        settings = load_settings(config_file=args.config, need="worker")
        ensure_state_dir(settings)
        _forget_secrets()
        return run_worker(settings.worker_config())
    if command == "gateway":
        from gateway import run_gateway

        settings = load_settings(config_file=args.config, need="gateway")
        ensure_state_dir(settings)
        for name in [n for n in os.environ if n.startswith(("ANTHROPIC_", "CLAUDE_CODE_"))]:
            del os.environ[name]  # claude's alone; a gateway has no use for them
        return run_gateway(settings.gateway_config())
    if command == "run":
        from supervisor.supervisor import run_supervisor

        settings = load_settings(config_file=args.config, need="run")
        ensure_state_dir(settings)
        return run_supervisor(settings, gateways=args.gateways)
    raise AssertionError(command)  # pragma: no cover - argparse refuses unknown commands


def _keys(state_dir: str) -> int:
    from protocol import curve

    try:
        made = curve.make_keys(state_dir)
    except OSError as exc:
        raise ConfigError(
            f"MMCLAUDE_STATE_DIR: cannot write keys in {state_dir!r}: {exc}"
        ) from None
    for path, new in made:
        print(f"{'made' if new else 'kept'} {path}")
    keys = curve.keys_dir(state_dir)
    print(
        f"A gateway on another host needs {keys}/gateway.key_secret, {keys}/gateway.key and "
        f"{keys}/worker.key in its own <state dir>/keys (secret files mode 0600). The worker "
        f"accepts the gateways whose public keys are in {keys}/{curve.ALLOWED_GATEWAYS}/."
    )
    return 0


def _forget_secrets() -> None:
    """The worker needs no Mattermost secret, and its claude child must never see one."""
    drop_mattermost(os.environ)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
