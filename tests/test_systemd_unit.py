"""The systemd unit example (issue 13 item 16): valid for systemd, and its ExecStart is a
command line appserver accepts."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from appserver.cli import serve_parser

UNIT = Path(__file__).parent.parent / "examples" / "appserver.service"
INSTALLED_AT = "/opt/appserver/.venv/bin/appserver"


def exec_start() -> list[str]:
    lines = [line for line in UNIT.read_text().splitlines() if line.startswith("ExecStart=")]
    assert len(lines) == 1
    return shlex.split(lines[0].removeprefix("ExecStart="))


def test_exec_start_is_a_command_line_appserver_accepts() -> None:
    argv = exec_start()
    assert argv[0] == INSTALLED_AT
    options = serve_parser().parse_args(argv[1:])
    assert options.home == "/var/lib/appserver"
    assert str(options.listen.path).startswith("/var/lib/appserver/")


def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed (apt package `systemd`): unit not verified")
    # verify checks that ExecStart's program exists: point it at this environment's appserver.
    appserver = Path(sys.executable).parent / "appserver"
    unit = tmp_path / "appserver.service"
    unit.write_text(UNIT.read_text().replace(INSTALLED_AT, str(appserver)))
    result = subprocess.run(
        [tool, "verify", "--man=no", str(unit)], capture_output=True, text=True, check=False
    )
    # Unknown keys and bad values are warnings on stderr with exit status 0: fail on those too.
    problems = [line for line in result.stderr.splitlines() if str(unit) in line]
    assert result.returncode == 0, result.stderr
    assert problems == []
