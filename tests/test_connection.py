"""Connection: the bounded outbound queue, the batching writer, write receipts, run_connection."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import pytest
import trio
import trio.testing
from trio.testing import wait_all_tasks_blocked

from appserver.connection import (
    MAX_BATCH_BYTES,
    Connection,
    Origin,
    QueueLimits,
    WriteReceipt,
    run_connection,
)


def make_connection(*, messages: int = 16, budget: int | None = None) -> Connection:
    limits = QueueLimits(messages) if budget is None else QueueLimits(messages, budget)
    return Connection(Origin.WEBSOCKET, disconnectable=True, limits=limits)


class FakeWriter:
    """A `FrameWriter` that records each batch; with `hold`, writes block until `release()`."""

    def __init__(
        self, *, hold: bool = False, on_write: Callable[[Sequence[bytes]], None] | None = None
    ) -> None:
        #: Every batch handed to a write, in call order (recorded when the write starts).
        self.calls: list[list[bytes]] = []
        #: Frames whose write returned.
        self.written: list[bytes] = []
        self._released = trio.Event()
        self._on_write = on_write
        if not hold:
            self._released.set()

    def release(self) -> None:
        self._released.set()

    async def __call__(self, frames: Sequence[bytes]) -> None:
        self.calls.append(list(frames))
        if self._on_write is not None:
            self._on_write(frames)
        await self._released.wait()
        self.written.extend(frames)


class FailingWriter:
    def __init__(self) -> None:
        self.calls: list[list[bytes]] = []

    async def __call__(self, frames: Sequence[bytes]) -> None:
        self.calls.append(list(frames))
        await trio.lowlevel.checkpoint()
        raise trio.BrokenResourceError("peer went away")


# -- offer / put ---------------------------------------------------------------------------------


async def test_offer_until_full_by_message_count(nursery: trio.Nursery) -> None:
    connection = make_connection(messages=3)
    assert [connection.offer(f"m{i}".encode()) for i in range(3)] == [True, True, True]
    refused = WriteReceipt()
    assert connection.offer(b"m3", refused) is False
    assert not refused.settled  # the caller decides what a refusal means
    assert connection.queued_bytes == 6

    writer = FakeWriter()
    nursery.start_soon(connection.run_writer, writer)
    await wait_all_tasks_blocked()
    assert writer.written == [b"m0", b"m1", b"m2"]
    assert connection.queued_bytes == 0
    assert connection.offer(b"m4")
    await wait_all_tasks_blocked()
    assert writer.written[-1] == b"m4"
    connection.close_outbound()


async def test_offer_until_full_by_byte_budget(nursery: trio.Nursery) -> None:
    connection = make_connection(messages=100, budget=10)
    assert connection.offer(b"123456")
    assert not connection.offer(b"12345")  # 6 + 5 > 10
    assert connection.offer(b"1234")  # 6 + 4 == 10 still fits
    assert not connection.offer(b"1")
    assert connection.queued_bytes == 10

    writer = FakeWriter()
    nursery.start_soon(connection.run_writer, writer)
    await wait_all_tasks_blocked()
    assert writer.written == [b"123456", b"1234"]
    assert connection.queued_bytes == 0
    assert connection.offer(b"1")
    connection.close_outbound()


async def test_frame_bigger_than_the_budget_passes_through_an_empty_queue(
    nursery: trio.Nursery,
) -> None:
    connection = make_connection(messages=100, budget=10)
    big = b"x" * 50
    assert connection.offer(big)
    assert connection.queued_bytes == 50
    assert not connection.offer(b"y")  # but nothing may join it

    writer = FakeWriter()
    nursery.start_soon(connection.run_writer, writer)
    await wait_all_tasks_blocked()
    assert writer.written == [big]
    assert connection.offer(b"y")
    await wait_all_tasks_blocked()
    assert writer.written == [big, b"y"]
    connection.close_outbound()


async def test_put_with_room_returns_at_once(autojump_clock: trio.testing.MockClock) -> None:
    connection = make_connection(messages=2)
    with trio.fail_after(1), trio.testing.assert_no_checkpoints():
        await connection.put(b"a")
    assert connection.queued_bytes == 1


async def test_put_waits_for_room_then_proceeds(nursery: trio.Nursery) -> None:
    connection = make_connection(messages=1)
    assert connection.offer(b"a")
    done: list[str] = []
    receipt = WriteReceipt()

    async def put_b() -> None:
        await connection.put(b"b", receipt)
        done.append("b")

    nursery.start_soon(put_b)
    await wait_all_tasks_blocked()
    assert done == []
    assert not receipt.settled

    writer = FakeWriter()
    nursery.start_soon(connection.run_writer, writer)
    await wait_all_tasks_blocked()
    assert done == ["b"]
    assert writer.written == [b"a", b"b"]
    assert receipt.written is True
    connection.close_outbound()


async def test_waiting_senders_keep_their_order(nursery: trio.Nursery) -> None:
    connection = make_connection(messages=1)
    assert connection.offer(b"a")
    done: list[bytes] = []

    async def put(data: bytes) -> None:
        await connection.put(data)
        done.append(data)

    for data in (b"b", b"c", b"d"):
        nursery.start_soon(put, data)
        await wait_all_tasks_blocked()  # each one is waiting before the next one starts
    assert done == []

    writer = FakeWriter()
    nursery.start_soon(connection.run_writer, writer)
    await wait_all_tasks_blocked()
    assert writer.written == [b"a", b"b", b"c", b"d"]
    assert done == [b"b", b"c", b"d"]
    connection.close_outbound()


async def test_offer_does_not_overtake_a_waiting_put(nursery: trio.Nursery) -> None:
    connection = make_connection(messages=1)
    assert connection.offer(b"a")
    nursery.start_soon(connection.put, b"b")
    await wait_all_tasks_blocked()

    intruder: list[bool] = []

    def offer_while_room(frames: Sequence[bytes]) -> None:
        # The writer has just taken "a": the queue has room, but "b" is still waiting for it.
        if frames == [b"a"]:
            intruder.append(connection.offer(b"intruder"))

    writer = FakeWriter(on_write=offer_while_room)
    nursery.start_soon(connection.run_writer, writer)
    await wait_all_tasks_blocked()
    assert intruder == [False]
    assert writer.written == [b"a", b"b"]
    connection.close_outbound()


async def test_close_outbound_releases_a_waiting_put(nursery: trio.Nursery) -> None:
    connection = make_connection(messages=1)
    assert connection.offer(b"a")
    receipt = WriteReceipt()
    done: list[bool] = []

    async def put() -> None:
        await connection.put(b"b", receipt)
        done.append(True)

    nursery.start_soon(put)
    await wait_all_tasks_blocked()
    assert done == []
    connection.close_outbound()
    await wait_all_tasks_blocked()
    assert done == [True]
    assert receipt.written is False


# -- the writer ------------------------------------------------------------------------------


async def test_writer_sends_queued_frames_in_one_batch(nursery: trio.Nursery) -> None:
    connection = make_connection()
    for data in (b"one", b"two", b"three"):
        assert connection.offer(data)
    writer = FakeWriter()
    nursery.start_soon(connection.run_writer, writer)
    await wait_all_tasks_blocked()
    assert writer.calls == [[b"one", b"two", b"three"]]
    connection.close_outbound()


async def test_writer_splits_batches_past_the_batch_size(nursery: trio.Nursery) -> None:
    connection = make_connection()
    frames = [bytes([65 + i]) * (MAX_BATCH_BYTES // 2 + 1) for i in range(4)]
    for data in frames:
        assert connection.offer(data)
    writer = FakeWriter()
    nursery.start_soon(connection.run_writer, writer)
    await wait_all_tasks_blocked()
    assert len(writer.calls) >= 2
    assert [data for batch in writer.calls for data in batch] == frames
    largest = max(len(data) for data in frames)
    for batch in writer.calls:
        assert len(batch) == 1 or sum(map(len, batch)) < MAX_BATCH_BYTES + largest
    connection.close_outbound()


async def test_receipts_settle_true_only_after_the_write_returned(nursery: trio.Nursery) -> None:
    connection = make_connection()
    first, second = WriteReceipt(), WriteReceipt()
    assert connection.offer(b"a", first)
    assert connection.offer(b"b", second)
    writer = FakeWriter(hold=True)
    nursery.start_soon(connection.run_writer, writer)
    await wait_all_tasks_blocked()
    assert writer.calls == [[b"a", b"b"]]  # the write has started...
    assert not first.settled  # ...but has not returned
    assert not second.settled

    waited: list[bool] = []

    async def wait_for(receipt: WriteReceipt) -> None:
        waited.append(await receipt.wait())

    nursery.start_soon(wait_for, first)
    await wait_all_tasks_blocked()
    assert waited == []

    writer.release()
    await wait_all_tasks_blocked()
    assert first.written is True
    assert second.written is True
    assert waited == [True]
    connection.close_outbound()


async def test_queued_receipts_settle_false_when_the_writer_is_cancelled() -> None:
    connection = make_connection()
    in_flight, queued = WriteReceipt(), WriteReceipt()
    assert connection.offer(b"a", in_flight)
    writer = FakeWriter(hold=True)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(connection.run_writer, writer)
        await wait_all_tasks_blocked()
        assert writer.calls == [[b"a"]]
        assert connection.offer(b"b", queued)
        nursery.cancel_scope.cancel()
    assert queued.written is False
    assert in_flight.written is not True  # its write never returned
    assert writer.written == []
    assert connection.closed
    assert connection.queued_bytes == 0

    late = WriteReceipt()
    assert connection.offer(b"late", late)  # a closed connection swallows the frame...
    assert late.written is False  # ...and says it was never written


@pytest.mark.parametrize("how", ["cancelled", "write failed"])
async def test_receipts_of_an_interrupted_write_settle_false(how: str) -> None:
    """A receipt settles False if its frame will never be written, even mid-write."""
    connection = make_connection()
    in_flight = WriteReceipt()
    assert connection.offer(b"a", in_flight)
    if how == "cancelled":
        writer = FakeWriter(hold=True)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(connection.run_writer, writer)
            await wait_all_tasks_blocked()
            assert writer.calls == [[b"a"]]
            nursery.cancel_scope.cancel()
    else:
        with pytest.raises(trio.BrokenResourceError):
            await connection.run_writer(FailingWriter())
    assert connection.closed
    assert in_flight.written is False


async def test_close_outbound_lets_the_writer_drain_and_stop(
    autojump_clock: trio.testing.MockClock,
) -> None:
    connection = make_connection()
    receipts = [WriteReceipt() for _ in range(3)]
    for i, receipt in enumerate(receipts):
        assert connection.offer(f"m{i}".encode(), receipt)
    connection.close_outbound()
    late = WriteReceipt()
    assert connection.offer(b"late", late)
    assert late.written is False

    writer = FakeWriter()
    with trio.fail_after(1):
        await connection.run_writer(writer)  # returns once the queue is drained
    assert writer.written == [b"m0", b"m1", b"m2"]
    assert [r.written for r in receipts] == [True, True, True]


async def test_close_outbound_stops_an_idle_writer(autojump_clock: trio.testing.MockClock) -> None:
    connection = make_connection()
    writer = FakeWriter()
    with trio.fail_after(1):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(connection.run_writer, writer)
            assert connection.offer(b"a")
            await wait_all_tasks_blocked()
            connection.close_outbound()
    assert writer.written == [b"a"]


# -- run_connection --------------------------------------------------------------------------


class FakeTransport:
    """Frames in through a memory channel (closing it is EOF); batches out into `sent`."""

    def __init__(self, *, fail_writes: bool = False, hold_writes: bool = False) -> None:
        self._inbox_send, self._inbox = trio.open_memory_channel[bytes | str](math.inf)
        self.fail_writes = fail_writes
        self._released = trio.Event()
        if not hold_writes:
            self._released.set()
        self.sent: list[list[bytes]] = []
        self.write_attempts = 0

    def feed(self, *frames: bytes) -> None:
        for frame in frames:
            self._inbox_send.send_nowait(frame)

    def eof(self) -> None:
        self._inbox_send.close()

    @property
    def sent_frames(self) -> list[bytes]:
        return [frame for batch in self.sent for frame in batch]

    async def receive_frame(self) -> bytes | str | None:
        try:
            return await self._inbox.receive()
        except trio.EndOfChannel:
            return None

    async def send_frames(self, frames: Sequence[bytes]) -> None:
        self.write_attempts += 1
        await self._released.wait()
        if self.fail_writes:
            raise trio.BrokenResourceError("peer went away")
        self.sent.append(list(frames))


HandlerEvent = tuple[str, bytes | str | None]


class FakeHandler:
    """Records what happens; answers each frame with `re:<frame>`, at once or after `delay`."""

    def __init__(self, *, delay: float | None = None) -> None:
        self.events: list[HandlerEvent] = []
        self.delay = delay

    def connection_opened(self, connection: Connection) -> None:
        self.events.append(("opened", None))

    async def handle_frame(self, connection: Connection, frame: bytes | str) -> None:
        assert isinstance(frame, bytes)
        self.events.append(("frame", frame))
        if self.delay is None:
            await connection.put(b"re:" + frame)
        else:
            assert connection.tasks is not None
            connection.tasks.start_soon(self._reply_later, connection, frame, self.delay)

    async def _reply_later(self, connection: Connection, frame: bytes, delay: float) -> None:
        await trio.sleep(delay)
        await connection.put(b"re:" + frame)

    def connection_input_closed(self, connection: Connection) -> None:
        self.events.append(("input_closed", None))

    def connection_closed(self, connection: Connection) -> None:
        self.events.append(("closed", None))


async def test_run_connection_delivers_frames_in_order_and_closes_at_eof(
    autojump_clock: trio.testing.MockClock,
) -> None:
    connection = make_connection()
    transport, handler = FakeTransport(), FakeHandler()
    transport.feed(b"1", b"2", b"3")
    transport.eof()
    with trio.fail_after(5):
        await run_connection(connection, transport, handler)
    assert handler.events[:5] == [
        ("opened", None),
        ("frame", b"1"),
        ("frame", b"2"),
        ("frame", b"3"),
        ("input_closed", None),
    ]
    assert ("closed", None) in handler.events[5:]
    assert set(handler.events[5:]) == {("closed", None)}
    # Replies queued before the input ended were written before the connection closed.
    assert transport.sent_frames == [b"re:1", b"re:2", b"re:3"]
    assert connection.closed
    assert connection.tasks is None
    assert not connection.cancel_scope.cancel_called


async def test_run_connection_reports_closed_exactly_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    connection = make_connection()
    transport, handler = FakeTransport(), FakeHandler()
    transport.feed(b"1")
    transport.eof()
    with trio.fail_after(5):
        await run_connection(connection, transport, handler)
    assert handler.events.count(("closed", None)) == 1


async def test_cancelling_the_connection_scope_ends_run_connection(
    autojump_clock: trio.testing.MockClock,
) -> None:
    connection = make_connection()
    transport = FakeTransport()
    handler = FakeHandler(delay=math.inf)  # its reply task never finishes on its own
    finished: list[bool] = []

    async def serve() -> None:
        await run_connection(connection, transport, handler)
        finished.append(True)

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve)
            transport.feed(b"1")
            await wait_all_tasks_blocked()
            assert handler.events == [("opened", None), ("frame", b"1")]
            assert finished == []
            connection.disconnect()
    assert finished == [True]
    assert ("input_closed", None) not in handler.events  # the input never ended
    assert handler.events[-1] == ("closed", None)
    assert connection.closed
    assert transport.sent == []
    late = WriteReceipt()
    assert connection.offer(b"late", late)
    assert late.written is False


async def test_queued_receipts_settle_false_when_the_connection_is_cancelled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    connection = make_connection()
    transport = FakeTransport(hold_writes=True)  # the peer stops reading
    handler = FakeHandler()
    receipt = WriteReceipt()
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run_connection, connection, transport, handler)
            transport.feed(b"1")
            await wait_all_tasks_blocked()
            assert transport.write_attempts == 1  # the writer is stuck writing "re:1"
            assert connection.offer(b"queued", receipt)
            await wait_all_tasks_blocked()
            assert not receipt.settled
            connection.disconnect()
    assert receipt.written is False
    assert transport.sent == []


async def test_failing_write_disconnects_instead_of_crashing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    connection = make_connection()
    transport = FakeTransport(fail_writes=True)
    handler = FakeHandler()
    transport.feed(b"1")  # the reply to this frame fails to write; the input never ends
    with trio.fail_after(5):
        await run_connection(connection, transport, handler)  # returns; does not raise
    assert transport.write_attempts == 1
    assert transport.sent == []
    assert connection.cancel_scope.cancel_called
    assert connection.closed
    assert handler.events[0] == ("opened", None)
    assert ("frame", b"1") in handler.events
    assert handler.events[-1] == ("closed", None)


@pytest.mark.parametrize(
    ("delay", "drain_timeout", "answered"),
    [(5.0, 10.0, True), (10.0, 5.0, False), (1.0, 0.0, False)],
)
async def test_running_requests_get_the_drain_timeout_at_eof(
    autojump_clock: trio.testing.MockClock, delay: float, drain_timeout: float, answered: bool
) -> None:
    connection = make_connection()
    transport, handler = FakeTransport(), FakeHandler(delay=delay)
    transport.feed(b"1")
    transport.eof()
    start = trio.current_time()
    with trio.fail_after(100):
        await run_connection(connection, transport, handler, drain_timeout=drain_timeout)
    assert transport.sent_frames == ([b"re:1"] if answered else [])
    assert trio.current_time() - start == pytest.approx(min(delay, drain_timeout))
