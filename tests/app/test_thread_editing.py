"""Thread editing in process: revert, inject items, goals, settings, search, metadata and the
queue; what is persisted survives a restart; every frame validates against the schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.app.app_harness import (
    AppHarness,
    Client,
    completed_turn,
    final_text,
    open_app,
    run_turn,
    start_thread,
    text,
)


@pytest.fixture
async def app(tmp_path: Path) -> Any:
    async with open_app(tmp_path / "home") as harness:
        yield harness


async def tui(app: AppHarness) -> Client:
    return await app.client(experimental=True)


async def turn_ids(client: Client, thread_id: str) -> list[str]:
    read = await client.call("thread/read", {"threadId": thread_id, "includeTurns": True})
    return [t["id"] for t in read["thread"]["turns"]]


# -- revert ------------------------------------------------------------------------------------


async def test_revert_drops_the_turn_and_later_ones_persisted_and_announced(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    async with open_app(home) as app:
        client = await tui(app)
        other = await tui(app)
        thread_id = await start_thread(client)
        for word in ("one", "two", "three"):
            await run_turn(client, thread_id, word)
        first, second, _ = await turn_ids(client, thread_id)
        result = await client.call("thread/revert", {"threadId": thread_id, "beforeTurnId": second})
        assert [t["id"] for t in result["thread"]["turns"]] == [first]
        assert await client.notification("thread/reverted") == {"threadId": thread_id}
        # Only subscribers hear of it.
        assert other.received("thread/reverted") == []
        later = await run_turn(client, thread_id, "four")
        assert final_text(later) == "You said: four"
        client.assert_schema_valid()
    async with open_app(home) as app:
        client = await tui(app)
        read = await client.call("thread/read", {"threadId": thread_id, "includeTurns": True})
        texts = [t["items"][0]["content"][0]["text"] for t in read["thread"]["turns"]]
        assert texts == ["one", "four"]


async def test_revert_to_an_unknown_turn_is_refused(app: AppHarness) -> None:
    client = await tui(app)
    thread_id = await start_thread(client)
    error = await client.error("thread/revert", {"threadId": thread_id, "beforeTurnId": "x"})
    assert error["code"] == -32600


# -- inject items ------------------------------------------------------------------------------


async def test_inject_items_are_kept_with_the_thread(tmp_path: Path) -> None:
    home = tmp_path / "home"
    item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "x"}]}
    async with open_app(home) as app:
        client = await tui(app)
        thread_id = await start_thread(client)
        assert (
            await client.call("thread/inject_items", {"threadId": thread_id, "items": [item]}) == {}
        )
        error = await client.error("thread/inject_items", {"threadId": thread_id, "items": [1]})
        assert error["code"] == -32600
        client.assert_schema_valid()
    async with open_app(home) as app:
        loaded = await app.threads.load(thread_id)
        assert loaded.state.injected() == [(None, item)]  # before any turn


# -- goals -------------------------------------------------------------------------------------


async def test_goal_set_get_clear_with_notifications(tmp_path: Path) -> None:
    home = tmp_path / "home"
    async with open_app(home) as app:
        client = await tui(app)
        watcher = await tui(app)
        thread_id = await start_thread(client)
        assert await client.call("thread/goal/get", {"threadId": thread_id}) == {"goal": None}
        goal = (
            await client.call(
                "thread/goal/set",
                {"threadId": thread_id, "objective": " ship it ", "tokenBudget": 9},
            )
        )["goal"]
        assert (goal["objective"], goal["status"], goal["tokenBudget"]) == ("ship it", "active", 9)
        updated = await watcher.notification("thread/goal/updated")
        assert updated["goal"] == goal
        paused = await client.call("thread/goal/set", {"threadId": thread_id, "status": "paused"})
        assert paused["goal"]["status"] == "paused"
        assert paused["goal"]["createdAt"] == goal["createdAt"]
        client.assert_schema_valid()
    async with open_app(home) as app:
        client = await tui(app)
        got = await client.call("thread/goal/get", {"threadId": thread_id})
        assert got["goal"]["status"] == "paused"
        assert await client.call("thread/goal/clear", {"threadId": thread_id}) == {"cleared": True}
        assert await client.notification("thread/goal/cleared") == {"threadId": thread_id}
        assert await client.call("thread/goal/clear", {"threadId": thread_id}) == {"cleared": False}
        assert await client.call("thread/goal/get", {"threadId": thread_id}) == {"goal": None}
        client.assert_schema_valid()


async def test_a_goal_needs_an_objective_and_a_known_status(app: AppHarness) -> None:
    client = await tui(app)
    thread_id = await start_thread(client)
    assert (await client.error("thread/goal/set", {"threadId": thread_id}))["code"] == -32600
    bad = {"threadId": thread_id, "objective": "x", "status": "done"}
    assert (await client.error("thread/goal/set", bad))["code"] == -32600


# -- settings ----------------------------------------------------------------------------------


async def test_settings_update_changes_the_session_as_the_tuis_model_picker_does(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    async with open_app(home) as app:
        client = await tui(app)
        thread_id = await start_thread(client)
        params = {
            "threadId": thread_id,
            "effort": "low",
            "approvalPolicy": "never",
            "collaborationMode": {
                "mode": "default",
                "settings": {
                    "model": "echo",
                    "reasoning_effort": "low",
                    "developer_instructions": None,
                },
            },
        }
        assert await client.call("thread/settings/update", params) == {}
        updated = await client.notification("thread/settings/updated")
        settings = updated["threadSettings"]
        assert (settings["effort"], settings["approvalPolicy"], settings["model"]) == (
            "low",
            "never",
            "echo",
        )
        # The change is real: commands now run without asking.
        frames = await run_turn(client, thread_id, "$ echo ran")
        assert final_text(frames) == "Command exited with code 0."
        client.assert_schema_valid()
    async with open_app(home) as app:
        client = await tui(app)
        resumed = await client.call("thread/resume", {"threadId": thread_id})
        assert (resumed["reasoningEffort"], resumed["approvalPolicy"]) == ("low", "never")
        assert resumed["thread"]["reasoningEffort"] == "low"


async def test_a_collaboration_mode_alone_sets_the_model_and_effort(app: AppHarness) -> None:
    client = await tui(app)
    thread_id = await start_thread(client)
    mode = {"mode": "plan", "settings": {"model": "gpt-5-codex", "reasoning_effort": "high"}}
    params = {"threadId": thread_id, "collaborationMode": mode}
    assert await client.call("thread/settings/update", params) == {}
    settings = (await client.notification("thread/settings/updated"))["threadSettings"]
    assert (settings["model"], settings["effort"]) == ("gpt-5-codex", "high")
    client.assert_schema_valid()


async def test_turn_settings_update_applies_to_the_running_turn_only(app: AppHarness) -> None:
    client = await tui(app)
    thread_id = await start_thread(client)
    params = {"threadId": thread_id, "turnId": "none", "effort": "high"}
    assert await client.call("turn/settings/update", params) == {"status": "targetUnavailable"}
    turn = (await client.call("turn/start", {"threadId": thread_id, "input": text("$ echo x")}))[
        "turn"
    ]
    request = await client.server_request("item/commandExecution/requestApproval")
    applied = await client.call("turn/settings/update", {**params, "turnId": turn["id"]})
    assert applied == {"status": "applied"}
    await client.reply(request["id"], {"decision": "decline"})
    await client.turn_frames(thread_id)
    read = await client.call("thread/read", {"threadId": thread_id})
    assert read["thread"]["reasoningEffort"] == "high"
    client.assert_schema_valid()


async def test_settings_methods_are_experimental(app: AppHarness) -> None:
    client = await app.client()
    thread_id = await start_thread(client)
    error = await client.error("thread/settings/update", {"threadId": thread_id})
    assert "requires experimentalApi" in error["message"]


# -- search and metadata -----------------------------------------------------------------------


async def test_search_finds_threads_by_name_preview_and_messages(app: AppHarness) -> None:
    client = await tui(app)
    named = await start_thread(client)
    await run_turn(client, named, "hello")
    await client.call("thread/name/set", {"threadId": named, "name": "Zebra migration"})
    talked = await start_thread(client)
    await run_turn(client, talked, "hello there")
    await run_turn(client, talked, "the zebra crossing is closed")
    await start_thread(client)
    unused = await start_thread(client)  # never had a turn: not found, as by thread/list
    await client.call("thread/name/set", {"threadId": unused, "name": "Zebra plans"})
    result = await client.call("thread/search", {"searchTerm": "ZEBRA"})
    found = {r["thread"]["id"]: r["snippet"] for r in result["data"]}
    assert set(found) == {named, talked}
    assert found[named] == "Zebra migration"
    assert "zebra crossing" in found[talked]
    paged = await client.call("thread/search", {"searchTerm": "zebra", "limit": 1})
    assert len(paged["data"]) == 1
    assert paged["nextCursor"] is not None
    assert (await client.call("thread/search", {"searchTerm": "okapi"}))["data"] == []
    client.assert_schema_valid()


async def test_metadata_update_sets_git_info(app: AppHarness) -> None:
    client = await tui(app)
    thread_id = await start_thread(client)
    git = {"branch": "main", "sha": "abc123"}
    result = await client.call("thread/metadata/update", {"threadId": thread_id, "gitInfo": git})
    assert result["thread"]["gitInfo"] == {"branch": "main", "sha": "abc123", "originUrl": None}
    read = await client.call("thread/read", {"threadId": thread_id})
    assert read["thread"]["gitInfo"]["branch"] == "main"
    client.assert_schema_valid()


# -- the queue ---------------------------------------------------------------------------------


async def queue(client: Client, thread_id: str, message: str) -> str:
    result = await client.call(
        "thread/queue/add",
        {"threadId": thread_id, "clientUserMessageId": message, "input": text(message)},
    )
    submission_id: str = result["queuedSubmission"]["id"]
    return submission_id


async def test_queue_list_update_reorder_delete_start(app: AppHarness) -> None:
    client = await tui(app)
    thread_id = await start_thread(client)
    # A running turn keeps the queue from draining.
    turn = (await client.call("turn/start", {"threadId": thread_id, "input": text("$ echo busy")}))[
        "turn"
    ]
    request = await client.server_request("item/commandExecution/requestApproval")
    a, b, c = [await queue(client, thread_id, m) for m in ("a", "b", "c")]
    listed = await client.call("thread/queue/list", {"threadId": thread_id})
    assert [s["id"] for s in listed["data"]] == [a, b, c]
    updated = await client.call(
        "thread/queue/update",
        {"threadId": thread_id, "queuedSubmissionId": b, "input": text("b2")},
    )
    assert updated["queuedSubmission"]["input"] == text("b2")
    await client.call(
        "thread/queue/reorder", {"threadId": thread_id, "queuedSubmissionIds": [c, b, a]}
    )
    error = await client.error(
        "thread/queue/reorder", {"threadId": thread_id, "queuedSubmissionIds": [c]}
    )
    assert error["code"] == -32600
    deleted = await client.call(
        "thread/queue/delete", {"threadId": thread_id, "queuedSubmissionId": a}
    )
    assert deleted == {"deleted": True}
    again = await client.call(
        "thread/queue/delete", {"threadId": thread_id, "queuedSubmissionId": a}
    )
    assert again == {"deleted": False}
    busy = await client.error("thread/queue/start", {"threadId": thread_id})
    assert busy["code"] == -32600
    await client.call("turn/interrupt", {"threadId": thread_id, "turnId": turn["id"]})
    del request
    # The interrupted turn, then the queue drains in its new order: c, then b2.
    await client.turn_frames(thread_id)
    first = await client.turn_frames(thread_id)
    second = await client.turn_frames(thread_id)
    assert [final_text(first), final_text(second)] == ["You said: c", "You said: b2"]
    assert len(client.received("thread/queue/changed")) >= 5
    client.assert_schema_valid()


async def test_queue_start_runs_a_chosen_submission_now(app: AppHarness) -> None:
    client = await tui(app)
    thread_id = await start_thread(client)
    loaded = await app.threads.load(thread_id)
    # Queued while idle without draining: put it straight into the thread's queue.
    loaded.queue.append(
        {
            "id": "q1",
            "clientUserMessageId": "m",
            "input": text("now"),
            "responsesapiClientMetadata": None,
        }
    )
    result = await client.call(
        "thread/queue/start", {"threadId": thread_id, "queuedSubmissionId": "q1"}
    )
    frames = await client.turn_frames(thread_id)
    assert completed_turn(frames)["id"] == result["turn"]["id"]
    assert final_text(frames) == "You said: now"
    assert (await client.call("thread/queue/list", {"threadId": thread_id}))["data"] == []
    empty = await client.error("thread/queue/start", {"threadId": thread_id})
    assert empty["code"] == -32600
    client.assert_schema_valid()
