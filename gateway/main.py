"""The gateway process's main: logging, the state dir check, signals, the Mattermost client
and the bus around one service, and the exit status (0 stopped, 1 fatal, 2 unsafe state dir).

``run_gateway(config)`` runs one gateway in the foreground against a running worker; several
may run at once, each with its own ``gateway_id`` and endpoint.
"""

from __future__ import annotations

import asyncio
import signal

from loguru import logger

from gateway.bus import Bus
from gateway.config import GatewayConfig
from gateway.errors import AuthError, BusError, FatalError
from gateway.mattermost import MattermostClient
from gateway.service import GatewayService
from protocol import EndpointError, GatewayBye, StateDirError, prepare_state_dir, setup_logging

__all__ = ["GatewayConfig", "run_gateway"]

BYE_FLUSH_S = 0.05  # sockets close with linger 0: give the bye a moment to leave
STOP_WAIT_S = 0.3  # how long the service's tasks get to unwind after a cancel


def run_gateway(config: GatewayConfig) -> int:
    """Run one gateway until SIGTERM/SIGINT (exit 0) or a fatal error (exit 1); exit 2 when
    the state dir is unsafe (another user's, or writable by others)."""
    setup_logging("gateway", level=config.log_level, fmt=config.log_format, secrets=(config.token,))
    try:
        # Before anything binds: a state dir another user can write is a socket they can
        # take over (the same check as the worker's and the supervisor's).
        prepare_state_dir(config.state_dir)
    except StateDirError as exc:
        logger.error("gateway.state_dir_refused", error=str(exc))
        return 2
    try:
        return asyncio.run(_main(config))
    except KeyboardInterrupt:  # pragma: no cover - SIGINT is handled inside the loop
        return 0


def _find(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    """The first ``kind`` inside ``exc``, looking through exception groups."""
    if isinstance(exc, kind):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _find(inner, kind)
            if found is not None:
                return found
    return None


async def _main(config: GatewayConfig) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        bus = Bus(
            endpoint=config.endpoint,
            worker_endpoint=config.worker_endpoint,
            heartbeat_endpoint=config.heartbeat_endpoint,
            state_dir=config.state_dir,
        )
    except (BusError, EndpointError, OSError) as exc:
        logger.error("gateway.failed", error=str(exc))
        return 1
    client = MattermostClient(config.url, config.token)
    gateway = GatewayService(config, client, bus)
    logger.info("gateway.starting", gateway=config.gateway_id, endpoint=config.endpoint)
    runner = asyncio.create_task(gateway.run())
    stopper = asyncio.create_task(stop.wait())
    status = 0
    try:
        await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if runner.done():
            status = _exit_status(runner)
        else:
            logger.info("gateway.stopping", gateway=config.gateway_id)
    finally:
        for task in (runner, stopper):
            task.cancel()
        # Bounded: a task slow to unwind is left behind rather than holding the bye back.
        # Neither the tasks' errors nor a timeout are raised here, while a cancellation of
        # this coroutine itself still is (nothing swallows it).
        await asyncio.wait({runner, stopper}, timeout=STOP_WAIT_S)
        if runner.done() and not runner.cancelled():
            runner.exception()  # retrieved: an error while unwinding is not news now
        bus.send(GatewayBye(gateway_id=config.gateway_id))
        await asyncio.sleep(BYE_FLUSH_S)
        bus.close()
        await client.aclose()
    logger.info("gateway.stopped", gateway=config.gateway_id, status=status)
    return status


def _exit_status(runner: asyncio.Task[None]) -> int:
    exc = runner.exception()
    if exc is None:
        return 0
    if _find(exc, AuthError) is not None:
        logger.error("gateway.fatal", reason="Mattermost rejected the token (HTTP 401); check it")
        return 1
    fatal = _find(exc, FatalError)
    if fatal is not None:
        logger.error("gateway.fatal", reason=str(fatal))
        return 1
    logger.opt(exception=exc).error("gateway.crashed", error=str(exc))
    return 1
