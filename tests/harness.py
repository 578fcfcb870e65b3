"""In-process harness: a Processor with fake connections whose outbound frames can be read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import trio

from appserver.connection import Connection, Origin, QueueLimits
from appserver.ingress import Ingress
from appserver.processor import Processor
from appserver.server import ServerConfig, build_processor
from appserver.transport.listen import Stdio


def make_processor(*, ingress: Ingress | None = None, **info: Any) -> Processor:
    processor = build_processor(ServerConfig(listen=Stdio(), home=Path("/tmp/appserver-test")))
    if ingress is not None:
        processor.ingress = ingress
    if info:
        from attrs import evolve

        processor.info = evolve(processor.info, **info)
    return processor


def open_connection(
    processor: Processor,
    nursery: trio.Nursery,
    *,
    disconnectable: bool = True,
    messages: int = 64,
) -> Connection:
    origin = Origin.WEBSOCKET if disconnectable else Origin.STDIO
    connection = Connection(origin, disconnectable=disconnectable, limits=QueueLimits(messages))
    connection.tasks = nursery
    processor.connection_opened(connection)
    return connection


def queued(connection: Connection) -> list[dict[str, Any]]:
    """Take every frame queued for the connection, decoded."""
    out = []
    while True:
        try:
            data, receipt = connection._receive.receive_nowait()
        except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
            connection._space.unpark_all()  # as the real writer does after taking a batch
            return out
        connection.queued_bytes -= len(data)
        if receipt is not None:
            receipt.settle(True)
        out.append(orjson.loads(data))


async def send(processor: Processor, connection: Connection, message: dict[str, Any]) -> None:
    await processor.handle_frame(connection, orjson.dumps(message))


def initialize_params(name: str = "test_client", **capabilities: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"clientInfo": {"name": name, "version": "1.0.0"}}
    if capabilities:
        params["capabilities"] = capabilities
    return params


async def initialize(
    processor: Processor, connection: Connection, name: str = "test_client", **capabilities: Any
) -> dict[str, Any]:
    await send(
        processor,
        connection,
        {"id": "init", "method": "initialize", "params": initialize_params(name, **capabilities)},
    )
    replies = queued(connection)
    assert replies[0]["id"] == "init", replies
    return replies[0]
