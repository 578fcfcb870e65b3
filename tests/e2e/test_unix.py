"""End to end over the Unix control socket: real `appserver` processes (spec README §1, §2, §4;
codex-source-spec §1.7, §2, §6.2, §10.2, §10.13; codex-observed §3b, §4).

`appserver --listen unix://` serves WebSocket over `HOME/app-server-control/…sock`; a second
server on a live socket is refused, a stale one is replaced, anything else at the path is left
alone and refuses the start. `proxy` relays raw bytes, `attach` relays JSON lines as frames.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
import wsproto
import wsproto.events
from trio_websocket import ConnectionClosed

from appserver.app.store import integrity_check
from tests.e2e.processes import (
    Processes,
    Spawned,
    assert_refused,
    default_socket,
    in_use,
    lexists,
    not_a_socket,
    relay_args,
    replies_by_id,
    request_line,
    server_pids,
    wait_for_exits,
    wait_pid_exit,
    wait_ready,
)
from tests.e2e.transports import PLAIN_INITIALIZE, connect_unix, server_argv, short_tempdir

pytestmark = pytest.mark.e2e

INIT_AND_READINESS = request_line(1, "initialize", PLAIN_INITIALIZE) + request_line(
    "ready", "windowsSandbox/readiness"
)


@pytest.fixture
def tmp() -> Iterator[Path]:
    with short_tempdir() as path:
        yield path


@pytest.fixture
def home(tmp: Path) -> Path:
    return tmp / "home"


@pytest.fixture
async def procs(tmp: Path) -> AsyncIterator[Processes]:
    logs = tmp / "logs"
    logs.mkdir()
    async with Processes(logs) as processes:
        yield processes


def assert_init_and_readiness(stdout: bytes, home: Path) -> None:
    replies = replies_by_id(stdout)
    assert replies[1]["result"]["codexHome"] == os.fspath(home), stdout
    assert replies["ready"] == {"id": "ready", "result": {"status": "notConfigured"}}, stdout


# --- serving over the socket -----------------------------------------------------------------


async def test_handshake_initialize_and_readiness(procs: Processes, home: Path) -> None:
    server = await procs.serve(home)
    sock = default_socket(home)
    async with connect_unix(sock, "/rpc") as ws:
        headers = {k.lower(): v for k, v in ws.connection.handshake_headers}
        assert headers[b"x-codex-websocket-max-unfragmented-message-bytes"] == b"16777216"
        result = await ws.initialize(PLAIN_INITIALIZE)
        assert result["codexHome"] == os.fspath(home)
        assert result["platformFamily"] == "unix"
        reply = await ws.request("windowsSandbox/readiness", request_id=2)
        assert reply == {"id": 2, "result": {"status": "notConfigured"}}
    banner = server.stderr()
    assert f"listening on: unix://{sock}" in banner, banner


async def test_any_request_path_is_accepted(procs: Processes, home: Path) -> None:
    await procs.serve(home)
    for resource in ("/", "/rpc", "/some/other/path?x=1"):
        async with connect_unix(default_socket(home), resource) as ws:
            assert (await ws.initialize(PLAIN_INITIALIZE))["codexHome"] == os.fspath(home)


async def test_binary_frame_is_dropped_and_the_connection_keeps_serving(
    procs: Processes, home: Path
) -> None:
    server = await procs.serve(home)
    async with connect_unix(default_socket(home)) as ws:
        await ws.connection.send_message(b'{"id":"binary","method":"windowsSandbox/readiness"}')
        await ws.connection.send_message(
            request_line("init", "initialize", PLAIN_INITIALIZE).decode()
        )
        await ws.connection.send_message(request_line(2, "windowsSandbox/readiness").decode())
        seen = []
        with trio.fail_after(5):
            while 2 not in seen:
                message = json.loads(await ws.connection.get_message())
                if "method" not in message:
                    seen.append(message.get("id"))
        assert seen == ["init", 2], "the binary frame was answered or replies were lost"
    assert await server.stop() == 0
    assert "dropping unsupported binary websocket message" in server.stderr()


async def test_ping_is_answered(procs: Processes, home: Path) -> None:
    await procs.serve(home)
    async with connect_unix(default_socket(home)) as ws:
        with trio.fail_after(5):
            await ws.connection.ping(b"e2e-ping")
        await ws.initialize(PLAIN_INITIALIZE)


async def test_raw_json_lines_are_served_next_to_websockets(procs: Processes, home: Path) -> None:
    """appserver's control socket also speaks JSON lines (what `attach` writes); Codex's drops
    such a connection (codex-observed §3b). A WebSocket client is served all the same."""
    await procs.serve(home)
    sock = default_socket(home)
    stream = await trio.open_unix_socket(os.fspath(sock))
    received = bytearray()
    async with stream:
        await stream.send_all(b"\n " + INIT_AND_READINESS)
        with trio.fail_after(5):
            while received.count(b"\n") < 2:
                chunk = await stream.receive_some()
                assert chunk, received
                received += chunk
        await stream.send_eof()
        with trio.fail_after(5):
            while chunk := await stream.receive_some():
                received += chunk  # the server closes once our input ended
    replies = [json.loads(line) for line in received.splitlines()]
    assert [reply["id"] for reply in replies] == [1, "ready"]
    assert replies[0]["result"]["codexHome"] == os.fspath(home)
    assert "result" in replies[1]
    async with connect_unix(sock) as ws:
        assert (await ws.initialize(PLAIN_INITIALIZE))["codexHome"] == os.fspath(home)


async def test_a_json_lines_client_that_ends_its_input_still_gets_running_answers(
    procs: Processes, home: Path
) -> None:
    """As on stdio: the end of a JSON-lines client's input lets running requests answer."""
    await procs.serve(home)
    stream = await trio.open_unix_socket(os.fspath(default_socket(home)))
    command = {
        "command": ["sh", "-c", "sleep 0.3; echo late"],
        "sandboxPolicy": {"type": "dangerFullAccess"},
    }
    received = bytearray()
    async with stream:
        await stream.send_all(
            request_line(1, "initialize", PLAIN_INITIALIZE)
            + request_line(2, "command/exec", command)
        )
        await stream.send_eof()
        with trio.fail_after(10):
            while chunk := await stream.receive_some():
                received += chunk
    replies = {reply["id"]: reply for reply in map(json.loads, received.splitlines())}
    assert replies[2]["result"]["stdout"] == "late\n"


async def test_socket_is_0600_and_control_dir_0700(procs: Processes, home: Path) -> None:
    await procs.serve(home)
    sock = default_socket(home)
    info = sock.lstat()
    assert stat.S_ISSOCK(info.st_mode)
    assert stat.S_IMODE(info.st_mode) == 0o600
    assert stat.S_IMODE(sock.parent.stat().st_mode) == 0o700


async def test_an_existing_control_dir_keeps_its_mode(procs: Processes, home: Path) -> None:
    """Never chmod a directory the server did not create (issue 13 item 2)."""
    control = default_socket(home).parent
    control.mkdir(parents=True)
    control.chmod(0o755)
    await procs.serve(home)
    assert stat.S_IMODE(control.stat().st_mode) == 0o755
    assert stat.S_IMODE(default_socket(home).lstat().st_mode) == 0o600


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_signal_exits_0_removes_the_socket_and_closes_clients(
    procs: Processes, home: Path, signum: signal.Signals
) -> None:
    server = await procs.serve(home)
    sock = default_socket(home)
    async with connect_unix(sock) as ws:
        await ws.initialize(PLAIN_INITIALIZE)
        assert await server.stop(signum) == 0, server.stderr()
        with trio.fail_after(5), pytest.raises(ConnectionClosed):
            await ws.connection.get_message()
    assert not lexists(sock)
    assert "Traceback" not in server.stderr()


# --- the singleton rule ----------------------------------------------------------------------


async def test_duplicate_start_is_refused_fast_and_the_first_keeps_serving(
    procs: Processes, home: Path
) -> None:
    """Refused within 0.5 s of the spawn (Codex: 0.04-0.06 s), the first server unharmed.

    Nearly all of that time is the interpreter importing appserver, so the bound is relaxed on
    a machine so loaded that just importing takes longer: there the refusal may take at most
    0.15 s more than a bare `import appserver.server` spawned under the same load.
    """
    await procs.serve(home)
    sock = default_socket(home)
    timings, baselines = [], []
    for _ in range(3):
        started = time.perf_counter()
        await trio.run_process([sys.executable, "-c", "import appserver.cli, appserver.server"])
        baselines.append(time.perf_counter() - started)
        started = time.perf_counter()
        second = await trio.run_process(
            server_argv("unix://", home), capture_stderr=True, check=False, stdin=subprocess.DEVNULL
        )
        timings.append(time.perf_counter() - started)
        assert_refused(second.returncode, second.stderr.decode(), in_use(sock))
        assert stat.S_ISSOCK(sock.lstat().st_mode)
        async with connect_unix(sock) as ws:
            assert (await ws.initialize(PLAIN_INITIALIZE))["codexHome"] == os.fspath(home)
        if timings[-1] < 0.5:
            break
    shown = f"refused after {_seconds(timings)}; import alone {_seconds(baselines)}"
    print(shown)
    assert min(timings) < max(0.5, min(baselines) + 0.15), shown


def _seconds(values: list[float]) -> str:
    return ", ".join(f"{value:.3f}s" for value in values)


async def test_stale_socket_after_sigkill_is_replaced(procs: Processes, home: Path) -> None:
    first = await procs.serve(home)
    sock = default_socket(home)
    assert await first.stop(signal.SIGKILL) == -signal.SIGKILL
    assert stat.S_ISSOCK(sock.lstat().st_mode), "SIGKILL should leave the socket file behind"
    await procs.serve(home)
    async with connect_unix(sock) as ws:
        assert (await ws.initialize(PLAIN_INITIALIZE))["codexHome"] == os.fspath(home)


def _regular_file(path: Path, tmp: Path) -> Callable[[], None]:
    path.write_text("not a socket")
    return lambda: _check(path.read_text() == "not a socket")


def _directory(path: Path, tmp: Path) -> Callable[[], None]:
    path.mkdir()
    (path / "inside").write_text("x")
    return lambda: _check(path.is_dir() and (path / "inside").read_text() == "x")


def _dangling_symlink(path: Path, tmp: Path) -> Callable[[], None]:
    target = tmp / "nowhere.sock"
    path.symlink_to(target)
    return lambda: _check(path.is_symlink() and os.readlink(path) == os.fspath(target))


def _symlink_to_stale_socket(path: Path, tmp: Path) -> Callable[[], None]:
    target = tmp / "stale.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as stale:
        stale.bind(os.fspath(target))
    path.symlink_to(target)
    return lambda: _check(path.is_symlink() and stat.S_ISSOCK(target.lstat().st_mode))


def _check(condition: bool) -> None:
    assert condition, "the obstacle at the socket path was changed"


@pytest.mark.parametrize(
    "make_obstacle",
    [_regular_file, _directory, _dangling_symlink, _symlink_to_stale_socket],
    ids=["regular-file", "directory", "dangling-symlink", "symlink-to-stale-socket"],
)
async def test_non_socket_at_the_path_refuses_and_is_left_alone(
    tmp: Path, home: Path, make_obstacle: Callable[[Path, Path], Callable[[], None]]
) -> None:
    sock = default_socket(home)
    sock.parent.mkdir(parents=True, mode=0o700)
    unchanged = make_obstacle(sock, tmp)
    with trio.fail_after(10):
        result = await trio.run_process(
            server_argv("unix://", home), capture_stderr=True, check=False, stdin=subprocess.DEVNULL
        )
    assert_refused(result.returncode, result.stderr.decode(), not_a_socket(sock))
    unchanged()


async def test_non_socket_at_a_custom_path_refuses(tmp: Path, home: Path) -> None:
    sock = tmp / "custom.sock"
    sock.write_text("keep me")
    with trio.fail_after(10):
        result = await trio.run_process(
            server_argv(f"unix://{sock}", home), capture_stderr=True, check=False
        )
    assert_refused(result.returncode, result.stderr.decode(), not_a_socket(sock))
    assert sock.read_text() == "keep me"


async def test_foreign_live_listener_is_already_in_use(home: Path) -> None:
    sock = default_socket(home)
    sock.parent.mkdir(parents=True, mode=0o700)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as foreign:
        foreign.bind(os.fspath(sock))
        foreign.listen(16)
        with trio.fail_after(10):
            result = await trio.run_process(
                server_argv("unix://", home),
                capture_stderr=True,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        assert_refused(result.returncode, result.stderr.decode(), in_use(sock))
        assert stat.S_ISSOCK(sock.lstat().st_mode), "the foreign socket was removed"


async def test_relative_unix_path_is_resolved_against_the_cwd(
    procs: Processes, tmp: Path, home: Path
) -> None:
    cwd = tmp / "cwd"
    cwd.mkdir()
    server = await procs.spawn(server_argv("unix://relative.sock", home), cwd=cwd)
    sock = cwd / "relative.sock"
    await wait_ready(sock, server)
    assert not lexists(default_socket(home))
    async with connect_unix(sock) as ws:
        assert (await ws.initialize(PLAIN_INITIALIZE))["codexHome"] == os.fspath(home)
    assert f"listening on: unix://{sock}\n" in server.stderr()
    assert await server.stop() == 0
    assert not lexists(sock)


def _path_of_length(directory: Path, size: int) -> Path:
    path = directory / ("s" * (size - len(os.fsencode(directory)) - 1))
    assert len(os.fsencode(path)) == size
    return path


async def test_socket_path_of_107_bytes_serves(procs: Processes, tmp: Path, home: Path) -> None:
    sock = _path_of_length(tmp, 107)
    await procs.serve(home, f"unix://{sock}")
    async with connect_unix(sock) as ws:
        assert (await ws.initialize(PLAIN_INITIALIZE))["codexHome"] == os.fspath(home)


@pytest.mark.parametrize("via", ["unix-path", "home"])
async def test_socket_path_over_the_sun_path_limit_is_refused(
    tmp: Path, home: Path, via: str
) -> None:
    if via == "unix-path":
        sock = _path_of_length(tmp, 108)
        args = server_argv(f"unix://{sock}", home)
    else:
        home = _path_of_length(tmp, 108 - len(os.fsencode("/" + os.fspath(default_socket(Path())))))
        sock = default_socket(home)
        assert len(os.fsencode(sock)) == 108
        args = server_argv("unix://", home)
    with trio.fail_after(10):
        result = await trio.run_process(args, capture_stderr=True, check=False)
    stderr = result.stderr.decode()
    assert result.returncode == 1, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, stderr
    assert os.fspath(sock) in errors[0], stderr
    assert "107" in errors[0], stderr
    assert "Traceback" not in stderr, stderr
    assert not lexists(sock)


# --- races -----------------------------------------------------------------------------------

RACE_ROUNDS = 20
RACE_LAUNCHES = 5


async def _one_winner(
    launches: list[Spawned], sock: Path, within: float = 20.0
) -> tuple[Spawned, list[Spawned]]:
    """Wait for every loser to exit and the winner to accept; (winner, losers)."""
    await wait_for_exits(launches, len(launches) - 1, within)
    running = [item for item in launches if item.returncode is None]
    assert len(running) == 1, "\n".join(item.describe() for item in launches)
    winner = running[0]
    await wait_ready(sock, winner)
    return winner, [item for item in launches if item is not winner]


async def test_simultaneous_unix_launches_make_exactly_one_server(tmp: Path) -> None:
    started = time.perf_counter()
    for round_number in range(RACE_ROUNDS):
        home = tmp / f"race-{round_number}"
        logs = tmp / f"logs-{round_number}"
        logs.mkdir()
        sock = default_socket(home)
        async with Processes(logs) as procs:
            launches = [
                await procs.spawn(server_argv("unix://", home)) for _ in range(RACE_LAUNCHES)
            ]
            winner, losers = await _one_winner(launches, sock)
            for loser in losers:
                assert_refused(loser.returncode, loser.stderr(), in_use(sock))
            async with connect_unix(sock) as ws:
                await ws.initialize(PLAIN_INITIALIZE)
            assert await winner.stop() == 0, winner.describe()
        assert not lexists(sock)
        assert integrity_check(home / "state.sqlite") == "ok", f"round {round_number}"
    # No bound on the total: it is CPU-bound (5 interpreters starting per round), so it says
    # more about the machine's load than about the server. Shown with `pytest -s`.
    print(f"{RACE_ROUNDS} rounds x {RACE_LAUNCHES} launches: {time.perf_counter() - started:.1f}s")


async def test_stdio_and_unix_launches_racing_on_one_home_never_fail_in_sqlite(
    tmp: Path,
) -> None:
    for round_number in range(5):
        home = tmp / f"mixed-{round_number}"
        logs = tmp / f"logs-{round_number}"
        logs.mkdir()
        sock = default_socket(home)
        stdio_results: list[subprocess.CompletedProcess[bytes]] = []

        async def stdio_client(home: Path = home, out: list[Any] = stdio_results) -> None:
            with trio.fail_after(20):
                result = await trio.run_process(
                    server_argv("stdio://", home),
                    stdin=request_line(1, "initialize", PLAIN_INITIALIZE),
                    capture_stdout=True,
                    capture_stderr=True,
                    check=False,
                )
            out.append(result)

        async with Processes(logs) as procs:
            async with trio.open_nursery() as nursery:
                launches = [await procs.spawn(server_argv("unix://", home)) for _ in range(2)]
                for _ in range(3):
                    nursery.start_soon(stdio_client)
                winner, losers = await _one_winner(launches, sock)
            for loser in losers:
                assert_refused(loser.returncode, loser.stderr(), in_use(sock))
            for result in stdio_results:
                stderr = result.stderr.decode()
                assert result.returncode == 0, stderr
                reply = replies_by_id(result.stdout)[1]
                assert reply["result"]["codexHome"] == os.fspath(home), result.stdout
                assert "sqlite" not in stderr.lower(), stderr
            assert len(stdio_results) == 3
            assert await winner.stop() == 0, winner.describe()
        assert integrity_check(home / "state.sqlite") == "ok", f"round {round_number}"


# --- proxy -----------------------------------------------------------------------------------


async def test_proxy_pipes_stdin_and_stdout_through_socket(tmp: Path) -> None:
    """Port of stdio-to-uds `pipes_stdin_and_stdout_through_socket` (codex-source-spec §10.13)."""
    path = tmp / "socket"
    listener_sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    await listener_sock.bind(os.fspath(path))
    listener_sock.listen(1)
    listener = trio.SocketListener(listener_sock)
    received = bytearray()

    async def serve_once() -> None:
        stream = await listener.accept()
        async with stream:
            while chunk := await stream.receive_some():
                received.extend(chunk)
            await stream.send_all(b"response")

    async with listener, trio.open_nursery() as nursery:
        nursery.start_soon(serve_once)
        with trio.fail_after(10):
            result = await trio.run_process(
                relay_args("proxy", path),
                stdin=b"request",
                capture_stdout=True,
                capture_stderr=True,
                check=False,
            )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == b"response"
    assert bytes(received) == b"request"


async def test_proxy_to_a_missing_socket_fails(tmp: Path) -> None:
    path = tmp / "missing.sock"
    with trio.fail_after(10):
        result = await trio.run_process(
            relay_args("proxy", path), capture_stderr=True, check=False, stdin=b""
        )
    stderr = result.stderr.decode()
    assert result.returncode == 1, stderr
    assert stderr.splitlines()[0] == f"Error: failed to connect to socket at {path}", stderr
    assert "No such file or directory (os error 2)" in stderr, stderr


class WsprotoOverPipes:
    """A wsproto client speaking through a process's stdin/stdout (e.g. `appserver proxy`)."""

    def __init__(self, process: trio.Process) -> None:
        assert process.stdin is not None
        assert process.stdout is not None
        self.stdin = process.stdin
        self.stdout = process.stdout
        self.client = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
        self.raw = bytearray()
        self._pending: list[wsproto.events.Event] = []

    async def send(self, event: wsproto.events.Event) -> None:
        await self.stdin.send_all(self.client.send(event))

    async def next_event(self) -> wsproto.events.Event | None:
        """The next event, or None at EOF on stdout."""
        while not self._pending:
            data = await self.stdout.receive_some()
            if not data:
                return None
            self.raw += data
            self.client.receive_data(bytes(data))
            self._pending.extend(self.client.events())
        return self._pending.pop(0)

    async def handshake(self) -> None:
        await self.send(wsproto.events.Request(host="localhost", target="/rpc"))
        event = await self.next_event()
        assert isinstance(event, wsproto.events.AcceptConnection), (event, bytes(self.raw))
        assert self.raw.startswith(b"HTTP/1.1 101 "), bytes(self.raw)

    async def request(self, line: bytes) -> dict[str, Any]:
        """Send one request as a masked text frame; its response."""
        request_id = json.loads(line)["id"]
        await self.send(wsproto.events.TextMessage(data=line.decode().strip()))
        text = ""
        while True:
            event = await self.next_event()
            assert isinstance(event, wsproto.events.TextMessage), event
            text += event.data
            if event.message_finished:
                reply: dict[str, Any] = json.loads(text)
                text = ""
                if reply.get("id") == request_id and "method" not in reply:
                    return reply

    async def read_to_eof(self) -> list[wsproto.events.Event]:
        events = []
        while (event := await self.next_event()) is not None:
            events.append(event)
        return events


async def test_proxy_carries_a_handshake_and_initialize_to_a_real_server(
    procs: Processes, home: Path
) -> None:
    await procs.serve(home)
    proxy = await procs.spawn(
        relay_args("proxy", default_socket(home)), stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    peer = WsprotoOverPipes(proxy.process)
    with trio.fail_after(10):
        await peer.handshake()
        reply = await peer.request(request_line(1, "initialize", PLAIN_INITIALIZE))
        assert reply["result"]["codexHome"] == os.fspath(home)
        ready = await peer.request(request_line(2, "windowsSandbox/readiness"))
        assert ready["result"] == {"status": "notConfigured"}
        await peer.send(wsproto.events.CloseConnection(code=1000))
        await peer.stdin.aclose()
        await peer.read_to_eof()
        assert await proxy.process.wait() == 0, proxy.stderr()


async def test_proxy_exits_when_the_server_closes_without_stdin_closing(
    procs: Processes, home: Path
) -> None:
    server = await procs.serve(home)
    proxy = await procs.spawn(
        relay_args("proxy", default_socket(home)), stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    peer = WsprotoOverPipes(proxy.process)
    with trio.fail_after(10):
        await peer.handshake()
        await peer.request(request_line(1, "initialize", PLAIN_INITIALIZE))
        assert await server.stop() == 0
        await peer.read_to_eof()
        assert await proxy.process.wait() == 0, proxy.stderr()
    # Our end of its stdin is still open; only now, with the proxy gone, does writing fail.
    assert proxy.process.stdin is not None
    with pytest.raises(trio.BrokenResourceError):
        await proxy.process.stdin.send_all(b"more input")


# --- attach ----------------------------------------------------------------------------------


async def test_attach_relays_json_lines(procs: Processes, home: Path) -> None:
    await procs.serve(home)
    with trio.fail_after(10):
        result = await trio.run_process(
            relay_args("attach", default_socket(home)),
            stdin=INIT_AND_READINESS,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    assert result.returncode == 0, result.stderr.decode()
    assert_init_and_readiness(result.stdout, home)


async def test_attach_to_a_missing_socket_fails(tmp: Path) -> None:
    path = tmp / "missing.sock"
    with trio.fail_after(10):
        result = await trio.run_process(
            relay_args("attach", path), capture_stderr=True, check=False, stdin=b""
        )
    stderr = result.stderr.decode()
    assert result.returncode == 1, stderr
    assert stderr.splitlines()[0] == f"Error: failed to connect to socket at {path}", stderr


async def test_attach_start_reuses_a_live_listener(procs: Processes, home: Path) -> None:
    """Port of `ensure_control_socket_listener_reuses_a_live_listener`."""
    server = await procs.serve(home)
    procs.reap_servers_of(home)
    with trio.fail_after(15):
        result = await trio.run_process(
            relay_args("attach", None, "--start", "--home", os.fspath(home)),
            stdin=INIT_AND_READINESS,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    assert result.returncode == 0, result.stderr.decode()
    assert_init_and_readiness(result.stdout, home)
    assert server_pids(home) == [server.process.pid]
    assert not (default_socket(home).parent / "server.log").exists(), "a server was launched"


async def test_attach_start_serializes_concurrent_creators(procs: Processes, home: Path) -> None:
    """Port of `ensure_control_socket_listener_serializes_concurrent_creators` (5, not 3)."""
    procs.reap_servers_of(home)
    results: list[subprocess.CompletedProcess[bytes]] = []

    async def attach_start() -> None:
        result = await trio.run_process(
            relay_args("attach", None, "--start", "--home", os.fspath(home)),
            stdin=INIT_AND_READINESS,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
        results.append(result)

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            for _ in range(5):
                nursery.start_soon(attach_start)
    for result in results:
        assert result.returncode == 0, result.stderr.decode()
        assert_init_and_readiness(result.stdout, home)
    pids = server_pids(home)
    assert len(pids) == 1, pids
    # Launched as `daemon start` launches it (issue 13 item 12): the daemon's log.
    log = (home / "app-server-daemon" / "server.log").read_text()
    assert log.count("listening on: unix://") == 1, log
    # The detached server is not our child: stop it and wait through a pidfd.
    os.kill(pids[0], signal.SIGTERM)
    with trio.fail_after(5):
        await wait_pid_exit(pids[0])
    assert not lexists(default_socket(home))
    assert integrity_check(home / "state.sqlite") == "ok"


async def test_attach_start_reports_a_server_that_exits_before_binding(
    procs: Processes, home: Path
) -> None:
    """Port of `ensure_control_socket_listener_reports_child_exit_before_bind`."""
    procs.reap_servers_of(home)
    sock = default_socket(home)
    sock.parent.mkdir(parents=True, mode=0o700)
    sock.write_text("squatter")
    with trio.fail_after(15):
        result = await trio.run_process(
            relay_args("attach", None, "--start", "--home", os.fspath(home)),
            stdin=INIT_AND_READINESS,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    stderr = result.stderr.decode()
    assert result.returncode == 1, stderr
    assert stderr.startswith("Error: "), stderr
    assert "exited before opening" in stderr or not_a_socket(sock) in stderr, stderr
    assert result.stdout == b""
    assert sock.read_text() == "squatter"
    assert not_a_socket(sock) in (home / "app-server-daemon" / "server.log").read_text()
    assert server_pids(home) == []
