"""End to end over stdio: the real `python -m appserver --listen stdio://` process on pipes.

What a Codex client sees (codex-observed §2 and §3a, codex-source-spec §4, §10.11, §10.12):
JSON lines without `jsonrpc`, the initialize handshake and its errors, garbage dropped without a
reply while the process keeps serving, any framing split, and exit 0 at stdin EOF once every
request already sent has been answered.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import trio

pytestmark = pytest.mark.e2e

#: How long any single wait on the server (a reply, a write, an exit) may take.
TIMEOUT = 10.0
CODEX_VERSION = "0.169.0"
READINESS = "windowsSandbox/readiness"
READY = {"status": "notConfigured"}
EXPERIMENTAL = "mock/experimentalMethod"

#: Environment variables the server reads; removed so the host's settings cannot leak in.
SERVER_ENV_VARS = (
    "LOG_FORMAT",
    "APPSERVER_LOG",
    "APPSERVER_HOME",
    "APPSERVER_ORIGINATOR",
    "CODEX_INTERNAL_ORIGINATOR_OVERRIDE",
)
STDIO_ARGS = ("--listen", "stdio://")


# -- the client ------------------------------------------------------------------------------


def server_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SERVER_ENV_VARS}
    env.update(extra or {})
    return env


def server_argv(home: str | Path, args: tuple[str, ...]) -> list[str]:
    return [sys.executable, "-m", "appserver", *args, "--home", str(home)]


def parse_line(line: bytes) -> dict[str, Any]:
    """One stdout line: a JSON object without `jsonrpc` (Codex never sends it)."""
    try:
        message = json.loads(line)
    except ValueError as exc:
        raise AssertionError(f"stdout line is not JSON: {line[:300]!r}") from exc
    assert isinstance(message, dict), f"stdout line is not a JSON object: {line[:300]!r}"
    assert "jsonrpc" not in message, message
    return message


def parse_stdout(data: bytes) -> list[dict[str, Any]]:
    """A finished process's whole stdout: complete JSON lines and nothing else."""
    if not data:
        return []
    assert data.endswith(b"\n"), f"stdout does not end with a newline: {data[-300:]!r}"
    return [parse_line(line) for line in data[:-1].split(b"\n")]


def same_id(a: Any, b: Any) -> bool:
    """Ids match only with their type: `"1"` and `1` are different ids."""
    return type(a) is type(b) and a == b


def request_line(request_id: Any, method: str, params: Any = None, **extra: Any) -> bytes:
    message: dict[str, Any] = {"id": request_id, "method": method, **extra}
    if params is not None:
        message["params"] = params
    return json.dumps(message, ensure_ascii=False).encode() + b"\n"


def initialize_params(name: str = "e2e_client", version: str = "1.2.3", **caps: Any) -> Any:
    params: dict[str, Any] = {"clientInfo": {"name": name, "title": None, "version": version}}
    if caps:
        params["capabilities"] = caps
    return params


def error(request_id: Any, message: str, code: int = -32600) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}, "id": request_id}


class StdioServer:
    """A running server process and a JSON-lines client on its pipes."""

    def __init__(self, process: trio.Process, home: Path) -> None:
        assert process.stdin is not None
        assert process.stdout is not None
        self.process = process
        self.home = home
        #: Every byte read from stdout so far.
        self.stdout = bytearray()
        #: Messages `reply_to` read past while waiting for its reply.
        self.skipped: list[dict[str, Any]] = []
        self._stdin = process.stdin
        self._stdout = process.stdout
        self._buffer = bytearray()
        self._ids = itertools.count(1001)
        self.stdin_closed = False

    async def write(self, data: bytes) -> None:
        with trio.fail_after(TIMEOUT):
            await self._stdin.send_all(data)

    async def send(self, message: Any) -> None:
        await self.write(json.dumps(message, ensure_ascii=False).encode() + b"\n")

    async def close_stdin(self) -> None:
        if not self.stdin_closed:
            self.stdin_closed = True
            await self._stdin.aclose()

    async def _read_line(self) -> bytes | None:
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

    async def next_message(self) -> dict[str, Any]:
        """The next message on stdout, whatever it is."""
        with trio.fail_after(TIMEOUT):
            line = await self._read_line()
        assert line is not None, "stdout closed while a message was expected"
        return parse_line(line)

    async def reply_to(self, request_id: Any) -> dict[str, Any]:
        """Read up to the reply with this id; anything before it goes to `skipped`."""
        with trio.fail_after(TIMEOUT):
            while True:
                message = await self.next_message()
                if "method" not in message and same_id(message.get("id"), request_id):
                    return message
                self.skipped.append(message)

    async def request(
        self, method: str, params: Any = None, *, request_id: Any = None, **extra: Any
    ) -> dict[str, Any]:
        """Send a request (a fresh integer id unless given); return its whole reply."""
        request_id = next(self._ids) if request_id is None else request_id
        await self.write(request_line(request_id, method, params, **extra))
        return await self.reply_to(request_id)

    async def initialize(self, name: str = "e2e_client", **caps: Any) -> dict[str, Any]:
        reply = await self.request("initialize", initialize_params(name, **caps))
        assert list(reply) == ["id", "result"], reply
        return dict(reply["result"])

    async def read_to_eof(self) -> list[dict[str, Any]]:
        """Every remaining message, up to the server closing its stdout."""
        out = []
        with trio.fail_after(TIMEOUT):
            while (line := await self._read_line()) is not None:
                out.append(parse_line(line))
        return out

    async def wait(self) -> int:
        with trio.fail_after(TIMEOUT):
            return await self.process.wait()


Spawn = Callable[..., Awaitable[StdioServer]]


async def _discard(stream: trio.abc.ReceiveStream) -> None:
    while await stream.receive_some():
        pass


@pytest.fixture
async def spawn(tmp_path: Path, nursery: trio.Nursery) -> AsyncIterator[Spawn]:
    """`await spawn(*args, home=..., env=...)` starts the server on pipes (stderr discarded)."""
    servers: list[StdioServer] = []

    async def start(
        *args: str, home: str | None = None, env: Mapping[str, str] | None = None
    ) -> StdioServer:
        home = home or str(tmp_path / f"home{len(servers)}")
        process = await trio.lowlevel.open_process(
            server_argv(home, args or STDIO_ARGS),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=server_env(env),
            cwd=tmp_path,
        )
        assert process.stderr is not None
        nursery.start_soon(_discard, process.stderr)
        server = StdioServer(process, Path(home))
        servers.append(server)
        return server

    yield start

    for server in servers:
        with trio.move_on_after(TIMEOUT):
            await server.close_stdin()
            await server.process.wait()
        if server.process.returncode is None:
            server.process.kill()
            await server.process.wait()


@pytest.fixture
async def server(spawn: Spawn) -> StdioServer:
    return await spawn()


async def run_to_completion(
    home: Path, stdin: bytes, *args: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run the server with `stdin` written and then closed; capture stdout and stderr."""
    with trio.fail_after(TIMEOUT):
        return await trio.run_process(
            server_argv(home, args or STDIO_ARGS),
            stdin=stdin,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            env=server_env(env),
            cwd=home.parent,
        )


# -- initialize ------------------------------------------------------------------------------


async def test_initialize_result_shape(server: StdioServer) -> None:
    result = await server.initialize("shape_client", experimentalApi=False)
    assert list(result) == ["userAgent", "codexHome", "platformFamily", "platformOs"]
    assert result["userAgent"].startswith(f"shape_client/{CODEX_VERSION} ("), result
    assert result["userAgent"].endswith(" (shape_client; 1.2.3)"), result
    assert result["codexHome"] == str(server.home)
    assert Path(result["codexHome"]).is_absolute()
    assert result["platformFamily"] == ("windows" if os.name == "nt" else "unix")
    expected_os = {"darwin": "macos", "win32": "windows"}.get(sys.platform, sys.platform)
    assert result["platformOs"] == expected_os
    assert server.skipped == []


async def test_codex_home_is_the_absolute_home_for_a_relative_home(
    spawn: Spawn, tmp_path: Path
) -> None:
    server = await spawn(home="relative-home")  # the process runs with cwd=tmp_path
    result = await server.initialize()
    assert result["codexHome"] == str(tmp_path / "relative-home")


async def test_originator_override_env_wins(spawn: Spawn) -> None:
    server = await spawn(env={"CODEX_INTERNAL_ORIGINATOR_OVERRIDE": "override_orig"})
    result = await server.initialize("vscode_like")
    assert result["userAgent"].startswith(f"override_orig/{CODEX_VERSION} ("), result
    assert result["userAgent"].endswith(" (vscode_like; 1.2.3)"), result


async def test_second_initialize_is_rejected_and_capabilities_stay(server: StdioServer) -> None:
    await server.initialize(experimentalApi=False)
    params = initialize_params("other", experimentalApi=True)
    reply = await server.request("initialize", params, request_id=2)
    assert reply == error(2, "Already initialized")
    assert list(reply) == ["error", "id"]
    assert list(reply["error"]) == ["code", "message"]
    # Capabilities are never re-negotiated.
    reply = await server.request(EXPERIMENTAL, {"value": "x"}, request_id=3)
    assert reply == error(3, f"{EXPERIMENTAL} requires experimentalApi capability")


async def test_request_before_initialize_is_not_initialized(server: StdioServer) -> None:
    await server.send({"method": "initialized"})  # before initialize: ignored
    assert await server.request(READINESS, request_id=1) == error(1, "Not initialized")
    reply = await server.request(EXPERIMENTAL, {"value": "x"}, request_id=2)
    assert reply == error(2, "Not initialized")
    await server.initialize()
    assert await server.request(READINESS, request_id=3) == {"id": 3, "result": READY}
    assert server.skipped == []


async def test_unknown_method_is_parsed_before_the_init_check(server: StdioServer) -> None:
    prefix = "Invalid request: unknown variant `nope/nope`, expected one of `initialize`, "
    before = await server.request("nope/nope", {"a": 1}, request_id=1)
    assert list(before) == ["error", "id"]
    assert before["id"] == 1
    assert before["error"]["code"] == -32600
    assert "data" not in before["error"]
    text = before["error"]["message"]
    assert text.startswith(prefix), text
    for name in ("initialize", READINESS, EXPERIMENTAL):  # experimental ones are listed too
        assert f"`{name}`" in text
    await server.initialize()
    after = await server.request("nope/nope", request_id=2)
    assert after == error(2, text)


async def test_initialize_params_errors_leave_the_session_uninitialized(
    server: StdioServer,
) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"params": {}}, "missing field `clientInfo`"),
        ({}, "missing field `params`"),
        ({"params": None}, "missing field `params`"),
        ({"params": {"clientInfo": {"name": "n"}}}, "missing field `version`"),
        (
            {"params": {"clientInfo": {"name": 5, "version": "1"}}},
            "invalid type: integer `5`, expected a string",
        ),
    ]
    for n, (extra, reason) in enumerate(cases):
        await server.send({"id": n, "method": "initialize", **extra})
        assert await server.next_message() == error(n, f"Invalid request: {reason}"), extra
    assert await server.request(READINESS, request_id="x") == error("x", "Not initialized")
    await server.initialize()


async def test_invalid_client_name_is_rejected_without_data(server: StdioServer) -> None:
    reply = await server.request("initialize", initialize_params("bad\rname"), request_id=1)
    text = "Invalid clientInfo.name: 'bad\rname'. Must be a valid HTTP header value."
    assert reply == error(1, text)
    assert "data" not in reply["error"]
    # The session stays uninitialized, and a good initialize still works.
    assert await server.request(READINESS, request_id=2) == error(2, "Not initialized")
    result = await server.initialize("good_name")
    assert result["userAgent"].startswith(f"good_name/{CODEX_VERSION} ")


# -- the experimental gate -------------------------------------------------------------------


@pytest.mark.parametrize(
    "capabilities",
    [None, {"experimentalApi": False, "optOutNotificationMethods": None}],
)
async def test_experimental_method_requires_the_capability(
    server: StdioServer, capabilities: dict[str, Any] | None
) -> None:
    params: dict[str, Any] = {"clientInfo": {"name": "gate", "version": "0"}}
    if capabilities is not None:
        params["capabilities"] = capabilities
    assert "result" in await server.request("initialize", params)
    reply = await server.request(EXPERIMENTAL, {"value": "x"}, request_id=7)
    assert reply == error(7, f"{EXPERIMENTAL} requires experimentalApi capability")
    assert "data" not in reply["error"]


async def test_experimental_method_with_the_capability_is_echoed(server: StdioServer) -> None:
    await server.initialize(experimentalApi=True)
    reply = await server.request(EXPERIMENTAL, {"value": "x"}, request_id=7)
    assert reply == {"id": 7, "result": {"echoed": "x"}}
    reply = await server.request(EXPERIMENTAL, {"value": "héllo ✓ 🎉"}, request_id=8)
    assert reply == {"id": 8, "result": {"echoed": "héllo ✓ 🎉"}}


# -- message shape and ids -------------------------------------------------------------------


async def test_jsonrpc_member_is_accepted_and_never_sent(server: StdioServer) -> None:
    params = initialize_params()
    reply = await server.request("initialize", params, request_id=1, jsonrpc="2.0")
    assert "result" in reply
    reply = await server.request(READINESS, request_id=2, jsonrpc="2.0")
    assert reply == {"id": 2, "result": READY}
    reply = await server.request(READINESS, request_id=3, jsonrpc="1.0", extra={"ignored": 1})
    assert reply == {"id": 3, "result": READY}
    reply = await server.request("nope/nope", request_id=4, jsonrpc="2.0")
    assert reply["error"]["code"] == -32600
    await server.send({"jsonrpc": "2.0", "method": "initialized"})
    assert await server.request(READINESS, request_id=5) == {"id": 5, "result": READY}
    assert b'"jsonrpc"' not in server.stdout  # (the home path holds the test's name)
    assert server.skipped == []


IDS: list[Any] = [
    0,
    -7,
    2**63 - 1,
    -(2**63),
    "",
    "abc",
    "1",
    1,
    "идентификатор ✓ 🎉",
    'with "quotes" and \\ and \n newline',
]


async def test_ids_are_echoed_unchanged(server: StdioServer) -> None:
    await server.initialize()
    for request_id in IDS:
        reply = await server.request(READINESS, request_id=request_id)
        assert list(reply) == ["id", "result"]
        assert same_id(reply["id"], request_id), (reply, request_id)
        reply = await server.request("nope/nope", request_id=request_id)
        assert list(reply) == ["error", "id"]
        assert same_id(reply["id"], request_id), (reply, request_id)
    assert server.skipped == []
    # Non-ASCII goes out as raw UTF-8, not \u escapes.
    assert "идентификатор ✓ 🎉".encode() in server.stdout
    assert b"\\u" not in server.stdout


async def test_many_ids_in_one_write_keep_their_types(server: StdioServer) -> None:
    await server.initialize()
    await server.write(b"".join(request_line(i, READINESS) for i in IDS))
    replies = [await server.next_message() for _ in IDS]
    for request_id in IDS:
        matching = [r for r in replies if same_id(r["id"], request_id)]
        assert matching == [{"id": request_id, "result": READY}], (request_id, replies)


# -- garbage ---------------------------------------------------------------------------------

GARBAGE: list[bytes] = [
    b"{bad",
    b"{}",
    b"42",
    b"[]",
    b'"str"',
    b"null",
    b"true",
    b'{"id":24}',
    b'{"method":5,"id":1}',
    b"[1,2]",
    b'{"id":99,"result":{}}',
    b'{"id":98,"error":{"code":1,"message":"no such request"}}',
    b'{"method":"nope/notify"}',
    b'{"method":"nope/notify","params":{"a":1}}',
    b'{"id":null,"method":"windowsSandbox/readiness"}',
    b'{"id":1.5,"method":"windowsSandbox/readiness"}',
    b'{"id":true,"method":"windowsSandbox/readiness"}',
    b'{"id":18446744073709551615,"method":"windowsSandbox/readiness"}',
    b'{"id":90,"method":"windowsSandbox/readiness"}{"id":91,"method":"windowsSandbox/readiness"}',
    b"",
    b"   \t ",
    b"\r",
    b"\xff\xfe\xfd",
    b'{"id":92,"method":"windowsSandbox/readiness","x":"\xc3\x28"}',
    b"\x00",
]


@pytest.mark.parametrize("initialized", [False, True])
async def test_garbage_gets_no_reply_and_serving_continues(
    server: StdioServer, initialized: bool
) -> None:
    if initialized:
        await server.initialize()
    for n, line in enumerate(GARBAGE):
        await server.write(line + b"\n")
        probe = f"probe-{n}"
        await server.write(request_line(probe, READINESS))
        expected = (
            {"id": probe, "result": READY} if initialized else error(probe, "Not initialized")
        )
        # The probe's reply is the very next thing on stdout: the garbage got nothing.
        assert await server.next_message() == expected, line
    if not initialized:
        await server.initialize()
    assert await server.request(READINESS, request_id="last") == {"id": "last", "result": READY}
    assert server.skipped == []


# -- framing ---------------------------------------------------------------------------------


async def test_crlf_line_endings(server: StdioServer) -> None:
    init = request_line(1, "initialize", initialize_params())
    await server.write(init[:-1] + b"\r\n")
    assert "result" in await server.next_message()
    await server.write(request_line(2, READINESS)[:-1] + b"\r\n")
    assert await server.next_message() == {"id": 2, "result": READY}
    # Mixed endings in one write.
    data = request_line(3, READINESS)[:-1] + b"\r\n" + request_line(4, READINESS)
    await server.write(data + request_line(5, READINESS)[:-1] + b"\r\n")
    replies = [await server.next_message() for _ in range(3)]
    assert sorted(r["id"] for r in replies) == [3, 4, 5]
    assert all(r["result"] == READY for r in replies)


async def test_many_requests_in_one_write(server: StdioServer, nursery: trio.Nursery) -> None:
    await server.initialize(experimentalApi=True)
    count = 600
    data = bytearray()
    for n in range(count):
        if n % 3 == 0:
            data += request_line(n, READINESS)
        elif n % 3 == 1:
            data += request_line(n, EXPERIMENTAL, {"value": f"v{n}"})
        else:
            data += request_line(n, "nope/nope")
    # ~40 KB in, ~60 KB out: write concurrently so neither pipe can fill up and deadlock us.
    nursery.start_soon(server.write, bytes(data))
    replies = [await server.next_message() for _ in range(count)]
    assert sorted(r["id"] for r in replies) == list(range(count))
    for reply in replies:
        n = reply["id"]
        if n % 3 == 0:
            assert reply == {"id": n, "result": READY}
        elif n % 3 == 1:
            assert reply == {"id": n, "result": {"echoed": f"v{n}"}}
        else:
            assert reply["error"]["code"] == -32600


async def test_one_request_split_across_writes(server: StdioServer) -> None:
    await server.initialize(experimentalApi=True)
    # A byte at a time.
    for byte in request_line("small", READINESS):
        await server.write(bytes([byte]))
    assert await server.next_message() == {"id": "small", "result": READY}
    # A line far bigger than a pipe buffer, so the server must read it in many pieces; the
    # writes also split a UTF-8 sequence and the `\r\n`.
    value = "é" * 400_000 + "end"
    line = request_line("big", EXPERIMENTAL, {"value": value})[:-1] + b"\r\n"
    middle = line.index("é".encode()) + 250_001  # inside a two-byte sequence
    assert line[middle - 1 : middle] == b"\xc3"
    for piece in (line[:middle], line[middle:-1], line[-1:]):
        await server.write(piece)
    assert await server.next_message() == {"id": "big", "result": {"echoed": value}}
    assert await server.request(READINESS, request_id="after") == {"id": "after", "result": READY}


async def test_last_line_without_newline_is_answered_at_eof(server: StdioServer) -> None:
    await server.initialize()
    await server.write(request_line("tail", READINESS)[:-1])
    await server.close_stdin()
    assert await server.read_to_eof() == [{"id": "tail", "result": READY}]
    assert await server.wait() == 0


# -- end of input ----------------------------------------------------------------------------


async def test_stdin_eof_answers_every_request_then_exits_zero(tmp_path: Path) -> None:
    ids: list[Any] = ["init"]
    data = bytearray(request_line("init", "initialize", initialize_params(experimentalApi=True)))
    for n in range(49):
        request_id: Any = n if n % 2 else f"s{n}"
        ids.append(request_id)
        if n % 7 == 0:
            data += request_line(request_id, EXPERIMENTAL, {"value": str(n)})
        else:
            data += request_line(request_id, READINESS)
    done = await run_to_completion(tmp_path / "home", bytes(data))
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    replies = parse_stdout(done.stdout)
    assert len(replies) == 50
    assert sorted(map(repr, (r["id"] for r in replies))) == sorted(map(repr, ids))
    assert all("result" in r for r in replies), replies


async def test_stdin_eof_without_any_input_exits_zero(server: StdioServer) -> None:
    await server.close_stdin()
    assert await server.read_to_eof() == []
    assert await server.wait() == 0


async def test_stdin_eof_after_traffic_exits_zero(server: StdioServer) -> None:
    await server.initialize()
    await server.write(b"{bad\n" + request_line(1, READINESS) + request_line(2, "nope/nope"))
    await server.close_stdin()
    replies = await server.read_to_eof()
    assert [r["id"] for r in replies] == [1, 2]
    assert await server.wait() == 0


# -- logging never touches stdout ------------------------------------------------------------


@pytest.mark.parametrize("log_format", [None, " JSON "])  # trimmed, case-insensitive
async def test_stdout_is_only_json_lines_with_debug_logging(
    tmp_path: Path, log_format: str | None
) -> None:
    data = (
        request_line(1, READINESS)
        + request_line(2, "initialize", initialize_params())
        + b'{"method":"initialized"}\n'
        + b"{bad\n\xff\n\n"
        + request_line(3, READINESS)
        + request_line(4, "nope/nope")
        + request_line(5, EXPERIMENTAL, {"value": "x"})
    )
    env = {"LOG_FORMAT": log_format} if log_format is not None else None
    done = await run_to_completion(
        tmp_path / "home", data, *STDIO_ARGS, "--log-level", "DEBUG", env=env
    )
    stderr = done.stderr.decode(errors="replace")
    assert done.returncode == 0, stderr
    replies = parse_stdout(done.stdout)
    assert [r["id"] for r in replies] == [1, 2, 3, 4, 5]
    assert "Failed to deserialize JSONRPCMessage" in stderr
    if log_format is None:
        assert "DEBUG" in stderr
        return
    records = []
    for line in stderr.splitlines():
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise AssertionError(f"stderr line is not JSON with LOG_FORMAT=json: {line!r}") from exc
        assert isinstance(record, dict), line
        records.append(record)
    assert records
    assert any(r.get("level") == "DEBUG" for r in records), records


# -- notifications from the client -----------------------------------------------------------


async def test_initialized_notification_gets_no_reply(server: StdioServer) -> None:
    await server.initialize()
    for notification in (
        {"method": "initialized"},
        {"method": "initialized", "params": {}},
        {"method": "initialized", "params": None},
        {"method": "initialized", "params": {"anything": [1, 2]}},
    ):
        await server.send(notification)
        probe = json.dumps(notification)
        await server.write(request_line(probe, READINESS))
        assert await server.next_message() == {"id": probe, "result": READY}


# -- command line ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("app-server", "--listen", "stdio://"),
        ("app-server",),  # stdio is the default transport
    ],
)
async def test_app_server_subcommand_serves_stdio(spawn: Spawn, args: tuple[str, ...]) -> None:
    server = await spawn(*args)
    result = await server.initialize("subcommand")
    assert result["codexHome"] == str(server.home)
    assert await server.request(READINESS, request_id=1) == {"id": 1, "result": READY}
    await server.close_stdin()
    assert await server.read_to_eof() == []
    assert await server.wait() == 0
