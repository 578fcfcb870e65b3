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

import trio

from appserver.transport.lines import READ_CHUNK


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
