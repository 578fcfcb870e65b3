"""Agents as a service: `daemon start|restart` and `attach --start` pass the serve flags on to
the server they launch and record them, so `restart` keeps them (appserver/serve_flags.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest
import trio

from appserver import serve_flags
from appserver.cli import daemon_parser, relay_parser
from tests.test_daemon import Result, _kill_servers, daemon, socket_of

APPSERVER: Final = (sys.executable, "-m", "appserver")
SHOUT: Final = "examples.shout_agent:ShoutAgent"


@pytest.fixture
def home() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="asf-", dir="/tmp") as name:
        try:
            yield Path(name)
        finally:
            subprocess.run(
                [*APPSERVER, "daemon", "stop", "--grace", "2", "--home", name],
                capture_output=True,
                check=False,
            )
            _kill_servers(Path(name))


def cmdline(pid: int) -> list[str]:
    raw = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    return [os.fsdecode(arg) for arg in raw]


def server_flags(pid: int) -> list[str]:
    """The server's arguments after `--home HOME`."""
    argv = cmdline(pid)
    return argv[argv.index("--home") + 2 :]


# -- parsing and the record ------------------------------------------------------------------


def test_the_given_flags_become_server_arguments_in_order() -> None:
    options = daemon_parser().parse_args(
        [
            "start",
            "--agent",
            SHOUT,
            "--agent",
            "echo",
            "--log-level",
            "DEBUG",
            "-c",
            'model="x"',
            "--config",
            "a.b=1",
            "--enable",
            "f1",
            "--disable",
            "f2",
            "--drain-timeout",
            "5",
            "--dangerously-allow-unsandboxed",
        ]
    )
    assert serve_flags.given_flags(options) == [
        *("--agent", SHOUT, "--agent", "echo", "--log-level", "DEBUG"),
        *("--drain-timeout", "5", "--dangerously-allow-unsandboxed"),
        *("-c", 'model="x"', "-c", "a.b=1", "--enable", "f1", "--disable", "f2"),
    ]


def test_no_flags_means_the_record_and_no_saved_flags_means_none() -> None:
    assert serve_flags.given_flags(daemon_parser().parse_args(["restart"])) is None
    no_saved = daemon_parser().parse_args(["restart", "--no-saved-flags"])
    assert serve_flags.given_flags(no_saved) == []
    attach = relay_parser("attach").parse_args(["--start", "--agent", SHOUT])
    assert serve_flags.given_flags(attach) == ["--agent", SHOUT]


def test_the_record_round_trips_and_anything_else_reads_as_none(tmp_path: Path) -> None:
    assert serve_flags.read_record(tmp_path) == []
    serve_flags.write_record(tmp_path, ["--agent", SHOUT])
    assert serve_flags.read_record(tmp_path) == ["--agent", SHOUT]
    assert serve_flags.launch_args(tmp_path, None) == ["--agent", SHOUT]
    assert serve_flags.launch_args(tmp_path, ["--log-level", "INFO"]) == ["--log-level", "INFO"]
    serve_flags.record_path(tmp_path).write_bytes(b'{"args": [1]}')
    assert serve_flags.read_record(tmp_path) == []
    serve_flags.clear_record(tmp_path)
    assert not serve_flags.record_path(tmp_path).exists()


# -- real processes --------------------------------------------------------------------------


async def test_restart_keeps_the_flags_the_server_was_started_with(home: Path) -> None:
    started = (await daemon(home, "start", "--agent", SHOUT, "--log-level", "DEBUG")).report()
    assert server_flags(started["pid"]) == ["--agent", SHOUT, "--log-level", "DEBUG"]
    restarted = (await daemon(home, "restart")).report()
    assert restarted["pid"] != started["pid"]
    assert server_flags(restarted["pid"]) == ["--agent", SHOUT, "--log-level", "DEBUG"]
    (await daemon(home, "stop")).report()
    again = (await daemon(home, "start")).report()
    assert server_flags(again["pid"]) == ["--agent", SHOUT, "--log-level", "DEBUG"]
    replaced = (await daemon(home, "restart", "--agent", "echo")).report()
    assert server_flags(replaced["pid"]) == ["--agent", "echo"]
    cleared = (await daemon(home, "restart", "--no-saved-flags")).report()
    assert server_flags(cleared["pid"]) == []
    assert serve_flags.read_record(home) == []


async def test_a_running_server_keeps_its_flags_on_start(home: Path) -> None:
    started = (await daemon(home, "start", "--agent", SHOUT)).report()
    again = (await daemon(home, "start", "--agent", "echo")).report()
    assert again["status"] == "alreadyRunning"
    assert server_flags(started["pid"]) == ["--agent", SHOUT]
    assert serve_flags.read_record(home) == ["--agent", SHOUT]


async def test_a_bad_agent_fails_the_start_with_what_to_do(home: Path) -> None:
    result = await daemon(home, "start", "--agent", "no_such_module:Agent")
    assert (result.returncode, result.stdout) == (1, "")
    assert "cannot load agent 'no_such_module:Agent': no module named 'no_such_module'" in (
        result.stderr
    )
    assert "entry point group" in result.stderr


async def test_attach_start_launches_with_the_flags_and_records_them(home: Path) -> None:
    initialize = (
        b'{"id":1,"method":"initialize","params":{"clientInfo":{"name":"t","version":"1"}}}\n'
        b'{"id":2,"method":"model/list","params":{}}\n'
    )
    command = [*APPSERVER, "attach", "--start", "--home", os.fspath(home), "--agent", SHOUT]
    process = await trio.run_process(
        command, stdin=initialize, capture_stdout=True, capture_stderr=True, check=False
    )
    assert process.returncode == 0, process.stderr.decode()
    assert b'"id":"shout"' in process.stdout
    assert serve_flags.read_record(home) == ["--agent", SHOUT]
    status = Result(
        await trio.run_process(
            [*APPSERVER, "daemon", "status", "--home", os.fspath(home)],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    ).report()
    assert server_flags(status["pid"]) == ["--agent", SHOUT]
    assert socket_of(home).exists()
