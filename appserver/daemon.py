"""`appserver daemon start|stop|restart|status`: one detached `--listen unix://` server per home.

State lives under `HOME/app-server-daemon/` (0700), as Codex's `codex app-server daemon`:

    app-server.pid   {"pid": N, "processStartTime": T}, T being field 22 of /proc/N/stat (clock
                     ticks since boot), so a reused pid is never taken for our server; written
                     to a temp file and renamed into place
    daemon.lock      flock'ed by every lifecycle command (polled every 50 ms, 75 s limit)
    server.log       the server's stdout and stderr (appended)

The server is launched under the home's startup lock, handed off to it like `attach --start`
does, so a concurrent `attach --start` cannot race it into a second launch. Ready means a real
WebSocket handshake on the control socket answered `initialize` (as `codex_app_server_daemon`,
a client name that never becomes the originator). Each command prints one JSON object on stdout
and exits 0, or prints `Error: …` on stderr and exits 1.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final

import attrs
import orjson
import trio
from trio_websocket import ConnectionClosed, HandshakeError, wrap_client_stream

from appserver import __version__, serve_flags
from appserver.home import (
    HomeError,
    control_socket_path,
    prepare_private_directory,
    startup_lock,
)
from appserver.relay.launch import (
    READY_POLL_SECONDS,
    READY_TIMEOUT_SECONDS,
    launch_detached,
    log_tail,
    server_command,
)
from appserver.transport.unix import (
    SocketPathError,
    check_path_length,
    is_stale_socket_path,
    probe,
)

DAEMON_DIR_NAME: Final = "app-server-daemon"
PID_FILE_NAME: Final = "app-server.pid"
LOCK_FILE_NAME: Final = "daemon.lock"
LOG_FILE_NAME: Final = "server.log"

LOCK_TIMEOUT_SECONDS: Final = 75.0
LOCK_POLL_SECONDS: Final = 0.05
PROBE_TIMEOUT_SECONDS: Final = 2.0
#: Longer than the server's default --drain-timeout (30 s), so a stop lets running turns finish.
STOP_GRACE_SECONDS: Final = 40.0
KILL_WAIT_SECONDS: Final = 5.0
EXIT_POLL_SECONDS: Final = 0.05

#: A Codex non-originating client name: probing never makes it the server's originator.
PROBE_CLIENT_NAME: Final = "codex_app_server_daemon"
PROBE_CLIENT_TITLE: Final = "Codex App Server Daemon"

NOT_MANAGED_MESSAGE: Final = "app server is running but is not managed by appserver daemon"
COMMANDS: Final = ("start", "stop", "restart", "status")


class DaemonError(Exception):
    """A lifecycle command failed; the message is what the user sees after `Error: `."""


@attrs.frozen
class DaemonPaths:
    home: Path
    directory: Path
    pid_file: Path
    lock_file: Path
    log_file: Path
    socket: Path

    @classmethod
    def for_home(cls, home: Path) -> DaemonPaths:
        directory = home / DAEMON_DIR_NAME
        return cls(
            home=home,
            directory=directory,
            pid_file=directory / PID_FILE_NAME,
            lock_file=directory / LOCK_FILE_NAME,
            log_file=directory / LOG_FILE_NAME,
            socket=control_socket_path(home),
        )


# -- the pid file ----------------------------------------------------------------------------


@attrs.frozen
class PidRecord:
    pid: int
    process_start_time: int

    def to_json(self) -> bytes:
        return orjson.dumps({"pid": self.pid, "processStartTime": self.process_start_time})


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks) of a process from /proc/PID/stat, None if gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # `comm` (field 2) is parenthesised and may itself hold spaces and parentheses.
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[22 - 3])


def process_start_time(pid: int) -> int | None:
    stat = _proc_stat(pid)
    return None if stat is None else stat[1]


def is_running(record: PidRecord) -> bool:
    """The process the record names is alive (not a zombie) and is the one that was recorded."""
    stat = _proc_stat(record.pid)
    return stat is not None and stat[1] == record.process_start_time and stat[0] not in "ZXx"


def read_pid_file(path: Path) -> PidRecord | None:
    """The record in `path`; None when it is missing or not a record we wrote."""
    try:
        value = orjson.loads(path.read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return None
    if type(value) is not dict:
        return None
    pid, start_time = value.get("pid"), value.get("processStartTime")
    if type(pid) is not int or type(start_time) is not int or pid <= 0:
        return None
    return PidRecord(pid, start_time)


def write_pid_file(path: Path, record: PidRecord) -> None:
    """Publish `record` atomically: readers see the old file or the new one, never a part."""
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(record.to_json())
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


def remove_pid_file(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def managed_record(paths: DaemonPaths) -> PidRecord | None:
    """Our running server's record; a stale pid file (dead or reused pid) is removed."""
    record = read_pid_file(paths.pid_file)
    if record is not None and is_running(record):
        return record
    if record is not None or paths.pid_file.exists():
        remove_pid_file(paths.pid_file)
    return None


# -- the operation lock ----------------------------------------------------------------------


@asynccontextmanager
async def operation_lock(path: Path, *, limit: float = LOCK_TIMEOUT_SECONDS) -> AsyncIterator[None]:
    """Hold `flock(LOCK_EX)` on `path`, polled with LOCK_NB so the trio loop never blocks."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        locked = False
        with trio.move_on_after(limit):
            while not locked:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    locked = True
                except BlockingIOError:
                    await trio.sleep(LOCK_POLL_SECONDS)
        if not locked:
            raise DaemonError(f"timed out waiting for daemon operation lock {path}")
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


# -- the readiness probe ---------------------------------------------------------------------


@attrs.frozen
class Answer:
    """A server answered `initialize`; `version` is parsed from its `userAgent`."""

    version: str | None


def version_from_user_agent(user_agent: object) -> str | None:
    """The text after the first `/`, up to the first whitespace (as Codex's daemon reads it)."""
    if not isinstance(user_agent, str) or "/" not in user_agent:
        return None
    words = user_agent.split("/", 1)[1].split()
    return words[0] if words else None


def _initialize_request() -> str:
    client_info = {"name": PROBE_CLIENT_NAME, "title": PROBE_CLIENT_TITLE, "version": __version__}
    params = {"clientInfo": client_info}
    return orjson.dumps({"id": 1, "method": "initialize", "params": params}).decode()


async def _initialize(nursery: trio.Nursery, stream: trio.SocketStream) -> Answer | None:
    ws = await wrap_client_stream(nursery, stream, "localhost", "/")
    await ws.send_message(_initialize_request())
    while True:
        message = await ws.get_message()
        try:
            value = orjson.loads(message)
        except orjson.JSONDecodeError:
            continue
        if type(value) is not dict or "method" in value:
            continue  # a notification or a server request, not our response
        if type(value.get("id")) is int and value["id"] == 1:
            break
    result = value.get("result")
    if type(result) is not dict:
        return None
    await ws.send_message('{"method":"initialized"}')
    await ws.aclose()
    return Answer(version_from_user_agent(result.get("userAgent")))


async def probe_server(socket: Path) -> Answer | None:
    """Whether a server on `socket` completes a WebSocket handshake and answers `initialize`."""
    answer: Answer | None = None
    with trio.move_on_after(PROBE_TIMEOUT_SECONDS):
        try:
            stream = await trio.open_unix_socket(os.fspath(socket))
        except OSError:
            return None
        async with stream, trio.open_nursery() as nursery:
            try:
                answer = await _initialize(nursery, stream)
            except (
                HandshakeError,
                ConnectionClosed,
                trio.BrokenResourceError,
                trio.ClosedResourceError,
                OSError,
            ):
                answer = None
            nursery.cancel_scope.cancel()
    return answer


# -- launching, waiting, stopping ------------------------------------------------------------


async def _wait_until_ready(
    paths: DaemonPaths,
    exited: Callable[[], str | None],
    *,
    log_offset: int,
    within: float = READY_TIMEOUT_SECONDS,
) -> Answer:
    """Probe every 50 ms until a server answers; `exited()` says why waiting is pointless."""
    with trio.move_on_after(within):
        while True:
            answer = await probe_server(paths.socket)
            if answer is not None:
                return answer
            reason = exited()
            if reason is not None:
                raise DaemonError(
                    f"app server {reason} before becoming ready on {paths.socket}"
                    + log_tail(paths.log_file, log_offset)
                )
            await trio.sleep(READY_POLL_SECONDS)
    raise DaemonError(
        f"app server did not become ready on {paths.socket} within {within:g}s"
        + log_tail(paths.log_file, log_offset)
    )


@attrs.frozen
class Started:
    process: trio.Process
    record: PidRecord
    log_offset: int


async def _launch(paths: DaemonPaths, server_args: list[str] | None) -> Started | None:
    """Launch a detached server, or None if one started listening meanwhile (`attach --start`).
    `server_args`: serve flags given now (recorded for later launches), None for the recorded
    ones (`serve_flags`).

    The startup lock is handed to the server, which releases it once it has bound.
    """
    command = server_command(paths.home, extra=serve_flags.launch_args(paths.home, server_args))
    if server_args is not None:
        serve_flags.write_record(paths.home, server_args)
    launched = await launch_detached(
        paths.home, paths.socket, command, paths.log_file, truncate=False
    )
    if launched is None:
        return None
    process = launched.process
    start_time = process_start_time(process.pid)
    if start_time is None:  # pragma: no cover - an unreaped child always has /proc/PID/stat
        raise DaemonError(f"cannot read the start time of app server process {process.pid}")
    record = PidRecord(process.pid, start_time)
    write_pid_file(paths.pid_file, record)
    return Started(process, record, launched.log_offset)


def _signal(record: PidRecord, signum: signal.Signals) -> None:
    if is_running(record):
        with contextlib.suppress(ProcessLookupError):
            os.kill(record.pid, signum)


def _has_exited(record: PidRecord) -> bool:
    """Gone, or a zombie whose every thread has exited: only then are its files (the listening
    socket) closed. A multithreaded process's leader shows `Z` while other threads still run."""
    if is_running(record):
        return False
    try:
        return len(os.listdir(f"/proc/{record.pid}/task")) <= 1
    except (FileNotFoundError, ProcessLookupError):
        return True


async def _wait_exit(record: PidRecord, within: float) -> bool:
    """Poll until the recorded process has fully exited; False if `within` passes."""
    with trio.move_on_after(within):
        while True:
            if _has_exited(record):
                return True
            await trio.sleep(EXIT_POLL_SECONDS)
    return _has_exited(record)


async def _remove_stale_socket(paths: DaemonPaths) -> None:
    """A killed server leaves its socket file behind; remove it if nobody listens there."""
    async with startup_lock(paths.home):
        if is_stale_socket_path(paths.socket) and not probe(paths.socket):
            with contextlib.suppress(FileNotFoundError):
                paths.socket.unlink()


async def _terminate(paths: DaemonPaths, record: PidRecord, grace: float) -> None:
    """SIGTERM, up to `grace` seconds for a clean exit, then SIGKILL."""
    _signal(record, signal.SIGTERM)
    if not await _wait_exit(record, grace):
        _signal(record, signal.SIGKILL)
        if not await _wait_exit(record, KILL_WAIT_SECONDS):
            raise DaemonError(f"app server process {record.pid} did not exit after SIGKILL")
    remove_pid_file(paths.pid_file)
    await _remove_stale_socket(paths)


# -- the commands ----------------------------------------------------------------------------


Report = dict[str, Any]


def _report(
    status: str,
    paths: DaemonPaths,
    *,
    record: PidRecord | None = None,
    answer: Answer | None = None,
    log: bool = False,
) -> Report:
    report: Report = {"status": status}
    if record is not None:
        report["pid"] = record.pid
    report["socketPath"] = os.fspath(paths.socket)
    report["home"] = os.fspath(paths.home)
    if answer is not None and answer.version is not None:
        report["appServerVersion"] = answer.version
    if log and record is not None:
        report["logPath"] = os.fspath(paths.log_file)
    return report


async def start(paths: DaemonPaths, server_args: list[str] | None = None) -> Report:
    """Start the server unless one answers; `server_args` as in `_launch` (a running server
    keeps the flags it was started with)."""
    record = managed_record(paths)
    answer = await probe_server(paths.socket)
    if answer is None and record is not None:
        # Ours, but not answering (yet): wait for it rather than launching a second one.
        running = record

        def gone() -> str | None:
            return None if is_running(running) else f"process {running.pid} exited"

        offset = paths.log_file.stat().st_size if paths.log_file.exists() else 0
        answer = await _wait_until_ready(paths, gone, log_offset=offset)
    if answer is not None:
        return _report("alreadyRunning", paths, record=record, answer=answer, log=True)
    launched = await _launch(paths, server_args)
    if launched is None:
        answer = await _wait_until_ready(paths, lambda: None, log_offset=0)
        return _report("alreadyRunning", paths, answer=answer)
    process = launched.process

    def exited() -> str | None:
        code = process.poll()
        return None if code is None else f"exited with status {code}"

    try:
        answer = await _wait_until_ready(paths, exited, log_offset=launched.log_offset)
    except BaseException:
        # Leave nothing behind: a server that never became ready is not a managed daemon.
        if process.poll() is None:
            process.kill()
            with trio.CancelScope(shield=True):
                await process.wait()
        remove_pid_file(paths.pid_file)
        raise
    return _report("started", paths, record=launched.record, answer=answer, log=True)


async def stop(paths: DaemonPaths, *, grace: float = STOP_GRACE_SECONDS) -> Report:
    record = managed_record(paths)
    if record is None:
        if probe(paths.socket):
            raise DaemonError(NOT_MANAGED_MESSAGE)
        return _report("notRunning", paths)
    await _terminate(paths, record, grace)
    return _report("stopped", paths, record=record)


async def restart(
    paths: DaemonPaths, *, grace: float = STOP_GRACE_SECONDS, server_args: list[str] | None = None
) -> Report:
    await stop(paths, grace=grace)
    report = await start(paths, server_args)
    report["status"] = "restarted"
    return report


async def status(paths: DaemonPaths) -> Report:
    record = managed_record(paths)
    answer = await probe_server(paths.socket)
    if record is None and answer is None:
        return _report("notRunning", paths)
    return _report("running", paths, record=record, answer=answer, log=True)


async def run_command(
    command: str,
    home: Path,
    *,
    grace: float = STOP_GRACE_SECONDS,
    server_args: list[str] | None = None,
) -> Report:
    """Run one lifecycle command under the daemon operation lock. `server_args`: the serve
    flags `start` and `restart` launch with (None: the recorded ones)."""
    paths = DaemonPaths.for_home(home)
    check_path_length(paths.socket)
    prepare_private_directory(paths.directory)
    async with operation_lock(paths.lock_file):
        if command == "start":
            return await start(paths, server_args)
        if command == "stop":
            return await stop(paths, grace=grace)
        if command == "restart":
            return await restart(paths, grace=grace, server_args=server_args)
        if command == "status":
            return await status(paths)
    raise ValueError(f"unknown daemon command {command!r}")


def main(
    command: str,
    home: Path,
    *,
    grace: float = STOP_GRACE_SECONDS,
    server_args: list[str] | None = None,
) -> int:
    """Print one JSON object and return 0, or print `Error: …` on stderr and return 1."""
    try:
        report = trio.run(
            functools.partial(run_command, command, home, grace=grace, server_args=server_args)
        )
    except (DaemonError, HomeError, SocketPathError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"Error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    sys.stdout.write(orjson.dumps(report).decode() + "\n")
    sys.stdout.flush()
    return 0
