"""Peer descriptions in the connection logs (issue 13 item 14)."""

from __future__ import annotations

import os

import trio
import trio.testing

from appserver.transport.peer import describe_peer


async def test_a_unix_peer_is_described_by_its_credentials() -> None:
    left, right = trio.socket.socketpair()
    with left, right:
        stream = trio.SocketStream(left)
        assert describe_peer(stream) == f"pid {os.getpid()} uid {os.getuid()}"


async def test_a_tcp_peer_is_described_by_its_address() -> None:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    client = await trio.open_tcp_stream("127.0.0.1", port)
    server = await listeners[0].accept()
    async with client, server, listeners[0]:
        assert describe_peer(server) == f"127.0.0.1:{client.socket.getsockname()[1]}"


def test_a_stream_without_a_socket_is_unknown() -> None:
    client, _ = trio.testing.memory_stream_pair()
    assert describe_peer(client) == "unknown"
