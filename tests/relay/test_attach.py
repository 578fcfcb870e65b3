"""`appserver attach` against a fake control socket whose server stops answering."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from appserver.connection import FrameTransport
from appserver.transport.control import serve_control_client
from appserver.transport.http_front import FrontPolicy
from appserver.transport.unix import bind_listener

ATTACH = [sys.executable, "-m", "appserver", "attach", "--sock"]


@pytest.fixture
async def mute_server(nursery: trio.Nursery) -> AsyncIterator[Path]:
    """A control socket that reads one message, answers nothing and closes the connection."""
    with tempfile.TemporaryDirectory(prefix="att-", dir="/tmp") as name:
        path = Path(name) / "s.sock"
        listener = bind_listener(path)

        async def handle(stream: trio.SocketStream) -> None:
            async def serve(frames: FrameTransport) -> None:
                await frames.receive_frame()

            await serve_control_client(stream, FrontPolicy(), serve)

        nursery.start_soon(trio.serve_listeners, handle, [listener])
        yield path


async def test_attach_exits_1_when_the_server_closes_with_requests_unanswered(
    mute_server: Path,
) -> None:
    request = b'{"id":1,"method":"initialize","params":{"clientInfo":{"name":"a","version":"1"}}}\n'
    with trio.fail_after(10):
        result = await trio.run_process(
            [*ATTACH, os.fspath(mute_server)],
            stdin=request,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    assert result.returncode == 1, result
    assert result.stdout == b""
    assert b"Error: the server closed the connection with 1 request(s) unanswered" in (
        result.stderr
    )


async def test_attach_exits_0_when_nothing_it_forwarded_is_left_unanswered(
    mute_server: Path,
) -> None:
    with trio.fail_after(10):
        result = await trio.run_process(
            [*ATTACH, os.fspath(mute_server)],
            stdin=b'{"method":"initialized"}\n',
            capture_stderr=True,
            check=False,
            stdout=subprocess.DEVNULL,
        )
    assert result.returncode == 0, result
