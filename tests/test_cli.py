"""The command line, run as a real process: Codex's config flags before or after `app-server`,
generate-json-schema / generate-ts, and the refusals of issue 13 item 11."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from appserver.config_flags import ConfigFlags, split_root_flags
from tests.e2e.transports import server_env

FIXTURES = Path(__file__).parent / "fixtures"
APPSERVER = (sys.executable, "-m", "appserver")
TIMEOUT = 60


def run(*args: str, stdin: str = "", home: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = server_env()
    if home is not None:
        env["APPSERVER_HOME"] = os.fspath(home)
    return subprocess.run(
        [*APPSERVER, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=env,
        check=False,
    )


def stdio_session(home: Path, *args: str, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Serve stdio with `args`: initialize, then `requests`; their replies in order."""
    lines = [
        {
            "id": 0,
            "method": "initialize",
            "params": {"clientInfo": {"name": "t", "version": "1"}},
        },
        {"method": "initialized"},
        *({"id": index + 1, **request} for index, request in enumerate(requests)),
    ]
    done = run(*args, stdin="".join(json.dumps(line) + "\n" for line in lines), home=home)
    assert done.returncode == 0, done.stderr
    replies = {}
    for line in done.stdout.splitlines():
        message = json.loads(line)
        if "id" in message and "method" not in message:
            replies[message["id"]] = message
    return [replies[index + 1] for index in range(len(requests))]


FLAGS = [
    "-c",
    'model_reasoning_effort="low"',
    "--enable",
    "fast_mode",
    "--config=approval_policy=never",
]


@pytest.mark.e2e
@pytest.mark.parametrize(
    "argv",
    [
        [*FLAGS, "app-server", "--listen", "stdio://"],
        ["app-server", *FLAGS, "--listen", "stdio://"],
        ["app-server", "--listen", "stdio://", *FLAGS],
        ["--listen", "stdio://", *FLAGS],
    ],
    ids=["before", "after-subcommand", "after-options", "no-subcommand"],
)
def test_config_flags_before_or_after_the_subcommand(tmp_path: Path, argv: list[str]) -> None:
    (reply,) = stdio_session(
        tmp_path,
        *argv,
        requests=[{"method": "config/read", "params": {"includeLayers": True}}],
    )
    result = reply["result"]
    assert result["config"]["model_reasoning_effort"] == "low"
    assert result["config"]["approval_policy"] == "never"
    assert result["config"]["features"] == {"fast_mode": True}
    flags_layer = result["layers"][0]
    assert flags_layer["name"] == {"type": "sessionFlags"}
    assert flags_layer["config"] == {
        "model_reasoning_effort": "low",
        "approval_policy": "never",
        "features": {"fast_mode": True},
    }
    assert result["origins"]["features.fast_mode"]["name"] == {"type": "sessionFlags"}


@pytest.mark.e2e
def test_flags_after_the_subcommand_win_over_root_flags(tmp_path: Path) -> None:
    (reply,) = stdio_session(
        tmp_path,
        "-c",
        "model=first",
        "app-server",
        "-c",
        "model=second",
        requests=[{"method": "config/read", "params": {}}],
    )
    assert reply["result"]["config"]["model"] == "second"


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["-c", "foo"],
            "Error: error parsing -c overrides: Invalid override (missing '='): foo",
        ),
        (
            ["app-server", "-c", "=3"],
            "Error: error parsing -c overrides: Empty key in override: =3",
        ),
        (["-c", "model=5"], "expected a string\nin `model`"),
        (["--listen", "off"], "Error: no transport configured; use --listen stdio://"),
        (["--enable", "no_such_feature"], "Error: Unknown feature flag: no_such_feature"),
    ],
)
def test_refused_starts_exit_1_with_the_reason(
    tmp_path: Path, argv: list[str], message: str
) -> None:
    done = run(*argv, home=tmp_path)
    assert done.returncode == 1
    assert message in done.stderr
    assert "remote control" not in done.stderr


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--log-level", "verbose"], "unknown level 'verbose'"),
        (
            [
                "--listen",
                "unix://",
                "--ws-auth",
                "capability-token",
                "--ws-token-sha256",
                "ab",
            ],
            "--ws-auth, --ws-token-sha256 only apply to a ws:// listener, not to --listen unix://",
        ),
        (["--ws-issuer", "me"], "--ws-issuer only applies to a ws:// listener"),
        # No abbreviations: `--out` is not `--outbound-queue-bytes`.
        (["--out", "5"], "unrecognized arguments: --out 5"),
        (["--outbound", "5"], "unrecognized arguments: --outbound 5"),
        (["daemon", "status", "--ho", "x"], "unrecognized arguments: --ho x"),
        (["generate-json-schema"], "the following arguments are required: -o/--out"),
    ],
)
def test_bad_arguments_exit_2_saying_which(tmp_path: Path, argv: list[str], message: str) -> None:
    done = run(*argv, home=tmp_path)
    assert done.returncode == 2
    assert message in done.stderr


@pytest.mark.e2e
def test_log_levels_of_codex_and_python_are_accepted(tmp_path: Path) -> None:
    for level in ("trace", "WARN", "warning", "Error"):
        assert stdio_session(tmp_path, "--log-level", level, requests=[]) == []


@pytest.mark.e2e
def test_help_lists_the_subcommands(tmp_path: Path) -> None:
    done = run("--help", home=tmp_path)
    assert done.returncode == 0
    for name in ("attach", "proxy", "daemon", "generate-json-schema", "generate-ts"):
        assert f"\n  {name} " in done.stdout
    assert "app-server" in done.stdout


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("experimental", "fixture", "count"),
    [(False, "codex-schema-stable", 329), (True, "codex-schema", 479)],
)
def test_generate_json_schema_writes_codex_bundle(
    tmp_path: Path, experimental: bool, fixture: str, count: int
) -> None:
    out = tmp_path / "out"
    argv = ["app-server", "generate-json-schema", "--out", str(out)]
    done = run(*argv, *(["--experimental"] if experimental else []), home=tmp_path)
    assert done.returncode == 0, done.stderr
    written = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    assert len(written) == count
    expected = sorted(p.relative_to(FIXTURES / fixture) for p in (FIXTURES / fixture).rglob("*"))
    for relative in (p for p in expected if (FIXTURES / fixture / p).is_file()):
        assert (out / relative).read_bytes() == (FIXTURES / fixture / relative).read_bytes()


@pytest.mark.e2e
def test_generate_ts_writes_typescript(tmp_path: Path) -> None:
    out = tmp_path / "ts"
    done = run("generate-ts", "-o", str(out), home=tmp_path)
    assert done.returncode == 0, done.stderr
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) == 784
    assert all(p.suffix == ".ts" for p in files)
    assert "export type ClientRequest" in (out / "ClientRequest.ts").read_text()


def test_root_flag_splitting() -> None:
    flags, rest = split_root_flags(
        [
            "-c",
            "a=1",
            "-cb=2",
            "--config=c=3",
            "--enable",
            "x",
            "--disable=y",
            "app-server",
            "-c",
        ]
    )
    assert flags == ConfigFlags(("a=1", "b=2", "c=3"), ("x",), ("y",))
    assert rest == ["app-server", "-c"]
    assert split_root_flags(["-c"]) == (ConfigFlags(), ["-c"])
    assert split_root_flags(["--listen", "x", "-c", "a=1"]) == (
        ConfigFlags(),
        ["--listen", "x", "-c", "a=1"],
    )
