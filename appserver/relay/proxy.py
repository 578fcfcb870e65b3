"""`appserver proxy`: raw bytes between stdio and the control socket, as Codex's.

Unlike Codex, when the server closes its side the proxy closes stdout and exits at once instead
of waiting for its own stdin to end.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

CHUNK = 64 * 1024


def connect_error(path: Path, exc: OSError) -> str:
    cause = f"{exc.strerror} (os error {exc.errno})" if exc.errno else str(exc)
    return f"failed to connect to socket at {path}\n\nCaused by:\n    {cause}"


def release_stdout() -> None:
    """Point fd 1 at /dev/null: it was our last reference to the stdout pipe, so the reader
    sees EOF now rather than when the process exits."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)


async def proxy(path: Path) -> int:
    # Not at module level: `attach` uses this module's helpers without trio.
    import trio

    from appserver.transport.stdio import stream_for_fd

    try:
        sock = await trio.open_unix_socket(os.fspath(path))
    except OSError as exc:
        print(f"Error: {connect_error(path, exc)}", file=sys.stderr)
        return 1
    stdin, stdout = stream_for_fd(os.dup(0)), stream_for_fd(os.dup(1))

    async def upstream() -> None:
        try:
            while data := await stdin.receive_some(CHUNK):
                await sock.send_all(data)
            await sock.send_eof()
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass

    async with sock, trio.open_nursery() as nursery:
        nursery.start_soon(upstream)
        try:
            while data := await sock.receive_some(CHUNK):
                await stdout.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        nursery.cancel_scope.cancel()
    await stdout.aclose()
    release_stdout()
    return 0
