"""WebSocket connections (trio-websocket), shared by the Unix control socket and ws:// over TCP.

One JSON message per text frame; binary frames are dropped with a warning; pings are answered
by trio-websocket; a message over `MAX_MESSAGE_BYTES` closes the connection with 1009.

Writes are coalesced: a batch of outgoing messages is framed by wsproto and written with one
`send_all`. trio-websocket has no batch API, so `send_frames` uses its connection's wsproto
state and stream lock directly (pinned to trio-websocket 0.12 in pyproject.toml).
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, wrap_server_stream
from wsproto.connection import ConnectionState

from appserver.transport.http_front import FrontPolicy, front
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


def text_frame_header(payload: bytes) -> bytes:
    """RFC 6455 header of one unfragmented, unmasked (server → client) text frame.

    Our frames are already UTF-8 JSON, so framing them here skips wsproto's decode/encode round
    trip (a fifth of the broadcast profile). No extension is ever negotiated, so wsproto keeps no
    state about outgoing data frames that this could disturb.
    """
    size = len(payload)
    if size < 126:
        return bytes((0x81, size))
    if size < 1 << 16:
        return struct.pack("!BBH", 0x81, 126, size)
    return struct.pack("!BBQ", 0x81, 127, size)


class WebSocketFrames:
    """A `FrameTransport` over one accepted WebSocket connection."""

    def __init__(self, ws: WebSocketConnection) -> None:
        self._ws = ws

    async def receive_frame(self) -> str | None:
        while True:
            try:
                message = await self._ws.get_message()
            except ConnectionClosed:
                return None
            if isinstance(message, str):
                return message
            log.warning("dropping unsupported binary websocket message")

    async def send_frames(self, frames: Sequence[bytes]) -> None:
        ws = self._ws
        state = ws._wsproto
        if ws.closed is not None or state.state is not ConnectionState.OPEN:
            raise trio.BrokenResourceError("websocket is closed")
        data = b"".join(
            [header for frame in frames for header in (text_frame_header(frame), frame)]
        )
        async with ws._stream_lock:
            try:
                await ws._stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                await ws._abort_web_socket()
                raise trio.BrokenResourceError("websocket peer is gone") from exc


ServeFrames = Callable[[WebSocketFrames], Awaitable[None]]


async def serve_websocket_client(
    stream: trio.abc.Stream,
    policy: FrontPolicy,
    serve: ServeFrames,
    extra_headers: Sequence[tuple[bytes, bytes]] = (),
    max_message_bytes: int = MAX_MESSAGE_BYTES,
) -> None:
    """Take one accepted stream through the HTTP front and the upgrade, then `serve` it."""
    try:
        upgraded = await front(stream, policy)
        if upgraded is None:
            return
        async with trio.open_nursery() as ws_tasks:
            ws: WebSocketConnection | None = None
            with trio.move_on_after(HANDSHAKE_TIMEOUT):
                request = await wrap_server_stream(
                    ws_tasks,
                    upgraded,
                    max_message_size=max_message_bytes,
                    receive_buffer_size=RECEIVE_BUFFER,
                )
                ws = await request.accept(extra_headers=list(extra_headers))
            if ws is None:
                log.warning("%s client did not complete the websocket handshake", policy.name)
            else:
                try:
                    await serve(WebSocketFrames(ws))
                finally:
                    with trio.move_on_after(CLOSE_TIMEOUT) as cleanup:
                        cleanup.shield = True
                        await ws.aclose()
            ws_tasks.cancel_scope.cancel()
    except (trio.BrokenResourceError, trio.ClosedResourceError, ConnectionClosed):
        pass
    except Exception:
        # One connection's failure must never take the listener (and everyone else) down.
        log.exception("%s connection failed", policy.name)
    finally:
        with trio.CancelScope(shield=True):
            await stream.aclose()
