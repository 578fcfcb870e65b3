"""`appserver attach --start`: start the home's server unless one answers (on trio).

Imported only when nothing answers at the socket yet, so joining a running server never pays
for trio or the launcher.
"""

from __future__ import annotations

from pathlib import Path

import trio

from appserver import daemon
from appserver.home import HomeError, control_socket_path, state_runtime_error
from appserver.relay.launch import LaunchError, ensure_server
from appserver.transport.unix import SocketPathError, probe


async def start_server(path: Path, home: Path) -> None:
    """Start a server for `home` at `path` unless one answers. The home's own socket is
    started as `appserver daemon start` starts it (one launcher, one pid file), so `daemon
    status` and `daemon stop` manage it whoever started it."""
    if probe(path):
        return
    try:
        if path == control_socket_path(home):
            await daemon.run_command("start", home)
        else:
            await ensure_server(path, home)
    except OSError as exc:
        raise state_runtime_error(home, exc) from exc


def start(path: Path, home: Path) -> str | None:
    """Run `start_server`; the error to print, or None once a server answers."""
    try:
        trio.run(start_server, path, home)
    except (LaunchError, daemon.DaemonError, HomeError, SocketPathError) as exc:
        return str(exc)
    return None
