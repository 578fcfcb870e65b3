"""End to end over stdio: the real `python -m appserver --listen stdio://` process on pipes.

What a Codex client sees (codex-observed §2 and §3a, codex-source-spec §4, §10.11, §10.12):
JSON lines without `jsonrpc`, the initialize handshake and its errors, garbage dropped without a
reply while the process keeps serving, any framing split, and exit 0 at stdin EOF once every
request already sent has been answered.

The process and its client are tests/e2e/transports.py's: `spawn_server("stdio", ...)` and its
one client in probe mode (`Server.stdio()`), whose `write` sends raw bytes and whose `stdout`
is every byte the server wrote.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.e2e.transports import (
    APPSERVER,
    INVALID_REQUEST,
    NO_PARAMS,
    READINESS,
    READY,
    Server,
    StdioClient,
    parse_stdout,
    request_line,
    request_message,
    run_to_exit,
    same_id,
    spawn_server,
)

pytestmark = pytest.mark.e2e

CODEX_VERSION = "0.169.0"
EXPERIMENTAL = "mock/experimentalMethod"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    async with spawn_server("stdio", tmp_path / "home") as server:
        yield server


@pytest.fixture
def client(server: Server) -> StdioClient:
    return server.stdio()


def initialize_params(name: str = "e2e_client", version: str = "1.2.3", **caps: Any) -> Any:
    params: dict[str, Any] = {"clientInfo": {"name": name, "title": None, "version": version}}
    if caps:
        params["capabilities"] = caps
    return params


async def initialize(client: StdioClient, name: str = "e2e_client", **caps: Any) -> dict[str, Any]:
    """`initialize` alone (no `initialized` after it); its reply is `id` then `result`."""
    reply = await client.request("initialize", initialize_params(name, **caps))
    assert list(reply) == ["id", "result"], reply
    return dict(reply["result"])


async def request_with(
    client: StdioClient, request_id: Any, method: str, params: Any = NO_PARAMS, **members: Any
) -> dict[str, Any]:
    """A request with more top-level members (`jsonrpc`, unknown ones); its reply."""
    await client.send({**request_message(request_id, method, params), **members})
    return await client.reply_to(request_id)


def error(request_id: Any, message: str, code: int = INVALID_REQUEST) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}, "id": request_id}


# -- initialize ------------------------------------------------------------------------------


async def test_initialize_result_shape(server: Server, client: StdioClient) -> None:
    result = await initialize(client, "shape_client", experimentalApi=False)
    assert list(result) == ["userAgent", "codexHome", "platformFamily", "platformOs"]
    assert result["userAgent"].startswith(f"shape_client/{CODEX_VERSION} ("), result
    assert result["userAgent"].endswith(" (shape_client; 1.2.3)"), result
    assert result["codexHome"] == str(server.home)
    assert Path(result["codexHome"]).is_absolute()
    assert result["platformFamily"] == ("windows" if os.name == "nt" else "unix")
    expected_os = {"darwin": "macos", "win32": "windows"}.get(sys.platform, sys.platform)
    assert result["platformOs"] == expected_os
    assert client.skipped == []


async def test_codex_home_is_the_absolute_home_for_a_relative_home(tmp_path: Path) -> None:
    async with spawn_server("stdio", Path("relative-home"), cwd=tmp_path) as server:
        result = await initialize(server.stdio())
    assert result["codexHome"] == str(tmp_path / "relative-home")


async def test_originator_override_env_wins(tmp_path: Path) -> None:
    env = {"CODEX_INTERNAL_ORIGINATOR_OVERRIDE": "override_orig"}
    async with spawn_server("stdio", tmp_path / "home", env=env) as server:
        result = await initialize(server.stdio(), "vscode_like")
    assert result["userAgent"].startswith(f"override_orig/{CODEX_VERSION} ("), result
    assert result["userAgent"].endswith(" (vscode_like; 1.2.3)"), result


async def test_second_initialize_is_rejected_and_capabilities_stay(client: StdioClient) -> None:
    await initialize(client, experimentalApi=False)
    params = initialize_params("other", experimentalApi=True)
    reply = await client.request("initialize", params, request_id=2)
    assert reply == error(2, "Already initialized")
    assert list(reply) == ["error", "id"]
    assert list(reply["error"]) == ["code", "message"]
    # Capabilities are never re-negotiated.
    reply = await client.request(EXPERIMENTAL, {"value": "x"}, request_id=3)
    assert reply == error(3, f"{EXPERIMENTAL} requires experimentalApi capability")


async def test_request_before_initialize_is_not_initialized(client: StdioClient) -> None:
    await client.send({"method": "initialized"})  # before initialize: ignored
    assert await client.request(READINESS, request_id=1) == error(1, "Not initialized")
    reply = await client.request(EXPERIMENTAL, {"value": "x"}, request_id=2)
    assert reply == error(2, "Not initialized")
    await initialize(client)
    assert await client.request(READINESS, request_id=3) == {"id": 3, "result": READY}
    assert client.skipped == []


async def test_unknown_method_is_parsed_before_the_init_check(client: StdioClient) -> None:
    prefix = "Invalid request: unknown variant `nope/nope`, expected one of `initialize`, "
    before = await client.request("nope/nope", {"a": 1}, request_id=1)
    assert list(before) == ["error", "id"]
    assert before["id"] == 1
    assert before["error"]["code"] == -32600
    assert "data" not in before["error"]
    text = before["error"]["message"]
    assert text.startswith(prefix), text
    for name in ("initialize", READINESS, EXPERIMENTAL):  # experimental ones are listed too
        assert f"`{name}`" in text
    await initialize(client)
    after = await client.request("nope/nope", request_id=2)
    assert after == error(2, text)


async def test_initialize_params_errors_leave_the_session_uninitialized(
    client: StdioClient,
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
        await client.send({"id": n, "method": "initialize", **extra})
        assert await client.next_message() == error(n, f"Invalid request: {reason}"), extra
    assert await client.request(READINESS, request_id="x") == error("x", "Not initialized")
    await initialize(client)


async def test_invalid_client_name_is_rejected_without_data(client: StdioClient) -> None:
    reply = await client.request("initialize", initialize_params("bad\rname"), request_id=1)
    text = "Invalid clientInfo.name: 'bad\rname'. Must be a valid HTTP header value."
    assert reply == error(1, text)
    assert "data" not in reply["error"]
    # The session stays uninitialized, and a good initialize still works.
    assert await client.request(READINESS, request_id=2) == error(2, "Not initialized")
    result = await initialize(client, "good_name")
    assert result["userAgent"].startswith(f"good_name/{CODEX_VERSION} ")


# -- the experimental gate -------------------------------------------------------------------


@pytest.mark.parametrize(
    "capabilities",
    [None, {"experimentalApi": False, "optOutNotificationMethods": None}],
)
async def test_experimental_method_requires_the_capability(
    client: StdioClient, capabilities: dict[str, Any] | None
) -> None:
    params: dict[str, Any] = {"clientInfo": {"name": "gate", "version": "0"}}
    if capabilities is not None:
        params["capabilities"] = capabilities
    assert "result" in await client.request("initialize", params)
    reply = await client.request(EXPERIMENTAL, {"value": "x"}, request_id=7)
    assert reply == error(7, f"{EXPERIMENTAL} requires experimentalApi capability")
    assert "data" not in reply["error"]


async def test_experimental_method_with_the_capability_is_echoed(client: StdioClient) -> None:
    await initialize(client, experimentalApi=True)
    reply = await client.request(EXPERIMENTAL, {"value": "x"}, request_id=7)
    assert reply == {"id": 7, "result": {"echoed": "x"}}
    reply = await client.request(EXPERIMENTAL, {"value": "héllo ✓ 🎉"}, request_id=8)
    assert reply == {"id": 8, "result": {"echoed": "héllo ✓ 🎉"}}


# -- message shape and ids -------------------------------------------------------------------


async def test_jsonrpc_member_is_accepted_and_never_sent(client: StdioClient) -> None:
    params = initialize_params()
    reply = await request_with(client, 1, "initialize", params, jsonrpc="2.0")
    assert "result" in reply
    reply = await request_with(client, 2, READINESS, jsonrpc="2.0")
    assert reply == {"id": 2, "result": READY}
    reply = await request_with(client, 3, READINESS, jsonrpc="1.0", extra={"ignored": 1})
    assert reply == {"id": 3, "result": READY}
    reply = await request_with(client, 4, "nope/nope", jsonrpc="2.0")
    assert reply["error"]["code"] == -32600
    await client.send({"jsonrpc": "2.0", "method": "initialized"})
    assert await client.request(READINESS, request_id=5) == {"id": 5, "result": READY}
    assert b'"jsonrpc"' not in client.stdout  # (the home path holds the test's name)
    assert client.skipped == []


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


async def test_ids_are_echoed_unchanged(client: StdioClient) -> None:
    await initialize(client)
    for request_id in IDS:
        reply = await client.request(READINESS, request_id=request_id)
        assert list(reply) == ["id", "result"]
        assert same_id(reply["id"], request_id), (reply, request_id)
        reply = await client.request("nope/nope", request_id=request_id)
        assert list(reply) == ["error", "id"]
        assert same_id(reply["id"], request_id), (reply, request_id)
    assert client.skipped == []
    # Non-ASCII goes out as raw UTF-8, not \u escapes.
    assert "идентификатор ✓ 🎉".encode() in client.stdout
    assert b"\\u" not in client.stdout


async def test_many_ids_in_one_write_keep_their_types(client: StdioClient) -> None:
    await initialize(client)
    await client.write(b"".join(request_line(i, READINESS) for i in IDS))
    replies = [await client.next_message() for _ in IDS]
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
    client: StdioClient, initialized: bool
) -> None:
    if initialized:
        await initialize(client)
    for n, line in enumerate(GARBAGE):
        await client.write(line + b"\n")
        probe = f"probe-{n}"
        await client.write(request_line(probe, READINESS))
        expected = (
            {"id": probe, "result": READY} if initialized else error(probe, "Not initialized")
        )
        # The probe's reply is the very next thing on stdout: the garbage got nothing.
        assert await client.next_message() == expected, line
    if not initialized:
        await initialize(client)
    assert await client.request(READINESS, request_id="last") == {"id": "last", "result": READY}
    assert client.skipped == []


# -- framing ---------------------------------------------------------------------------------


async def test_crlf_line_endings(client: StdioClient) -> None:
    init = request_line(1, "initialize", initialize_params())
    await client.write(init[:-1] + b"\r\n")
    assert "result" in await client.next_message()
    await client.write(request_line(2, READINESS)[:-1] + b"\r\n")
    assert await client.next_message() == {"id": 2, "result": READY}
    # Mixed endings in one write.
    data = request_line(3, READINESS)[:-1] + b"\r\n" + request_line(4, READINESS)
    await client.write(data + request_line(5, READINESS)[:-1] + b"\r\n")
    replies = [await client.next_message() for _ in range(3)]
    assert sorted(r["id"] for r in replies) == [3, 4, 5]
    assert all(r["result"] == READY for r in replies)


async def test_many_requests_in_one_write(client: StdioClient, nursery: trio.Nursery) -> None:
    await initialize(client, experimentalApi=True)
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
    nursery.start_soon(client.write, bytes(data))
    replies = [await client.next_message() for _ in range(count)]
    assert sorted(r["id"] for r in replies) == list(range(count))
    for reply in replies:
        n = reply["id"]
        if n % 3 == 0:
            assert reply == {"id": n, "result": READY}
        elif n % 3 == 1:
            assert reply == {"id": n, "result": {"echoed": f"v{n}"}}
        else:
            assert reply["error"]["code"] == -32600


async def test_one_request_split_across_writes(client: StdioClient) -> None:
    await initialize(client, experimentalApi=True)
    # A byte at a time.
    for byte in request_line("small", READINESS):
        await client.write(bytes([byte]))
    assert await client.next_message() == {"id": "small", "result": READY}
    # A line far bigger than a pipe buffer, so the server must read it in many pieces; the
    # writes also split a UTF-8 sequence and the `\r\n`.
    value = "é" * 400_000 + "end"
    line = request_line("big", EXPERIMENTAL, {"value": value})[:-1] + b"\r\n"
    middle = line.index("é".encode()) + 250_001  # inside a two-byte sequence
    assert line[middle - 1 : middle] == b"\xc3"
    for piece in (line[:middle], line[middle:-1], line[-1:]):
        await client.write(piece)
    assert await client.next_message() == {"id": "big", "result": {"echoed": value}}
    assert await client.request(READINESS, request_id="after") == {"id": "after", "result": READY}


async def test_last_line_without_newline_is_answered_at_eof(
    server: Server, client: StdioClient
) -> None:
    await initialize(client)
    await client.write(request_line("tail", READINESS)[:-1])
    await client.close_stdin()
    assert await client.read_to_close() == [{"id": "tail", "result": READY}]
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
    done = await run_to_exit("stdio", tmp_path / "home", stdin=bytes(data))
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    replies = parse_stdout(done.stdout)
    assert len(replies) == 50
    assert sorted(map(repr, (r["id"] for r in replies))) == sorted(map(repr, ids))
    assert all("result" in r for r in replies), replies


async def test_stdin_eof_without_any_input_exits_zero(server: Server, client: StdioClient) -> None:
    await client.close_stdin()
    assert await client.read_to_close() == []
    assert await server.wait() == 0


async def test_stdin_eof_after_traffic_exits_zero(server: Server, client: StdioClient) -> None:
    await initialize(client)
    await client.write(b"{bad\n" + request_line(1, READINESS) + request_line(2, "nope/nope"))
    await client.close_stdin()
    replies = await client.read_to_close()
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
    done = await run_to_exit(
        "stdio", tmp_path / "home", "--log-level", "DEBUG", stdin=data, env=env
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


async def test_initialized_notification_gets_no_reply(client: StdioClient) -> None:
    await initialize(client)
    for notification in (
        {"method": "initialized"},
        {"method": "initialized", "params": {}},
        {"method": "initialized", "params": None},
        {"method": "initialized", "params": {"anything": [1, 2]}},
    ):
        await client.send(notification)
        probe = json.dumps(notification)
        await client.write(request_line(probe, READINESS))
        assert await client.next_message() == {"id": probe, "result": READY}


# -- command line ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("app-server", "--listen", "stdio://"),
        ("app-server",),  # stdio is the default transport
    ],
)
async def test_app_server_subcommand_serves_stdio(tmp_path: Path, args: tuple[str, ...]) -> None:
    home = tmp_path / "home"
    argv = [*APPSERVER, *args, "--home", os.fspath(home)]
    async with spawn_server("stdio", home, argv=argv) as server:
        client = server.stdio()
        result = await initialize(client, "subcommand")
        assert result["codexHome"] == str(server.home)
        assert await client.request(READINESS, request_id=1) == {"id": 1, "result": READY}
        await client.close_stdin()
        assert await client.read_to_close() == []
        assert await server.wait() == 0
