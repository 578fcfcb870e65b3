"""Direct writes: a frame queued while the queue is empty and the writer idle goes straight to
the transport's `write_now`; anything else keeps the queue's order."""

from __future__ import annotations

from collections.abc import Sequence

import trio
import trio.testing

from appserver.connection import (
    MAX_DIRECT_WRITE_BYTES,
    Connection,
    DirectWrite,
    Origin,
    QueueLimits,
    WriteReceipt,
)


class Transport:
    """Records direct writes and batches; `answer` says what the next `write_now` does."""

    def __init__(self) -> None:
        self.log: list[tuple[str, list[bytes]]] = []
        self.answer = DirectWrite.ALL
        self.release = trio.Event()
        self.release.set()

    def write_now(self, frame: bytes) -> DirectWrite:
        if self.answer is not DirectWrite.NOTHING:
            self.log.append(("now", [frame]))
        return self.answer

    async def send_frames(self, frames: Sequence[bytes]) -> None:
        await self.release.wait()
        self.log.append(("batch", list(frames)))


def connection_for(transport: Transport) -> Connection:
    connection = Connection(Origin.UNIX, disconnectable=True, limits=QueueLimits(64, 1 << 20))
    connection.write_now = transport.write_now
    return connection


async def test_a_frame_at_an_idle_connection_is_written_at_once_and_its_receipt_settled() -> None:
    transport = Transport()
    connection = connection_for(transport)
    receipt = WriteReceipt()
    assert connection.offer(b"reply", receipt)
    assert transport.log == [("now", [b"reply"])]
    assert receipt.written is True
    assert connection.queued_bytes == 0


async def test_frames_queued_behind_a_write_in_progress_keep_their_order() -> None:
    transport = Transport()
    transport.answer = DirectWrite.NOTHING  # the socket is full: the first one is queued
    connection = connection_for(transport)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(connection.run_writer, transport.send_frames)
        transport.release = trio.Event()
        assert connection.offer(b"one")
        await trio.testing.wait_all_tasks_blocked()  # the writer is now writing "one"
        transport.answer = DirectWrite.ALL
        assert connection.offer(b"two")  # must not overtake "one"
        transport.release.set()
        await trio.testing.wait_all_tasks_blocked()
        assert connection.offer(b"three")  # everything written, writer idle: direct again
        connection.close_outbound()
    assert transport.log == [("batch", [b"one"]), ("batch", [b"two"]), ("now", [b"three"])]


async def test_a_partial_direct_write_queues_a_flush_before_the_next_frame() -> None:
    transport = Transport()
    transport.answer = DirectWrite.PART
    connection = connection_for(transport)
    receipt = WriteReceipt()
    assert connection.offer(b"big", receipt)
    assert receipt.written is None  # settled when the rest is flushed
    transport.answer = DirectWrite.ALL
    assert connection.offer(b"next")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(connection.run_writer, transport.send_frames)
        await trio.testing.wait_all_tasks_blocked()
        connection.close_outbound()
    assert transport.log == [("now", [b"big"]), ("batch", [b"", b"next"])]
    assert receipt.written is True


async def test_big_frames_always_go_through_the_queue() -> None:
    transport = Transport()
    connection = connection_for(transport)
    assert connection.offer(b"x" * (MAX_DIRECT_WRITE_BYTES + 1))
    assert transport.log == []
    assert connection.queued_bytes == MAX_DIRECT_WRITE_BYTES + 1
