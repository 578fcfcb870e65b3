"""WebSocket connections over a real Unix socket, in process (codex-source-spec §1.6, §10.2)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import trio
import trio.testing
from trio_websocket import ConnectionClosed, WebSocketConnection, wrap_client_stream

from appserver.connection import Connection, Origin, QueueLimits, run_connection
from appserver.processor import Processor
from appserver.transport.http_front import FrontPolicy
from appserver.transport.unix import bind_listener
from appserver.transport.websocket import WebSocketFrames, serve_websocket_client
from appserver.wire.messages import Notification
from tests.harness import initialize_params, make_processor


class Server:
    def __init__(self, processor: Processor, path: Path) -> None:
        self.processor = processor
        self.path = path
        self.connections: list[Connection] = []


@pytest.fixture
async def server(nursery: trio.Nursery) -> AsyncIterator[Server]:
    with tempfile.TemporaryDirectory(prefix="ws-", dir="/tmp") as name:
        path = Path(name) / "s.sock"
        processor = make_processor()
        state = Server(processor, path)
        listener = bind_listener(path)

        async def handle(stream: trio.SocketStream) -> None:
            async def serve(frames: WebSocketFrames) -> None:
                connection = Connection(
                    Origin.UNIX, disconnectable=True, limits=QueueLimits(8, bytes=4096)
                )
                state.connections.append(connection)
                await run_connection(connection, frames, processor)

            await serve_websocket_client(stream, FrontPolicy(), serve, max_message_bytes=1024)

        nursery.start_soon(trio.serve_listeners, handle, [listener])
        yield state
        nursery.cancel_scope.cancel()


async def connect(server: Server, nursery: trio.Nursery, path: str = "/rpc") -> WebSocketConnection:
    stream = await trio.open_unix_socket(os.fspath(server.path))
    return await wrap_client_stream(nursery, stream, "localhost", path)


async def call(ws: WebSocketConnection, message: dict[str, Any]) -> Any:
    await ws.send_message(orjson.dumps(message).decode())
    return orjson.loads(await ws.get_message())


async def test_control_socket_acceptor_upgrades_and_forwards_text_messages_and_pings(
    server: Server, nursery: trio.Nursery
) -> None:
    ws = await connect(server, nursery)
    reply = await call(ws, {"id": 1, "method": "initialize", "params": initialize_params()})
    assert reply["id"] == 1
    assert "userAgent" in reply["result"]
    (connection,) = server.connections
    assert connection.id in server.processor.router
    with trio.fail_after(2):
        await ws.ping(b"check")
    await ws.aclose()
    with trio.fail_after(2):
        while connection.id in server.processor.router:
            await trio.testing.wait_all_tasks_blocked()
            await trio.sleep(0.01)


async def test_binary_frames_are_dropped_and_the_connection_keeps_serving(
    server: Server, nursery: trio.Nursery
) -> None:
    ws = await connect(server, nursery)
    await ws.send_message(b'{"id":0,"method":"initialize"}')
    reply = await call(ws, {"id": 1, "method": "initialize", "params": initialize_params()})
    assert reply["id"] == 1


async def test_a_message_over_the_size_limit_closes_with_1009(
    server: Server, nursery: trio.Nursery
) -> None:
    ws = await connect(server, nursery)
    await ws.send_message("x" * 2048)
    with trio.fail_after(2), pytest.raises(ConnectionClosed) as info:
        await ws.get_message()
    assert info.value.reason is not None
    assert info.value.reason.code == 1009


async def test_each_text_frame_is_one_message_and_order_is_kept(
    server: Server, nursery: trio.Nursery
) -> None:
    ws = await connect(server, nursery, path="/")
    await call(ws, {"id": 0, "method": "initialize", "params": initialize_params()})
    for n in range(1, 6):
        await ws.send_message(
            orjson.dumps({"id": n, "method": "windowsSandbox/readiness"}).decode()
        )
    ids = [orjson.loads(await ws.get_message())["id"] for _ in range(5)]
    assert ids == [1, 2, 3, 4, 5]


async def test_a_client_that_stops_reading_is_disconnected_and_others_are_not_delayed(
    server: Server, nursery: trio.Nursery
) -> None:
    slow = await connect(server, nursery)
    fast = await connect(server, nursery)
    await call(slow, {"id": 1, "method": "initialize", "params": initialize_params("slow")})
    await call(fast, {"id": 1, "method": "initialize", "params": initialize_params("fast")})
    slow_connection = server.connections[0]
    router = server.processor.router
    payload = {"blob": "y" * 1000}
    received = 0
    with trio.fail_after(5):
        while slow_connection.id in router:
            await router.broadcast(Notification("test/flood", payload))
            received += 1
            message = orjson.loads(await fast.get_message())
            assert message["method"] == "test/flood"
    assert slow_connection.cancel_scope.cancel_called
    # The fast client got every broadcast, including the ones sent while the slow one filled up.
    assert received > 1
