"""The one way the server starts a process: confined by its sandbox policy, in its own process
group, with pipes or a PTY, streamed output, byte caps, a timeout, and killed when its caller
goes away.

    spec = Spec(argv=["git", "diff"], cwd="/repo", sandbox={"type": "readOnly"})
    result = await run(spec)                     # Result(exit_code, stdout, stderr, ...)

    async with spawn(Spec(..., stdin=True, timeout=None), on_output=callback) as process:
        await process.write(b"input\\n")        # also: close_stdin(), resize(rows, cols)
        process.terminate()                      # SIGKILL to the whole process group
        result = await process.wait()

- `Spec.sandbox` is a wire `SandboxPolicy` object (e.g. the thread's `state.sandbox`) or a
  `sandbox.Policy`. `readOnly` and `workspaceWrite` run under bubblewrap; if that cannot be
  enforced here `spawn`/`run` raise `SandboxUnavailable` before anything starts (fail closed;
  the operator may opt in to running unconfined). `dangerFullAccess` and `externalSandbox` run
  as is. A bad policy object raises `PolicyError`; a program that cannot be started raises
  `OSError` (unconfined) or exits 1 with bwrap's message on stderr (confined).
- `env` overrides are merged into the server's environment (`None` removes a variable). A
  command without network gets `CODEX_SANDBOX_NETWORK_DISABLED=1`, as under Codex; a PTY
  command gets `TERM=xterm-256color` unless `TERM` is set.
- Output: `on_output(stream, data, cap_reached)` is awaited for every chunk read ("stdout" or
  "stderr"; a PTY and `merge_stderr` report everything as "stdout"); it is back-pressure: the
  process is not read further while it runs. `output_cap` bounds bytes per stream, both what is
  reported and what is kept: the chunk that reaches the cap says `cap_reached=True`, later output
  is read and dropped. With `capture` the result keeps the (capped) bytes.
- `timeout` (seconds): the process group is killed and the exit code is 124, as in Codex. A
  process killed by signal N exits 128+N.
- Leaving `spawn` — normally, by an exception or by cancellation — kills the process group if
  the process still runs, and waits for it: nothing outlives its caller. Under bubblewrap the
  command runs in its own PID namespace, so killing bwrap ends everything it started.
- After the process exits, output still buffered in pipes held open by its children is read for
  up to 2 s, then abandoned.

PTYs are plain `os.openpty()` with the master wrapped in `trio.lowlevel.FdStream`: no dependency,
and it is how trio does non-blocking I/O on any fd.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import signal
import struct
import subprocess
import termios
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Final, Literal

import attrs
import trio

from appserver.sandbox import Policy, SandboxUnavailable, confine, parse_policy
from appserver.sandbox.policy import PolicyError

__all__ = [
    "TIMEOUT_EXIT_CODE",
    "OnOutput",
    "PolicyError",
    "Process",
    "Result",
    "SandboxUnavailable",
    "Spec",
    "StdinClosed",
    "parse_policy",
    "run",
    "spawn",
]

log = logging.getLogger(__name__)

Stream = Literal["stdout", "stderr"]
OnOutput = Callable[[Stream, bytes, bool], Awaitable[None]]

TIMEOUT_EXIT_CODE: Final = 124
DRAIN_TIMEOUT: Final = 2.0
READ_SIZE: Final = 64 * 1024


class StdinClosed(Exception):
    """`write` after `close_stdin`, or to a process started without stdin."""


def _argv(value: Sequence[str]) -> tuple[str, ...]:
    return tuple(value)


@attrs.frozen(kw_only=True)
class Spec:
    argv: tuple[str, ...] = attrs.field(converter=_argv)
    cwd: str
    sandbox: Mapping[str, Any] | Policy
    env: Mapping[str, str | None] = attrs.Factory(dict)
    tty: bool = False
    #: Initial PTY size (rows, cols).
    size: tuple[int, int] | None = None
    #: Keep stdin open for `write`; otherwise it is /dev/null (a PTY always has stdin).
    stdin: bool = False
    #: Send stderr into the stdout pipe (one interleaved stream, as a terminal shows it).
    merge_stderr: bool = False
    timeout: float | None = None
    output_cap: int | None = None
    capture: bool = True


@attrs.define
class Result:
    exit_code: int
    stdout: bytes = b""
    stderr: bytes = b""
    timed_out: bool = False
    stdout_cap_reached: bool = False
    stderr_cap_reached: bool = False


def build_env(overrides: Mapping[str, str | None], policy: Policy, tty: bool) -> dict[str, str]:
    env = dict(os.environ)
    if not policy.network:
        env["CODEX_SANDBOX_NETWORK_DISABLED"] = "1"
    if tty:
        env.setdefault("TERM", "xterm-256color")
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def _exit_code(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def _set_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def _take_terminal() -> None:  # pragma: no cover - runs in the child
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Process:
    """A running process; see the module docstring."""

    def __init__(self, spec: Spec, argv: list[str], on_output: OnOutput | None) -> None:
        self.spec = spec
        #: What was executed (the confined command line).
        self.argv = argv
        self._on_output = on_output
        self._process: trio.Process | None = None
        self._pty: trio.lowlevel.FdStream | None = None
        self._stdin: trio.abc.SendStream | None = None
        self._kept: dict[Stream, list[bytes]] = {"stdout": [], "stderr": []}
        self._seen: dict[Stream, int] = {"stdout": 0, "stderr": 0}
        self._cap_reached: dict[Stream, bool] = {"stdout": False, "stderr": False}
        self._pumps = 0
        self._pumps_done = trio.Event()
        self._done = trio.Event()
        self._timed_out = False
        self._returncode: int | None = None

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    @property
    def running(self) -> bool:
        return self._returncode is None

    @property
    def exit_code(self) -> int | None:
        """As in `Result.exit_code`; None while it runs."""
        if self._returncode is None:
            return None
        return TIMEOUT_EXIT_CODE if self._timed_out else _exit_code(self._returncode)

    # -- control -----------------------------------------------------------------------------

    async def write(self, data: bytes) -> None:
        stream = self._pty if self._pty is not None else self._stdin
        if stream is None:
            raise StdinClosed("stdin is closed")
        try:
            await stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise StdinClosed("stdin is closed") from exc

    async def close_stdin(self) -> None:
        if self._pty is not None:
            # A terminal has no half-close: end-of-file is ^D at the start of a line.
            await self.write(b"\x04")
            return
        if self._stdin is not None:
            stdin, self._stdin = self._stdin, None
            await stdin.aclose()

    def resize(self, rows: int, cols: int) -> None:
        if self._pty is None:
            raise ValueError("not a PTY")
        _set_size(self._pty.fileno(), rows, cols)

    def terminate(self) -> None:
        """SIGKILL the process group (no-op once the process has exited)."""
        if self._process is None or self._returncode is not None:
            return
        try:
            os.killpg(self._process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    async def wait(self) -> Result:
        await self._done.wait()
        assert self.exit_code is not None
        return Result(
            exit_code=self.exit_code,
            stdout=b"".join(self._kept["stdout"]),
            stderr=b"".join(self._kept["stderr"]),
            timed_out=self._timed_out,
            stdout_cap_reached=self._cap_reached["stdout"],
            stderr_cap_reached=self._cap_reached["stderr"],
        )

    # -- internals ---------------------------------------------------------------------------

    async def _open(self) -> None:
        """Start the process (outside any nursery, so a failure raises as itself)."""
        spec = self.spec
        env = build_env(spec.env, parse_policy(spec.sandbox), spec.tty)
        if spec.tty:
            master, slave = os.openpty()
            try:
                if spec.size is not None:
                    _set_size(master, *spec.size)
                self._process = await trio.lowlevel.open_process(
                    self.argv,
                    cwd=spec.cwd,
                    env=env,
                    stdin=slave,
                    stdout=slave,
                    stderr=slave,
                    start_new_session=True,
                    preexec_fn=_take_terminal,
                )
            except BaseException:
                os.close(master)
                raise
            finally:
                os.close(slave)
            self._pty = trio.lowlevel.FdStream(master)
        else:
            self._process = await trio.lowlevel.open_process(
                self.argv,
                cwd=spec.cwd,
                env=env,
                stdin=subprocess.PIPE if spec.stdin else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT if spec.merge_stderr else subprocess.PIPE,
                start_new_session=True,
            )
            self._stdin = self._process.stdin

    def _start_tasks(self, nursery: trio.Nursery) -> None:
        assert self._process is not None
        if self._pty is not None:
            self._start_pump(nursery, self._pty, "stdout")
        else:
            assert self._process.stdout is not None
            self._start_pump(nursery, self._process.stdout, "stdout")
            if self._process.stderr is not None:
                self._start_pump(nursery, self._process.stderr, "stderr")
        nursery.start_soon(self._watch)

    def _start_pump(
        self, nursery: trio.Nursery, stream: trio.abc.ReceiveStream, name: Stream
    ) -> None:
        self._pumps += 1
        nursery.start_soon(self._pump, stream, name)

    async def _pump(self, stream: trio.abc.ReceiveStream, name: Stream) -> None:
        cap = self.spec.output_cap
        try:
            while True:
                try:
                    chunk = bytes(await stream.receive_some(READ_SIZE))
                except trio.BrokenResourceError as exc:
                    # A PTY master reads EIO once the last slave fd is closed: end of output.
                    if isinstance(exc.__cause__, OSError) and exc.__cause__.errno == errno.EIO:
                        break
                    raise
                if not chunk:
                    break
                if self._cap_reached[name]:
                    continue
                if cap is not None:
                    chunk = chunk[: max(0, cap - self._seen[name])]
                    self._cap_reached[name] = self._seen[name] + len(chunk) >= cap
                self._seen[name] += len(chunk)
                if self.spec.capture:
                    self._kept[name].append(chunk)
                if self._on_output is not None and (chunk or self._cap_reached[name]):
                    await self._on_output(name, chunk, self._cap_reached[name])
        except trio.ClosedResourceError:
            pass
        finally:
            self._pumps -= 1
            if self._pumps == 0:
                self._pumps_done.set()

    async def _watch(self) -> None:
        process = self._process
        assert process is not None
        with trio.move_on_after(
            self.spec.timeout if self.spec.timeout is not None else float("inf")
        ) as timer:
            await process.wait()
        if timer.cancelled_caught:
            self._timed_out = True
            log.info("process %s timed out after %ss; killing it", process.pid, self.spec.timeout)
            await self._kill_and_reap(process)
        else:
            await self._reaped(process)

    async def _stop(self) -> None:
        """Kill the process if it still runs and reap it (the watcher may have been cancelled
        with its caller, so this does not rely on it)."""
        process = self._process
        if process is None or self._done.is_set():
            return
        await self._kill_and_reap(process)

    async def _kill_and_reap(self, process: trio.Process) -> None:
        self.terminate()
        await process.wait()
        await self._reaped(process)

    async def _reaped(self, process: trio.Process) -> None:
        """The process has exited: let the output pumps finish (bounded), then it is done."""
        with trio.move_on_after(DRAIN_TIMEOUT):
            await self._pumps_done.wait()
        self._returncode = process.returncode
        self._done.set()

    async def _close(self) -> None:
        for stream in (self._pty, self._stdin):
            if stream is not None:
                await stream.aclose()
        if self._process is not None:
            for pipe in (self._process.stdout, self._process.stderr):
                if pipe is not None:
                    await pipe.aclose()


@asynccontextmanager
async def spawn(spec: Spec, on_output: OnOutput | None = None) -> AsyncIterator[Process]:
    """Start `spec`; see the module docstring. Raises before starting anything when the
    command is empty, its policy is malformed (`PolicyError`) or cannot be enforced
    (`SandboxUnavailable`), or it cannot be executed (`OSError`)."""
    if not spec.argv:
        raise ValueError("command must not be empty")
    policy = parse_policy(spec.sandbox)
    tmpdir = spec.env.get("TMPDIR", os.environ.get("TMPDIR"))
    argv = await confine(spec.argv, policy, spec.cwd, tmpdir=tmpdir)
    process = Process(spec, argv, on_output)
    await process._open()
    async with trio.open_nursery() as nursery:
        try:
            process._start_tasks(nursery)
            yield process
        finally:
            with trio.CancelScope(shield=True):
                await process._stop()
                nursery.cancel_scope.cancel()
                await process._close()


async def run(spec: Spec, on_output: OnOutput | None = None) -> Result:
    """Start `spec` and wait for it."""
    async with spawn(spec, on_output) as process:
        return await process.wait()
