"""Hardening against hostile or broken peers, end to end (issue 13): frame headers announcing
more than the limit, oversized and repeated auth headers, connections that never initialize.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from tests.e2e.raw_frames import TEXT, ws_frame
from tests.e2e.transports import (
    POLL_SECONDS,
    SOCKET_KINDS,
    TIMEOUT,
    Kind,
    RawWebSocketClient,
    Server,
    open_client,
    server_env,
    serving,
    short_tempdir,
    spawn_server,
)

MESSAGE_TOO_BIG = 1009


@pytest.fixture
def home() -> Iterator[Path]:
    with short_tempdir("ash-") as tmp:
        yield tmp / "home"


async def ready_websocket(server: Server) -> RawWebSocketClient:
    client = await server.raw_websocket()
    await client.initialize()
    return client


def masked_header(opcode: int, announced: int, *, fin: bool = True) -> bytes:
    """A client frame header (64-bit length form) with a zero mask, and no payload."""
    return bytes([(0x80 if fin else 0) | opcode, 0x80 | 127]) + struct.pack("!Q", announced)


@pytest.mark.parametrize("transport", SOCKET_KINDS)
@pytest.mark.parametrize(
    "frames",
    [
        [masked_header(TEXT, 2**62) + b"\0\0\0\0"],
        # A fragmented message whose second fragment takes it over the limit.
        [
            ws_frame(TEXT, b'{"a":1, ', fin=False),
            masked_header(0, 64 * 1024 * 1024) + b"\0\0\0\0",
        ],
    ],
    ids=["one-frame", "continuation"],
)
async def test_a_frame_header_announcing_too_much_closes_at_once_with_1009(
    transport: Kind, home: Path, frames: list[bytes]
) -> None:
    """Issue 13 item 4: closed as soon as the header is read, before any payload arrives."""
    async with serving(transport, home) as server:
        bystander = await ready_websocket(server)
        client = await ready_websocket(server)
        for frame in frames:
            await client.send_raw(frame)
        # No payload follows; the server must not wait for it.
        assert await client.wait_closed(within=5) == MESSAGE_TOO_BIG
        await bystander.assert_ready()
        server.assert_alive()


# -- message sizes against the outbound byte budget (item 5) ---------------------------------


@pytest.mark.parametrize("kind", SOCKET_KINDS)
async def test_a_completion_larger_than_the_byte_budget_never_cuts_a_reader(
    kind: Kind, home: Path
) -> None:
    """Issue 13 item 5: a client that reads everything gets the whole turn, however big the
    answer is; the notifications carry capped text, thread/read the full text."""
    budget = 8 * 1024 * 1024
    text = "z" * (6 * 1024 * 1024)
    async with (
        spawn_server(kind, home, "--outbound-queue-bytes", str(budget)) as server,
        open_client(kind, server) as client,
    ):
        await client.initialize()
        started = await client.call("thread/start", {"cwd": "/tmp"})
        thread_id = started["thread"]["id"]
        await client.call(
            "turn/start",
            {"threadId": thread_id, "input": [{"type": "text", "text": text}]},
        )
        completed = (await client.wait_for("turn/completed"))["params"]
        assert completed["turn"]["status"] == "completed"
        answer = [i for i in completed["turn"]["items"] if i["type"] == "agentMessage"][-1]
        assert answer["text"].startswith("You said: zzz")
        assert "thread/read returns the full text" in answer["text"]
        read = await client.call("thread/read", {"threadId": thread_id, "includeTurns": True})
        stored = [i for i in read["thread"]["turns"][-1]["items"] if i["type"] == "agentMessage"]
        assert stored[-1]["text"] == f"You said: {text}"


# -- connections that never initialize (item 8) ----------------------------------------------


@pytest.mark.parametrize("kind", SOCKET_KINDS)
async def test_a_connection_that_never_initializes_is_closed_after_the_deadline(
    kind: Kind, home: Path
) -> None:
    async with (
        spawn_server(kind, home, "--initialize-timeout", "0.5") as server,
        open_client(kind, server, "initialized") as initialized,
        open_client(kind, server, "silent") as silent,
    ):
        await initialized.initialize()
        with trio.fail_after(5):
            assert await silent.read_to_close() == []
        # The initialized client, connected just as long, is still served.
        assert await initialized.call("windowsSandbox/readiness") == {"status": "notConfigured"}


# -- what the operator reads (item 14) -------------------------------------------------------


@pytest.mark.parametrize("kind", SOCKET_KINDS)
async def test_connections_are_logged_with_transport_and_peer(kind: Kind, home: Path) -> None:
    async with spawn_server(kind, home) as server:
        async with open_client(kind, server) as client:
            await client.initialize()
        peer = rf"pid {os.getpid()} uid {os.getuid()}" if kind == "unix" else r"127\.0\.0\.1:\d+"
        origin = "unix" if kind == "unix" else "websocket"
        opened = re.compile(rf"connection (\d+) opened: {origin} from {peer}")
        closed = re.compile(rf"connection (\d+) closed: {origin} from {peer}, after [\d.]+ s")
        with trio.fail_after(TIMEOUT):
            while not (opened.search(server.stderr_text) and closed.search(server.stderr_text)):
                await trio.sleep(POLL_SECONDS)  # the server's stderr is read concurrently


# -- metrics (item 15) ---------------------------------------------------------------------


async def http_get(server: Server, path: str, *headers: str) -> bytes:
    host, port = server.url.removeprefix("ws://").rstrip("/").rsplit(":", 1)
    stream = await trio.open_tcp_stream(host, int(port))
    async with stream:
        head = "".join(f"{h}\r\n" for h in (f"GET {path} HTTP/1.1", "Host: x", *headers))
        await stream.send_all(f"{head}\r\n".encode())
        response = b""
        with trio.fail_after(TIMEOUT):
            while chunk := await stream.receive_some():
                response += chunk
        return response


async def test_metrics_are_served_on_the_ws_listener(home: Path) -> None:
    async with spawn_server("ws", home) as server:
        async with open_client("ws", server) as client:
            await client.initialize()
            await client.call("windowsSandbox/readiness")
            response = await http_get(server, "/metrics")
        assert response.startswith(b"HTTP/1.1 200 "), response[:200]
        assert b"content-type: text/plain; version=0.0.4" in response.lower()
        body = response.split(b"\r\n\r\n", 1)[1].decode()
        assert 'appserver_connections{origin="websocket"} 1.0' in body
        readiness = 'appserver_request_duration_seconds_count{method="windowsSandbox/readiness"}'
        assert f"{readiness} 1.0" in body
        refused = await http_get(server, "/metrics", "Origin: https://evil.example")
        assert refused.startswith(b"HTTP/1.1 403 "), refused[:200]


# -- where scripts find the server (item 13) --------------------------------------------------


@pytest.mark.parametrize("kind", SOCKET_KINDS)
async def test_the_listening_address_is_written_where_a_script_can_read_it(
    kind: Kind, home: Path
) -> None:
    address_file = home.parent / "address"
    async with spawn_server(kind, home, "--address-file", os.fspath(address_file)) as server:
        written = (await trio.Path(address_file).read_text()).strip()
        if kind == "ws":
            assert written == server.url.rstrip("/")
        else:
            assert written == f"unix://{server.socket_path}"
        async with open_client(kind, server) as client:
            await client.initialize()
        assert await server.stop() == 0
    assert not await trio.Path(address_file).exists()


async def test_the_unix_banner_names_an_appserver_a_shell_can_run(home: Path) -> None:
    async with spawn_server("unix", home) as server:
        match = re.search(r"JSON lines: +(.+) attach --sock ", server.stderr_text)
        assert match is not None, server.stderr_text
        program = match.group(1).split()[0]
        assert shutil.which(program, path=server_env().get("PATH")) is not None, program
