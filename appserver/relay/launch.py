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
from pathlib import Path
from typing import Final

import trio

from appserver.home import INHERITED_LOCK_FD_ENV, control_dir, startup_lock
from appserver.transport.unix import probe

READY_POLL_SECONDS: Final = 0.05
READY_TIMEOUT_SECONDS: Final = 10.0
STDERR_TAIL_BYTES: Final = 4096
LAUNCH_LOG_NAME: Final = "server.log"


class LaunchError(Exception):
    pass


def _tail(path: Path) -> str:
    try:
        with path.open("rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - STDERR_TAIL_BYTES))
            return log.read().decode(errors="replace").strip()
    except OSError:
        return ""


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
    async with startup_lock(home) as lock:
        if probe(socket_path):
            return False
        log_path = control_dir(home) / LAUNCH_LOG_NAME
        command = argv or [
            sys.executable,
            "-m",
            "appserver",
            "--listen",
            f"unix://{socket_path}",
            "--home",
            str(home),
        ]
        with log_path.open("wb") as log:
            process = await trio.lowlevel.open_process(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,
                pass_fds=(lock.fd,),
                env={**os.environ, INHERITED_LOCK_FD_ENV: str(lock.fd)},
            )
        lock.hand_off()
    with trio.move_on_after(ready_within):
        while not probe(socket_path):
            if process.poll() is not None:
                tail = _tail(log_path)
                raise LaunchError(
                    f"detached app-server listener exited before opening {socket_path} with "
                    f"status {process.returncode}" + (f":\n{tail}" if tail else "")
                )
            await trio.sleep(READY_POLL_SECONDS)
        return True
    tail = _tail(log_path)
    raise LaunchError(
        f"app server did not become ready on {socket_path} within {ready_within:g}s"
        + (f":\n{tail}" if tail else "")
    )
