"""The lean `attach` relay: joins without trio or the server, and relays whatever stdin is."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from appserver.connection import Connection, FrameTransport, Origin, QueueLimits, run_connection
from appserver.relay.attach import Lines
from appserver.transport.control import serve_control_client
from appserver.transport.http_front import FrontPolicy
from appserver.transport.unix import bind_listener
from appserver.wire.limits import MAX_MESSAGE_BYTES
from tests.harness import initialize_params, make_processor

REQUESTS = (
    json.dumps({"id": 1, "method": "initialize", "params": initialize_params("lean")})
    + "\n"
    + json.dumps({"id": "two", "method": "windowsSandbox/readiness"})
    + "\r\n"
    + "\n"  # blank lines are skipped
    + json.dumps({"id": 3, "method": "windowsSandbox/readiness"})  # no final newline
).encode()

#: Runs attach in this interpreter, then reports which modules it had imported.
PROBE = (
    "import sys\n"
    "from appserver.cli import main\n"
    "code = main(['attach', '--sock', sys.argv[1]])\n"
    "loaded = [m for m in sys.modules if m.split('.')[0] in ('trio', 'wsproto', 'h11', 'orjson') "
    "or m in ('appserver.server', 'appserver.processor', 'trio_websocket')]\n"
    "print('LOADED', loaded, file=sys.stderr)\n"
    "sys.exit(code)\n"
)


@pytest.fixture
async def server(nursery: trio.Nursery) -> AsyncIterator[Path]:
    """A control socket served by the real processor (stateless methods only)."""
    with tempfile.TemporaryDirectory(prefix="lean-", dir="/tmp") as name:
        path = Path(name) / "s.sock"
        processor = make_processor()
        listener = bind_listener(path)

        async def handle(stream: trio.SocketStream) -> None:
            async def serve(frames: FrameTransport) -> None:
                connection = Connection(Origin.UNIX, disconnectable=True, limits=QueueLimits(64))
                await run_connection(connection, frames, processor)

            await serve_control_client(stream, FrontPolicy(), serve)

        nursery.start_soon(trio.serve_listeners, handle, [listener])
        yield path


def replies(stdout: bytes) -> list[object]:
    return [json.loads(line)["id"] for line in stdout.splitlines()]


async def test_attach_relays_and_exits_without_importing_trio_websockets_or_the_server(
    server: Path,
) -> None:
    with trio.fail_after(20):
        result = await trio.run_process(
            [sys.executable, "-c", PROBE, os.fspath(server)],
            stdin=REQUESTS,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    assert result.returncode == 0, result.stderr.decode()
    assert replies(result.stdout) == [1, "two", 3]
    assert b"LOADED []" in result.stderr, result.stderr.decode()


async def test_attach_reads_a_regular_file_as_stdin(server: Path, tmp_path: Path) -> None:
    requests = tmp_path / "requests.jsonl"
    requests.write_bytes(REQUESTS)
    with requests.open("rb") as stdin, trio.fail_after(20):
        result = await trio.run_process(
            [sys.executable, "-m", "appserver", "attach", "--sock", os.fspath(server)],
            stdin=stdin,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    assert result.returncode == 0, result.stderr.decode()
    assert replies(result.stdout) == [1, "two", 3]


def test_lines_split_anywhere_come_out_whole() -> None:
    lines = Lines()
    out = lines.feed(b'{"a":1}\r\n{"b"') + lines.feed(b":2}\n\n{") + lines.feed(b"}")
    assert out == [b'{"a":1}', b'{"b":2}', b""]
    assert lines.end() == [b"{}"]
    assert not lines.oversized


def test_a_line_over_the_limit_ends_the_input() -> None:
    lines = Lines()
    assert lines.feed(b"{}\n" + b"x" * (MAX_MESSAGE_BYTES + 1)) == [b"{}"]
    assert lines.oversized
