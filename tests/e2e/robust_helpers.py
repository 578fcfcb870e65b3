"""Helpers for the robustness end-to-end tests (bad input, fuzzing, faults).

Real `python -m appserver` processes over stdio, `unix://` and `ws://`, their stderr in a file,
and clients that can send anything: a JSON-lines client on the stdio pipes and a hand-written
WebSocket client on a raw socket, so tests can send invalid UTF-8, half frames, binary frames or
a frame of any size, and see exactly what comes back (close codes included).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Final

import trio

#: How long any single wait on the server (a reply, a start, an exit) may take.
TIMEOUT: Final = 10.0
POLL_SECONDS: Final = 0.01
TRANSPORTS: Final = ("stdio", "unix", "ws")
SOCKET_TRANSPORTS: Final = ("unix", "ws")

READINESS: Final = "windowsSandbox/readiness"
READY: Final = {"status": "notConfigured"}
INIT_PARAMS: Final = {"clientInfo": {"name": "e2e_robust", "version": "1.0.0"}}
INVALID_REQUEST: Final = -32600
OVERLOADED: Final = {"code": -32001, "message": "Server overloaded; retry later."}
#: The largest stdio line / WebSocket message the server accepts (README, wire rules).
MAX_MESSAGE_BYTES: Final = 64 * 1024 * 1024
CONTROL_SOCKET: Final = Path("app-server-control") / "app-server-control.sock"

#: Environment variables the server reads; removed so the host's settings cannot leak in.
SERVER_ENV_VARS: Final = (
    "LOG_FORMAT",
    "APPSERVER_LOG",
    "APPSERVER_HOME",
    "APPSERVER_ORIGINATOR",
    "CODEX_INTERNAL_ORIGINATOR_OVERRIDE",
    "APPSERVER_STARTUP_LOCK_FD",
)
_BANNER = re.compile(r"^  listening on: ws://([0-9.]+):(\d+)$", re.M)

# WebSocket opcodes (RFC 6455 §5.2).
CONTINUATION: Final = 0x0
TEXT: Final = 0x1
BINARY: Final = 0x2
CLOSE: Final = 0x8
PING: Final = 0x9
PONG: Final = 0xA


def server_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SERVER_ENV_VARS}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def listen_url(transport: str) -> str:
    return {"stdio": "stdio://", "unix": "unix://", "ws": "ws://127.0.0.1:0"}[transport]


def server_argv(transport: str, home: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "appserver",
        "--listen",
        listen_url(transport),
        "--home",
        os.fspath(home),
        *extra,
    ]


@contextlib.contextmanager
def short_tempdir(prefix: str = "asr-") -> Iterator[Path]:
    """A fresh directory under /tmp (pytest's tmp_path can push socket paths past sun_path)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def request_message(request_id: Any, method: str, params: Any = None) -> dict[str, Any]:
    message: dict[str, Any] = {"id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    return message


def encode(message: Any) -> bytes:
    return json.dumps(message, ensure_ascii=False).encode()


def same_id(a: Any, b: Any) -> bool:
    """Ids match only with their type: `"1"` and `1` are different ids."""
    return type(a) is type(b) and a == b


def is_reply(message: dict[str, Any]) -> bool:
    return "method" not in message and ("result" in message or "error" in message)


def parse(data: bytes | str) -> dict[str, Any]:
    """One message from the server: a JSON object without `jsonrpc`."""
    try:
        message = json.loads(data)
    except ValueError as exc:
        raise AssertionError(f"the server sent something that is not JSON: {data[:300]!r}") from exc
    assert isinstance(message, dict), f"the server sent a non-object: {data[:300]!r}"
    assert "jsonrpc" not in message, message
    return message


# -- clients ---------------------------------------------------------------------------------


class Closed(AssertionError):
    """The connection ended while a message was expected."""


class JsonClient:
    """What every client can do: send messages, read messages, match replies to requests."""

    def __init__(self) -> None:
        #: Messages `reply_to` read past while waiting for its reply.
        self.skipped: list[dict[str, Any]] = []
        self._next_id = 0

    async def send_payload(self, data: bytes) -> None:
        """One message's bytes, framed by the transport (a line, a text frame)."""
        raise NotImplementedError

    async def receive_payload(self) -> bytes | None:
        """The next message's bytes, or None when the server closed the connection."""
        raise NotImplementedError

    async def aclose(self) -> None:
        raise NotImplementedError

    async def send(self, message: Any) -> None:
        await self.send_payload(encode(message))

    async def next_message(self) -> dict[str, Any]:
        with trio.fail_after(TIMEOUT):
            payload = await self.receive_payload()
        if payload is None:
            raise Closed("the server closed the connection while a message was expected")
        return parse(payload)

    async def reply_to(self, request_id: Any) -> dict[str, Any]:
        """Read up to the reply with this id; anything before it goes to `skipped`."""
        with trio.fail_after(TIMEOUT):
            while True:
                message = await self.next_message()
                if is_reply(message) and same_id(message.get("id"), request_id):
                    return message
                self.skipped.append(message)

    def fresh_id(self) -> str:
        self._next_id += 1
        return f"req-{self._next_id}"

    async def request(
        self, method: str, params: Any = None, *, request_id: Any = None
    ) -> dict[str, Any]:
        request_id = self.fresh_id() if request_id is None else request_id
        await self.send(request_message(request_id, method, params))
        return await self.reply_to(request_id)

    async def initialize(self) -> dict[str, Any]:
        reply = await self.request("initialize", INIT_PARAMS)
        assert "result" in reply, reply
        await self.send({"method": "initialized"})
        result: dict[str, Any] = reply["result"]
        return result

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


class LineClient(JsonClient):
    """The stdio client: JSON lines on the server's stdin and stdout."""

    def __init__(self, process: trio.Process) -> None:
        super().__init__()
        assert process.stdin is not None
        assert process.stdout is not None
        self._stdin = process.stdin
        self._stdout = process.stdout
        self._buffer = bytearray()
        self.eof = False

    async def write(self, data: bytes) -> None:
        with trio.fail_after(TIMEOUT):
            await self._stdin.send_all(data)

    async def send_payload(self, data: bytes) -> None:
        await self.write(data + b"\n")

    async def receive_payload(self) -> bytes | None:
        while (end := self._buffer.find(b"\n")) < 0:
            chunk = await self._stdout.receive_some()
            if not chunk:
                self.eof = True
                assert not self._buffer, f"unterminated stdout line: {bytes(self._buffer)!r}"
                return None
            self._buffer += chunk
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        return line

    async def close_stdin(self) -> None:
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await self._stdin.aclose()

    async def aclose(self) -> None:
        await self.close_stdin()


def ws_frame(opcode: int, payload: bytes, *, fin: bool = True, mask: bytes | None = None) -> bytes:
    """One client frame. A client frame is always masked; an all-zero key leaves the payload
    as is (cheap for huge frames)."""
    key = os.urandom(4) if mask is None else mask
    size = len(payload)
    head = bytes([(0x80 if fin else 0) | opcode])
    if size < 126:
        head += bytes([0x80 | size])
    elif size < 1 << 16:
        head += bytes([0x80 | 126]) + struct.pack("!H", size)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", size)
    if key != b"\0\0\0\0" and payload:
        repeated = (key * (size // 4 + 1))[:size]
        payload = (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(
            size, "big"
        )
    return head + key + payload


def upgrade_request(path: str = "/") -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\n"
        "Host: localhost\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        "\r\n"
    ).encode()


class WsClient(JsonClient):
    """A WebSocket client on a raw stream: it frames by hand and sees every frame it gets."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        super().__init__()
        self.stream = stream
        self._buffer = bytearray()
        self._fragments: list[bytes] = []
        #: The code of the server's Close frame, once one arrived.
        self.close_code: int | None = None
        self.eof = False

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
                    raise Closed(f"closed during the handshake: {bytes(self._buffer)!r}")
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

    async def receive_payload(self) -> bytes | None:
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
                    await self.receive_payload()
        return self.close_code

    async def aclose(self) -> None:
        with trio.CancelScope(shield=True):
            await self.stream.aclose()


# -- servers ---------------------------------------------------------------------------------


class Server:
    """A running `appserver` process; its stderr goes to a file."""

    def __init__(
        self, transport: str, home: Path, process: trio.Process, stderr_path: Path
    ) -> None:
        self.transport = transport
        self.home = home
        self.process = process
        self.stderr_path = stderr_path
        self.port = 0
        self._stdio: LineClient | None = None

    @property
    def socket_path(self) -> Path:
        return self.home / CONTROL_SOCKET

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def describe(self) -> str:
        return f"pid {self.process.pid} rc={self.process.poll()} stderr:\n{self.stderr()[-3000:]}"

    def assert_alive(self) -> None:
        assert self.alive, f"the server died: {self.describe()}"

    def fd_count(self) -> int:
        return len(os.listdir(f"/proc/{self.process.pid}/fd"))

    async def open_stream(self) -> trio.abc.Stream:
        with trio.fail_after(TIMEOUT):
            if self.transport == "unix":
                return await trio.open_unix_socket(os.fspath(self.socket_path))
            assert self.transport == "ws", self.transport
            return await trio.open_tcp_stream("127.0.0.1", self.port)

    async def websocket(self, path: str = "/") -> WsClient:
        """A new WebSocket client, upgraded (not initialized)."""
        client = WsClient(await self.open_stream())
        try:
            await client.handshake(path)
        except BaseException:
            await client.aclose()
            raise
        return client

    def stdio(self) -> LineClient:
        """The stdio server's one client."""
        assert self.transport == "stdio", self.transport
        if self._stdio is None:
            self._stdio = LineClient(self.process)
        return self._stdio

    async def client(self) -> JsonClient:
        """The stdio client, or a new WebSocket client; not initialized."""
        if self.transport == "stdio":
            return self.stdio()
        return await self.websocket()

    async def wait_ready(self, within: float = TIMEOUT) -> None:
        """Bounded polling until the server accepts clients; fails if the process exits."""
        with trio.fail_after(within):
            while True:
                if not self.alive:
                    raise AssertionError(f"the server exited before serving: {self.describe()}")
                if self.transport == "stdio":
                    return
                if self.transport == "ws":
                    match = _BANNER.search(self.stderr())
                    if match is not None:
                        self.port = int(match.group(2))
                        return
                else:
                    try:
                        stream = await trio.open_unix_socket(os.fspath(self.socket_path))
                    except OSError:
                        pass
                    else:
                        await stream.aclose()
                        return
                await trio.sleep(POLL_SECONDS)

    async def wait(self, within: float = TIMEOUT) -> int:
        with trio.fail_after(within):
            return await self.process.wait()

    async def stop(self, signum: int = signal.SIGTERM, within: float = TIMEOUT) -> int:
        """Ask the server to stop (stdio: end its input) and wait for the exit status."""
        if self.transport == "stdio":
            await self.stdio().close_stdin()
        else:
            self.process.send_signal(signum)
        return await self.wait(within)

    async def kill(self) -> None:
        with trio.CancelScope(shield=True):
            if self.alive:
                self.process.kill()
            with trio.move_on_after(TIMEOUT):
                await self.process.wait()
            if self._stdio is not None:
                await self._stdio.close_stdin()


async def spawn(transport: str, home: Path, *extra: str, stderr_path: Path | None = None) -> Server:
    """Start a server without waiting for it to serve."""
    stderr_path = stderr_path or home.parent / f"server-{transport}-{os.urandom(3).hex()}.log"
    stdio = transport == "stdio"
    with stderr_path.open("wb") as stderr:
        process = await trio.lowlevel.open_process(
            server_argv(transport, home, *extra),
            stdin=subprocess.PIPE if stdio else subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdio else subprocess.DEVNULL,
            stderr=stderr,
            env=server_env(),
            cwd=home.parent,
        )
    return Server(transport, home, process, stderr_path)


@contextlib.asynccontextmanager
async def serving(
    transport: str, home: Path, *extra: str, log_dir: Path | None = None
) -> AsyncIterator[Server]:
    """A server that serves `transport`; killed when the block ends, whatever happened. Its
    stderr goes to a file in `log_dir` (default: next to the home)."""
    home.parent.mkdir(parents=True, exist_ok=True)
    stderr_path = None
    if log_dir is not None:
        stderr_path = log_dir / f"server-{transport}-{os.urandom(3).hex()}.log"
    server = await spawn(transport, home, *extra, stderr_path=stderr_path)
    try:
        await server.wait_ready()
        yield server
    finally:
        await server.kill()


async def run_to_exit(
    transport: str, home: Path, *extra: str, within: float = TIMEOUT
) -> subprocess.CompletedProcess[bytes]:
    """Run a server expected to refuse to start; one that starts fails the test by timing out."""
    with trio.fail_after(within):
        return await trio.run_process(
            server_argv(transport, home, *extra),
            stdin=b"",
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            env=server_env(),
            cwd=home.parent if home.parent.is_dir() else "/tmp",
        )


async def wait_until(predicate: Any, what: str, within: float = TIMEOUT) -> None:
    """Bounded polling of something a real process does (`predicate()` becomes true)."""
    with trio.move_on_after(within):
        while not predicate():
            await trio.sleep(POLL_SECONDS)
        return
    raise AssertionError(f"timed out after {within}s waiting for {what}")
