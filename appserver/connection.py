"""One client connection: its session, its bounded outbound queue, its cancel scope.

The outbound queue is a trio memory channel bounded in messages, with a byte budget on top, so a
slow client can never hold more than its budget of memory. Items are already-encoded frames. The
writer drains the queue in batches and hands each batch to the transport as one write.
Disconnecting a connection is cancelling its scope; nothing else is needed.
"""

from __future__ import annotations

import enum
import itertools
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Final, Protocol

import attrs
import trio

log = logging.getLogger(__name__)

#: Codex's CHANNEL_CAPACITY: the stdio writer queue.
STDIO_QUEUE_MESSAGES: Final = 128
#: Codex's WEBSOCKET_OUTBOUND_CHANNEL_CAPACITY (#19246): ws and unix writer queues.
SOCKET_QUEUE_MESSAGES: Final = 32 * 1024
DEFAULT_QUEUE_BYTES: Final = 64 * 1024 * 1024
#: After input ends, how long queued frames may take to be written before the connection closes.
FLUSH_GRACE_SECONDS: Final = 2.0
#: A writer stops adding frames to a batch (one transport write) once it holds this much.
MAX_BATCH_BYTES: Final = 256 * 1024
#: Frames up to this size may be written at once by whoever queues them (see `DirectWrite`).
MAX_DIRECT_WRITE_BYTES: Final = 64 * 1024


class DirectWrite(enum.Enum):
    """What a transport's `write_now(frame)` did without waiting."""

    #: Nothing written (the socket would block): queue the frame.
    NOTHING = 0
    #: All of it written.
    ALL = 1
    #: Part of it written; the transport holds the rest until its next `send_frames`.
    PART = 2


_ids = itertools.count()


def next_connection_id() -> int:
    """Process-global, shared by every transport, from 0 (Codex's `next_connection_id`)."""
    return next(_ids)


class Origin(enum.Enum):
    STDIO = "stdio"
    UNIX = "unix"
    WEBSOCKET = "websocket"
    IN_PROCESS = "in-process"


@attrs.define(eq=False)
class ClientInfo:
    name: str
    version: str
    title: str | None = None


@attrs.define(eq=False)
class Session:
    """What `initialize` negotiated. Capabilities are never re-negotiated."""

    initialized: bool = False
    experimental_api: bool = False
    opt_out_notification_methods: frozenset[str] = frozenset()
    client_info: ClientInfo | None = None


class WriteReceipt:
    """Settles once: `True` after the frame's bytes were written, `False` if it never will be."""

    __slots__ = ("_event", "written")

    def __init__(self) -> None:
        self._event = trio.Event()
        self.written: bool | None = None

    def settle(self, written: bool) -> None:
        if self.written is None:
            self.written = written
            self._event.set()

    @property
    def settled(self) -> bool:
        return self.written is not None

    async def wait(self) -> bool:
        await self._event.wait()
        return bool(self.written)


OutboundItem = tuple[bytes, WriteReceipt | None]
FrameWriter = Callable[[Sequence[bytes]], Awaitable[None]]


@attrs.define(eq=False)
class QueueLimits:
    messages: int
    bytes: int = DEFAULT_QUEUE_BYTES


class Connection:
    """The state shared by a connection's reader, writer, handlers and the router."""

    def __init__(
        self,
        origin: Origin,
        *,
        disconnectable: bool,
        limits: QueueLimits,
        connection_id: int | None = None,
    ) -> None:
        self.id = next_connection_id() if connection_id is None else connection_id
        self.origin = origin
        self.disconnectable = disconnectable
        self.session = Session()
        #: Broadcasts reach the connection only once this is set, after its initialize replies.
        self.ready = False
        self.cancel_scope = trio.CancelScope()
        self.limits = limits
        self.queued_bytes = 0
        self.closed = False
        self._send, self._receive = trio.open_memory_channel[OutboundItem](limits.messages)
        self._space = trio.lowlevel.ParkingLot()
        self._waiters = trio.StrictFIFOLock()
        #: Set once the writer has stopped: everything queued was written, or never will be.
        self.flushed = trio.Event()
        #: The nursery a request handler task of this connection runs in, while reading.
        self.tasks: trio.Nursery | None = None
        #: The transport's non-waiting write, if it has one: a frame queued while the queue is
        #: empty and the writer idle is written at once, without waking the writer task.
        self.write_now: Callable[[bytes], DirectWrite] | None = None
        #: The writer is writing a batch, or has a flush (after a partial direct write) queued.
        self._writing = False

    def __repr__(self) -> str:
        return f"<Connection {self.id} {self.origin.value}>"

    # -- enqueue side (router) ---------------------------------------------------------------

    def _fits(self, size: int) -> bool:
        # A frame larger than the whole budget still goes through an empty queue.
        return self.queued_bytes == 0 or self.queued_bytes + size <= self.limits.bytes

    def _try_queue(self, data: bytes, receipt: WriteReceipt | None) -> bool:
        if self.closed:
            if receipt is not None:
                receipt.settle(False)
            return True
        if not self._fits(len(data)):
            return False
        if (
            self.write_now is not None
            and self.queued_bytes == 0
            and not self._writing
            and len(data) <= MAX_DIRECT_WRITE_BYTES
        ):
            written = self.write_now(data)
            if written is DirectWrite.ALL:
                if receipt is not None:
                    receipt.settle(True)
                return True
            if written is DirectWrite.PART:
                data = b""  # the rest is held by the transport: queue a flush in its place
                self._writing = True
        try:
            self._send.send_nowait((data, receipt))
        except trio.WouldBlock:
            return False
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            if receipt is not None:
                receipt.settle(False)
            return True
        self.queued_bytes += len(data)
        return True

    def offer(self, data: bytes, receipt: WriteReceipt | None = None) -> bool:
        """Queue without waiting; False when full. A closed connection swallows the frame."""
        if self._waiters.locked():
            return False  # never overtake a sender that is already waiting
        return self._try_queue(data, receipt)

    @property
    def has_waiting_senders(self) -> bool:
        return self._waiters.locked()

    async def put(self, data: bytes, receipt: WriteReceipt | None = None) -> None:
        """Queue, waiting for room; waiting senders are served in FIFO order."""
        if self.offer(data, receipt):
            return
        async with self._waiters:
            while not self._try_queue(data, receipt):
                await self._space.park()

    def disconnect(self) -> None:
        self.cancel_scope.cancel()

    def close_outbound(self) -> None:
        """No more frames will be queued; the writer drains what is queued and stops."""
        self.closed = True
        self._send.close()
        self._space.unpark_all()

    # -- dequeue side (writer) ---------------------------------------------------------------

    async def run_writer(self, write: FrameWriter) -> None:
        """Drain the queue in batches, one transport write per batch, until it is closed.

        A batch stops growing once it holds `MAX_BATCH_BYTES` (the frame that crosses the line
        is still in it).
        """
        receive = self._receive
        batch: list[OutboundItem] = []
        try:
            async for first in receive:
                batch = [first]
                size = len(first[0])
                while size < MAX_BATCH_BYTES:
                    try:
                        item = receive.receive_nowait()
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                    batch.append(item)
                    size += len(item[0])
                self.queued_bytes -= size
                self._space.unpark_all()
                self._writing = True
                await write([data for data, _ in batch])
                self._writing = False
                for _, receipt in batch:
                    if receipt is not None:
                        receipt.settle(True)
                batch = []
        finally:
            for _, receipt in batch:  # the write in progress failed or was cancelled
                if receipt is not None:
                    receipt.settle(False)
            self._fail_queued()
            self.flushed.set()

    def _fail_queued(self) -> None:
        self.closed = True
        self._send.close()
        while True:
            try:
                _, receipt = self._receive.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
            if receipt is not None:
                receipt.settle(False)
        self.queued_bytes = 0
        self._space.unpark_all()


class FrameTransport(Protocol):
    """What a transport gives a connection: whole frames in, batches of frames out."""

    async def receive_frame(self) -> bytes | bytearray | str | None:
        """The next frame, or None at end of input (EOF, close, reset, or a refused frame)."""

    async def send_frames(self, frames: Sequence[bytes]) -> None:
        """Write every frame, in order; raise `trio.BrokenResourceError` if the peer is gone.

        An empty frame is no message: it only asks the transport to flush what it holds."""


class FrameHandler(Protocol):
    def connection_opened(self, connection: Connection) -> None: ...

    async def handle_frame(
        self, connection: Connection, frame: bytes | bytearray | str
    ) -> None: ...

    def connection_input_closed(self, connection: Connection) -> None: ...

    def connection_closed(self, connection: Connection) -> None: ...


async def run_connection(
    connection: Connection,
    transport: FrameTransport,
    handler: FrameHandler,
    *,
    drain_timeout: float = 0.0,
) -> None:
    """Serve one connection until its input ends or it is disconnected (its scope cancelled).

    At end of input, requests already running get `drain_timeout` seconds to answer, and the
    frames already queued are written before the connection closes.
    """

    async def write_until_broken() -> None:
        try:
            await connection.run_writer(transport.send_frames)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            log.info("connection %s: write failed (%s); disconnecting", connection.id, exc)
            connection.disconnect()

    connection.write_now = getattr(transport, "write_now", None)

    closed = False

    def close() -> None:
        nonlocal closed
        connection.tasks = None
        if not closed:
            closed = True
            handler.connection_closed(connection)
            connection.close_outbound()

    handler.connection_opened(connection)
    try:
        with connection.cancel_scope:
            async with trio.open_nursery() as outer:
                outer.start_soon(write_until_broken)
                async with trio.open_nursery() as tasks:
                    connection.tasks = tasks
                    while (frame := await transport.receive_frame()) is not None:
                        # Hand over the only reference: the handler drops a big message's raw
                        # bytes once it has decoded them, and nothing keeps the last one alive
                        # while the next is awaited.
                        held = [frame]
                        del frame
                        await handler.handle_frame(connection, held.pop())
                    handler.connection_input_closed(connection)
                    tasks.cancel_scope.deadline = trio.current_time() + drain_timeout
                close()
                # What is queued gets written, unless the peer stopped reading too.
                outer.cancel_scope.deadline = trio.current_time() + max(
                    drain_timeout, FLUSH_GRACE_SECONDS
                )
    finally:
        close()
