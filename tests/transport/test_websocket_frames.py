"""The sans-io WebSocket reader and writer (`WebSocketFrames`) over an in-memory stream.

Client frames are made by wsproto's own client-side `FrameProtocol` (masked, as a client must).
"""

from __future__ import annotations

import struct

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto.frame_protocol import FrameDecoder, FrameProtocol, Opcode

from appserver.connection import DirectWrite
from appserver.transport.inbound import InboundBudget
from appserver.transport.websocket import WebSocketFrames


def client_frame(opcode: Opcode, payload: bytes, fin: bool = True) -> bytes:
    return bytes(FrameProtocol(client=True, extensions=[])._serialize_frame(opcode, payload, fin))


def text(payload: bytes) -> bytes:
    return client_frame(Opcode.TEXT, payload)


def pair(
    max_message_bytes: int = 1024, budget: InboundBudget | None = None
) -> tuple[trio.testing.MemorySendStream, trio.abc.Stream, WebSocketFrames]:
    client, server = trio.testing.memory_stream_pair()
    frames = WebSocketFrames(server, max_message_bytes=max_message_bytes, budget=budget)
    return client, server, frames  # type: ignore[return-value]


async def server_frames(client: trio.abc.Stream) -> list[tuple[Opcode, bytes]]:
    """Every frame the server has written so far."""
    decoder = FrameDecoder(client=True)
    with trio.move_on_after(0.2):
        while True:
            decoder.receive_bytes(await client.receive_some())
            if not decoder.buffer.buffer:
                break
    frames = []
    while (frame := decoder.process_buffer()) is not None:
        frames.append((frame.opcode, bytes(frame.payload)))  # type: ignore[arg-type]
    return frames


def close_code(frames: list[tuple[Opcode, bytes]]) -> int:
    ((_, payload),) = [f for f in frames if f[0] is Opcode.CLOSE]
    return int(struct.unpack("!H", payload[:2])[0])


async def test_a_header_announcing_more_than_the_limit_closes_with_1009_before_any_payload() -> (
    None
):
    client, _, frames = pair(max_message_bytes=1024)
    header = bytes((0x81, 0x80 | 127)) + struct.pack("!Q", 1 << 62) + b"mask"
    await client.send_all(header)  # the payload never comes
    with trio.fail_after(2):
        assert await frames.receive_frame() is None
    assert close_code(await server_frames(client)) == 1009


async def test_fragments_split_at_every_byte_with_a_ping_between_make_one_message() -> None:
    client, _, frames = pair()
    wire = (
        client_frame(Opcode.TEXT, b'{"id":1,', fin=False)
        + client_frame(Opcode.PING, b"hi")
        + client_frame(Opcode.CONTINUATION, '"method":"é"}'.encode(), fin=True)
    )

    async def trickle() -> None:
        for index in range(len(wire)):
            await client.send_all(wire[index : index + 1])

    async with trio.open_nursery() as nursery:
        nursery.start_soon(trickle)
        with trio.fail_after(2):
            message = await frames.receive_frame()
    assert message == '{"id":1,"method":"é"}'.encode()
    assert (Opcode.PONG, b"hi") in await server_frames(client)


async def test_binary_messages_are_dropped_and_text_after_them_is_read() -> None:
    client, _, frames = pair()
    await client.send_all(client_frame(Opcode.BINARY, b"\x00\x01") + text(b'{"a":1}'))
    with trio.fail_after(2):
        assert await frames.receive_frame() == b'{"a":1}'


@pytest.mark.parametrize("split", [False, True])
async def test_invalid_utf8_closes_with_1007(split: bool) -> None:
    client, _, frames = pair()
    if split:
        wire = client_frame(Opcode.TEXT, b'"\xc3', fin=False) + client_frame(
            Opcode.CONTINUATION, b'("'
        )
    else:
        wire = text(b'"\xff"')
    await client.send_all(wire)
    with trio.fail_after(2):
        assert await frames.receive_frame() is None
    assert close_code(await server_frames(client)) == 1007


async def test_a_close_frame_is_answered_with_its_code_and_ends_input() -> None:
    client, _, frames = pair()
    await client.send_all(client_frame(Opcode.CLOSE, struct.pack("!H", 1001)))
    with trio.fail_after(2):
        assert await frames.receive_frame() is None
    assert close_code(await server_frames(client)) == 1001


async def test_outgoing_batches_are_unmasked_text_frames_of_every_size() -> None:
    client, _, frames = pair()
    payloads = [b"x" * 5, b"y" * 300, b"z" * 70000]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(frames.send_frames, payloads)
        received = await server_frames(client)
    assert received == [(Opcode.TEXT, p) for p in payloads]


@settings(max_examples=60, deadline=None)
@given(
    messages=st.lists(st.binary(max_size=300).map(lambda b: b.hex().encode()), max_size=6),
    fragment=st.integers(min_value=1, max_value=400),
    chunk=st.integers(min_value=1, max_value=500),
)
def test_any_fragmentation_and_read_split_yields_the_same_messages(
    messages: list[bytes], fragment: int, chunk: int
) -> None:
    wire = b""
    for message in messages:
        parts = [message[i : i + fragment] for i in range(0, len(message), fragment)] or [b""]
        for index, part in enumerate(parts):
            opcode = Opcode.TEXT if index == 0 else Opcode.CONTINUATION
            wire += client_frame(opcode, part, fin=index == len(parts) - 1)

    async def main() -> list[bytes]:
        client, _, frames = pair()
        for start in range(0, len(wire), chunk):
            await client.send_all(wire[start : start + chunk])
        await client.aclose()
        received = []
        while (message := await frames.receive_frame()) is not None:
            received.append(bytes(message))
        return received

    assert trio.run(main) == messages


async def test_a_partly_received_message_waits_for_the_budget_and_reads_nothing_meanwhile() -> None:
    budget = InboundBudget(100)
    first_client, _, first = pair(budget=budget)
    second_client, _, second = pair(budget=budget)
    first_wire, second_wire = text(b"a" * 80), text(b"b" * 80)
    await first_client.send_all(first_wire[:20])
    await second_client.send_all(second_wire[:20])
    results: dict[str, bytes | None] = {}

    async def read(name: str, frames: WebSocketFrames) -> None:
        results[name] = await frames.receive_frame()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read, "first", first)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(read, "second", second)
        await trio.testing.wait_all_tasks_blocked()
        assert (budget.used, budget.waiting) == (80, 1)
        await second_client.send_all(second_wire[20:])
        await first_client.send_all(first_wire[20:])
        await trio.testing.wait_all_tasks_blocked()
        assert results == {"first": b"a" * 80}  # the second still waits for the budget
        # Asking for the next message means the first one was handled: its charge goes back.
        nursery.start_soon(read, "first", first)
        await trio.testing.wait_all_tasks_blocked()
        assert results["second"] == b"b" * 80
        assert budget.peak <= 100
        nursery.cancel_scope.cancel()


async def test_write_now_writes_a_frame_whole_or_keeps_the_rest_for_the_next_batch() -> None:
    left, right = trio.socket.socketpair()
    server_side = trio.SocketStream(left)
    frames = WebSocketFrames(server_side)
    assert frames.write_now(b'{"id":1}') is DirectWrite.ALL
    big = b"y" * 60000
    outcomes = []
    while (outcome := frames.write_now(big)) is DirectWrite.ALL:
        outcomes.append(outcome)
    # The socket filled up: either part of the last frame went out, or none of it.
    assert outcome in (DirectWrite.PART, DirectWrite.NOTHING)
    written = len(outcomes) + (outcome is DirectWrite.PART)
    assert frames.write_now(b"later") is DirectWrite.NOTHING  # nothing may overtake the rest
    reader = trio.SocketStream(right)
    decoder = FrameDecoder(client=True)
    received: list[bytes] = []
    current = b""

    async def read_all() -> None:
        nonlocal current
        while True:
            data = await reader.receive_some(1 << 16)
            if not data:
                return
            decoder.receive_bytes(data)
            while (frame := decoder.process_buffer()) is not None:
                current += bytes(frame.payload)  # type: ignore[arg-type]
                if frame.frame_finished:
                    received.append(current)
                    current = b""

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read_all)
        await frames.send_frames([b"", b"last"])  # a flush, then one more frame
        await server_side.aclose()
    assert received == [b'{"id":1}', *[big] * written, b"last"]
