"""The server home: where it lives, what is in it, and the startup lock that guards it.

`--home DIR` > `$APPSERVER_HOME` > `~/.appserver`. Layout:

    HOME/state.sqlite                                   threads, turns, items (WAL)
    HOME/app-server-control/                            0700, owned by the server's user
    HOME/app-server-control/app-server-control.sock     the unix:// socket (0600)
    HOME/app-server-control/app-server-startup.lock     flock'ed during startup only
"""

from __future__ import annotations

import fcntl
import os
import stat
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Final

HOME_ENV: Final = "APPSERVER_HOME"
CONTROL_DIR_NAME: Final = "app-server-control"
CONTROL_SOCKET_NAME: Final = "app-server-control.sock"
STARTUP_LOCK_NAME: Final = "app-server-startup.lock"
STATE_DB_NAME: Final = "state.sqlite"


def resolve_home(explicit: str | os.PathLike[str] | None = None) -> Path:
    raw = explicit or os.environ.get(HOME_ENV) or Path.home() / ".appserver"
    return Path(os.path.abspath(os.path.expanduser(raw)))


def control_dir(home: Path) -> Path:
    return home / CONTROL_DIR_NAME


def control_socket_path(home: Path) -> Path:
    return control_dir(home) / CONTROL_SOCKET_NAME


def startup_lock_path(home: Path) -> Path:
    return control_dir(home) / STARTUP_LOCK_NAME


def state_db_path(home: Path) -> Path:
    return home / STATE_DB_NAME


class HomeError(Exception):
    """The home or its control directory cannot be used safely."""


def prepare_private_directory(directory: Path) -> None:
    """Create `directory` 0700 (and missing parents) if it does not exist.

    An existing directory is never chmod'ed: it may be shared (`/tmp`, a 1777 run directory),
    and what we put in it is private by its own mode (socket 0600, lock 0600). It is refused when
    someone else could replace what we put there: owned by another user than us or root, or
    writable by group or others without the sticky bit. Refuses a non-directory too.
    """
    if not directory.parent.exists():
        directory.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        directory.mkdir(mode=0o700)
    except FileExistsError:
        pass
    info = directory.lstat()
    if not stat.S_ISDIR(info.st_mode):
        raise HomeError(f"socket directory path exists and is not a directory: {directory}")
    if info.st_uid not in (os.geteuid(), 0):
        raise HomeError(
            f"refusing to use {directory}: it is owned by uid {info.st_uid}, not by uid "
            f"{os.geteuid()}, so other users could replace its socket or lock"
        )
    if stat.S_IMODE(info.st_mode) & 0o022 and not info.st_mode & stat.S_ISVTX:
        raise HomeError(
            f"refusing to use {directory}: it is writable by other users without the sticky "
            f"bit (mode {stat.S_IMODE(info.st_mode):04o}), so they could replace its socket or "
            "lock; remove group/other write permission or set the sticky bit"
        )


#: Set by `appserver attach --start` for the server it launches: the number of an inherited fd
#: whose open file description already holds the startup lock.
INHERITED_LOCK_FD_ENV: Final = "APPSERVER_STARTUP_LOCK_FD"


class _LockWaiter:
    """A blocking `flock(LOCK_EX)` in a worker thread that can be abandoned safely.

    If the waiting task is cancelled, whichever side finishes second closes the fd, so a lock
    acquired after the cancellation is released at once instead of leaking.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._mutex = threading.Lock()
        self._fd: int | None = None
        self._abandoned = False

    def acquire_blocking(self) -> int:
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        with self._mutex:
            if self._abandoned:
                os.close(fd)
            else:
                self._fd = fd
        return fd

    def abandon(self) -> None:
        with self._mutex:
            self._abandoned = True
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


class StartupLock:
    """A held startup lock. `hand_off()` leaves it held by a child that inherited the fd."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._handed_off = False

    def hand_off(self) -> None:
        self._handed_off = True

    def release(self) -> None:
        if not self._handed_off:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def _inherited_lock_fd() -> int | None:
    inherited = os.environ.pop(INHERITED_LOCK_FD_ENV, None)
    return int(inherited) if inherited is not None and inherited.isdigit() else None


def acquire_startup_lock(home: Path) -> StartupLock:
    """Take the home's startup lock, blocking the calling thread (before any event loop runs).

    A launch takes it first thing, before importing the server: concurrent launches then wait
    idle instead of competing for the CPU, and the losers find the winner already listening.
    """
    fd = _inherited_lock_fd()
    if fd is not None:
        fcntl.flock(fd, fcntl.LOCK_EX)  # our open file description holds it already
        return StartupLock(fd)
    path = startup_lock_path(home)
    try:
        prepare_private_directory(path.parent)
        return StartupLock(_LockWaiter(path).acquire_blocking())
    except OSError as exc:
        raise state_runtime_error(home, exc) from exc


def state_runtime_error(home: Path, exc: OSError) -> HomeError:
    """Codex's words for a home whose state cannot be set up (read-only, full, not a
    directory), with the reason and the path, not a raw `[Errno N]`."""
    where = f" ({exc.filename})" if exc.filename else ""
    return HomeError(
        f"failed to initialize sqlite state runtime under {home}: {exc.strerror or exc}{where}"
    )


@asynccontextmanager
async def startup_lock(home: Path) -> AsyncIterator[StartupLock]:
    """Hold the home's exclusive startup lock (flock) without blocking the trio loop.

    Released with LOCK_UN on exit, unless handed off to a process launched with the fd (see
    `INHERITED_LOCK_FD_ENV`); that process then releases it once it has bound.
    """
    import trio  # not at module level: the CLI takes the lock before importing trio

    path = startup_lock_path(home)
    inherited = _inherited_lock_fd()
    if inherited is not None:
        fd = inherited
        await trio.to_thread.run_sync(fcntl.flock, fd, fcntl.LOCK_EX)
    else:
        try:
            prepare_private_directory(path.parent)
        except OSError as exc:
            raise state_runtime_error(home, exc) from exc
        waiter = _LockWaiter(path)
        try:
            fd = await trio.to_thread.run_sync(waiter.acquire_blocking, abandon_on_cancel=True)
        except OSError as exc:
            waiter.abandon()
            raise state_runtime_error(home, exc) from exc
        except BaseException:
            waiter.abandon()
            raise
    lock = StartupLock(fd)
    try:
        yield lock
    finally:
        lock.release()
