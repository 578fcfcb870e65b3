"""In-process harness: a Processor with fake connections whose outbound frames can be read."""

from __future__ import annotations

from typing import Any

import orjson
import trio

from appserver import __version__
from appserver.app import static
from appserver.connection import Connection, Origin, QueueLimits
from appserver.ingress import Ingress
from appserver.processor import Processor, ServerInfo
from appserver.registry import Registry
from appserver.router import Router
from appserver.server_requests import ServerRequests


def make_processor(*, ingress: Ingress | None = None, **info: Any) -> Processor:
    """A processor with only the stateless methods: the connection layer without an app."""
    router = Router()
    processor = Processor(
        Registry(), router, ServerRequests(router), ServerInfo("/tmp/appserver-test", __version__)
    )
    static.register(processor.registry)
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
