"""stdio: JSON lines on fds 0/1, one client.

The protocol keeps private duplicates of fds 0 and 1; fd 1 is then pointed at stderr and fd 0 at
/dev/null, so nothing else in the process (a stray print, a C library, a child process running an
agent's command) can write into the protocol stream or read from it. The duplicates are made
non-blocking only when they are pipes or sockets: for a tty or a regular file that flag would leak
to whoever shares the file description, so those are served by blocking I/O in a worker thread.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Sequence
from typing import Final

import trio

from appserver.wire.limits import MAX_MESSAGE_BYTES

READ_CHUNK: Final = 64 * 1024


class ThreadedFdStream(trio.abc.Stream):
    """Blocking reads and writes of one fd, run in worker threads."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        return await trio.to_thread.run_sync(
            os.read, self._fd, max_bytes or READ_CHUNK, abandon_on_cancel=True
        )

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await trio.to_thread.run_sync(_write_all, self._fd, bytes(data))

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.checkpoint()

    async def aclose(self) -> None:
        os.close(self._fd)
        await trio.lowlevel.checkpoint()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def stream_for_fd(fd: int) -> trio.abc.Stream:
    mode = os.fstat(fd).st_mode
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        return trio.lowlevel.FdStream(fd)
    return ThreadedFdStream(fd)


def claim_stdio() -> tuple[trio.abc.Stream, trio.abc.Stream]:
    """Take fds 0 and 1 for the protocol; see the module docstring."""
    sys.stdout.flush()
    protocol_in, protocol_out = os.dup(0), os.dup(1)
    os.dup2(2, 1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    return stream_for_fd(protocol_in), stream_for_fd(protocol_out)


class LineTransport:
    """JSON lines: `\\n`-terminated (a `\\r` before it is dropped), any split across reads."""

    def __init__(
        self,
        receive: trio.abc.ReceiveStream,
        send: trio.abc.SendStream,
        max_line_bytes: int = MAX_MESSAGE_BYTES,
    ) -> None:
        self._receive = receive
        self._send = send
        self._max_line = max_line_bytes
        self._buffer = bytearray()
        self._start = 0
        self._scanned = 0
        self._eof = False
        self.oversized = False

    async def receive_frame(self) -> bytes | None:
        buffer = self._buffer
        while True:
            end = buffer.find(b"\n", self._scanned)
            if end - self._start > self._max_line:
                self.oversized = True
                return None
            if end >= 0:
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
