"""The appserver command's processes, for tests of how they start, race, relay and stop:
servers on a home's control socket (`Processes.serve`), `proxy` and `attach` relays, and the
detached servers `attach --start` leaves behind (found by pid).

Every process is spawned through `Processes`, which kills whatever is still running (its own
children and any detached server left for a home) when its block ends. Readiness is a bounded
connect poll. Talking to a server is `tests.e2e.transports` (`connect_unix`).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import trio

from tests.e2e.transports import (
    APPSERVER,
    POLL_SECONDS,
    server_argv,
    server_env,
)
from tests.e2e.transports import request_line as request_line  # re-exported for test_unix.py

READY_TIMEOUT: Final = 10.0
#: The server's default control socket, relative to its home.
CONTROL_SOCKET: Final = Path("app-server-control") / "app-server-control.sock"


def in_use(path: Path) -> str:
    return f"app-server control socket is already in use at {path}"


def not_a_socket(path: Path) -> str:
    return f"app-server control socket path exists and is not a socket: {path}"


def lexists(path: Path) -> bool:
    """Whether anything, even a dangling symlink, is at `path`."""
    return os.path.lexists(path)


def default_socket(home: Path) -> Path:
    return home / CONTROL_SOCKET


def relay_args(command: str, sock: Path | None = None, *extra: str) -> list[str]:
    args = [*APPSERVER, command]
    if sock is not None:
        args += ["--sock", os.fspath(sock)]
    return [*args, *extra]


def assert_refused(returncode: int | None, stderr: str, message: str) -> None:
    """Exit 1 with exactly one `Error: …` line on stderr, and that line is `message`."""
    assert returncode == 1, f"rc={returncode}\n{stderr}"
    errors = [line for line in stderr.splitlines() if line.startswith("Error:")]
    assert errors == [f"Error: {message}"], stderr
    assert "Traceback" not in stderr, stderr


@dataclass
class Spawned:
    process: trio.Process
    stderr_path: Path
    started: float

    @property
    def returncode(self) -> int | None:
        return self.process.poll()

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def describe(self) -> str:
        return f"pid {self.process.pid} rc={self.returncode}:\n{self.stderr()}"

    async def stop(self, signum: int = signal.SIGTERM, within: float = 5.0) -> int:
        """Send `signum` and wait for the exit; the exit status."""
        self.process.send_signal(signum)
        with trio.fail_after(within):
            return await self.process.wait()


class Processes:
    """Spawns processes whose stderr goes to files; kills the survivors when the block ends."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.spawned: list[Spawned] = []
        self._homes: list[Path] = []
        self._count = 0

    async def __aenter__(self) -> Processes:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        with trio.CancelScope(shield=True):
            for item in self.spawned:
                if item.process.poll() is None:
                    item.process.kill()
                with trio.move_on_after(5):
                    await item.process.wait()
            for home in self._homes:
                for pid in server_pids(home):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                    with trio.move_on_after(5):
                        await wait_pid_exit(pid)

    def reap_servers_of(self, home: Path) -> None:
        """Kill, at the end, any server for `home` that is not our child (a detached one)."""
        self._homes.append(home)

    async def spawn(
        self,
        args: Sequence[str],
        *,
        stdin: int | None = subprocess.DEVNULL,
        stdout: int | None = subprocess.DEVNULL,
        cwd: Path | None = None,
    ) -> Spawned:
        self._count += 1
        stderr_path = self.log_dir / f"proc-{self._count}.stderr"
        with stderr_path.open("wb") as stderr:
            started = time.perf_counter()
            process = await trio.lowlevel.open_process(
                list(args), stdin=stdin, stdout=stdout, stderr=stderr, cwd=cwd, env=server_env()
            )
        spawned = Spawned(process, stderr_path, started)
        self.spawned.append(spawned)
        return spawned

    async def serve(self, home: Path, listen: str = "unix://", *extra: str) -> Spawned:
        """Start a server and wait until its socket accepts connections."""
        server = await self.spawn(server_argv(listen, home, *extra))
        await wait_ready(_socket_for(home, listen), server)
        return server


def _socket_for(home: Path, listen: str) -> Path:
    rest = listen.removeprefix("unix://")
    return Path(rest) if rest else default_socket(home)


async def wait_ready(
    path: Path, server: Spawned | None = None, within: float = READY_TIMEOUT
) -> None:
    """Poll-connect until `path` accepts; fail if `server` exits first or `within` s pass."""
    with trio.fail_after(within):
        while True:
            if server is not None and server.returncode is not None:
                raise AssertionError(f"server exited before {path} accepted: {server.describe()}")
            try:
                stream = await trio.open_unix_socket(os.fspath(path))
            except OSError:
                await trio.sleep(POLL_SECONDS)
                continue
            await stream.aclose()
            return


async def wait_for_exits(spawned: Sequence[Spawned], count: int, within: float) -> None:
    """Wait until at least `count` of `spawned` have exited; fail with every status if not."""
    exited = 0
    enough = trio.Event()

    async def watch(item: Spawned) -> None:
        nonlocal exited
        await item.process.wait()
        exited += 1
        if exited >= count:
            enough.set()

    with trio.move_on_after(within):
        async with trio.open_nursery() as nursery:
            for item in spawned:
                nursery.start_soon(watch, item)
            await enough.wait()
            nursery.cancel_scope.cancel()
    if not enough.is_set():
        statuses = "\n".join(item.describe() for item in spawned)
        raise AssertionError(f"fewer than {count} exited within {within}s:\n{statuses}")


def _cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    if stat_line.rpartition(")")[2].split()[0] == "Z":
        return None
    return [os.fsdecode(arg) for arg in raw.split(b"\0") if arg]


def server_pids(home: Path) -> list[int]:
    """Live (not zombie) `appserver --listen …` processes serving `home`, found via /proc."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        args = _cmdline(int(entry.name))
        if not args or "appserver" not in args or "--listen" not in args or "--home" not in args:
            continue
        home_index = args.index("--home") + 1
        if home_index < len(args) and args[home_index] == os.fspath(home):
            pids.append(int(entry.name))
    return pids


async def wait_pid_exit(pid: int) -> None:
    """Wait for a process that is not our child to exit (a pidfd becomes readable)."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        await trio.lowlevel.wait_readable(pidfd)
    finally:
        os.close(pidfd)


def replies_by_id(stdout: bytes) -> dict[Any, dict[str, Any]]:
    """JSON lines from a stdio peer, keyed by id (responses only)."""
    replies = {}
    for line in stdout.splitlines():
        if line.strip():
            message = json.loads(line)
            if "id" in message and "method" not in message:
                replies[message["id"]] = message
    return replies
