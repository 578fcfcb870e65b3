"""Permission profiles and sandbox policies chosen by a client take effect: `/permissions` in the
TUI sends `thread/settings/update {"permissions": ":workspace"}`; `turn/start` may carry
`permissions` or a `sandboxPolicy`. What is chosen is what later commands run under."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.app.app_harness import (
    AppHarness,
    Client,
    completed_items,
    open_app,
    run_turn,
    start_thread,
)


@pytest.fixture
async def app(tmp_path: Path) -> Any:
    async with open_app(tmp_path / "home") as harness:
        yield harness


async def sandbox_of(client: Client, thread_id: str) -> dict[str, Any]:
    resumed = await client.call("thread/resume", {"threadId": thread_id})
    return dict(resumed["sandbox"])


async def command_status(client: Client, thread_id: str, command: str) -> str:
    frames = await run_turn(client, thread_id, f"$ {command}")
    (item,) = completed_items(frames, "commandExecution")
    return str(item["status"])


async def test_the_tui_permissions_picker_makes_the_workspace_writable(
    app: AppHarness, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    client = await app.client(experimental=True)
    thread_id = await start_thread(
        client, cwd=str(work), sandbox="read-only", approvalPolicy="never"
    )
    assert await command_status(client, thread_id, "touch before") == "failed"
    assert not (work / "before").exists()
    settings = {"threadId": thread_id, "permissions": ":workspace", "approvalPolicy": "never"}
    assert await client.call("thread/settings/update", settings) == {}
    announced = await client.notification("thread/settings/updated")
    assert announced["threadSettings"]["sandboxPolicy"]["type"] == "workspaceWrite"
    assert (await sandbox_of(client, thread_id))["type"] == "workspaceWrite"
    assert await command_status(client, thread_id, "touch after") == "completed"
    assert (work / "after").exists()
    client.assert_schema_valid()


async def test_turn_start_permissions_and_sandbox_policy_apply_to_the_turn(
    app: AppHarness, tmp_path: Path
) -> None:
    client = await app.client(experimental=True)
    thread_id = await start_thread(client, sandbox="read-only", approvalPolicy="never")
    input_ = [{"type": "text", "text": "hi"}]
    await client.call(
        "turn/start",
        {"threadId": thread_id, "input": input_, "permissions": ":danger-full-access"},
    )
    await client.turn_frames(thread_id)
    assert (await sandbox_of(client, thread_id))["type"] == "dangerFullAccess"
    policy = {"type": "readOnly", "networkAccess": False}
    await client.call(
        "turn/start", {"threadId": thread_id, "input": input_, "sandboxPolicy": policy}
    )
    await client.turn_frames(thread_id)
    assert (await sandbox_of(client, thread_id))["type"] == "readOnly"


@pytest.mark.parametrize(
    "params",
    [{"permissions": ":nonsense"}, {"sandboxPolicy": {"type": "sideways"}}],
)
async def test_unknown_profiles_and_policies_are_refused(
    app: AppHarness, params: dict[str, Any]
) -> None:
    client = await app.client(experimental=True)
    thread_id = await start_thread(client)
    error = await client.error("thread/settings/update", {"threadId": thread_id, **params})
    assert error["code"] == -32600
    assert (await sandbox_of(client, thread_id))["type"] == "readOnly"


async def test_interrupt_with_an_empty_turn_id_is_not_an_error(app: AppHarness) -> None:
    # The TUI sends `turnId: ""` when it closes a side conversation.
    client = await app.client(experimental=True)
    thread_id = await start_thread(client)
    assert await client.call("turn/interrupt", {"threadId": thread_id, "turnId": ""}) == {}
    error = await client.error("turn/interrupt", {"threadId": thread_id, "turnId": "nope"})
    assert error["code"] == -32600
