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
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from pathlib import Path
from typing import Any, Final, Literal

import trio
from trio_websocket import (
    ConnectionClosed,
    WebSocketConnection,
    connect_websocket_url,
    wrap_client_stream,
)

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

APPSERVER: Final = (sys.executable, "-m", "appserver")
#: Environment variables the server reads; removed so the host's settings cannot leak in.
SERVER_ENV_VARS: Final = (
    "LOG_FORMAT",
    "APPSERVER_LOG",
    "APPSERVER_HOME",
    "APPSERVER_ORIGINATOR",
    "CODEX_INTERNAL_ORIGINATOR_OVERRIDE",
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


def server_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SERVER_ENV_VARS}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def listen_url(kind: Kind, socket_dir: Path | None) -> str:
    if kind == "stdio":
        return "stdio://"
    if kind == "unix":
        assert socket_dir is not None
        return f"unix://{socket_dir / 's.sock'}"
    return "ws://127.0.0.1:0"


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
    def url(self) -> str:
        assert self.address.startswith("ws://"), self.address
        return self.address + "/"

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

    async def stop(self, within: float = TIMEOUT) -> int:
        """The clean way out: stdin EOF for stdio, SIGTERM for sockets. The exit status."""
        if self.kind == "stdio":
            assert self.process.stdin is not None
            with contextlib.suppress(trio.ClosedResourceError, trio.BrokenResourceError):
                await self.process.stdin.aclose()
        else:
            self.send_signal(signal.SIGTERM)
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
                        host, _, port = self.address.removeprefix("ws://").rpartition(":")
                        stream = await trio.open_tcp_stream(host, int(port))
                except OSError:
                    return
                await stream.aclose()
                await trio.sleep(POLL_SECONDS)


@contextlib.asynccontextmanager
async def spawn_server(kind: Kind, home: Path, *extra: str) -> AsyncIterator[Server]:
    """Start the real server on `home` and wait until it is ready; always killed at the end."""
    socket_dir = Path(tempfile.mkdtemp(prefix="ase-", dir="/tmp")) if kind == "unix" else None
    pipe = subprocess.PIPE if kind == "stdio" else subprocess.DEVNULL
    argv = [*APPSERVER, "--listen", listen_url(kind, socket_dir), "--home", os.fspath(home), *extra]
    try:
        process = await trio.lowlevel.open_process(
            argv, stdin=pipe, stdout=pipe, stderr=subprocess.PIPE, env=server_env()
        )
        try:
            async with trio.open_nursery() as nursery:
                server = Server(kind, home, process)
                nursery.start_soon(server.drain_stderr)
                if kind != "stdio":
                    await server.wait_banner()
                yield server
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


class ClientClosed(AssertionError):
    """The server closed the connection while a message was expected."""


class Client:
    """A JSON-RPC peer of the server; the transport is in `_write` and `_read`."""

    kind: Kind

    def __init__(self, name: str) -> None:
        self.name = name
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

    async def send_request(
        self, method: str, params: Any = NO_PARAMS, *, request_id: Any = None
    ) -> Any:
        """Send a request (a fresh integer id unless given); its id."""
        request_id = next(self._ids) if request_id is None else request_id
        message: dict[str, Any] = {"id": request_id, "method": method}
        if params is not NO_PARAMS:
            message["params"] = params
        await self.send(message)
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
        """The next message from the server, whatever it is."""
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
            self._unread.extend(skipped)

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
        """`initialize` (the TUI's params unless given), then the `initialized` notification."""
        result = await self.call("initialize", params or TUI_INITIALIZE, request_id=request_id)
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
    kind: Kind = "stdio"

    def __init__(self, name: str, process: trio.Process) -> None:
        super().__init__(name)
        assert process.stdin is not None
        assert process.stdout is not None
        self._stdin = process.stdin
        self._stdout = process.stdout
        self._buffer = bytearray()

    async def _write(self, text: str) -> None:
        await self._stdin.send_all(text.encode() + b"\n")

    async def _read(self) -> bytes | None:
        while (end := self._buffer.find(b"\n")) < 0:
            chunk = await self._stdout.receive_some()
            if not chunk:
                assert not self._buffer, f"unterminated stdout line: {bytes(self._buffer)!r}"
                return None
            self._buffer += chunk
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        return line

    async def _close(self) -> None:
        with contextlib.suppress(trio.ClosedResourceError, trio.BrokenResourceError):
            await self._stdin.aclose()


class WebSocketClient(Client):
    def __init__(self, name: str, kind: Kind, ws: WebSocketConnection) -> None:
        super().__init__(name)
        self.kind = kind
        self._ws = ws

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


@contextlib.asynccontextmanager
async def open_client(kind: Kind, server: Server, name: str = "client") -> AsyncIterator[Client]:
    """A connected (not yet initialized) client; disconnected when the block ends."""
    assert kind == server.kind, (kind, server.kind)
    if kind == "stdio":
        assert not server.stdio_claimed, "a stdio server has exactly one client"
        server.stdio_claimed = True
        client: Client = StdioClient(name, server.process)
        try:
            yield client
        finally:
            await client.aclose()
        return
    async with trio.open_nursery() as nursery:
        with trio.fail_after(TIMEOUT):
            # Accept what the server may send (trio-websocket's default is 1 MiB).
            if kind == "unix":
                stream = await trio.open_unix_socket(os.fspath(server.socket_path))
                ws = await wrap_client_stream(
                    nursery, stream, "localhost", "/rpc", max_message_size=MAX_MESSAGE_BYTES
                )
            else:
                ws = await connect_websocket_url(
                    nursery, server.url, max_message_size=MAX_MESSAGE_BYTES
                )
        client = WebSocketClient(name, kind, ws)
        try:
            yield client
        finally:
            await client.aclose()
            nursery.cancel_scope.cancel()
