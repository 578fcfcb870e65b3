"""The control socket tells a JSON-lines client (`attach`) from a WebSocket one by its first
byte, within the head deadline."""

from __future__ import annotations

import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from appserver.connection import FrameTransport
from appserver.transport.control import serve_control_client, speaks_json_lines
from appserver.transport.http_front import HEAD_TIMEOUT, FrontPolicy
from appserver.transport.lines import LineTransport

WHITESPACE = st.text(alphabet=" \t\r\n", max_size=20).map(str.encode)


@given(WHITESPACE, st.sampled_from(b"{["), st.binary(max_size=20))
def test_json_after_any_whitespace_is_json_lines(space: bytes, start: int, rest: bytes) -> None:
    assert speaks_json_lines(space + bytes([start]) + rest) is True


@given(WHITESPACE, st.sampled_from([b"GET", b"HEAD", b"POST", b"PRI", b"\x16\x03"]))
def test_anything_else_goes_to_the_http_front(space: bytes, head: bytes) -> None:
    assert speaks_json_lines(space + head) is False


@given(WHITESPACE)
def test_whitespace_alone_decides_nothing(space: bytes) -> None:
    assert speaks_json_lines(space) is None


class Served:
    def __init__(self) -> None:
        self.transports: list[FrameTransport] = []
        self.frames: list[bytes | bytearray | str] = []

    async def __call__(self, transport: FrameTransport) -> None:
        self.transports.append(transport)
        while (frame := await transport.receive_frame()) is not None:
            self.frames.append(frame)
            await transport.send_frames([b'{"id":1,"result":{}}'])


async def test_a_json_lines_client_is_served_lines_and_answered_in_lines() -> None:
    client, server = trio.testing.memory_stream_pair()
    served = Served()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve_control_client, server, FrontPolicy(), served)
        await client.send_all(b'\n{"id":1,"method":"initialize"}\n[1]')
        await client.send_eof()
        received = bytearray()
        while chunk := await client.receive_some():  # closed after the end of input
            received += chunk
    assert served.frames == [b"", b'{"id":1,"method":"initialize"}', b"[1]"]
    assert received == b'{"id":1,"result":{}}\n' * 3
    assert isinstance(served.transports[0], LineTransport)


async def test_a_client_silent_past_the_head_deadline_is_closed_unserved(
    autojump_clock: trio.testing.MockClock,
) -> None:
    client, server = trio.testing.memory_stream_pair()
    served = Served()
    await client.send_all(b"  \r\n")  # whitespace decides nothing: the clock still runs
    start = trio.current_time()
    await serve_control_client(server, FrontPolicy(), served)
    assert HEAD_TIMEOUT <= trio.current_time() - start < HEAD_TIMEOUT + 2
    assert served.transports == []
    assert await client.receive_some() == b""


async def test_an_http_client_gets_the_http_front_not_lines() -> None:
    client, server = trio.testing.memory_stream_pair()
    served = Served()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve_control_client, server, FrontPolicy(), served)
        await client.send_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        response = bytearray()
        while chunk := await client.receive_some():
            response += chunk
    assert response.startswith(b"HTTP/1.1 ")
    assert served.transports == []
