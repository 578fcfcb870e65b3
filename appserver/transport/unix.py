"""The Unix control socket: path preparation, bind, and cleanup (codex-source-spec §2.1).

Preparing the path is the singleton rule: a live listener means another server owns this socket
and this start is refused; a stale socket (nothing listening) is removed; anything that is not a
socket — a regular file, a directory, a symlink, dangling or not — is never deleted and refuses
the start. Run it under the startup lock, then bind before releasing the lock.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Final

from appserver.home import prepare_private_directory

if TYPE_CHECKING:
    import trio

log = logging.getLogger(__name__)

SOCKET_MODE: Final = 0o600
#: `sizeof(sockaddr_un.sun_path)` on Linux, including the terminating NUL.
SUN_PATH_MAX: Final = 108


class SocketPathError(Exception):
    """The control socket path cannot be used; the message is what the user sees."""


def in_use_message(path: Path) -> str:
    return f"app-server control socket is already in use at {path}"


def not_a_socket_message(path: Path) -> str:
    return f"app-server control socket path exists and is not a socket: {path}"


def check_path_length(path: Path) -> None:
    size = len(os.fsencode(path))
    if size >= SUN_PATH_MAX:
        raise SocketPathError(
            f"app-server control socket path is {size} bytes, over the {SUN_PATH_MAX - 1}-byte "
            f"limit of a Unix socket address: {path}; use a shorter --home or unix://PATH"
        )


def probe(path: Path) -> bool:
    """True when something accepts connections at `path` (a live listener)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.connect(os.fspath(path))
        except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError):
            return False
        except OSError:
            if not os.path.lexists(path):
                return False
            raise
        return True


def is_stale_socket_path(path: Path) -> bool:
    """A socket inode (not a symlink to one) that nobody listens on any more."""
    try:
        return stat.S_ISSOCK(path.lstat().st_mode)
    except FileNotFoundError:
        return False


def prepare_socket_path(path: Path) -> None:
    check_path_length(path)
    prepare_private_directory(path.parent)
    try:
        live = probe(path)
    except OSError as exc:
        raise SocketPathError(f"cannot probe app-server control socket at {path}: {exc}") from exc
    if live:
        raise SocketPathError(in_use_message(path))
    if not os.path.lexists(path):
        return
    if not is_stale_socket_path(path):
        raise SocketPathError(not_a_socket_message(path))
    log.info("removing stale app-server control socket at %s", path)
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def bind_listener(path: Path, backlog: int = socket.SOMAXCONN) -> trio.SocketListener:
    """Bind and listen at `path` with mode 0600. The caller has prepared the path."""
    import trio  # this module is also used before trio is imported (the CLI's early checks)

    prepare_private_directory(path.parent)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        # A restrictive umask: the socket is never reachable by others, not even briefly.
        old_umask = os.umask(0o177)
        try:
            sock.bind(os.fspath(path))
        finally:
            os.umask(old_umask)
        os.chmod(path, SOCKET_MODE)
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise SocketPathError(in_use_message(path)) from exc
        raise
    return trio.SocketListener(trio.socket.from_stdlib_socket(sock))


SocketIdentity = tuple[int, int, int]


def socket_identity(path: Path) -> SocketIdentity:
    """What tells our socket file from one bound later at the same path (inodes get reused)."""
    info = path.lstat()
    return (info.st_dev, info.st_ino, info.st_ctime_ns)


def remove_socket_file(path: Path, identity: SocketIdentity | None) -> None:
    """Remove the socket we bound, but never a file another server put there since."""
    try:
        current = socket_identity(path)
    except FileNotFoundError:
        return
    if identity is not None and current != identity:
        return
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("failed to remove app-server control socket file %s: %s", path, exc)
