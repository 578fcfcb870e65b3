"""One JSON-RPC client over any of appserver's three transports, against the real process.

`spawn_server(kind, home)` starts `python -m appserver --listen URL --home HOME` and waits until
it is ready: for `unix://PATH` and `ws://127.0.0.1:0` until its stderr banner names the bound
address (the listener is bound before the banner is printed); for `stdio://` at once (the pipes
buffer whatever is written before the server reads). The process is killed when the block ends,
whatever happened.

`open_client(kind, server)` gives a `Client`: JSON lines on the process's pipes (stdio, one
client per process) or one JSON message per WebSocket text frame (unix, ws). Every message read
is kept in `Client.received`, in arrival order; `request` keeps the messages it reads past
while waiting for its reply, and `next_message` returns those first. Every message from the
server is checked to be a JSON object without `jsonrpc` (Codex never sends it).

The robustness tests use two more things of the same client and server: a raw WebSocket client
(`Server.raw_websocket`, hand-framed on a plain socket, so it can send invalid UTF-8, half
frames, binary frames or a frame of any size and sees the Close code) and probe mode
(`Client.probe`), in which ids are `req-N` strings, what `reply_to` reads past goes to `skipped`
and is not returned again, so `next_message` is always the next message on the wire.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Literal

import trio
from trio_websocket import (
    ConnectionClosed,
    WebSocketConnection,
    connect_websocket_url,
    wrap_client_stream,
)

from tests.e2e.raw_frames import CLOSE, CONTINUATION, PING, PONG, TEXT, upgrade_request, ws_frame

Kind = Literal["stdio", "unix", "ws"]
KINDS: Final = ("stdio", "unix", "ws")
SOCKET_KINDS: Final = ("unix", "ws")

#: How long any single wait on the server (a reply, a message, a start, an exit) may take.
TIMEOUT: Final = 10.0
#: The largest message either side accepts (the server's limit).
MAX_MESSAGE_BYTES: Final = 64 * 1024 * 1024
POLL_SECONDS: Final = 0.02
#: Marks a request sent without a `params` key (`None` would send `"params": null`).
NO_PARAMS: Final[Any] = object()
#: A request every initialized connection answers at once, and its answer.
READINESS: Final = "windowsSandbox/readiness"
READY: Final = {"status": "notConfigured"}
INVALID_REQUEST: Final = -32600
OVERLOADED: Final = {"code": -32001, "message": "Server overloaded; retry later."}

APPSERVER: Final = (sys.executable, "-m", "appserver")
#: Environment variables the server reads; removed so the host's settings cannot leak in.
SERVER_ENV_VARS: Final = (
    "LOG_FORMAT",
    "APPSERVER_LOG",
    "APPSERVER_HOME",
    "APPSERVER_ORIGINATOR",
    "CODEX_INTERNAL_ORIGINATOR_OVERRIDE",
    "APPSERVER_STARTUP_LOCK_FD",
)
BANNER: Final = re.compile(r"^  listening on: (\S+)$", re.M)

#: What the Codex 0.169 TUI sends in `initialize` (spec clients.md §1).
TUI_INITIALIZE: Final = {
    "clientInfo": {"name": "codex-tui", "title": None, "version": "0.169.0"},
    "capabilities": {
        "requiredHumanApproval": True,
        "experimentalApi": True,
        "requestAttestation": False,
        "optOutNotificationMethods": None,
    },
}
#: A plain client's `initialize` (no experimental API); what a probe-mode client sends.
PLAIN_INITIALIZE: Final = {"clientInfo": {"name": "e2e_plain", "version": "1.0.0"}}


def server_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The host's environment without the server's variables, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in SERVER_ENV_VARS}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def listen_url(kind: Kind, socket_dir: Path | None) -> str:
    """The `--listen` URL; `unix://` alone (no `socket_dir`) is the home's control socket."""
    if kind == "stdio":
        return "stdio://"
    if kind == "unix":
        return "unix://" if socket_dir is None else f"unix://{socket_dir / 's.sock'}"
    return "ws://127.0.0.1:0"


def server_argv(listen: str, home: Path, *extra: str) -> list[str]:
    return [*APPSERVER, "--listen", listen, "--home", os.fspath(home), *extra]


@contextlib.contextmanager
def short_tempdir(prefix: str = "asr-") -> Iterator[Path]:
    """A fresh directory under /tmp (pytest's tmp_path can push socket paths past sun_path)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# -- the server ----------------------------------------------------------------------------------


class Server:
    """A running `appserver` process, its stderr collected as it is written."""

    def __init__(self, kind: Kind, home: Path, process: trio.Process) -> None:
        self.kind = kind
        self.home = home
        self.process = process
        self.stderr = bytearray()
        #: `unix://PATH` or `ws://HOST:PORT`, from the banner (sockets only).
        self.address = ""
        self.stdio_claimed = False
        self._stdio: StdioClient | None = None
        self._grew = trio.Event()
        self._stderr_closed = False

    @property
    def stderr_text(self) -> str:
        return self.stderr.decode(errors="replace")

    @property
    def returncode(self) -> int | None:
        return self.process.poll()

    def describe(self) -> str:
        return (
            f"{self.kind} server pid {self.process.pid} rc={self.returncode}:\n{self.stderr_text}"
        )

    @property
    def socket_path(self) -> Path:
        assert self.address.startswith("unix://"), self.address
        return Path(self.address.removeprefix("unix://"))

    @property
    def host(self) -> str:
        """The IP a ws server is bound to (an IPv6 one without its brackets)."""
        assert self.address.startswith("ws://"), self.address
        return self.address.removeprefix("ws://").rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        assert self.address.startswith("ws://"), self.address
        return int(self.address.rpartition(":")[2])

    @property
    def connect_host(self) -> str:
        """Where a client connects: a wildcard address is reached over loopback."""
        return {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.host, self.host)

    @property
    def url(self) -> str:
        host = f"[{self.connect_host}]" if ":" in self.connect_host else self.connect_host
        return f"ws://{host}:{self.port}/"

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def assert_alive(self) -> None:
        assert self.alive, f"the server died: {self.describe()}"

    def fd_count(self) -> int:
        return len(os.listdir(f"/proc/{self.process.pid}/fd"))

    async def wait(self, within: float = TIMEOUT) -> int:
        with trio.fail_after(within):
            return await self.process.wait()

    async def open_stream(self) -> trio.abc.Stream:
        """A plain connection to the listener (no WebSocket upgrade)."""
        with trio.fail_after(TIMEOUT):
            if self.kind == "unix":
                return await trio.open_unix_socket(os.fspath(self.socket_path))
            assert self.kind == "ws", self.kind
            return await trio.open_tcp_stream(self.connect_host, self.port)

    def stdio(self) -> StdioClient:
        """The stdio server's one client, in probe mode; never closed by the block's end."""
        assert self.kind == "stdio", self.kind
        if self._stdio is None:
            assert not self.stdio_claimed, "a stdio server has exactly one client"
            self.stdio_claimed = True
            self._stdio = StdioClient("stdio", self.process, probe=True)
        return self._stdio

    async def raw_websocket(self, path: str = "/") -> RawWebSocketClient:
        """A new raw WebSocket client in probe mode, upgraded (not initialized); the caller
        closes it."""
        client = RawWebSocketClient("raw", self.kind, await self.open_stream(), probe=True)
        try:
            await client.handshake(path)
        except BaseException:
            await client.aclose()
            raise
        return client

    async def probe_client(self) -> Client:
        """The stdio client, or a new raw WebSocket client; probe mode, not initialized."""
        if self.kind == "stdio":
            return self.stdio()
        return await self.raw_websocket()

    async def drain_stderr(self) -> None:
        assert self.process.stderr is not None
        try:
            while chunk := await self.process.stderr.receive_some():
                self.stderr += chunk
                self._grew.set()
                self._grew = trio.Event()
        finally:
            self._stderr_closed = True
            self._grew.set()

    async def wait_banner(self, within: float = TIMEOUT) -> None:
        with trio.fail_after(within):
            while (match := BANNER.search(self.stderr_text)) is None:
                if self._stderr_closed:
                    raise AssertionError(f"server never listened: {self.describe()}")
                await self._grew.wait()
        self.address = match.group(1)

    def assert_no_errors(self) -> None:
        """Nothing the tests do is an error: no traceback, no ERROR line in the log."""
        text = self.stderr_text
        assert "Traceback" not in text, self.describe()
        assert not re.search(r"^\S+ \S+ (ERROR|CRITICAL) ", text, re.M), self.describe()

    def send_signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    async def wait_exit(self, within: float = TIMEOUT) -> int:
        """The exit status; fails the test if the process is still running after `within` s."""
        with trio.move_on_after(within):
            return await self.process.wait()
        raise AssertionError(f"server still running after {within}s: {self.describe()}")

    async def stop(self, within: float = TIMEOUT, *, signum: int = signal.SIGTERM) -> int:
        """The clean way out: stdin EOF for stdio, `signum` for sockets. The exit status."""
        if self.kind == "stdio":
            assert self.process.stdin is not None
            with contextlib.suppress(trio.ClosedResourceError, trio.BrokenResourceError):
                await self.process.stdin.aclose()
        else:
            self.send_signal(signum)
        return await self.wait_exit(within)

    async def wait_not_accepting(self, within: float = TIMEOUT) -> None:
        """Until the listener refuses connections (it stops accepting at shutdown)."""
        assert self.kind != "stdio"
        with trio.fail_after(within):
            while True:
                try:
                    if self.kind == "unix":
                        stream: trio.SocketStream = await trio.open_unix_socket(
                            os.fspath(self.socket_path)
                        )
                    else:
                        stream = await trio.open_tcp_stream(self.connect_host, self.port)
                except OSError:
                    return
                await stream.aclose()
                await trio.sleep(POLL_SECONDS)


@contextlib.asynccontextmanager
async def spawn_server(
    kind: Kind,
    home: Path,
    *extra: str,
    home_socket: bool = False,
    ready: bool = True,
    check_errors: bool = True,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    argv: Sequence[str] | None = None,
    listen: str | None = None,
) -> AsyncIterator[Server]:
    """Start the real server on `home` and wait until it is ready; always killed at the end.

    `home_socket`: a unix server listens on the home's control socket (`unix://`) instead of
    one in a fresh directory. `ready=False`: yield as soon as the process is started.
    `check_errors=False`: a traceback or ERROR line in its log does not fail the test.
    `env`: variables set on top of `server_env()`; `cwd`: its working directory (a relative
    `home` is relative to it). `argv`: another spelling of the whole command line, in place of
    `server_argv(...)` and `extra` (the kind still decides the pipes and the readiness wait).
    `listen`: the `--listen` URL in place of the kind's own (e.g. `ws://0.0.0.0:0`)."""
    fresh_dir = kind == "unix" and not home_socket
    socket_dir = Path(tempfile.mkdtemp(prefix="ase-", dir="/tmp")) if fresh_dir else None
    pipe = subprocess.PIPE if kind == "stdio" else subprocess.DEVNULL
    if argv is None:
        argv = server_argv(listen or listen_url(kind, socket_dir), home, *extra)
    try:
        process = await trio.lowlevel.open_process(
            list(argv),
            stdin=pipe,
            stdout=pipe,
            stderr=subprocess.PIPE,
            env=server_env(env),
            cwd=cwd,
        )
        try:
            async with trio.open_nursery() as nursery:
                server = Server(kind, home, process)
                nursery.start_soon(server.drain_stderr)
                if kind != "stdio" and ready:
                    await server.wait_banner()
                yield server
                if check_errors:
                    server.assert_no_errors()
                nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                if process.poll() is None:
                    process.kill()
                with trio.move_on_after(TIMEOUT):
                    await process.wait()
                for stream in (process.stdin, process.stdout, process.stderr):
                    if stream is not None:
                        await stream.aclose()
    finally:
        if socket_dir is not None:
            shutil.rmtree(socket_dir, ignore_errors=True)


def serving(kind: Kind, home: Path, *extra: str) -> contextlib.AbstractAsyncContextManager[Server]:
    """The robustness tests' server: on the home's own control socket (unix), its log not
    checked (they provoke errors on purpose)."""
    home.parent.mkdir(parents=True, exist_ok=True)
    return spawn_server(kind, home, *extra, home_socket=True, check_errors=False)


async def run_to_exit(
    kind: Kind,
    home: Path,
    *extra: str,
    stdin: bytes = b"",
    env: Mapping[str, str] | None = None,
    listen: str | None = None,
    within: float = TIMEOUT,
) -> subprocess.CompletedProcess[bytes]:
    """Run a server to its exit (on the home's socket for unix, or on `listen`), its stdout and
    stderr captured: one expected to refuse to start, or a stdio one given `stdin` and then
    EOF. One still running after `within` s fails the test."""
    with trio.fail_after(within):
        return await trio.run_process(
            server_argv(listen or listen_url(kind, None), home, *extra),
            stdin=stdin,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            env=server_env(env),
            cwd=home.parent if home.parent.is_dir() else "/tmp",
        )


async def wait_until(predicate: Any, what: str, within: float = TIMEOUT) -> None:
    """Bounded polling of something a real process does (`predicate()` becomes true)."""
    with trio.move_on_after(within):
        while not predicate():
            await trio.sleep(POLL_SECONDS)
        return
    raise AssertionError(f"timed out after {within}s waiting for {what}")


# -- the client ----------------------------------------------------------------------------------


def parse(frame: str | bytes) -> dict[str, Any]:
    try:
        message = json.loads(frame)
    except ValueError as exc:
        raise AssertionError(f"not JSON: {frame[:300]!r}") from exc
    assert isinstance(message, dict), f"not a JSON object: {frame[:300]!r}"
    assert "jsonrpc" not in message, f"the server must never send `jsonrpc`: {message}"
    return message


def is_notification(message: dict[str, Any]) -> bool:
    return "method" in message and "id" not in message


def is_server_request(message: dict[str, Any]) -> bool:
    return "method" in message and "id" in message


def same_id(a: Any, b: Any) -> bool:
    """Ids match only with their type: `"1"` and `1` are different ids."""
    return type(a) is type(b) and a == b


def request_message(request_id: Any, method: str, params: Any = NO_PARAMS) -> dict[str, Any]:
    message: dict[str, Any] = {"id": request_id, "method": method}
    if params is not NO_PARAMS:
        message["params"] = params
    return message


def encode(message: Any) -> bytes:
    return json.dumps(message, ensure_ascii=False).encode()


def request_line(request_id: Any, method: str, params: Any = NO_PARAMS) -> bytes:
    """A request as one stdio line, newline included."""
    return encode(request_message(request_id, method, params)) + b"\n"


def parse_stdout(data: bytes) -> list[dict[str, Any]]:
    """A finished stdio server's whole stdout: complete JSON lines and nothing else."""
    if not data:
        return []
    assert data.endswith(b"\n"), f"stdout does not end with a newline: {data[-300:]!r}"
    return [parse(line) for line in data[:-1].split(b"\n")]


def is_reply(message: dict[str, Any]) -> bool:
    return "method" not in message and ("result" in message or "error" in message)


class ClientClosed(AssertionError):
    """The server closed the connection while a message was expected."""


Closed = ClientClosed


class Client:
    """A JSON-RPC peer of the server; the transport is in `_write` and `_read`."""

    kind: Kind

    def __init__(self, name: str, *, probe: bool = False) -> None:
        self.name = name
        #: Probe mode (see the module doc): `req-N` ids, `params=None` sends no params, what
        #: `reply_to` reads past goes to `skipped` only.
        self.probe = probe
        self.skipped: list[dict[str, Any]] = []
        #: Every message read from the server, in arrival order.
        self.received: list[dict[str, Any]] = []
        self.closed = False
        self.eof = False
        self._unread: deque[dict[str, Any]] = deque()
        self._ids = itertools.count(1)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} over {self.kind}>"

    # -- the transport -----------------------------------------------------------------------

    async def _write(self, text: str) -> None:
        await self.send_payload(text.encode())

    async def send_payload(self, data: bytes) -> None:
        """One message's bytes, framed by the transport (a line, a text frame), as they are."""
        raise NotImplementedError

    async def _read(self) -> str | bytes | None:
        """The next frame, or None once the server closed the connection."""
        raise NotImplementedError

    async def _close(self) -> None:
        raise NotImplementedError

    # -- sending -----------------------------------------------------------------------------

    async def send(self, message: dict[str, Any]) -> None:
        with trio.fail_after(TIMEOUT):
            await self._write(json.dumps(message, ensure_ascii=False))

    def fresh_id(self) -> int | str:
        number = next(self._ids)
        return f"req-{number}" if self.probe else number

    async def send_request(
        self, method: str, params: Any = NO_PARAMS, *, request_id: Any = None
    ) -> Any:
        """Send a request (a fresh id unless given); its id."""
        request_id = self.fresh_id() if request_id is None else request_id
        if self.probe and params is None:
            params = NO_PARAMS
        await self.send(request_message(request_id, method, params))
        return request_id

    async def notify(self, method: str, params: Any = NO_PARAMS) -> None:
        message: dict[str, Any] = {"method": method}
        if params is not NO_PARAMS:
            message["params"] = params
        await self.send(message)

    async def respond(self, request: dict[str, Any], result: Any, *, jsonrpc: bool = False) -> None:
        """Answer a server request (with `"jsonrpc":"2.0"` as some SDKs send it)."""
        assert is_server_request(request), request
        head: dict[str, Any] = {"jsonrpc": "2.0"} if jsonrpc else {}
        await self.send({**head, "id": request["id"], "result": result})

    async def respond_error(self, request: dict[str, Any], code: int, message: str) -> None:
        assert is_server_request(request), request
        await self.send({"id": request["id"], "error": {"code": code, "message": message}})

    # -- receiving ---------------------------------------------------------------------------

    async def _read_message(self, within: float) -> dict[str, Any]:
        if self.eof:
            raise ClientClosed(f"{self!r}: the server closed the connection")
        with trio.fail_after(within):
            frame = await self._read()
        if frame is None:
            self.eof = True
            raise ClientClosed(f"{self!r}: the server closed the connection")
        message = parse(frame)
        self.received.append(message)
        return message

    async def next_message(self, within: float = TIMEOUT) -> dict[str, Any]:
        """The next message from the server, whatever it is (read past by `reply_to` first,
        except in probe mode)."""
        if self._unread:
            return self._unread.popleft()
        return await self._read_message(within)

    async def notifications(self, within: float = TIMEOUT) -> AsyncGenerator[dict[str, Any], None]:
        """Notifications as they arrive (each within `within` s); a server request is an error:
        read those with `next_message` or `wait_for`."""
        while True:
            message = await self.next_message(within)
            assert not is_server_request(message), f"{self!r}: unexpected request {message}"
            if is_notification(message):
                yield message

    async def wait_for(
        self,
        method: str,
        where: Callable[[dict[str, Any]], bool] = lambda _: True,
        within: float = TIMEOUT,
    ) -> dict[str, Any]:
        """Read up to the first notification or server request `method` matching `where`;
        what is read past stays in `received` only."""
        try:
            with trio.fail_after(within):
                while True:
                    message = await self.next_message()
                    if message.get("method") == method and where(message.get("params") or {}):
                        return message
        except trio.TooSlowError:
            raise AssertionError(
                f"{self!r}: no {method} within {within}s; {self.recent()}"
            ) from None

    async def reply_to(self, request_id: Any, within: float = TIMEOUT) -> dict[str, Any]:
        """Read up to the reply with this id; what comes before it is kept for next_message."""
        for index, message in enumerate(self._unread):
            if "method" not in message and same_id(message.get("id"), request_id):
                del self._unread[index]
                return message
        skipped: list[dict[str, Any]] = []
        try:
            with trio.fail_after(within):
                while True:
                    message = await self._read_message(within)
                    if "method" not in message and same_id(message.get("id"), request_id):
                        return message
                    skipped.append(message)
        except trio.TooSlowError:
            raise AssertionError(
                f"{self!r}: no reply to {request_id!r} within {within}s; {self.recent()}"
            ) from None
        finally:
            (self.skipped if self.probe else self._unread).extend(skipped)

    async def request(
        self, method: str, params: Any = NO_PARAMS, *, request_id: Any = None
    ) -> dict[str, Any]:
        """Send a request and return its whole reply (`result` or `error`)."""
        request_id = await self.send_request(method, params, request_id=request_id)
        reply = await self.reply_to(request_id)
        assert set(reply) in ({"id", "result"}, {"id", "error"}), reply
        return reply

    async def call(
        self, method: str, params: Any = NO_PARAMS, *, request_id: Any = None
    ) -> dict[str, Any]:
        """A request that must succeed; its result."""
        reply = await self.request(method, params, request_id=request_id)
        assert "result" in reply, f"{method} failed: {reply}"
        result: dict[str, Any] = reply["result"]
        return result

    async def initialize(
        self, params: dict[str, Any] | None = None, *, request_id: Any = None
    ) -> dict[str, Any]:
        """`initialize` (the TUI's params unless given; a plain client's in probe mode), then the
        `initialized` notification."""
        params = params or (PLAIN_INITIALIZE if self.probe else TUI_INITIALIZE)
        result = await self.call("initialize", params, request_id=request_id)
        await self.notify("initialized")
        return result

    async def read_to_close(self, within: float = TIMEOUT) -> list[dict[str, Any]]:
        """Every remaining message, up to the server closing the connection."""
        out = list(self._unread)
        self._unread.clear()
        with trio.fail_after(within):
            while True:
                try:
                    out.append(await self._read_message(within))
                except ClientClosed:
                    return out

    async def assert_silent(self, within: float) -> None:
        """Nothing arrives (and nothing read past is waiting) for `within` seconds."""
        with trio.move_on_after(within):
            message = await self.next_message()
            raise AssertionError(f"{self!r}: expected no message, got {message}")

    async def assert_ready(self) -> None:
        """The connection answers `windowsSandbox/readiness` correctly."""
        request_id = self.fresh_id()
        reply = await self.request(READINESS, request_id=request_id)
        assert reply == {"id": request_id, "result": READY}, reply

    async def assert_next_is_ready_reply(self) -> None:
        """A probe whose reply is the very next message: nothing sent before it got a reply."""
        request_id = self.fresh_id()
        await self.send(request_message(request_id, READINESS))
        message = await self.next_message()
        assert message == {"id": request_id, "result": READY}, message

    def recent(self, count: int = 5) -> str:
        """The last messages received, for failure messages."""
        shown = "\n  ".join(json.dumps(m)[:500] for m in self.received[-count:])
        return f"last {count} messages received:\n  {shown}"

    def methods(self) -> list[str]:
        """The methods of every notification and server request received so far."""
        return [m["method"] for m in self.received if "method" in m]

    async def aclose(self) -> None:
        """Disconnect (stdio: close the server's stdin). Idempotent."""
        if not self.closed:
            self.closed = True
            with trio.CancelScope(shield=True), trio.move_on_after(TIMEOUT):
                await self._close()


class StdioClient(Client):
    """JSON lines on the server's stdin and stdout; `write` sends any bytes as they are, and
    `stdout` is every byte read from the server so far."""

    kind: Kind = "stdio"

    def __init__(self, name: str, process: trio.Process, *, probe: bool = False) -> None:
        super().__init__(name, probe=probe)
        assert process.stdin is not None
        assert process.stdout is not None
        self._stdin = process.stdin
        self._stdout = process.stdout
        self._buffer = bytearray()
        self.stdout = bytearray()

    async def write(self, data: bytes) -> None:
        with trio.fail_after(TIMEOUT):
            await self._stdin.send_all(data)

    async def send_payload(self, data: bytes) -> None:
        await self.write(data + b"\n")

    async def _read(self) -> bytes | None:
        while (end := self._buffer.find(b"\n")) < 0:
            chunk = await self._stdout.receive_some()
            if not chunk:
                assert not self._buffer, f"unterminated stdout line: {bytes(self._buffer)!r}"
                return None
            self.stdout += chunk
            self._buffer += chunk
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        return line

    async def close_stdin(self) -> None:
        with contextlib.suppress(trio.ClosedResourceError, trio.BrokenResourceError):
            await self._stdin.aclose()

    async def _close(self) -> None:
        await self.close_stdin()


class WebSocketClient(Client):
    """One JSON message per text frame, on trio-websocket; `connection` is that connection."""

    def __init__(self, name: str, kind: Kind, ws: WebSocketConnection) -> None:
        super().__init__(name)
        self.kind = kind
        self._ws = ws

    @property
    def connection(self) -> WebSocketConnection:
        return self._ws

    async def _write(self, text: str) -> None:
        await self._ws.send_message(text)

    async def _read(self) -> str | bytes | None:
        try:
            frame = await self._ws.get_message()
        except ConnectionClosed:
            return None
        assert isinstance(frame, str), f"expected a text frame, got {frame!r}"
        return frame

    async def _close(self) -> None:
        await self._ws.aclose()


class RawWebSocketClient(Client):
    """A WebSocket client on a plain stream: it frames by hand and sees every frame it gets."""

    def __init__(
        self, name: str, kind: Kind, stream: trio.abc.Stream, *, probe: bool = False
    ) -> None:
        super().__init__(name, probe=probe)
        self.kind = kind
        self.stream = stream
        self._buffer = bytearray()
        self._fragments: list[bytes] = []
        #: The code of the server's Close frame, once one arrived.
        self.close_code: int | None = None

    async def _fill(self) -> bool:
        try:
            chunk = await self.stream.receive_some(1 << 16)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self._buffer += chunk
        return True

    async def handshake(self, path: str = "/") -> None:
        await self.send_raw(upgrade_request(path))
        with trio.fail_after(TIMEOUT):
            while (end := self._buffer.find(b"\r\n\r\n")) < 0:
                if not await self._fill():
                    raise ClientClosed(f"closed during the handshake: {bytes(self._buffer)!r}")
        head = bytes(self._buffer[:end])
        del self._buffer[: end + 4]
        assert head.startswith(b"HTTP/1.1 101 "), head

    async def send_raw(self, data: bytes) -> None:
        with trio.fail_after(TIMEOUT):
            await self.stream.send_all(data)

    async def send_frame(
        self, opcode: int, payload: bytes, *, fin: bool = True, mask: bytes | None = None
    ) -> None:
        await self.send_raw(ws_frame(opcode, payload, fin=fin, mask=mask))

    async def send_payload(self, data: bytes) -> None:
        await self.send_frame(TEXT, data)

    async def _read_frame(self) -> tuple[bool, int, bytes] | None:
        """The next server frame (servers never mask), or None at EOF."""
        while True:
            buffer = self._buffer
            if len(buffer) >= 2:
                fin, opcode = bool(buffer[0] & 0x80), buffer[0] & 0x0F
                assert not buffer[1] & 0x80, "the server sent a masked frame"
                size, offset = buffer[1] & 0x7F, 2
                if size == 126 and len(buffer) >= 4:
                    size, offset = struct.unpack("!H", buffer[2:4])[0], 4
                elif size == 127 and len(buffer) >= 10:
                    size, offset = struct.unpack("!Q", buffer[2:10])[0], 10
                if (size < 126 or offset > 2) and len(buffer) >= offset + size:
                    payload = bytes(buffer[offset : offset + size])
                    del buffer[: offset + size]
                    return fin, opcode, payload
            if not await self._fill():
                return None

    async def _read(self) -> bytes | None:
        while self.close_code is None:
            frame = await self._read_frame()
            if frame is None:
                return None
            fin, opcode, payload = frame
            if opcode == CLOSE:
                self.close_code = struct.unpack("!H", payload[:2])[0] if payload else 1005
                return None
            if opcode in (PING, PONG):
                continue
            assert opcode in (TEXT, CONTINUATION), f"unexpected opcode {opcode}"
            self._fragments.append(payload)
            if fin:
                message = b"".join(self._fragments)
                self._fragments.clear()
                message.decode()  # the server only ever sends valid UTF-8 text
                return message
        return None

    async def wait_closed(self, within: float = TIMEOUT) -> int | None:
        """Read (and drop) everything up to the end of the connection; the close code, if any.
        Fails if the server keeps the connection open for `within` seconds."""
        with trio.fail_after(within):
            while not self.eof:
                if self.close_code is not None:
                    self._buffer.clear()
                    await self._fill()
                else:
                    await self._read()
        return self.close_code

    async def _close(self) -> None:
        await self.stream.aclose()


@contextlib.asynccontextmanager
async def connect_unix(
    path: Path,
    resource: str = "/rpc",
    name: str = "client",
    headers: Sequence[tuple[str, str]] = (),
) -> AsyncIterator[WebSocketClient]:
    """A connected (not yet initialized) client of the Unix socket at `path`, whoever started
    the server, its upgrade request carrying `headers`; disconnected when the block ends."""
    async with trio.open_nursery() as nursery:
        with trio.fail_after(TIMEOUT):
            stream = await trio.open_unix_socket(os.fspath(path))
            # Accept what the server may send (trio-websocket's default is 1 MiB).
            ws = await wrap_client_stream(
                nursery,
                stream,
                "localhost",
                resource,
                extra_headers=encode_headers(headers),
                max_message_size=MAX_MESSAGE_BYTES,
            )
        client = WebSocketClient(name, "unix", ws)
        try:
            yield client
        finally:
            await client.aclose()
            nursery.cancel_scope.cancel()


def encode_headers(headers: Sequence[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(name.encode(), value.encode()) for name, value in headers]


@contextlib.asynccontextmanager
async def open_client(
    kind: Kind,
    server: Server,
    name: str = "client",
    *,
    path: str | None = None,
    headers: Sequence[tuple[str, str]] = (),
) -> AsyncIterator[Client]:
    """A connected (not yet initialized) client; disconnected when the block ends.

    Sockets only: `path` is the upgrade's resource (`/rpc` on unix, `/` on ws unless given),
    `headers` go with the upgrade request (e.g. `("Authorization", "Bearer …")`)."""
    assert kind == server.kind, (kind, server.kind)
    if kind == "stdio":
        assert path is None, "stdio has no upgrade request"
        assert not headers, "stdio has no upgrade request"
        assert not server.stdio_claimed, "a stdio server has exactly one client"
        server.stdio_claimed = True
        client: Client = StdioClient(name, server.process)
        try:
            yield client
        finally:
            await client.aclose()
        return
    if kind == "unix":
        async with connect_unix(server.socket_path, path or "/rpc", name, headers) as unix_client:
            yield unix_client
        return
    async with trio.open_nursery() as nursery:
        with trio.fail_after(TIMEOUT):
            # Accept what the server may send (trio-websocket's default is 1 MiB).
            ws = await connect_websocket_url(
                nursery,
                server.url + (path or "/").removeprefix("/"),
                extra_headers=encode_headers(headers),
                max_message_size=MAX_MESSAGE_BYTES,
            )
        client = WebSocketClient(name, kind, ws)
        try:
            yield client
        finally:
            await client.aclose()
            nursery.cancel_scope.cancel()
