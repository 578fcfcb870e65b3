"""`appserver daemon start|stop|restart|status`: the pid file, the operation lock, real processes.

Process tests run `python -m appserver daemon … --home H` with short homes under /tmp (socket
paths are limited to 107 bytes); every server a test starts is stopped or killed when it ends.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest
import trio
import trio.testing

from appserver.daemon import (
    DAEMON_DIR_NAME,
    NOT_MANAGED_MESSAGE,
    DaemonError,
    DaemonPaths,
    PidRecord,
    is_running,
    managed_record,
    operation_lock,
    probe_server,
    process_start_time,
    read_pid_file,
    version_from_user_agent,
    write_pid_file,
)
from appserver.protocol.initialize import CODEX_COMPAT_VERSION

APPSERVER: Final = (sys.executable, "-m", "appserver")
DEADLINE_SECONDS: Final = 10.0
POLL_SECONDS: Final = 0.02


# -- helpers ---------------------------------------------------------------------------------


def _server_pids(home: Path) -> list[int]:
    """Live (non-zombie) appserver servers for `home`, found by their command line."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        serving = b"appserver" in argv and b"--listen" in argv
        if serving and os.fsencode(home) in argv and alive(int(entry.name)):
            pids.append(int(entry.name))
    return pids


def _kill_servers(home: Path) -> None:
    for pid in _server_pids(home):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture
def home() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="asd-", dir="/tmp") as name:
        path = Path(name)
        try:
            yield path
        finally:
            subprocess.run(
                [*APPSERVER, "daemon", "stop", "--grace", "2", "--home", name],
                capture_output=True,
                check=False,
            )
            _kill_servers(path)


class Result:
    def __init__(self, process: subprocess.CompletedProcess[bytes]) -> None:
        self.returncode = process.returncode
        self.stdout = process.stdout.decode()
        self.stderr = process.stderr.decode()

    def report(self) -> dict[str, Any]:
        assert self.returncode == 0, f"rc={self.returncode}\n{self.stderr}"
        lines = self.stdout.splitlines()
        assert len(lines) == 1, self.stdout
        value: dict[str, Any] = json.loads(lines[0])
        return value


async def daemon(home: Path, *args: str) -> Result:
    command = [*APPSERVER, "daemon", *args, "--home", os.fspath(home)]
    process = await trio.run_process(command, capture_stdout=True, capture_stderr=True, check=False)
    return Result(process)


def socket_of(home: Path) -> Path:
    return DaemonPaths.for_home(home).socket


def pid_file_of(home: Path) -> Path:
    return DaemonPaths.for_home(home).pid_file


def lexists(path: Path) -> bool:
    return os.path.lexists(path)


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (a reaped or killed server is not alive)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in "ZXx"


# -- unit: the pid file, process identity, the lock ------------------------------------------


def test_pid_file_round_trip_is_atomic_json(tmp_path: Path) -> None:
    path = tmp_path / "app-server.pid"
    write_pid_file(path, PidRecord(1234, 5678))
    assert json.loads(path.read_text()) == {"pid": 1234, "processStartTime": 5678}
    assert read_pid_file(path) == PidRecord(1234, 5678)
    assert path.stat().st_mode & 0o777 == 0o600
    write_pid_file(path, PidRecord(42, 43))
    assert read_pid_file(path) == PidRecord(42, 43)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app-server.pid"]


def test_pid_file_failed_write_keeps_the_old_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "app-server.pid"
    write_pid_file(path, PidRecord(1, 2))

    def fail(src: object, dst: object) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk on fire"):
        write_pid_file(path, PidRecord(3, 4))
    assert read_pid_file(path) == PidRecord(1, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app-server.pid"]


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{",
        b"[]",
        b'{"pid": 1}',
        b'{"pid": "1", "processStartTime": 2}',
        b'{"pid": 0, "processStartTime": 2}',
    ],
)
def test_pid_file_that_is_not_ours_reads_as_absent(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "app-server.pid"
    path.write_bytes(content)
    assert read_pid_file(path) is None
    assert read_pid_file(tmp_path / "missing.pid") is None


def test_start_time_check_rejects_a_reused_pid(tmp_path: Path) -> None:
    start_time = process_start_time(os.getpid())
    assert isinstance(start_time, int)
    assert is_running(PidRecord(os.getpid(), start_time))
    reused = PidRecord(os.getpid(), start_time + 1)
    assert not is_running(reused)
    paths = DaemonPaths.for_home(tmp_path)
    paths.directory.mkdir()
    write_pid_file(paths.pid_file, reused)
    assert managed_record(paths) is None
    assert not paths.pid_file.exists()


def test_dead_and_zombie_processes_are_not_running() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    start_time = process_start_time(child.pid)
    assert start_time is not None
    record = PidRecord(child.pid, start_time)
    deadline = time.monotonic() + DEADLINE_SECONDS
    while is_running(record) and time.monotonic() < deadline:  # a zombie until reaped
        time.sleep(POLL_SECONDS)
    assert not is_running(record)
    assert process_start_time(child.pid) == start_time
    child.wait()
    assert not is_running(record)


def test_version_from_user_agent() -> None:
    ua = "appserver/0.169.0 (Debian 12; x86_64) appserver/0.1.0 (codex_app_server_daemon; 0.1.0)"
    assert version_from_user_agent(ua) == "0.169.0"
    assert version_from_user_agent("no slash") is None
    assert version_from_user_agent(None) is None


async def test_operation_lock_serialises_holders(tmp_path: Path) -> None:
    path = tmp_path / "daemon.lock"
    events: list[str] = []
    first_holds = trio.Event()
    release_first = trio.Event()

    async def first() -> None:
        async with operation_lock(path):
            events.append("first in")
            first_holds.set()
            await release_first.wait()
            events.append("first out")

    async def second() -> None:
        await first_holds.wait()
        async with operation_lock(path):
            events.append("second in")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(first)
        nursery.start_soon(second)
        await first_holds.wait()
        await trio.testing.wait_all_tasks_blocked()  # the second holder tried, and is polling
        assert events == ["first in"]
        release_first.set()
    assert events == ["first in", "first out", "second in"]


async def test_operation_lock_times_out_with_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "daemon.lock"
    async with operation_lock(path):
        with pytest.raises(DaemonError, match="timed out waiting for daemon operation lock"):
            async with operation_lock(path, limit=0.1):
                pass
    async with operation_lock(path, limit=0.1):
        pass


# -- processes -------------------------------------------------------------------------------


async def test_lifecycle_start_status_restart_stop(home: Path) -> None:
    started = (await daemon(home, "start")).report()
    assert started["status"] == "started"
    pid = started["pid"]
    assert started["socketPath"] == os.fspath(socket_of(home))
    assert started["home"] == os.fspath(home)
    assert started["appServerVersion"] == CODEX_COMPAT_VERSION
    assert started["logPath"] == os.fspath(home / DAEMON_DIR_NAME / "server.log")
    answer = await probe_server(socket_of(home))
    assert answer is not None
    assert answer.version == CODEX_COMPAT_VERSION
    record = read_pid_file(pid_file_of(home))
    assert record is not None
    assert record.pid == pid
    assert (home / DAEMON_DIR_NAME).stat().st_mode & 0o777 == 0o700

    again = (await daemon(home, "start")).report()
    assert again["status"] == "alreadyRunning"
    assert again["pid"] == pid
    status = (await daemon(home, "status")).report()
    assert status["status"] == "running"
    assert status["pid"] == pid
    assert status["appServerVersion"] == CODEX_COMPAT_VERSION

    restarted = (await daemon(home, "restart")).report()
    assert restarted["status"] == "restarted"
    assert restarted["pid"] != pid
    assert not alive(pid)
    assert _server_pids(home) == [restarted["pid"]]

    stopped = (await daemon(home, "stop")).report()
    assert stopped == {
        "status": "stopped",
        "pid": restarted["pid"],
        "socketPath": os.fspath(socket_of(home)),
        "home": os.fspath(home),
    }
    assert not alive(restarted["pid"])
    assert not lexists(socket_of(home))
    assert not pid_file_of(home).exists()
    assert (await daemon(home, "stop")).report()["status"] == "notRunning"
    assert (await daemon(home, "status")).report()["status"] == "notRunning"


async def test_concurrent_starts_launch_exactly_one_server(home: Path) -> None:
    results: list[Result] = []

    async def start() -> None:
        results.append(await daemon(home, "start"))

    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(start)
    reports = [result.report() for result in results]
    statuses = sorted(report["status"] for report in reports)
    assert statuses == ["alreadyRunning", "alreadyRunning", "started"]
    assert len({report["pid"] for report in reports}) == 1
    assert _server_pids(home) == [reports[0]["pid"]]


async def test_stale_and_reused_pid_files_mean_not_running(home: Path) -> None:
    paths = DaemonPaths.for_home(home)
    paths.directory.mkdir(mode=0o700, parents=True)
    child = await trio.lowlevel.open_process([sys.executable, "-c", "pass"])
    start_time = process_start_time(child.pid)
    assert start_time is not None
    await child.wait()
    write_pid_file(paths.pid_file, PidRecord(child.pid, start_time))
    assert (await daemon(home, "status")).report()["status"] == "notRunning"
    assert not paths.pid_file.exists()

    ours = process_start_time(os.getpid())
    assert ours is not None
    write_pid_file(paths.pid_file, PidRecord(os.getpid(), ours + 1))
    assert (await daemon(home, "stop")).report()["status"] == "notRunning"
    assert not paths.pid_file.exists()  # and we were not signalled: this test is still running


async def test_unmanaged_server_is_refused_by_stop(home: Path) -> None:
    server = await trio.lowlevel.open_process(
        [*APPSERVER, "--listen", "unix://", "--home", os.fspath(home)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with trio.fail_after(DEADLINE_SECONDS):
            while await probe_server(socket_of(home)) is None:
                await trio.sleep(POLL_SECONDS)
        stop = await daemon(home, "stop")
        assert (stop.returncode, stop.stdout) == (1, "")
        assert stop.stderr == f"Error: {NOT_MANAGED_MESSAGE}\n"
        restart = await daemon(home, "restart")
        assert restart.returncode == 1
        assert restart.stderr == f"Error: {NOT_MANAGED_MESSAGE}\n"
        status = (await daemon(home, "status")).report()
        assert status["status"] == "running"
        assert "pid" not in status
        start = (await daemon(home, "start")).report()
        assert start["status"] == "alreadyRunning"
        assert "pid" not in start
        assert server.poll() is None
    finally:
        server.kill()
        with trio.CancelScope(shield=True):
            await server.wait()


async def test_stop_with_no_grace_kills_and_cleans_up(home: Path) -> None:
    pid = (await daemon(home, "start")).report()["pid"]
    stopped = (await daemon(home, "stop", "--grace", "0")).report()
    assert (stopped["status"], stopped["pid"]) == ("stopped", pid)
    assert not alive(pid)
    assert not lexists(socket_of(home))
    assert (await daemon(home, "start")).report()["status"] == "started"


async def test_failed_start_reports_the_log_tail(home: Path) -> None:
    socket_of(home).parent.mkdir(mode=0o700, parents=True)
    socket_of(home).write_text("not a socket")
    result = await daemon(home, "start")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.startswith("Error: app server exited with status 1 before becoming ready")
    assert "exists and is not a socket" in result.stderr
    assert not pid_file_of(home).exists()
    assert _server_pids(home) == []


async def test_bad_arguments_and_paths() -> None:
    for args in (["daemon"], ["daemon", "bogus"], ["daemon", "stop", "--grace", "-1"]):
        process = await trio.run_process([*APPSERVER, *args], capture_stderr=True, check=False)
        assert process.returncode == 2, args
    with tempfile.TemporaryDirectory(prefix="asd-", dir="/tmp") as name:
        long_home = Path(name) / ("h" * 80)
        result = await daemon(long_home, "status")
        assert result.returncode == 1
        assert "limit of a Unix socket address" in result.stderr
        via_app_server = await trio.run_process(
            [*APPSERVER, "app-server", "daemon", "status", "--home", name],
            capture_stdout=True,
            check=False,
        )
        assert json.loads(via_app_server.stdout)["status"] == "notRunning"
