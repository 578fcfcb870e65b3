"""An agent's command in a turn runs under the thread's sandbox policy, proven from outside."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from appserver.sandbox import enforce
from tests.app.app_harness import completed_items, open_app, run_turn, start_thread
from tests.sandbox_checks import outside_dir, require_bwrap

__all__ = ["outside_dir"]


async def command_item(tmp_path: Path, sandbox: str, command: str, cwd: Path) -> dict[str, object]:
    async with open_app(tmp_path / "home") as app:
        client = await app.client()
        thread_id = await start_thread(
            client, cwd=str(cwd), sandbox=sandbox, approvalPolicy="never"
        )
        frames = await run_turn(client, thread_id, f"$ {command}")
        client.assert_schema_valid()
    (item,) = completed_items(frames, "commandExecution")
    return item


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    path = tmp_path / "ws"
    path.mkdir()
    return path


async def test_read_only_command_cannot_create_a_file(tmp_path: Path, workspace: Path) -> None:
    await require_bwrap()
    item = await command_item(tmp_path, "read-only", "touch made", workspace)
    assert item["status"] == "failed"
    assert "Read-only file system" in str(item["aggregatedOutput"])
    assert not (workspace / "made").exists()


async def test_workspace_write_writes_the_cwd_only(
    tmp_path: Path, workspace: Path, outside_dir: Path
) -> None:
    await require_bwrap()
    inside = await command_item(tmp_path, "workspace-write", "touch made", workspace)
    assert inside["exitCode"] == 0
    assert (workspace / "made").exists()
    outside = await command_item(
        tmp_path, "workspace-write", f"touch {outside_dir}/made", workspace
    )
    assert outside["status"] == "failed"
    assert not (outside_dir / "made").exists()


async def test_danger_full_access_writes_both(
    tmp_path: Path, workspace: Path, outside_dir: Path
) -> None:
    command = f"touch made {outside_dir}/made"
    item = await command_item(tmp_path, "danger-full-access", command, workspace)
    assert item["exitCode"] == 0
    assert (workspace / "made").exists()
    assert (outside_dir / "made").exists()


async def test_network_is_refused_when_off(tmp_path: Path, workspace: Path) -> None:
    await require_bwrap()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        probe = (
            'python3 -c \'import socket; socket.create_connection(("127.0.0.1", '
            f'{port}), timeout=5); print("connected")\''
        )
        refused = await command_item(tmp_path, "workspace-write", probe, workspace)
        allowed = await command_item(tmp_path, "danger-full-access", probe, workspace)
    assert refused["status"] == "failed"
    assert "connected" not in str(refused["aggregatedOutput"])
    assert allowed["exitCode"] == 0
    assert "connected" in str(allowed["aggregatedOutput"])


async def test_a_policy_that_cannot_be_enforced_fails_the_command(
    tmp_path: Path, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(enforce.BWRAP_ENV, str(tmp_path / "no-such-bwrap"))
    monkeypatch.delenv(enforce.ALLOW_ENV, raising=False)
    enforce.reset()
    try:
        item = await command_item(tmp_path, "read-only", "touch made", workspace)
    finally:
        enforce.reset()
    assert item["status"] == "failed"
    assert item["exitCode"] == -1
    assert "sandbox unavailable" in str(item["aggregatedOutput"])
    assert "bubblewrap" in str(item["aggregatedOutput"])
    assert not (workspace / "made").exists()
