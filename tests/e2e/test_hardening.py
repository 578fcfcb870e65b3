"""Hardening against hostile or broken peers, end to end (issue 13): frame headers announcing
more than the limit, oversized and repeated auth headers, connections that never initialize.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.robust_helpers import (
    SOCKET_TRANSPORTS,
    TEXT,
    Server,
    WsClient,
    serving,
    short_tempdir,
    ws_frame,
)

MESSAGE_TOO_BIG = 1009


@pytest.fixture
def home() -> Iterator[Path]:
    with short_tempdir("ash-") as tmp:
        yield tmp / "home"


async def ready_websocket(server: Server) -> WsClient:
    client = await server.websocket()
    await client.initialize()
    return client


def masked_header(opcode: int, announced: int, *, fin: bool = True) -> bytes:
    """A client frame header (64-bit length form) with a zero mask, and no payload."""
    return bytes([(0x80 if fin else 0) | opcode, 0x80 | 127]) + struct.pack("!Q", announced)


@pytest.mark.parametrize("transport", SOCKET_TRANSPORTS)
@pytest.mark.parametrize(
    "frames",
    [
        [masked_header(TEXT, 2**62) + b"\0\0\0\0"],
        # A fragmented message whose second fragment takes it over the limit.
        [
            ws_frame(TEXT, b'{"a":1, ', fin=False),
            masked_header(0, 64 * 1024 * 1024) + b"\0\0\0\0",
        ],
    ],
    ids=["one-frame", "continuation"],
)
async def test_a_frame_header_announcing_too_much_closes_at_once_with_1009(
    transport: str, home: Path, frames: list[bytes]
) -> None:
    """Issue 13 item 4: closed as soon as the header is read, before any payload arrives."""
    async with serving(transport, home) as server:
        bystander = await ready_websocket(server)
        client = await ready_websocket(server)
        for frame in frames:
            await client.send_raw(frame)
        # No payload follows; the server must not wait for it.
        assert await client.wait_closed(within=5) == MESSAGE_TOO_BIG
        await bystander.assert_ready()
        server.assert_alive()
