"""WebSocket connections, shared by the Unix control socket and ws:// over TCP.

One JSON message per text frame; binary messages are dropped with a warning; pings are
answered; a message over `MAX_MESSAGE_BYTES` closes the connection with 1009 as soon as a frame
header announces it, before its payload is read.

Sans-io: wsproto answers the upgrade (`H11Handshake`) and parses frames (`FrameDecoder`), fed
straight from `receive_some` in the connection's own reader, so a message costs no extra task
and no channel hop. Outgoing text frames are framed here (RFC 6455 §5.2, unmasked, no extension
is ever negotiated) and a batch is written with one `send_all`; control frames come from
wsproto's `FrameProtocol`. Partly received messages are charged to the server-wide
`InboundBudget` (see `appserver.transport.inbound`).
"""

from __future__ import annotations

import codecs
import logging
import os
import re
import struct
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

import trio
from wsproto.connection import ConnectionType
from wsproto.events import AcceptConnection, Request
from wsproto.frame_protocol import (
    CloseReason,
    Frame,
    FrameDecoder,
    FrameProtocol,
    Opcode,
    ParseFailed,
)
from wsproto.handshake import H11Handshake
from wsproto.utilities import ProtocolError

from appserver.connection import DirectWrite
from appserver.transport.http_front import FrontPolicy, PrefixedStream, front
from appserver.transport.inbound import InboundBudget
from appserver.wire.limits import MAX_FRAME_BYTES, MAX_MESSAGE_BYTES

log = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT: Final = 10.0
CLOSE_TIMEOUT: Final = 0.5
RECEIVE_BUFFER: Final = 64 * 1024
#: Codex's handshake header on the control socket.
MAX_UNFRAGMENTED_HEADER: Final = (
    b"x-codex-websocket-max-unfragmented-message-bytes",
    str(MAX_FRAME_BYTES).encode(),
)
_HEAD_END = re.compile(rb"\n\r?\n")


def text_frame_header(payload: bytes) -> bytes:
    """RFC 6455 header of one unfragmented, unmasked (server → client) text frame."""
    size = len(payload)
    if size < 126:
        return bytes((0x81, size))
    if size < 1 << 16:
        return struct.pack("!BBH", 0x81, 126, size)
    return struct.pack("!BBQ", 0x81, 127, size)


class _Closed(Exception):
    """The connection is over: `code` is the close code to send (None: send nothing)."""

    def __init__(self, code: int | None) -> None:
        self.code = code


class WebSocketFrames:
    """A `FrameTransport` over one upgraded WebSocket connection."""

    def __init__(
        self,
        stream: trio.abc.Stream,
        received: bytes = b"",
        *,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        budget: InboundBudget | None = None,
    ) -> None:
        self._stream = stream
        self._decoder = FrameDecoder(client=False)
        self._decoder.receive_bytes(received)
        self._control = FrameProtocol(client=False, extensions=[])
        self._max_message = max_message_bytes
        self._budget = budget
        self._send_lock = trio.Lock()
        #: The socket's fd for `write_now` (-1: not a socket), and what a partial one left.
        self._fd = stream.socket.fileno() if isinstance(stream, trio.SocketStream) else -1
        self._pending = b""
        #: The message being assembled (None between messages), its opcode and UTF-8 check.
        self._parts: bytearray | None = None
        self._opcode: Opcode | None = None
        self._utf8: codecs.BufferedIncrementalDecoder | None = None
        self._message_size = 0
        self._seen_header: object = None
        #: What the message being read may grow to, as far as its frame headers tell.
        self._announced = 0
        #: Budget held by the message being received or the last one handed on.
        self._charged = 0
        self.closed = False
        #: The close code sent or received, once the connection is over.
        self.close_code: int | None = None

    # -- input -------------------------------------------------------------------------------

    async def receive_frame(self) -> bytes | bytearray | None:
        """The next text message as UTF-8 bytes (possibly a `bytearray`), None at the end."""
        self._release_charge()  # the previous message has been handled
        if self.closed:
            return None
        try:
            return await self._receive_message()
        except _Closed as closed:
            await self._close(closed.code)
            return None
        except ParseFailed as exc:
            log.info("closing websocket connection: %s", exc)
            await self._close(int(exc.code))
            return None
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            await self._close(None)
            return None

    async def _receive_message(self) -> bytes | bytearray:
        decoder = self._decoder
        while True:
            frame = decoder.process_buffer()
            header = decoder.header
            if header is not None and header is not self._seen_header:
                self._seen_header = header
                if not header.opcode.iscontrol():
                    announced = self._message_size + header.payload_len
                    self._announced = announced if header.fin else self._max_message
                    if announced > self._max_message:
                        log.warning(
                            "closing websocket connection: a message of %d bytes or more "
                            "exceeds the %d-byte limit",
                            announced,
                            self._max_message,
                        )
                        raise _Closed(CloseReason.MESSAGE_TOO_BIG)
            if frame is None:
                await self._charge_pending()
                data = await self._stream.receive_some(RECEIVE_BUFFER)
                if not data:
                    raise _Closed(None)
                decoder.receive_bytes(data)  # type: ignore[arg-type]  # bytes or bytearray
                continue
            message = await self._on_frame(frame)
            if message is not None:
                return message

    async def _charge_pending(self) -> None:
        """Before reading more of a started message, charge it to the budget (once)."""
        if self._budget is None or self._charged:
            return
        header = self._decoder.header
        if header is not None and not header.opcode.iscontrol():
            size = self._announced
        elif self._parts is not None:
            size = self._max_message  # a fragmented message's total is never announced
        else:
            return
        self._charged = size
        await self._budget.acquire(size)

    def _release_charge(self) -> None:
        if self._charged and self._budget is not None:
            self._budget.release(self._charged)
        self._charged = 0

    async def _on_frame(self, frame: Frame) -> bytes | bytearray | None:
        opcode = frame.opcode
        payload = frame.payload
        assert isinstance(payload, bytes | bytearray)
        if opcode is Opcode.PING:
            await self._send_raw(self._control.pong(payload))
            return None
        if opcode is Opcode.PONG:
            return None
        if opcode is Opcode.CLOSE:
            code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
            raise _Closed(code if code is not None else CloseReason.NORMAL_CLOSURE)
        if opcode is Opcode.CONTINUATION:
            if self._opcode is None:
                raise ParseFailed("unexpected CONTINUATION")
        elif self._opcode is not None:
            raise ParseFailed(f"expected CONTINUATION, got {opcode!r}")
        else:
            self._opcode = opcode
        self._message_size += len(payload)
        if self._message_size > self._max_message:
            raise _Closed(CloseReason.MESSAGE_TOO_BIG)
        finished = frame.frame_finished and frame.message_finished
        checked = False
        message: bytes | bytearray
        if self._parts is None and finished:
            message = payload  # the whole message arrived in one read
        else:
            if self._parts is None:
                self._parts = bytearray()
                if self._opcode is Opcode.TEXT:
                    self._utf8 = codecs.getincrementaldecoder("utf-8")()
            self._parts += payload
            if self._utf8 is not None:
                self._check_utf8(payload, finished)
            if not finished:
                return None
            checked = self._utf8 is not None
            message, self._parts, self._utf8 = self._parts, None, None
        text = self._opcode is Opcode.TEXT
        self._opcode = None
        self._message_size = 0
        if not text:
            log.warning("dropping unsupported binary websocket message")
            self._release_charge()
            return None
        if not checked and not message.isascii():
            self._check_utf8(message, True)
        # A bytearray is handed on as is: orjson reads it without another copy.
        return message

    def _check_utf8(self, data: bytes | bytearray, final: bool) -> None:
        try:
            if self._utf8 is not None:
                self._utf8.decode(data, final)
            else:
                codecs.utf_8_decode(data, "strict", True)
        except UnicodeDecodeError as exc:
            raise ParseFailed(str(exc), CloseReason.INVALID_FRAME_PAYLOAD_DATA) from None

    # -- output ------------------------------------------------------------------------------

    async def send_frames(self, frames: Sequence[bytes]) -> None:
        if self.closed:
            raise trio.BrokenResourceError("websocket is closed")
        data = b"".join(
            [part for frame in frames if frame for part in (text_frame_header(frame), frame)]
        )
        if self._pending:
            data, self._pending = self._pending + data, b""
        if data:
            await self._send_raw(data)

    def write_now(self, frame: bytes) -> DirectWrite:
        """Write one frame without waiting, if the socket takes it now and nothing else is
        being written; saves waking the writer task for a lone reply."""
        if self._fd < 0 or self.closed or self._pending or self._send_lock.locked():
            return DirectWrite.NOTHING
        header = text_frame_header(frame)
        try:
            sent = os.writev(self._fd, (header, frame))
        except OSError:  # would block, or the peer is gone (the writer will find out)
            return DirectWrite.NOTHING
        size = len(header) + len(frame)
        if sent == size:
            return DirectWrite.ALL
        if sent <= 0:
            return DirectWrite.NOTHING
        self._pending = (header + frame)[sent:]
        return DirectWrite.PART

    async def _send_raw(self, data: bytes | bytearray) -> None:
        try:
            self._send_lock.acquire_nowait()
        except trio.WouldBlock:
            await self._send_lock.acquire()
        try:
            await self._stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            self.closed = True
            raise trio.BrokenResourceError("websocket peer is gone") from exc
        finally:
            self._send_lock.release()

    async def _close(self, code: int | None) -> None:
        """Send a close frame (unless `code` is None or one was sent) and stop reading."""
        if self.closed:
            return
        self.closed = True
        self._release_charge()
        self._parts = self._utf8 = None
        if code is None:
            return
        self.close_code = code
        with trio.move_on_after(CLOSE_TIMEOUT) as scope:
            scope.shield = True
            try:
                await self._send_raw(self._control.close(code))
            except trio.BrokenResourceError:
                pass

    async def aclose(self) -> None:
        await self._close(CloseReason.NORMAL_CLOSURE)


ServeFrames = Callable[[WebSocketFrames], Awaitable[None]]


def _accept_bytes(head: bytes, extra_headers: Sequence[tuple[bytes, bytes]]) -> bytes | None:
    """wsproto's 101 answer to an upgrade request head (None if it is not a valid one)."""
    handshake = H11Handshake(ConnectionType.SERVER)
    try:
        handshake.receive_data(head)
        for event in handshake.events():
            if isinstance(event, Request):
                return handshake.send(AcceptConnection(extra_headers=list(extra_headers)))
    except ProtocolError:
        return None
    return None


async def serve_websocket_client(
    stream: trio.abc.Stream,
    policy: FrontPolicy,
    serve: ServeFrames,
    extra_headers: Sequence[tuple[bytes, bytes]] = (),
    max_message_bytes: int = MAX_MESSAGE_BYTES,
    budget: InboundBudget | None = None,
    head_deadline: float | None = None,
) -> None:
    """Take one accepted stream through the HTTP front and the upgrade, then `serve` it."""
    try:
        upgraded = await front(stream, policy, head_deadline)
        if upgraded is None:
            return
        received, raw_stream = _unwrap(upgraded)
        end = _HEAD_END.search(received)
        head_size = len(received) if end is None else end.end()
        accept = _accept_bytes(received[:head_size], extra_headers)
        if accept is None:
            log.warning("%s client did not complete the websocket handshake", policy.name)
            return
        frames = WebSocketFrames(
            raw_stream,
            received[head_size:],
            max_message_bytes=max_message_bytes,
            budget=budget,
        )
        with trio.move_on_after(HANDSHAKE_TIMEOUT) as handshake:
            await frames._send_raw(accept)
        if handshake.cancelled_caught:
            log.warning("%s client did not complete the websocket handshake", policy.name)
            return
        try:
            await serve(frames)
        finally:
            await frames.aclose()
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    except Exception:
        # One connection's failure must never take the listener (and everyone else) down.
        log.exception("%s connection failed", policy.name)
    finally:
        with trio.CancelScope(shield=True):
            await stream.aclose()


def _unwrap(upgraded: trio.abc.Stream) -> tuple[bytes, trio.abc.Stream]:
    """The bytes read ahead and the socket stream itself (the frame reader writes to its fd)."""
    received = b""
    while isinstance(upgraded, PrefixedStream):  # the control socket's sniffing wraps it too
        prefix, upgraded = upgraded.unwrap()
        received += prefix
    return received, upgraded
