"""Who is at the other end of an accepted socket, for the operator's logs."""

from __future__ import annotations

import socket
import struct

import trio

_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


def describe_peer(stream: trio.abc.Stream) -> str:
    """`pid P uid U` for a Unix socket (SO_PEERCRED), `HOST:PORT` for TCP, else `unknown`."""
    sock = getattr(stream, "socket", None)
    if sock is None:
        return "unknown"
    try:
        if sock.family == socket.AF_UNIX:
            raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
            pid, uid, _ = _UCRED.unpack(raw)
            return f"pid {pid} uid {uid}"
        host, port = sock.getpeername()[:2]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    except OSError:
        return "unknown"
