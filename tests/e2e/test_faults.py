"""Faults around the real server: crashes during startup, a home it cannot write, a full disk
(README "The home and the singleton rule", "Threads, turns and agents"; codex-observed §4).

- SIGKILL at random points of startup, again and again on one home: the next start always
  serves and stops cleanly, and `state.sqlite` always passes `PRAGMA integrity_check`, with
  every thread a completed start wrote still there.
- A home that cannot be written (a read-only bind mount; `state.sqlite` a directory; a home
  under a regular file): exit 1 with one `Error: …` line, and the existing state is untouched.
- A full disk (a tiny tmpfs): errors are reported to the client (an error reply or a failed
  turn), the server keeps serving and recovers when space comes back, and the state passes
  the integrity check after a restart.

Mounting needs root (CAP_SYS_ADMIN); without it those tests skip and say so.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from appserver.app.store import integrity_check
from tests.e2e.transports import (
    KINDS,
    Client,
    Closed,
    run_to_exit,
    serving,
    short_tempdir,
    spawn_server,
)

pytestmark = pytest.mark.e2e

STATE = "state.sqlite"
#: Startup kills in the SIGKILL loop; each is followed by a full start, serve and stop.
KILLS = 20


@pytest.fixture
def tmp() -> Iterator[Path]:
    with short_tempdir("asx-") as path:
        yield path


def state_files(home: Path) -> list[Path]:
    return [home / f"{STATE}{suffix}" for suffix in ("", "-wal", "-shm", "-journal")]


def assert_intact(home: Path) -> None:
    database = home / STATE
    if database.exists():
        assert integrity_check(database) == "ok"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_one_error_line(result: subprocess.CompletedProcess[bytes], *needles: str) -> str:
    """Exit 1 and stderr is exactly one `Error: …` line (no traceback, no log noise)."""
    stderr = result.stderr.decode(errors="replace")
    assert result.returncode == 1, f"rc={result.returncode}\n{stderr}"
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("Error: "), stderr
    for needle in needles:
        assert needle in lines[0], stderr
    return lines[0]


async def start_thread(client: Client, **params: Any) -> str:
    reply = await client.request("thread/start", {"cwd": "/tmp", **params})
    assert "result" in reply, reply
    thread_id: str = reply["result"]["thread"]["id"]
    return thread_id


def completes(message: dict[str, Any], turn_id: str) -> bool:
    return bool(
        message.get("method") == "turn/completed" and message["params"]["turn"]["id"] == turn_id
    )


async def run_turn(client: Client, thread_id: str, text: str) -> dict[str, Any]:
    """Start a turn and wait for its `turn/completed`; the turn as completed, or the error
    reply if the turn could not start."""
    request_id = client.fresh_id()
    params = {"threadId": thread_id, "input": [{"type": "text", "text": text}]}
    reply = await client.request("turn/start", params, request_id=request_id)
    if "error" in reply:
        return reply
    turn_id = reply["result"]["turn"]["id"]
    for message in client.skipped:
        if completes(message, turn_id):
            return dict(message["params"]["turn"])
    while True:
        message = await client.next_message()
        if completes(message, turn_id):
            return dict(message["params"]["turn"])


# -- SIGKILL during startup ------------------------------------------------------------------


async def test_sigkill_at_random_points_of_startup_never_breaks_the_next_start(
    tmp: Path,
) -> None:
    home = tmp / "home"
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    # A first start creates the home; how long it takes to serve sets the kill window.
    began = time.monotonic()
    async with serving("unix", home) as server:
        ready_after = time.monotonic() - began
        client = await server.raw_websocket()
        await client.initialize()
        known = [await start_thread(client)]
        await client.aclose()
        assert await server.stop() == 0
    for iteration in range(KILLS):
        context = f"seed={seed} iteration={iteration}"
        if iteration % 5 == 3:
            # A fresh state file: this victim creates and migrates it.
            for path in state_files(home):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            known = []
        # A third of the kills within 150 ms of spawn (interpreter start, imports), the rest
        # late in startup, around the lock, SQLite, the bind and the first accept.
        late = iteration % 3 != 0
        delay = rng.uniform(0.5, 1.2) * ready_after if late else rng.uniform(0.0, 0.15)
        async with spawn_server(
            "unix", home, home_socket=True, ready=False, check_errors=False
        ) as victim:
            await trio.sleep(delay)  # not a synchronisation: the random point of the kill
            # Nothing makes a start on this home fail by itself.
            assert victim.alive, f"{context}: the start failed: {victim.describe()}"
            victim.process.kill()
            await victim.wait()
        try:
            assert_intact(home)
        except Exception as exc:
            raise AssertionError(f"{context}: state after the kill: {exc}") from exc
        async with serving("unix", home) as server:
            client = await server.raw_websocket()
            await client.initialize()
            for thread_id in known:
                reply = await client.request("thread/read", {"threadId": thread_id})
                assert reply.get("result", {}).get("thread", {}).get("id") == thread_id, (
                    context,
                    reply,
                )
            known.append(await start_thread(client))
            await client.aclose()
            assert await server.stop() == 0, f"{context}: {server.describe()}"
        assert_intact(home)


# -- a home that cannot be written -----------------------------------------------------------


def mount(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *args], capture_output=True, text=True, check=False)


def umount(path: Path) -> None:
    result = subprocess.run(["umount", os.fspath(path)], capture_output=True, check=False)
    if result.returncode != 0:
        subprocess.run(["umount", "-l", os.fspath(path)], capture_output=True, check=False)


@contextlib.contextmanager
def read_only_bind(path: Path) -> Iterator[None]:
    """`path` becomes a read-only view of itself (root ignores mode bits; a mount does not)."""
    result = mount("--bind", os.fspath(path), os.fspath(path))
    if result.returncode != 0:
        pytest.skip(f"cannot bind-mount (needs root / CAP_SYS_ADMIN): {result.stderr.strip()}")
    try:
        result = mount("-o", "remount,bind,ro", os.fspath(path))
        if result.returncode != 0:
            pytest.skip(f"cannot remount read-only: {result.stderr.strip()}")
        yield
    finally:
        umount(path)


@contextlib.contextmanager
def writable_bind(source: Path, target: Path) -> Iterator[None]:
    result = mount("--bind", os.fspath(source), os.fspath(target))
    assert result.returncode == 0, result.stderr
    try:
        yield
    finally:
        umount(target)


async def test_read_only_home_refuses_to_start_and_leaves_the_state_intact(tmp: Path) -> None:
    home = tmp / "home"
    async with serving("unix", home) as server:
        client = await server.raw_websocket()
        await client.initialize()
        thread_id = await start_thread(client)
        await client.aclose()
        assert await server.stop() == 0
    database = home / STATE
    assert integrity_check(database) == "ok"
    before = digest(database)
    with read_only_bind(home):
        # The whole home read-only: the startup lock cannot even be opened.
        for transport in KINDS:
            result = await run_to_exit(transport, home)
            assert_one_error_line(result, "Read-only file system")
        # A writable control directory over the read-only home: the lock works, SQLite fails.
        control = tmp / "control"
        control.mkdir(mode=0o700)
        with writable_bind(control, home / "app-server-control"):
            result = await run_to_exit("unix", home)
            assert_one_error_line(result, "failed to initialize sqlite state runtime under")
    assert integrity_check(database) == "ok"
    assert digest(database) == before
    # Writable again: it serves, with the thread it had.
    async with serving("unix", home) as server:
        client = await server.raw_websocket()
        await client.initialize()
        reply = await client.request("thread/read", {"threadId": thread_id})
        assert reply["result"]["thread"]["id"] == thread_id, reply
        await client.aclose()
        assert await server.stop() == 0


async def test_state_file_that_is_a_directory_refuses_to_start(tmp: Path) -> None:
    home = tmp / "home"
    (home / STATE).mkdir(parents=True)
    result = await run_to_exit("unix", home)
    assert_one_error_line(result, "failed to initialize sqlite state runtime under")
    assert (home / STATE).is_dir()
    assert list((home / STATE).iterdir()) == []


async def test_home_under_a_regular_file_refuses_to_start(tmp: Path) -> None:
    blocker = tmp / "file"
    blocker.write_bytes(b"not a directory\n")
    result = await run_to_exit("stdio", blocker / "home")
    assert_one_error_line(result, "Not a directory", os.fspath(blocker))
    assert blocker.read_bytes() == b"not a directory\n"


# -- a full disk -----------------------------------------------------------------------------


@contextlib.contextmanager
def tiny_tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir()
    result = mount("-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", os.fspath(path))
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root / CAP_SYS_ADMIN): {result.stderr.strip()}")
    try:
        yield path
    finally:
        umount(path)


def fill(directory: Path, leave: int = 0) -> Path:
    """Fill the file system with one file, then give back `leave` bytes."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        block = b"\0" * 4096
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, block)
        os.ftruncate(fd, max(0, os.fstat(fd).st_size - leave))
    finally:
        os.close(fd)
    return filler


def is_reported_failure(outcome: dict[str, Any]) -> bool:
    """An error reply, or a turn that completed `failed`."""
    if "status" in outcome:
        return bool(outcome["status"] == "failed")
    return "error" in outcome


async def test_full_disk_is_reported_and_survived(tmp: Path) -> None:
    with tiny_tmpfs(tmp / "disk", "1m") as disk:
        home = disk / "home"
        async with serving("unix", home) as server:
            client = await server.raw_websocket()
            await client.initialize()
            bystander = await server.raw_websocket()
            await bystander.initialize()
            threads = [await start_thread(client) for _ in range(3)]
            first = await run_turn(client, threads[0], "before the disk fills")
            assert first.get("status") == "completed", first
            outcomes: list[dict[str, Any]] = []

            async def attempt(thread_id: str, text: str) -> None:
                try:
                    with trio.fail_after(15):
                        outcome = await run_turn(client, thread_id, text)
                except Closed as exc:
                    with trio.move_on_after(5):
                        await server.process.wait()  # bounded: let a dying server finish
                    raise AssertionError(
                        f"the connection closed mid-turn: {server.describe()}"
                    ) from exc
                server.assert_alive()
                outcomes.append(outcome)
                # An error reply, or a turn that ends; a turn cut short by the disk fails.
                assert outcome.get("status", "reply") in ("reply", "completed", "failed"), outcome
                await bystander.assert_ready()

            # Full to the last byte: the turn cannot even be recorded as started.
            filler = fill(disk)
            await attempt(threads[1], "no room " * 100)
            # A little room: the turn starts, then its items do not fit.
            filler.unlink()
            filler = fill(disk, leave=48 * 1024)
            await attempt(threads[2], "x" * 200_000)
            # Nothing at all can be written, even for new threads.
            filler.unlink()
            filler = fill(disk)
            reply = await client.request("thread/start", {"cwd": "/tmp"})
            server.assert_alive()
            outcomes.append(reply)
            assert any(is_reported_failure(outcome) for outcome in outcomes), outcomes
            await client.assert_ready()
            # Space comes back: every thread takes turns again, in the same process.
            filler.unlink()
            for thread_id in threads:
                outcome = await run_turn(client, thread_id, "after the disk was freed")
                assert outcome.get("status") == "completed", (thread_id, outcome)
            await client.aclose()
            await bystander.aclose()
            assert await server.stop() == 0, server.describe()
        assert integrity_check(home / STATE) == "ok"
        # A restart with room to spare serves what was written.
        async with serving("unix", home) as server:
            client = await server.raw_websocket()
            await client.initialize()
            for thread_id in threads:
                reply = await client.request("thread/read", {"threadId": thread_id})
                assert reply["result"]["thread"]["id"] == thread_id, reply
            await client.aclose()
            assert await server.stop() == 0
        assert integrity_check(home / STATE) == "ok"
