"""Server processes: spawn appserver or any Codex-compatible command, wait for readiness,
read RSS and CPU time from /proc, and always stop what was started.

A target is a command template with `{listen}` (and optionally `{home}`, `{codex}`,
`{appserver}`, `{python}`) placeholders, e.g. `"{codex} app-server --listen {listen}"`. Every
server gets its own home, passed as both `CODEX_HOME` and `APPSERVER_HOME`; `RUST_BACKTRACE` is
unset and the repository root is put on `PYTHONPATH` (so `--agent benchmarks.agents:…` imports).
Its stderr goes to a file in the home (a pipe nobody reads would block a chatty server).
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import trio

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
DEFAULT_CODEX: Final = Path(
    "/tmp/appserver-peers/node_modules/@openai/codex-linux-x64/vendor/"
    "x86_64-unknown-linux-musl/bin/codex"
)
APPSERVER_TEMPLATE: Final = "{appserver} app-server --listen {listen}"
CODEX_TEMPLATE: Final = "{codex} app-server --listen {listen}"
CONTROL_SOCKET: Final = Path("app-server-control") / "app-server-control.sock"
READY_TIMEOUT: Final = 30.0
STOP_TIMEOUT: Final = 5.0
POLL_SECONDS: Final = 0.002
_BANNER = re.compile(r"listening on: ws://(\[[^\]]+\]|[0-9.]+):(\d+)")
_CLK_TCK: Final = os.sysconf("SC_CLK_TCK")

#: Every process this harness started and has not reaped yet (killed at exit, whatever happens).
LIVE: set[trio.Process] = set()


class ServerError(Exception):
    """A server did not become ready; the message carries its stderr tail."""


@dataclass(frozen=True)
class Target:
    """How to launch one implementation."""

    name: str
    template: str
    #: Whether appserver's own flags (`--agent`, `--outbound-queue-bytes`, …) may be appended.
    is_appserver: bool
    placeholders: Mapping[str, str] = field(default_factory=dict)

    def argv(self, listen: str, home: Path, extra: Sequence[str] = ()) -> list[str]:
        values = {**self.placeholders, "listen": listen, "home": os.fspath(home)}
        return [*shlex.split(self.template.format(**values)), *extra]


def _placeholders(codex: Path) -> dict[str, str]:
    venv_bin = Path(sys.executable).parent
    script = venv_bin / "appserver"
    appserver = os.fspath(script) if script.exists() else f"{sys.executable} -m appserver"
    return {
        "codex": os.fspath(codex),
        "appserver": appserver,
        "python": sys.executable,
    }


def appserver_target(template: str | None = None, codex: Path = DEFAULT_CODEX) -> Target:
    return Target("appserver", template or APPSERVER_TEMPLATE, True, _placeholders(codex))


def codex_target(codex: Path = DEFAULT_CODEX, template: str | None = None) -> Target:
    return Target("codex", template or CODEX_TEMPLATE, False, _placeholders(codex))


def codex_version(codex: Path) -> str | None:
    try:
        out = subprocess.run(
            [os.fspath(codex), "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def server_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("RUST_BACKTRACE", None)
    env["CODEX_HOME"] = os.fspath(home)
    env["APPSERVER_HOME"] = os.fspath(home)
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = os.pathsep.join([os.fspath(REPO_ROOT), *([path] if path else [])])
    return env


def new_home(prefix: str = "bench-") -> Path:
    """A fresh, short home under /tmp (socket paths must stay under 108 bytes)."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


def control_socket(home: Path) -> Path:
    return home / CONTROL_SOCKET


# -- /proc ---------------------------------------------------------------------------------------


def rss_bytes(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process, all threads included."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def thread_count(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return None


# -- one server ----------------------------------------------------------------------------------


class Server:
    """A spawned server process and what is known about it."""

    def __init__(
        self,
        target: Target,
        transport: str,
        listen: str,
        home: Path,
        process: trio.Process,
        stderr_path: Path,
        t_exec: float,
    ) -> None:
        self.target = target
        self.transport = transport
        self.listen = listen
        self.home = home
        self.process = process
        self.stderr_path = stderr_path
        #: `time.perf_counter()` just before the exec.
        self.t_exec = t_exec
        self.socket_path: Path | None = None
        self.ws_address: tuple[str, int] | None = None
        if transport == "unix":
            rest = listen[len("unix://") :]
            self.socket_path = Path(rest) if rest else control_socket(home)

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss(self) -> int | None:
        return rss_bytes(self.pid)

    def cpu(self) -> float | None:
        return cpu_seconds(self.pid)

    def stderr_text(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def _died(self) -> ServerError:
        tail = "\n".join(self.stderr_text().splitlines()[-15:])
        return ServerError(
            f"{self.target.name} ({self.listen}) exited {self.process.returncode} before it was "
            f"ready:\n{tail}"
        )

    async def wait_ws_address(self) -> tuple[str, int]:
        """The port a `ws://IP:0` server printed on stderr."""
        while self.ws_address is None:
            match = _BANNER.search(self.stderr_text())
            if match:
                self.ws_address = (match.group(1).strip("[]"), int(match.group(2)))
                break
            if self.process.poll() is not None:
                raise self._died()
            await trio.sleep(POLL_SECONDS)
        return self.ws_address

    async def connect(self) -> trio.SocketStream:
        """Poll until the listener accepts a connection; return it (unix and ws only)."""
        while True:
            if self.process.poll() is not None:
                raise self._died()
            try:
                if self.socket_path is not None:
                    return await trio.open_unix_socket(os.fspath(self.socket_path))
                host, port = await self.wait_ws_address()
                return await trio.open_tcp_stream(host, port)
            except OSError:
                await trio.sleep(POLL_SECONDS)

    async def wait_ready(self, time_limit: float = READY_TIMEOUT) -> float:
        """Seconds from exec until the listener accepted a connection (stdio: 0)."""
        if self.transport == "stdio":
            return 0.0
        with trio.fail_after(time_limit):
            stream = await self.connect()
        elapsed = time.perf_counter() - self.t_exec
        await stream.aclose()
        return elapsed

    async def stop(self, grace: float = STOP_TIMEOUT) -> tuple[int | None, float]:
        """SIGTERM (stdio: close stdin), then SIGKILL after `grace`; (returncode, seconds)."""
        with trio.CancelScope(shield=True):
            started = time.perf_counter()
            if self.process.returncode is None:
                if self.transport == "stdio" and self.process.stdin is not None:
                    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                        await self.process.stdin.aclose()
                else:
                    with contextlib.suppress(ProcessLookupError):
                        self.process.send_signal(signal.SIGTERM)
                with trio.move_on_after(grace):
                    await self.process.wait()
                if self.process.returncode is None:
                    self.process.kill()
                    await self.process.wait()
            elapsed = time.perf_counter() - started
            LIVE.discard(self.process)
            for stream in (self.process.stdin, self.process.stdout):
                if stream is not None:
                    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                        await stream.aclose()
        return self.process.returncode, elapsed


def listen_url(transport: str) -> str:
    if transport == "unix":
        return "unix://"
    if transport == "ws":
        return "ws://127.0.0.1:0"
    if transport == "stdio":
        return "stdio://"
    raise ValueError(f"unknown transport {transport!r}")


async def spawn(
    target: Target,
    transport: str,
    home: Path,
    extra: Sequence[str] = (),
    *,
    listen: str | None = None,
    stderr_name: str | None = None,
) -> Server:
    """Start a server (not waiting for it). `extra` args are only given to appserver."""
    listen = listen or listen_url(transport)
    argv = target.argv(listen, home, extra if target.is_appserver else ())
    stderr_path = home / (stderr_name or f"server-{time.monotonic_ns()}.stderr")
    stdio = transport == "stdio"
    stderr = os.open(stderr_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        t_exec = time.perf_counter()
        process = await trio.lowlevel.open_process(
            argv,
            stdin=subprocess.PIPE if stdio else subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdio else subprocess.DEVNULL,
            stderr=stderr,
            env=server_env(home),
            cwd=os.fspath(home),
            start_new_session=True,
        )
    finally:
        os.close(stderr)
    LIVE.add(process)
    return Server(target, transport, listen, home, process, stderr_path, t_exec)


@contextlib.asynccontextmanager
async def running(
    target: Target,
    transport: str,
    *,
    home: Path | None = None,
    extra: Sequence[str] = (),
    ready_within: float = READY_TIMEOUT,
) -> AsyncIterator[Server]:
    """A ready server for the duration of the block, in a fresh home unless one is given."""
    own_home = home is None
    home = home or new_home()
    server: Server | None = None
    try:
        server = await spawn(target, transport, home, extra)
        await server.wait_ready(ready_within)
        yield server
    finally:
        if server is not None:
            await server.stop()
        if own_home:
            shutil.rmtree(home, ignore_errors=True)


def kill_all() -> None:
    """Last resort at exit: SIGKILL whatever is still running."""
    for process in list(LIVE):
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        LIVE.discard(process)
