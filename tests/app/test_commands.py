"""command/exec and thread/backgroundTerminals/* through the application."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from appserver.sandbox import enforce
from tests.app.app_harness import Client, open_app, start_thread, text
from tests.sandbox_checks import outside_dir, require_bwrap

__all__ = ["outside_dir"]

DANGER = {"type": "dangerFullAccess"}


def sh(script: str) -> list[str]:
    return ["/bin/sh", "-c", script]


def decoded(deltas: list[dict[str, Any]], stream: str = "stdout") -> bytes:
    return b"".join(base64.b64decode(d["deltaBase64"]) for d in deltas if d["stream"] == stream)


async def test_buffered_exec_returns_exit_code_stdout_and_stderr(tmp_path: Path) -> None:
    async with open_app(tmp_path) as app:
        client = await app.client()
        result = await client.call(
            "command/exec", {"command": sh("echo out; echo err >&2; exit 3"), "cwd": str(tmp_path)}
        )
        assert result == {"exitCode": 3, "stdout": "out\n", "stderr": "err\n"}
        assert client.received("command/exec/outputDelta") == []
        client.assert_schema_valid()


async def test_cwd_defaults_to_the_server_cwd_and_env_is_merged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APPSERVER_TEST_INHERITED", "inherited")
    monkeypatch.setenv("APPSERVER_TEST_UNSET", "present")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path)
    async with open_app(tmp_path / "home") as app:
        client = await app.client()
        script = (
            'pwd; echo "$APPSERVER_TEST_INHERITED $APPSERVER_TEST_ADDED '
            '${APPSERVER_TEST_UNSET-gone}"'
        )
        result = await client.call(
            "command/exec",
            {
                "command": sh(script),
                "env": {"APPSERVER_TEST_ADDED": "added", "APPSERVER_TEST_UNSET": None},
                "sandboxPolicy": DANGER,
            },
        )
        assert result["stdout"] == f"{tmp_path}\ninherited added gone\n"
        relative = await client.call(
            "command/exec", {"command": ["pwd"], "cwd": "sub", "sandboxPolicy": DANGER}
        )
        assert relative["stdout"] == f"{tmp_path / 'sub'}\n"


async def test_streamed_output_goes_to_the_requester_only_before_the_reply(
    tmp_path: Path,
) -> None:
    async with open_app(tmp_path) as app:
        client = await app.client()
        other = await app.client()
        reply = await client.request(
            "command/exec",
            {
                "command": sh("printf one; printf two >&2"),
                "processId": "p1",
                "streamStdoutStderr": True,
                "cwd": str(tmp_path),
            },
        )
        assert reply["result"] == {"exitCode": 0, "stdout": "", "stderr": ""}
        deltas = client.received("command/exec/outputDelta")
        assert decoded(deltas, "stdout") == b"one"
        assert decoded(deltas, "stderr") == b"two"
        assert all(d["processId"] == "p1" and d["capReached"] is False for d in deltas)
        reply_index = client.frames.index(reply)
        delta_indexes = [
            i for i, f in enumerate(client.frames) if f.get("method") == "command/exec/outputDelta"
        ]
        assert max(delta_indexes) < reply_index
        assert other.received("command/exec/outputDelta") == []
        client.assert_schema_valid()


async def test_output_cap_truncates_and_reports_cap_reached(tmp_path: Path) -> None:
    async with open_app(tmp_path) as app:
        client = await app.client()
        command = sh("head -c 100000 /dev/zero | tr '\\0' x")
        buffered = await client.call(
            "command/exec", {"command": command, "outputBytesCap": 10, "cwd": str(tmp_path)}
        )
        assert buffered["stdout"] == "x" * 10
        await client.call(
            "command/exec",
            {
                "command": command,
                "outputBytesCap": 10,
                "processId": "capped",
                "streamStdoutStderr": True,
                "cwd": str(tmp_path),
            },
        )
        deltas = client.received("command/exec/outputDelta")
        assert decoded(deltas) == b"x" * 10
        assert deltas[-1]["capReached"] is True
        uncapped = await client.call(
            "command/exec", {"command": command, "disableOutputCap": True, "cwd": str(tmp_path)}
        )
        assert len(uncapped["stdout"]) == 100000


async def start_exec(client: Client, params: dict[str, Any]) -> int:
    """Send command/exec without waiting for its reply; returns the request id."""
    request_id = next(client._ids)
    client.methods[request_id] = "command/exec"
    await client.send({"id": request_id, "method": "command/exec", "params": params})
    return request_id


async def reply_to(client: Client, request_id: int) -> dict[str, Any]:
    return await client.wait_for(lambda f: f.get("id") == request_id and "method" not in f)


async def first_delta(client: Client, process_id: str) -> bytes:
    params = await client.notification("command/exec/outputDelta", processId=process_id)
    return base64.b64decode(params["deltaBase64"])


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def test_stdin_write_and_close(tmp_path: Path) -> None:
    async with open_app(tmp_path) as app:
        client = await app.client()
        request_id = await start_exec(
            client,
            {
                "command": sh("echo ready; cat"),
                "processId": "cat",
                "streamStdin": True,
                "streamStdoutStderr": True,
                "cwd": str(tmp_path),
            },
        )
        assert await first_delta(client, "cat") == b"ready\n"
        write = {"processId": "cat", "deltaBase64": b64(b"hello\n")}
        assert await client.call("command/exec/write", write) == {}
        assert await first_delta(client, "cat") == b"hello\n"
        await client.call("command/exec/write", {"processId": "cat", "closeStdin": True})
        assert (await reply_to(client, request_id))["result"]["exitCode"] == 0
        gone = await client.error("command/exec/write", write)
        assert gone == {"code": -32600, "message": 'no active command/exec for process id "cat"'}
        client.assert_schema_valid()


async def test_tty_runs_in_a_terminal_that_can_be_resized(tmp_path: Path) -> None:
    async with open_app(tmp_path) as app:
        client = await app.client()
        script = "stty size; read line; stty size; echo got:$line"
        request_id = await start_exec(
            client,
            {
                "command": sh(script),
                "processId": "term",
                "tty": True,
                "size": {"rows": 30, "cols": 100},
                "sandboxPolicy": DANGER,
                "cwd": str(tmp_path),
            },
        )
        assert await first_delta(client, "term") == b"30 100\r\n"
        await client.call(
            "command/exec/resize", {"processId": "term", "size": {"rows": 40, "cols": 120}}
        )
        await client.call("command/exec/write", {"processId": "term", "deltaBase64": b64(b"hi\n")})
        reply = await reply_to(client, request_id)
        assert reply["result"]["exitCode"] == 0
        output = decoded(client.received("command/exec/outputDelta"))
        assert output.endswith(b"40 120\r\ngot:hi\r\n")
        client.assert_schema_valid()


async def test_timeout_kills_with_exit_code_124(tmp_path: Path) -> None:
    async with open_app(tmp_path) as app:
        client = await app.client()
        result = await client.call(
            "command/exec", {"command": ["sleep", "30"], "timeoutMs": 200, "cwd": str(tmp_path)}
        )
        assert result["exitCode"] == 124


async def test_terminate_kills_the_process_group(tmp_path: Path) -> None:
    async with open_app(tmp_path) as app:
        client = await app.client()
        request_id = await start_exec(
            client,
            {
                "command": sh("echo started; sleep 30 & wait"),
                "processId": "sleeper",
                "streamStdoutStderr": True,
                "disableTimeout": True,
                "sandboxPolicy": DANGER,
                "cwd": str(tmp_path),
            },
        )
        assert await first_delta(client, "sleeper") == b"started\n"
        assert await client.call("command/exec/terminate", {"processId": "sleeper"}) == {}
        reply = await reply_to(client, request_id)
        assert reply["result"]["exitCode"] == 128 + 9


@pytest.mark.parametrize(
    ("params", "code", "message"),
    [
        ({"command": []}, -32600, "command must not be empty"),
        (
            {"command": ["true"], "tty": True},
            -32600,
            "command/exec tty or streaming requires a client-supplied processId",
        ),
        (
            {"command": ["true"], "size": {"rows": 1, "cols": 1}},
            -32602,
            "command/exec size requires tty: true",
        ),
        (
            {"command": ["true"], "outputBytesCap": 1, "disableOutputCap": True},
            -32602,
            "command/exec cannot set both outputBytesCap and disableOutputCap",
        ),
        (
            {"command": ["true"], "timeoutMs": 1, "disableTimeout": True},
            -32602,
            "command/exec cannot set both timeoutMs and disableTimeout",
        ),
        (
            {"command": ["true"], "timeoutMs": -1},
            -32602,
            "command/exec timeoutMs must be non-negative, got -1",
        ),
        (
            {"command": ["true"], "sandboxPolicy": DANGER, "permissionProfile": "x"},
            -32600,
            "`permissionProfile` cannot be combined with `sandboxPolicy`",
        ),
        (
            {"command": ["true"], "processId": "p", "tty": True, "size": {"rows": 0, "cols": 5}},
            -32602,
            "command/exec size rows and cols must be greater than 0",
        ),
        (
            {"command": ["true"], "sandboxPolicy": {"type": "nope"}},
            -32600,
            "invalid sandbox policy: unknown sandbox policy type: 'nope'",
        ),
    ],
)
async def test_invalid_params_are_refused_with_codex_texts(
    tmp_path: Path, params: dict[str, Any], code: int, message: str
) -> None:
    async with open_app(tmp_path) as app:
        client = await app.client()
        assert await client.error("command/exec", params) == {"code": code, "message": message}


async def test_follow_up_calls_need_a_running_process(tmp_path: Path) -> None:
    async with open_app(tmp_path) as app:
        client = await app.client()
        assert await client.error("command/exec/write", {"processId": "p"}) == {
            "code": -32602,
            "message": "command/exec/write requires deltaBase64 or closeStdin",
        }
        for method, params in [
            ("command/exec/terminate", {"processId": "ghost"}),
            ("command/exec/resize", {"processId": "ghost", "size": {"rows": 2, "cols": 2}}),
        ]:
            assert await client.error(method, params) == {
                "code": -32600,
                "message": 'no active command/exec for process id "ghost"',
            }


async def test_duplicate_process_id_and_stdin_not_enabled(tmp_path: Path) -> None:
    async with open_app(tmp_path) as app:
        client = await app.client()
        params = {
            "command": sh("echo up; sleep 30"),
            "processId": "dup",
            "streamStdoutStderr": True,
            "cwd": str(tmp_path),
        }
        request_id = await start_exec(client, params)
        assert await first_delta(client, "dup") == b"up\n"
        assert await client.error("command/exec", params) == {
            "code": -32600,
            "message": 'duplicate active command/exec process id: "dup"',
        }
        assert await client.error(
            "command/exec/write", {"processId": "dup", "deltaBase64": b64(b"x")}
        ) == {"code": -32600, "message": "stdin streaming is not enabled for this command/exec"}
        await client.call("command/exec/terminate", {"processId": "dup"})
        await reply_to(client, request_id)


# -- the sandbox, from outside ----------------------------------------------------------------


async def exec_result(tmp_path: Path, command: list[str], policy: Any, cwd: Path) -> Any:
    async with open_app(tmp_path / "home") as app:
        client = await app.client()
        params: dict[str, Any] = {"command": command, "cwd": str(cwd)}
        if policy is not None:
            params["sandboxPolicy"] = policy
        return await client.call("command/exec", params)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    path = tmp_path / "ws"
    path.mkdir()
    return path


@pytest.mark.parametrize("policy", [None, {"type": "readOnly"}])
async def test_read_only_cannot_create_a_file(tmp_path: Path, workspace: Path, policy: Any) -> None:
    await require_bwrap()
    result = await exec_result(tmp_path, ["touch", "made"], policy, workspace)
    assert result["exitCode"] != 0
    assert "Read-only file system" in result["stderr"]
    assert not (workspace / "made").exists()


async def test_workspace_write_writes_cwd_and_tmp_but_not_outside(
    tmp_path: Path, workspace: Path, outside_dir: Path
) -> None:
    await require_bwrap()
    policy = {"type": "workspaceWrite"}
    inside = await exec_result(tmp_path, ["touch", "made"], policy, workspace)
    assert inside["exitCode"] == 0
    assert (workspace / "made").exists()
    outside = await exec_result(tmp_path, ["touch", str(outside_dir / "made")], policy, workspace)
    assert outside["exitCode"] != 0
    assert not (outside_dir / "made").exists()
    rooted = {"type": "workspaceWrite", "writableRoots": [str(outside_dir)]}
    granted = await exec_result(tmp_path, ["touch", str(outside_dir / "made")], rooted, workspace)
    assert granted["exitCode"] == 0


async def test_workspace_write_keeps_git_read_only(tmp_path: Path, workspace: Path) -> None:
    await require_bwrap()
    (workspace / ".git").mkdir()
    policy = {"type": "workspaceWrite"}
    result = await exec_result(tmp_path, ["touch", ".git/config", "ok"], policy, workspace)
    assert result["exitCode"] != 0
    assert not (workspace / ".git" / "config").exists()
    assert (workspace / "ok").exists()


async def test_exclude_slash_tmp_makes_tmp_read_only(tmp_path: Path, outside_dir: Path) -> None:
    await require_bwrap()
    policy = {"type": "workspaceWrite", "excludeSlashTmp": True, "excludeTmpdirEnvVar": True}
    result = await exec_result(tmp_path, ["touch", str(tmp_path / "made")], policy, outside_dir)
    assert result["exitCode"] != 0
    assert not (tmp_path / "made").exists()


async def test_network_is_refused_unless_allowed(tmp_path: Path, workspace: Path) -> None:
    await require_bwrap()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        probe = [
            "python3",
            "-c",
            f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=5)",
        ]
        off = await exec_result(tmp_path, probe, {"type": "workspaceWrite"}, workspace)
        on = await exec_result(
            tmp_path, probe, {"type": "readOnly", "networkAccess": True}, workspace
        )
        full = await exec_result(tmp_path, probe, DANGER, workspace)
    assert off["exitCode"] != 0
    assert "ConnectionRefusedError" in off["stderr"] or "Network is unreachable" in off["stderr"]
    assert on["exitCode"] == 0
    assert full["exitCode"] == 0


async def test_danger_full_access_writes_everywhere(
    tmp_path: Path, workspace: Path, outside_dir: Path
) -> None:
    result = await exec_result(
        tmp_path, ["touch", "made", str(outside_dir / "made")], DANGER, workspace
    )
    assert result["exitCode"] == 0
    assert (workspace / "made").exists()
    assert (outside_dir / "made").exists()


async def test_unenforceable_policy_is_refused_unless_opted_in(
    tmp_path: Path, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(enforce.BWRAP_ENV, str(tmp_path / "no-such-bwrap"))
    monkeypatch.delenv(enforce.ALLOW_ENV, raising=False)
    enforce.reset()
    try:
        async with open_app(tmp_path / "home") as app:
            client = await app.client()
            params = {"command": ["touch", "made"], "cwd": str(workspace)}
            error = await client.error("command/exec", params)
            assert error["code"] == -32603
            assert error["message"].startswith("exec failed: sandbox unavailable")
            assert not (workspace / "made").exists()
            monkeypatch.setenv(enforce.ALLOW_ENV, "1")
            assert (await client.call("command/exec", params))["exitCode"] == 0
            assert (workspace / "made").exists()
    finally:
        enforce.reset()


@pytest.fixture
def dirty_repo(workspace: Path) -> Path:
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], cwd=workspace, check=True)
    (workspace / "f.txt").write_text("one\n")
    subprocess.run([*git, "add", "f.txt"], cwd=workspace, check=True)
    subprocess.run([*git, "commit", "-qm", "c"], cwd=workspace, check=True)
    (workspace / "f.txt").write_text("two\n")
    return workspace


async def test_diff_of_a_dirty_repo_as_the_tui_asks(tmp_path: Path, dirty_repo: Path) -> None:
    await require_bwrap()
    workspace = dirty_repo
    async with open_app(tmp_path / "home") as app:
        client = await app.client()
        result = await client.call(
            "command/exec",
            {
                "command": ["git", "-c", "core.fsmonitor=false", "diff", "--no-color"],
                "processId": None,
                "outputBytesCap": None,
                "disableOutputCap": True,
                "timeoutMs": 30000,
                "cwd": str(workspace),
                "env": None,
                "size": None,
                "sandboxPolicy": None,
                "permissionProfile": None,
            },
        )
        assert result["exitCode"] == 0
        assert "-one\n+two\n" in result["stdout"]
        client.assert_schema_valid()


# -- background terminals ---------------------------------------------------------------------


async def test_background_terminals_list_terminate_and_clean(tmp_path: Path) -> None:
    async with open_app(tmp_path / "home") as app:
        client = await app.client(experimental=True)
        thread_id = await start_thread(
            client, cwd=str(tmp_path), sandbox="danger-full-access", approvalPolicy="never"
        )
        listed: list[dict[str, Any]] = []
        for round_ in ("terminate", "clean"):
            await client.call(
                "turn/start", {"threadId": thread_id, "input": text("$ echo up; sleep 30")}
            )
            await client.notification("item/commandExecution/outputDelta", threadId=thread_id)
            page = await client.call("thread/backgroundTerminals/list", {"threadId": thread_id})
            (terminal,) = page["data"]
            assert terminal["command"] == "echo up; sleep 30"
            assert terminal["cwd"] == str(tmp_path)
            assert terminal["osPid"] > 0
            os.kill(terminal["osPid"], 0)
            listed.append(terminal)
            if round_ == "terminate":
                params = {"threadId": thread_id, "processId": terminal["processId"]}
                result = await client.call("thread/backgroundTerminals/terminate", params)
                assert result == {"terminated": True}
            else:
                assert (
                    await client.call("thread/backgroundTerminals/clean", {"threadId": thread_id})
                    == {}
                )
            await client.turn_frames(thread_id)
            after = await client.call("thread/backgroundTerminals/list", {"threadId": thread_id})
            assert after == {"data": [], "nextCursor": None}
        again = {"threadId": thread_id, "processId": listed[0]["processId"]}
        assert await client.call("thread/backgroundTerminals/terminate", again) == {
            "terminated": False
        }
        client.assert_schema_valid()
