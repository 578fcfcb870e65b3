"""`appserver attach --start`: start the home's server unless one answers (on trio).

Imported only when nothing answers at the socket yet, so joining a running server never pays
for trio or the launcher.
"""

from __future__ import annotations

from pathlib import Path

import trio

from appserver import daemon, serve_flags
from appserver.home import HomeError, control_socket_path, state_runtime_error
from appserver.relay.launch import LaunchError, ensure_server, server_command
from appserver.transport.unix import SocketPathError, probe


async def start_server(path: Path, home: Path, server_args: list[str] | None = None) -> None:
    """Start a server for `home` at `path` unless one answers. The home's own socket is
    started as `appserver daemon start` starts it (one launcher, one pid file), so `daemon
    status` and `daemon stop` manage it whoever started it. `server_args`: serve flags given
    on the command line (None: the recorded ones, `serve_flags`)."""
    if probe(path):
        return
    try:
        if path == control_socket_path(home):
            await daemon.run_command("start", home, server_args=server_args)
        else:
            extra = serve_flags.launch_args(home, server_args)
            await ensure_server(path, home, argv=server_command(home, path, extra=extra))
    except OSError as exc:
        raise state_runtime_error(home, exc) from exc


def start(path: Path, home: Path, server_args: list[str] | None = None) -> str | None:
    """Run `start_server`; the error to print, or None once a server answers."""
    try:
        trio.run(start_server, path, home, server_args)
    except (LaunchError, daemon.DaemonError, HomeError, SocketPathError) as exc:
        return str(exc)
    return None
