"""Start a server for a home unless one answers, race-free (`appserver attach --start`).

Under the home's startup lock: probe; if nothing answers, launch a detached
`appserver --listen unix://PATH` that inherits the locked fd, so the lock stays held without a
gap until that server has bound and releases it. Concurrent callers wait on the lock, then find
the new server live: N concurrent callers start exactly one server.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import attrs
import trio

from appserver.home import INHERITED_LOCK_FD_ENV, control_dir, startup_lock
from appserver.transport.unix import probe

READY_POLL_SECONDS: Final = 0.05
READY_TIMEOUT_SECONDS: Final = 10.0
LOG_TAIL_BYTES: Final = 4096
LAUNCH_LOG_NAME: Final = "server.log"


class LaunchError(Exception):
    pass


def log_tail(path: Path, since: int = 0) -> str:
    """`:\n` and what `path` received after offset `since` (its last LOG_TAIL_BYTES), or ""."""
    try:
        with path.open("rb") as log:
            end = log.seek(0, os.SEEK_END)
            log.seek(max(since, end - LOG_TAIL_BYTES))
            text = log.read().decode(errors="replace").strip()
    except OSError:
        return ""
    return f":\n{text}" if text else ""


def server_command(
    home: Path, socket_path: Path | None = None, *, extra: Sequence[str] = ()
) -> list[str]:
    """`appserver --listen unix://[PATH] --home HOME [extra serve flags]` with this
    interpreter."""
    listen = f"unix://{socket_path}" if socket_path is not None else "unix://"
    home_args = ["--listen", listen, "--home", os.fspath(home)]
    return [sys.executable, "-m", "appserver", *home_args, *extra]


@attrs.frozen
class Launched:
    process: trio.Process
    #: Where this launch's output starts in the log.
    log_offset: int


async def launch_detached(
    home: Path, socket_path: Path, command: list[str], log_path: Path, *, truncate: bool
) -> Launched | None:
    """Under the home's startup lock: None if a server already answers at `socket_path`, else
    `command` launched in a session of its own, stdout and stderr to `log_path` (opened under
    the lock, so a concurrent caller never clobbers the winner's log), with the held lock
    handed to it: the lock stays held without a gap until that server has bound."""
    async with startup_lock(home) as lock:
        if probe(socket_path):
            return None
        mode = os.O_TRUNC if truncate else os.O_APPEND
        log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | mode, 0o600)
        try:
            offset = os.fstat(log_fd).st_size
            process = await trio.lowlevel.open_process(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log_fd,
                stderr=log_fd,
                start_new_session=True,
                pass_fds=(lock.fd,),
                env={**os.environ, INHERITED_LOCK_FD_ENV: str(lock.fd)},
            )
        finally:
            os.close(log_fd)
        lock.hand_off()
    return Launched(process, offset)


async def ensure_server(
    socket_path: Path,
    home: Path,
    *,
    ready_within: float = READY_TIMEOUT_SECONDS,
    argv: list[str] | None = None,
) -> bool:
    """Make sure a server answers at `socket_path`. True if this call started it."""
    if probe(socket_path):
        return False
    log_path = control_dir(home) / LAUNCH_LOG_NAME
    command = argv or server_command(home, socket_path)
    launched = await launch_detached(home, socket_path, command, log_path, truncate=True)
    if launched is None:
        return False
    process = launched.process
    with trio.move_on_after(ready_within):
        while not probe(socket_path):
            if process.poll() is not None:
                raise LaunchError(
                    f"detached app-server listener exited before opening {socket_path} with "
                    f"status {process.returncode}" + log_tail(log_path)
                )
            await trio.sleep(READY_POLL_SECONDS)
        return True
    raise LaunchError(
        f"app server did not become ready on {socket_path} within {ready_within:g}s"
        + log_tail(log_path)
    )
