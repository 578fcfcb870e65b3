"""command/exec end to end over every transport: streaming, stdin, a PTY, timeouts,
termination, processes killed with their connection, and the fail-closed sandbox."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.e2e.transports import (
    KINDS,
    TIMEOUT,
    Client,
    Kind,
    open_client,
    short_tempdir,
    spawn_server,
)
from tests.sandbox_checks import require_bwrap, running_with

pytestmark = pytest.mark.e2e

DANGER = {"type": "dangerFullAccess"}
DELTA = "command/exec/outputDelta"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def next_output(client: Client, process_id: str) -> bytes:
    message = await client.wait_for(DELTA, lambda p: p["processId"] == process_id)
    return base64.b64decode(message["params"]["deltaBase64"])


def streamed(client: Client, process_id: str, stream: str = "stdout") -> bytes:
    return b"".join(
        base64.b64decode(m["params"]["deltaBase64"])
        for m in client.received
        if m.get("method") == DELTA
        and m["params"]["processId"] == process_id
        and m["params"]["stream"] == stream
    )


async def gone(marker: str, within: float = TIMEOUT) -> None:
    """Wait (bounded) until no live process carries `marker`."""
    with trio.fail_after(within):
        while running_with(marker):
            await trio.sleep(0.02)


@pytest.mark.parametrize("kind", KINDS)
async def test_streaming_with_stdin(kind: Kind, tmp_path: Path) -> None:
    async with (
        spawn_server(kind, tmp_path / "home") as server,
        open_client(kind, server) as client,
    ):
        await client.initialize()
        request_id = await client.send_request(
            "command/exec",
            {
                "command": ["sh", "-c", "echo ready; cat; echo bye >&2"],
                "processId": "cat-1",
                "streamStdin": True,
                "streamStdoutStderr": True,
                "cwd": str(tmp_path),
            },
        )
        assert await next_output(client, "cat-1") == b"ready\n"
        await client.call(
            "command/exec/write", {"processId": "cat-1", "deltaBase64": b64(b"ping\n")}
        )
        assert await next_output(client, "cat-1") == b"ping\n"
        await client.call("command/exec/write", {"processId": "cat-1", "closeStdin": True})
        reply = await client.reply_to(request_id)
        assert reply["result"] == {"exitCode": 0, "stdout": "", "stderr": ""}
        assert streamed(client, "cat-1", "stderr") == b"bye\n"


@pytest.mark.parametrize("kind", KINDS)
async def test_tty_with_resize(kind: Kind, tmp_path: Path) -> None:
    async with (
        spawn_server(kind, tmp_path / "home") as server,
        open_client(kind, server) as client,
    ):
        await client.initialize()
        request_id = await client.send_request(
            "command/exec",
            {
                "command": [
                    "sh",
                    "-c",
                    "stty size; read line; stty size; echo got:$line",
                ],
                "processId": "tty-1",
                "tty": True,
                "size": {"rows": 25, "cols": 80},
                "sandboxPolicy": DANGER,
                "cwd": str(tmp_path),
            },
        )
        assert await next_output(client, "tty-1") == b"25 80\r\n"
        await client.call(
            "command/exec/resize",
            {"processId": "tty-1", "size": {"rows": 50, "cols": 132}},
        )
        await client.call("command/exec/write", {"processId": "tty-1", "deltaBase64": b64(b"x\n")})
        reply = await client.reply_to(request_id)
        assert reply["result"]["exitCode"] == 0
        assert streamed(client, "tty-1").endswith(b"50 132\r\ngot:x\r\n")


@pytest.mark.parametrize("kind", KINDS)
async def test_timeout_and_terminate(kind: Kind, tmp_path: Path) -> None:
    marker = f"41.{uuid.uuid4().int % 10**8}"
    async with (
        spawn_server(kind, tmp_path / "home") as server,
        open_client(kind, server) as client,
    ):
        await client.initialize()
        timed = await client.call(
            "command/exec",
            {"command": ["sleep", marker], "timeoutMs": 300, "cwd": str(tmp_path)},
        )
        assert timed["exitCode"] == 124
        await gone(marker)
        request_id = await client.send_request(
            "command/exec",
            {
                "command": ["sh", "-c", f"echo up; exec sleep {marker}"],
                "processId": "t",
                "streamStdoutStderr": True,
                "disableTimeout": True,
                "cwd": str(tmp_path),
            },
        )
        assert await next_output(client, "t") == b"up\n"
        assert await client.call("command/exec/terminate", {"processId": "t"}) == {}
        reply = await client.reply_to(request_id)
        assert reply["result"]["exitCode"] != 0
        await gone(marker)


@pytest.mark.parametrize("kind", KINDS)
async def test_processes_die_with_their_connection(kind: Kind, tmp_path: Path) -> None:
    marker = f"42.{uuid.uuid4().int % 10**8}"
    params: dict[str, Any] = {
        "command": ["sh", "-c", f"echo up; sleep {marker} & wait"],
        "processId": "orphan",
        "streamStdoutStderr": True,
        "disableTimeout": True,
        "cwd": str(tmp_path),
    }
    async with spawn_server(kind, tmp_path / "home") as server:
        async with open_client(kind, server) as client:
            await client.initialize()
            await client.send_request("command/exec", params)
            assert await next_output(client, "orphan") == b"up\n"
            assert running_with(marker)
        # stdio: at the end of input, requests still running get a bounded drain before the
        # connection (and its processes) goes, ~10 s here; sockets close at once.
        await gone(marker, within=TIMEOUT * 4 if kind == "stdio" else TIMEOUT)
        if kind == "stdio":
            assert await server.wait_exit() == 0


@pytest.mark.parametrize("kind", KINDS)
async def test_confined_commands_are_refused_without_bubblewrap(
    kind: Kind, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APPSERVER_BWRAP", str(tmp_path / "no-bwrap"))
    params = {"command": ["touch", "made"], "cwd": str(tmp_path)}
    async with (
        spawn_server(kind, tmp_path / "home") as server,
        open_client(kind, server) as client,
    ):
        await client.initialize()
        reply = await client.request("command/exec", params)
        assert reply["error"]["code"] == -32603
        assert "sandbox unavailable" in reply["error"]["message"]
        assert "--dangerously-allow-unsandboxed" in reply["error"]["message"]
        assert not (tmp_path / "made").exists()
    async with (
        spawn_server(kind, tmp_path / "home2", "--dangerously-allow-unsandboxed") as server,
        open_client(kind, server) as client,
    ):
        await client.initialize()
        assert (await client.call("command/exec", params))["exitCode"] == 0
        assert (tmp_path / "made").exists()
        assert "UNCONFINED" in server.stderr_text


@pytest.mark.parametrize("kind", KINDS)
async def test_read_only_by_default(kind: Kind, tmp_path: Path) -> None:
    await require_bwrap()
    async with (
        spawn_server(kind, tmp_path / "home") as server,
        open_client(kind, server) as client,
    ):
        await client.initialize()
        result = await client.call(
            "command/exec", {"command": ["touch", "made"], "cwd": str(tmp_path)}
        )
        assert result["exitCode"] != 0
        assert "Read-only file system" in result["stderr"]
        assert not (tmp_path / "made").exists()


async def test_a_confined_command_cannot_reach_the_control_socket(
    tmp_path: Path,
) -> None:
    await require_bwrap()
    async with (
        spawn_server("unix", tmp_path / "home") as server,
        open_client("unix", server) as client,
    ):
        await client.initialize()
        probe = (
            "import socket, sys, os\n"
            "print(sorted(os.listdir(sys.argv[2])))\n"
            "s = socket.socket(socket.AF_UNIX)\n"
            "s.connect(sys.argv[1])\n"
        )
        argv = ["python3", "-c", probe, str(server.socket_path), str(tmp_path / "home")]
        confined = await client.call(
            "command/exec",
            {
                "command": argv,
                "cwd": str(tmp_path),
                "sandboxPolicy": {"type": "workspaceWrite"},
            },
        )
        assert confined["exitCode"] != 0
        assert confined["stdout"] == "[]\n"
        unconfined = await client.call(
            "command/exec",
            {"command": argv, "cwd": str(tmp_path), "sandboxPolicy": DANGER},
        )
        assert unconfined["exitCode"] == 0
        assert "state.sqlite" in unconfined["stdout"]


async def test_confined_commands_run_when_the_socket_is_the_homes_own(tmp_path: Path) -> None:
    """`--listen unix://` puts the socket inside the home: hiding the home covers it (bwrap
    cannot mount over a path inside the read-only tmpfs that hides the home)."""
    await require_bwrap()
    with short_tempdir() as short:
        await _confined_commands_with_the_home_socket(short / "home", tmp_path)


async def _confined_commands_with_the_home_socket(home: Path, tmp_path: Path) -> None:
    async with (
        spawn_server("unix", home, home_socket=True) as server,
        open_client("unix", server) as client,
    ):
        await client.initialize()
        probe = "import os, sys; print(sorted(os.listdir(sys.argv[1])))"
        for policy in ({"type": "readOnly"}, {"type": "workspaceWrite"}):
            result = await client.call(
                "command/exec",
                {
                    "command": ["python3", "-c", probe, str(home)],
                    "cwd": str(tmp_path),
                    "sandboxPolicy": policy,
                },
            )
            assert result == {"exitCode": 0, "stdout": "[]\n", "stderr": ""}, policy
