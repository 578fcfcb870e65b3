"""Shutdown on signals, against the real process over ws (codex-source-spec §10.10).

First SIGTERM/SIGINT: stop accepting, let the running turn finish, then exit 0. A second
SIGTERM/SIGINT forces (exit 0). SIGHUP drains without a deadline and repeating it never forces.
`--drain-timeout` bounds the wait.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.e2e.transports import TIMEOUT, Client, open_client, spawn_server

pytestmark = pytest.mark.e2e

PROMPTLY = 3.0
FORCEABLE = [signal.SIGINT, signal.SIGTERM]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


async def start_command_turn(client: Client, cwd: Path, command: str) -> tuple[str, str]:
    """A thread that runs commands without asking, and a turn running `command` in it."""
    await client.initialize()
    started = await client.call("thread/start", {"cwd": str(cwd), "approvalPolicy": "never"})
    thread_id: str = started["thread"]["id"]
    text: list[dict[str, Any]] = [{"type": "text", "text": f"$ {command}"}]
    turn = await client.call("turn/start", {"threadId": thread_id, "input": text})
    await client.wait_for("item/started", lambda p: p["item"]["type"] == "commandExecution")
    return thread_id, turn["turn"]["id"]


async def turn_status(home: Path, thread_id: str) -> str:
    async with spawn_server("ws", home) as server, open_client("ws", server) as client:
        await client.initialize()
        read = await client.call("thread/read", {"threadId": thread_id, "includeTurns": True})
        status: str = read["thread"]["turns"][-1]["status"]
        return status


@pytest.mark.parametrize("signum", FORCEABLE, ids=lambda s: s.name)
async def test_first_signal_waits_for_the_running_turn_before_exit(
    signum: signal.Signals, home: Path, tmp_path: Path
) -> None:
    async with spawn_server("ws", home) as server, open_client("ws", server) as client:
        thread_id, _ = await start_command_turn(client, tmp_path, "sleep 1")
        server.send_signal(signum)
        await server.wait_not_accepting()
        assert server.returncode is None, f"exited with a turn running: {server.describe()}"
        rest = await client.read_to_close(within=TIMEOUT)
        statuses = [
            m["params"]["turn"]["status"] for m in rest if m.get("method") == "turn/completed"
        ]
        assert statuses == ["completed"], rest
        assert await server.wait_exit(TIMEOUT) == 0, server.describe()
    assert await turn_status(home, thread_id) == "completed"


@pytest.mark.parametrize("signum", FORCEABLE, ids=lambda s: s.name)
async def test_second_signal_forces_exit_while_a_turn_runs(
    signum: signal.Signals, home: Path, tmp_path: Path
) -> None:
    async with spawn_server("ws", home) as server, open_client("ws", server) as client:
        thread_id, _ = await start_command_turn(client, tmp_path, "sleep 30")
        server.send_signal(signum)
        await server.wait_not_accepting()
        assert server.returncode is None, server.describe()
        server.send_signal(signum)
        assert await server.wait_exit(PROMPTLY) == 0, server.describe()
    assert await turn_status(home, thread_id) == "interrupted"


async def test_repeated_sighup_keeps_waiting_for_the_running_turn(
    home: Path, tmp_path: Path
) -> None:
    async with spawn_server("ws", home) as server, open_client("ws", server) as client:
        thread_id, _ = await start_command_turn(client, tmp_path, "sleep 2")
        server.send_signal(signal.SIGHUP)
        await server.wait_not_accepting()
        server.send_signal(signal.SIGHUP)
        # The second SIGHUP is handled at once; the turn still has more than a second to run.
        with trio.move_on_after(0.5):
            await server.process.wait()
        assert server.returncode is None, f"SIGHUP forced an exit: {server.describe()}"
        rest = await client.read_to_close(within=TIMEOUT)
        assert any(m.get("method") == "turn/completed" for m in rest), rest
        assert await server.wait_exit(TIMEOUT) == 0, server.describe()
    assert await turn_status(home, thread_id) == "completed"


async def test_drain_timeout_bounds_the_wait(home: Path, tmp_path: Path) -> None:
    async with (
        spawn_server("ws", home, "--drain-timeout", "0.5") as server,
        open_client("ws", server) as client,
    ):
        thread_id, _ = await start_command_turn(client, tmp_path, "sleep 30")
        server.send_signal(signal.SIGTERM)
        assert await server.wait_exit(PROMPTLY) == 0, server.describe()
    assert await turn_status(home, thread_id) == "interrupted"


async def start_turn_awaiting_approval(client: Client, cwd: Path) -> tuple[str, str]:
    """A turn that runs until someone answers its command approval (nobody will)."""
    await client.initialize()
    started = await client.call("thread/start", {"cwd": str(cwd)})
    thread_id: str = started["thread"]["id"]
    text: list[dict[str, Any]] = [{"type": "text", "text": "$ true"}]
    turn = await client.call("turn/start", {"threadId": thread_id, "input": text})
    await client.wait_for("item/commandExecution/requestApproval")
    return thread_id, turn["turn"]["id"]


async def interrupted_before_close(client: Client, turn_id: str) -> None:
    rest = await client.read_to_close(within=TIMEOUT)
    completed = [m["params"]["turn"] for m in rest if m.get("method") == "turn/completed"]
    assert [(t["id"], t["status"]) for t in completed] == [(turn_id, "interrupted")], rest


async def test_turns_cut_short_by_the_drain_deadline_are_completed_for_subscribers(
    home: Path, tmp_path: Path
) -> None:
    """Issue 13 item 7: the subscriber hears `turn/completed` (interrupted) before it is
    disconnected, and that is what a restart reads back."""
    async with (
        spawn_server("ws", home, "--drain-timeout", "0.5") as server,
        open_client("ws", server) as client,
    ):
        thread_id, turn_id = await start_turn_awaiting_approval(client, tmp_path)
        server.send_signal(signal.SIGTERM)
        await interrupted_before_close(client, turn_id)
        assert await server.wait_exit(PROMPTLY) == 0, server.describe()
    assert await turn_status(home, thread_id) == "interrupted"


async def test_a_forced_shutdown_completes_running_turns_for_subscribers(
    home: Path, tmp_path: Path
) -> None:
    async with spawn_server("ws", home) as server, open_client("ws", server) as client:
        _, turn_id = await start_turn_awaiting_approval(client, tmp_path)
        server.send_signal(signal.SIGTERM)
        await server.wait_not_accepting()
        server.send_signal(signal.SIGTERM)
        await interrupted_before_close(client, turn_id)
        assert await server.wait_exit(PROMPTLY) == 0, server.describe()
