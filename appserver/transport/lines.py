"""JSON lines over a byte stream: stdio's framing, and the control socket's for `attach`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import trio

from appserver.transport.inbound import InboundBudget
from appserver.wire.limits import MAX_MESSAGE_BYTES

READ_CHUNK: Final = 64 * 1024


class LineTransport:
    """JSON lines: `\\n`-terminated (a `\\r` before it is dropped), any split across reads.

    With a `budget` (a shared socket), a line that outgrows one read is charged against it a read
    at a time before each further read, and the charge is given back once the line is handed on:
    as for WebSocket messages, partly received lines of many peers cannot exhaust memory.
    """

    def __init__(
        self,
        receive: trio.abc.ReceiveStream,
        send: trio.abc.SendStream,
        max_line_bytes: int = MAX_MESSAGE_BYTES,
        budget: InboundBudget | None = None,
    ) -> None:
        self._receive = receive
        self._send = send
        self._max_line = max_line_bytes
        self._buffer = bytearray()
        self._start = 0
        self._scanned = 0
        self._eof = False
        self._budget = budget
        self._charged = 0
        self.oversized = False

    def release_budget(self) -> None:
        """Give back what a partly received line holds (when the line or the connection ends)."""
        if self._charged and self._budget is not None:
            self._budget.release(self._charged)
        self._charged = 0

    async def receive_frame(self) -> bytes | None:
        buffer = self._buffer
        while True:
            end = buffer.find(b"\n", self._scanned)
            if end - self._start > self._max_line:
                self.oversized = True
                return None
            if end >= 0:
                self.release_budget()
                line = bytes(buffer[self._start : end])
                self._start = self._scanned = end + 1
                if self._start > READ_CHUNK and self._start * 2 > len(buffer):
                    del buffer[: self._start]
                    self._start = self._scanned = 0
                return line[:-1] if line.endswith(b"\r") else line
            self._scanned = len(buffer)
            if len(buffer) - self._start > self._max_line:
                self.oversized = True
                return None
            if self._eof:
                if self._start < len(buffer):
                    line = bytes(buffer[self._start :])
                    self._start = self._scanned = len(buffer)
                    return line
                return None
            if self._budget is not None and len(buffer) - self._start >= READ_CHUNK:
                await self._budget.acquire(READ_CHUNK)
                self._charged += READ_CHUNK
            try:
                data = await self._receive.receive_some(READ_CHUNK)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                data = b""
            if not data:
                self._eof = True
            else:
                buffer += data

    async def send_frames(self, frames: Sequence[bytes]) -> None:
        data = b"\n".join(frames) + b"\n"
        await self._send.send_all(data)
