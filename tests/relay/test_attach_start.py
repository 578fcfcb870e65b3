"""`appserver attach --start`: one launcher and one pid file with the daemon (issue 13 item 12),
and a clean refusal on a home it cannot write (item 10). Real processes throughout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from appserver.home import control_socket_path
from appserver.transport.unix import probe
from tests.e2e.test_faults import assert_one_error_line, read_only_bind
from tests.e2e.transports import server_env, short_tempdir

pytestmark = pytest.mark.e2e

APPSERVER = [sys.executable, "-m", "appserver"]
INITIALIZE = b'{"id":1,"method":"initialize","params":{"clientInfo":{"name":"t","version":"1"}}}\n'
TIMEOUT = 20.0


@pytest.fixture
def home() -> Iterator[Path]:
    with short_tempdir("aas-") as tmp:
        (tmp / "home").mkdir()
        yield tmp / "home"


async def run(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    with trio.fail_after(TIMEOUT):
        return await trio.run_process(
            [*APPSERVER, *args],
            stdin=stdin,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            env=server_env(),
        )


async def daemon(command: str, home: Path) -> dict[str, object]:
    result = await run("daemon", command, "--home", os.fspath(home))
    assert result.returncode == 0, result.stderr.decode()
    report: dict[str, object] = json.loads(result.stdout)
    return report


async def test_a_server_started_by_attach_is_the_daemons_to_report_and_stop(home: Path) -> None:
    attached = await run("attach", "--start", "--home", os.fspath(home), stdin=INITIALIZE)
    assert attached.returncode == 0, attached.stderr.decode()
    assert json.loads(attached.stdout.splitlines()[0])["id"] == 1
    socket = control_socket_path(home)
    try:
        status = await daemon("status", home)
        assert status["status"] == "running"
        pid = status["pid"]
        assert isinstance(pid, int)
        cmdline = await trio.Path(f"/proc/{pid}/cmdline").read_bytes()
        assert cmdline.split(b"\0")[1:3] == [b"-m", b"appserver"]
        # A second attach --start finds it and starts nothing new.
        again = await run("attach", "--start", "--home", os.fspath(home), stdin=INITIALIZE)
        assert again.returncode == 0, again.stderr.decode()
        assert (await daemon("status", home))["pid"] == pid
        stopped = await daemon("stop", home)
        assert (stopped["status"], stopped["pid"]) == ("stopped", pid)
        assert not probe(socket)
    finally:
        if probe(socket):
            await run("daemon", "stop", "--home", os.fspath(home))


async def test_attach_start_on_a_read_only_home_fails_cleanly(home: Path) -> None:
    with read_only_bind(home):
        result = await run("attach", "--start", "--home", os.fspath(home), stdin=INITIALIZE)
    line = assert_one_error_line(result, "failed to initialize sqlite state runtime under")
    assert "Traceback" not in result.stderr.decode()
    assert "[Errno" not in line


@pytest.mark.parametrize("listen", ["stdio://", "unix://", "ws://127.0.0.1:0"])
async def test_a_server_on_a_read_only_home_says_what_failed(home: Path, listen: str) -> None:
    with read_only_bind(home):
        result = await run("--listen", listen, "--home", os.fspath(home))
    line = assert_one_error_line(
        result, f"failed to initialize sqlite state runtime under {home}", "Read-only file system"
    )
    assert "[Errno" not in line
