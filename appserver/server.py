"""The server: builds the layers, runs the listener, exits cleanly.

Startup order (spec §4): resolve the home, then start the transport. stdio serves one client and
the process exits when its input ends.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import attrs
import trio

from appserver import __version__
from appserver.app import static
from appserver.connection import (
    DEFAULT_QUEUE_BYTES,
    STDIO_QUEUE_MESSAGES,
    Connection,
    Origin,
    QueueLimits,
    run_connection,
)
from appserver.ingress import DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_IN_FLIGHT_PER_CONNECTION, Ingress
from appserver.processor import Processor, ServerInfo
from appserver.registry import Registry
from appserver.router import Router
from appserver.server_requests import ServerRequests
from appserver.transport.listen import ListenTarget, Off, Stdio
from appserver.transport.stdio import LineTransport, claim_stdio

log = logging.getLogger(__name__)

NO_TRANSPORT_MESSAGE = "no transport configured; use --listen or enable remote control"


class StartupError(Exception):
    """A refused start: the process prints `Error: <message>` and exits 1."""


@attrs.frozen
class ServerConfig:
    listen: ListenTarget
    home: Path
    drain_timeout: float = 30.0
    queue_bytes: int = DEFAULT_QUEUE_BYTES
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    max_in_flight_per_connection: int = DEFAULT_MAX_IN_FLIGHT_PER_CONNECTION


def build_processor(config: ServerConfig) -> Processor:
    registry = Registry()
    router = Router()
    processor = Processor(
        registry,
        router,
        ServerRequests(router),
        ServerInfo(home=str(config.home), version=__version__),
        Ingress(config.max_in_flight, config.max_in_flight_per_connection),
    )
    static.register(registry)
    return processor


async def serve(config: ServerConfig) -> None:
    if isinstance(config.listen, Off):
        raise StartupError(NO_TRANSPORT_MESSAGE)
    if not isinstance(config.listen, Stdio):
        raise StartupError(f"this build cannot serve {type(config.listen).__name__} yet")
    processor = build_processor(config)
    receive, send = claim_stdio()
    await serve_stdio(processor, receive, send, config)


async def serve_stdio(
    processor: Processor,
    receive: trio.abc.ReceiveStream,
    send: trio.abc.SendStream,
    config: ServerConfig,
) -> None:
    connection = Connection(
        Origin.STDIO,
        disconnectable=False,
        limits=QueueLimits(STDIO_QUEUE_MESSAGES, config.queue_bytes),
    )
    transport = LineTransport(receive, send)
    await run_connection(connection, transport, processor, drain_timeout=config.drain_timeout)
    if transport.oversized:
        log.error("stdin line exceeds the message size limit; closing")
    log.info("stdin reader finished (EOF)")


def run(config: ServerConfig) -> int:
    try:
        trio.run(serve, config)
    except StartupError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0
