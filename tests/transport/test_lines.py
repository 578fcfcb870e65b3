"""`LineTransport`: JSON lines over a byte stream (codex-observed §3a, codex-source-spec §1.5).

Input is fed through a lockstep stream, so every `send_all` below is exactly one read of the
transport; the reads are recorded to show the chunking really happened.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from appserver.transport.inbound import InboundBudget
from appserver.transport.lines import READ_CHUNK, LineTransport


class RecordingReceiveStream(trio.abc.ReceiveStream):
    def __init__(self, inner: trio.abc.ReceiveStream) -> None:
        self.inner = inner
        self.reads: list[bytes] = []

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        data = bytes(await self.inner.receive_some(max_bytes))
        self.reads.append(data)
        return data

    async def aclose(self) -> None:
        await self.inner.aclose()


class BrokenAfter(trio.abc.ReceiveStream):
    """Gives `data` in one read, then fails like a reset connection."""

    def __init__(self, data: bytes, error: BaseException) -> None:
        self.data: bytes | None = data
        self.error = error

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        await trio.lowlevel.checkpoint()
        if self.data is None:
            raise self.error
        data, self.data = self.data, None
        return data

    async def aclose(self) -> None:
        await trio.lowlevel.checkpoint()


async def read_lines(
    chunks: Sequence[bytes], max_line_bytes: int | None = None
) -> tuple[list[bytes], LineTransport, list[bytes]]:
    """Feed `chunks` (one read each), then EOF; collect frames until `receive_frame` is None."""
    assert all(chunks), "an empty send would read as EOF"
    send, receive = trio.testing.lockstep_stream_one_way_pair()
    recorder = RecordingReceiveStream(receive)
    if max_line_bytes is None:
        transport = LineTransport(recorder, trio.testing.MemorySendStream())
    else:
        transport = LineTransport(recorder, trio.testing.MemorySendStream(), max_line_bytes)
    frames: list[bytes] = []

    async def feed() -> None:
        for chunk in chunks:
            await send.send_all(chunk)
        await send.aclose()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(feed)
        while (frame := await transport.receive_frame()) is not None:
            frames.append(frame)
        nursery.cancel_scope.cancel()  # an oversized line stops reading before the feed ends
    return frames, transport, recorder.reads


# -- receiving ------------------------------------------------------------------------------


async def test_a_line_split_across_reads() -> None:
    chunks = [b'{"id":1,', b'"method"', b':"x"}\n{"method":', b'"y"}\n']
    frames, transport, reads = await read_lines(chunks)
    assert frames == [b'{"id":1,"method":"x"}', b'{"method":"y"}']
    assert reads == [*chunks, b""]
    assert not transport.oversized


async def test_a_line_split_byte_by_byte() -> None:
    data = b'{"method":"x"}\n'
    frames, _, reads = await read_lines([data[i : i + 1] for i in range(len(data))])
    assert frames == [b'{"method":"x"}']
    assert len(reads) == len(data) + 1


async def test_several_lines_in_one_read() -> None:
    frames, _, reads = await read_lines([b"a\nbb\nccc\n"])
    assert frames == [b"a", b"bb", b"ccc"]
    assert reads == [b"a\nbb\nccc\n", b""]


async def test_crlf_is_stripped() -> None:
    frames, _, _ = await read_lines([b"a\r\n", b"b\r", b"\nc\r\r\n", b"x\ry\n", b"\r\n"])
    assert frames == [b"a", b"b", b"c\r", b"x\ry", b""]


async def test_final_line_without_newline_is_returned_at_eof() -> None:
    frames, _, _ = await read_lines([b"first\nla", b"st"])
    assert frames == [b"first", b"last"]


async def test_final_line_keeps_a_lone_carriage_return() -> None:
    # Like tokio's `lines()`: `\r` is dropped only together with the `\n` after it.
    frames, _, _ = await read_lines([b"first\nlast\r"])
    assert frames == [b"first", b"last\r"]


async def test_eof_is_none_and_stays_none() -> None:
    frames, transport, reads = await read_lines([])
    assert frames == []
    assert reads == [b""]
    assert await transport.receive_frame() is None
    assert await transport.receive_frame() is None
    assert not transport.oversized


async def test_eof_right_after_a_newline_adds_no_frame() -> None:
    frames, _, _ = await read_lines([b"a\n"])
    assert frames == [b"a"]


async def test_empty_lines_are_empty_frames() -> None:
    frames, _, _ = await read_lines([b"\n\n", b"x\n", b"\n", b"  \n"])
    assert frames == [b"", b"", b"x", b"", b"  "]


async def test_lines_larger_than_one_read() -> None:
    big = bytes(range(256)).replace(b"\n", b"") * (3 * READ_CHUNK // 255)
    assert len(big) > 2 * READ_CHUNK
    frames, _, reads = await read_lines([b"small\n" + big + b"\nafter\n"])
    assert frames == [b"small", big, b"after"]
    assert len(reads) > 3


async def test_many_lines_across_many_reads() -> None:
    lines = [b"%d:" % i + b"x" * (i % 97) for i in range(4000)]
    data = b"".join(line + b"\n" for line in lines)
    assert len(data) > 3 * READ_CHUNK
    step = 7919
    frames, _, _ = await read_lines([data[i : i + step] for i in range(0, len(data), step)])
    assert frames == lines


async def test_a_read_error_ends_input_like_eof() -> None:
    for error in (trio.BrokenResourceError(), trio.ClosedResourceError(), OSError(104, "reset")):
        transport = LineTransport(
            BrokenAfter(b"a\npartial", error), trio.testing.MemorySendStream()
        )
        assert await transport.receive_frame() == b"a"
        assert await transport.receive_frame() == b"partial"
        assert await transport.receive_frame() is None


# -- the line limit -------------------------------------------------------------------------


async def test_a_line_at_the_limit_is_accepted() -> None:
    frames, transport, _ = await read_lines([b"1234", b"5678", b"\nabc\n"], max_line_bytes=8)
    assert frames == [b"12345678", b"abc"]
    assert not transport.oversized


async def test_a_partial_line_over_the_limit_is_oversized() -> None:
    frames, transport, _ = await read_lines([b"ok\n1234", b"56789", b"\nnext\n"], max_line_bytes=8)
    assert frames == [b"ok"]
    assert transport.oversized


async def test_an_unterminated_last_line_over_the_limit_is_oversized() -> None:
    frames, transport, _ = await read_lines([b"123456789"], max_line_bytes=8)
    assert frames == []
    assert transport.oversized


async def test_a_whole_line_over_the_limit_in_one_read_is_oversized() -> None:
    """The limit holds however the line arrives, also when its newline is in the same read."""
    frames, transport, _ = await read_lines([b"ok\n123456789\nnext\n"], max_line_bytes=8)
    assert frames == [b"ok"]
    assert transport.oversized


# -- sending --------------------------------------------------------------------------------


async def test_send_frames_writes_each_frame_with_newline_in_one_write() -> None:
    writes: list[bytes] = []
    stream = trio.testing.MemorySendStream()

    async def record() -> None:
        writes.append(bytes(stream.get_data_nowait()))

    stream.send_all_hook = record
    transport = LineTransport(trio.testing.MemoryReceiveStream(), stream)
    await transport.send_frames([b'{"id":1,"result":{}}', b'{"method":"m"}', b"{}"])
    await transport.send_frames([b"single"])
    assert writes == [b'{"id":1,"result":{}}\n{"method":"m"}\n{}\n', b"single\n"]


async def test_frames_sent_are_the_frames_received() -> None:
    left, right = trio.testing.memory_stream_pair()
    writer = LineTransport(right, right)
    reader = LineTransport(left, left)
    batches = [[b"a", b"", b"\xc3\xa9"], [b'{"x":"\\n"}']]
    for batch in batches:
        await writer.send_frames(batch)
    await right.send_stream.aclose()
    received = []
    while (frame := await reader.receive_frame()) is not None:
        received.append(frame)
    assert received == [frame for batch in batches for frame in batch]


# -- property: any lines, any chunking ------------------------------------------------------

lines_without_newline = st.lists(
    st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"").rstrip(b"\r")), max_size=12
)


@settings(deadline=None)
@given(lines_without_newline, st.booleans(), st.data())
async def test_any_lines_with_any_chunking_come_back_in_order(
    lines: list[bytes], final_newline: bool, data: st.DataObject
) -> None:
    stream = b"".join(line + b"\n" for line in lines)
    if lines and lines[-1] and not final_newline:
        stream = stream[:-1]
    cuts = data.draw(
        st.lists(st.integers(1, max(1, len(stream) - 1)), unique=True).map(sorted)
        if len(stream) > 1
        else st.just([])
    )
    bounds = [0, *cuts, len(stream)]
    chunks = [stream[a:b] for a, b in itertools.pairwise(bounds) if b > a]
    frames, transport, reads = await read_lines(chunks)
    assert frames == lines
    assert reads == [*chunks, b""]
    assert not transport.oversized


async def test_a_line_longer_than_a_read_is_charged_to_the_budget_until_handed_on() -> None:
    budget = InboundBudget(limit=10 * READ_CHUNK)
    send, receive = trio.testing.lockstep_stream_one_way_pair()
    transport = LineTransport(receive, trio.testing.MemorySendStream(), budget=budget)
    line = b"x" * (3 * READ_CHUNK)
    async with trio.open_nursery() as nursery:

        async def feed() -> None:
            for start in range(0, len(line), READ_CHUNK):
                await send.send_all(line[start : start + READ_CHUNK])
            # Charged a read at a time before each read after the first: what the line holds.
            assert budget.used == 3 * READ_CHUNK
            await send.send_all(b"\n{}\n")

        nursery.start_soon(feed)
        assert await transport.receive_frame() == line
        assert budget.used == 0
        assert await transport.receive_frame() == b"{}"
    assert budget.peak == 3 * READ_CHUNK


async def test_a_reader_waits_for_the_budget_and_reads_nothing_meanwhile() -> None:
    budget = InboundBudget(limit=READ_CHUNK)
    await budget.acquire(READ_CHUNK)  # another connection's big message holds it all
    stream = trio.testing.MemoryReceiveStream()
    stream.put_data(b"y" * READ_CHUNK)
    transport = LineTransport(stream, trio.testing.MemorySendStream(), budget=budget)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(transport.receive_frame)
        await trio.testing.wait_all_tasks_blocked()
        assert budget.waiting == 1
        stream.put_data(b"z\n")
        await trio.testing.wait_all_tasks_blocked()
        assert budget.waiting == 1, "it must not read on while waiting"
        budget.release(READ_CHUNK)
    assert budget.used == 0


async def test_release_budget_gives_back_a_partial_line_when_the_connection_ends() -> None:
    budget = InboundBudget(limit=10 * READ_CHUNK)
    stream = trio.testing.MemoryReceiveStream()
    stream.put_data(b"y" * READ_CHUNK)
    transport = LineTransport(stream, trio.testing.MemorySendStream(), budget=budget)
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(transport.receive_frame)
            await trio.testing.wait_all_tasks_blocked()
            assert budget.used == READ_CHUNK
            scope.cancel()
    transport.release_budget()
    assert budget.used == 0
