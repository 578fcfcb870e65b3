"""Threads, turns and items in process (spec README §6): subscriptions and who hears what, the
echo agent, command approvals, interruption, listing and paging, forking, queueing,
persistence across restarts, custom agents and the experimental gate."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
import trio
import trio.testing

from appserver.app import thread_state
from appserver.app.agents import Agent
from appserver.app.agents.echo import EchoAgent
from appserver.server import load_agents
from tests.app import custom_agents
from tests.app.app_harness import (
    AppHarness,
    Client,
    Frame,
    completed_items,
    completed_turn,
    final_text,
    notifications,
    open_app,
    run_turn,
    start_thread,
    text,
)
from tests.app.custom_agents import FailingAgent

APPROVAL = "item/commandExecution/requestApproval"
TURN_METHODS = ("turn/", "item/", "thread/tokenUsage/updated", "serverRequest/resolved")


def turn_traffic(client: Client) -> list[Frame]:
    """Every frame received that only a thread's subscribers should get."""
    client.pull()
    return [
        f
        for f in client.frames
        if f.get("method", "").startswith(TURN_METHODS) or f.get("method") == APPROVAL
    ]


def methods_of(frames: list[Frame]) -> list[str]:
    return [f["method"] for f in frames if "method" in f]


@pytest.fixture
async def app(tmp_path: Path) -> Any:
    async with open_app(tmp_path / "home") as harness:
        yield harness


# -- thread/start, thread/started and subscriptions ----------------------------------------------


async def test_thread_started_goes_to_every_initialized_connection_but_opted_out_ones(
    app: AppHarness,
) -> None:
    creator, other = await app.client(), await app.client(experimental=True)
    opted_out = await app.client(opt_out=["thread/started"])
    uninitialized = app.connect()
    result = await creator.call("thread/start", {})
    thread_id = result["thread"]["id"]
    started = await creator.notification("thread/started")
    assert started["thread"]["id"] == thread_id
    assert (await other.notification("thread/started"))["thread"]["id"] == thread_id
    # thread/started is queued for every ready connection in one pass: the others have it now.
    assert opted_out.received("thread/started") == []
    assert uninitialized.pull() == []
    # The opted-out client still gets the other broadcasts.
    await creator.call("thread/name/set", {"threadId": thread_id, "name": "Named"})
    update = await opted_out.notification("thread/name/updated")
    assert update == {"threadId": thread_id, "threadName": "Named"}
    assert uninitialized.pull() == []


async def test_thread_start_subscribes_its_creator(app: AppHarness) -> None:
    creator, resumer = await app.client(), await app.client()
    thread_id = await start_thread(creator)
    assert app.threads.loaded[thread_id].subscribers == {creator.id}
    await resumer.call("thread/resume", {"threadId": thread_id})
    # The resumer starts the turn; the creator, who never called turn/start, hears it all.
    frames = await run_turn(resumer, thread_id, "hello world")
    creator_frames = await creator.turn_frames(thread_id)
    assert methods_of(creator_frames) == methods_of(frames)
    assert final_text(creator_frames) == "You said: hello world"


async def test_turn_and_item_notifications_reach_only_subscribers_of_two(
    app: AppHarness,
) -> None:
    creator, bystander = await app.client(), await app.client()
    thread_id = await start_thread(creator)
    await run_turn(creator, thread_id, "hello world")
    await bystander.notification(
        "thread/status/changed", threadId=thread_id, status={"type": "idle"}
    )
    assert turn_traffic(bystander) == []
    assert [p["thread"]["id"] for p in bystander.received("thread/started")] == [thread_id]


async def test_turn_and_item_notifications_reach_only_subscribers_of_three(
    app: AppHarness,
) -> None:
    creator, resumer, bystander = await app.client(), await app.client(), await app.client()
    thread_id = await start_thread(creator)
    resumed = await resumer.call("thread/resume", {"threadId": thread_id})
    assert resumed["thread"]["id"] == thread_id
    frames = await run_turn(creator, thread_id, "hello world")
    resumer_frames = await resumer.turn_frames(thread_id)
    assert [(f["method"], f["params"]) for f in resumer_frames] == [
        (f["method"], f["params"]) for f in frames
    ]
    for name in ("turn/started", "item/started", "item/agentMessage/delta", "turn/completed"):
        assert name in methods_of(frames)
    # thread/status/changed is a broadcast: the bystander sees the thread go active then idle.
    await bystander.notification(
        "thread/status/changed", threadId=thread_id, status={"type": "idle"}
    )
    statuses = [p["status"]["type"] for p in bystander.received("thread/status/changed")]
    assert statuses == ["active", "idle"]
    assert turn_traffic(bystander) == []


async def test_unsubscribe_statuses_and_thread_closed_after_the_last_subscriber(
    app: AppHarness,
) -> None:
    creator, resumer, bystander = await app.client(), await app.client(), await app.client()
    thread_id = await start_thread(creator)
    await resumer.call("thread/resume", {"threadId": thread_id})
    unsubscribe = {"threadId": thread_id}
    assert await bystander.call("thread/unsubscribe", unsubscribe) == {"status": "notSubscribed"}
    assert await bystander.call("thread/unsubscribe", {"threadId": "nope"}) == {
        "status": "notLoaded"
    }
    assert await creator.call("thread/unsubscribe", unsubscribe) == {"status": "unsubscribed"}
    await trio.testing.wait_all_tasks_blocked()
    assert bystander.received("thread/closed") == []
    assert await creator.call("thread/unsubscribe", unsubscribe) == {"status": "notSubscribed"}
    assert await resumer.call("thread/unsubscribe", unsubscribe) == {"status": "unsubscribed"}
    assert await bystander.notification("thread/closed") == {"threadId": thread_id}
    assert await creator.notification("thread/closed") == {"threadId": thread_id}
    assert await creator.call("thread/unsubscribe", unsubscribe) == {"status": "notLoaded"}
    assert thread_id not in (await creator.call("thread/loaded/list", {}))["data"]
    # A closed thread is still on disk and can be resumed.
    resumed = await bystander.call("thread/resume", {"threadId": thread_id})
    assert resumed["thread"]["id"] == thread_id


async def test_disconnect_removes_the_connections_subscriptions(app: AppHarness) -> None:
    creator, resumer = await app.client(), await app.client()
    thread_id = await start_thread(creator)
    await resumer.call("thread/resume", {"threadId": thread_id})
    assert app.threads.loaded[thread_id].subscribers == {creator.id, resumer.id}
    creator.disconnect()
    assert app.threads.loaded[thread_id].subscribers == {resumer.id}
    # The departed creator no longer keeps the thread open: the resumer was the last one.
    assert await resumer.call("thread/unsubscribe", {"threadId": thread_id}) == {
        "status": "unsubscribed"
    }
    assert await resumer.notification("thread/closed") == {"threadId": thread_id}


async def test_a_subscriber_that_opted_out_of_deltas_still_gets_the_items(
    app: AppHarness,
) -> None:
    client = await app.client(opt_out=["item/agentMessage/delta", "thread/status/changed"])
    thread_id = await start_thread(client)
    frames = await run_turn(client, thread_id, "hello world")
    assert notifications(frames, "item/agentMessage/delta") == []
    assert final_text(frames) == "You said: hello world"
    await trio.testing.wait_all_tasks_blocked()
    assert client.received("thread/status/changed") == []


# -- the echo agent ------------------------------------------------------------------------------


async def test_echo_streams_deltas_that_add_up_to_the_final_answer(app: AppHarness) -> None:
    client = await app.client()
    thread_id = await start_thread(client)
    frames = await run_turn(client, thread_id, "hello world")
    (agent_message,) = completed_items(frames, "agentMessage")
    deltas = [p["delta"] for p in notifications(frames, "item/agentMessage/delta")]
    assert len(deltas) >= 2
    assert "".join(deltas) == agent_message["text"] == "You said: hello world"
    assert agent_message["phase"] == "final_answer"
    assert all(
        p["itemId"] == agent_message["id"] for p in notifications(frames, "item/agentMessage/delta")
    )
    turn = completed_turn(frames)
    assert turn["status"] == "completed"
    assert turn["items"] == completed_items(frames)
    assert [i["type"] for i in turn["items"]] == ["userMessage", "agentMessage"]
    assert turn["items"][0]["content"] == text("hello world")
    order = methods_of(frames)
    assert order[0] == "turn/started"
    assert order[-2:] == ["thread/tokenUsage/updated", "turn/completed"]
    assert order.index("item/agentMessage/delta") < order.index("thread/tokenUsage/updated")


async def test_output_schema_gives_a_minimal_json_instance(app: AppHarness) -> None:
    client = await app.client()
    thread_id = await start_thread(client, ephemeral=True, threadSource="thread_title")
    schema = {
        "type": "object",
        "properties": {"title": {"type": "string", "maxLength": 36}},
        "required": ["title"],
        "additionalProperties": False,
    }
    frames = await run_turn(client, thread_id, "name this thread", outputSchema=schema)
    answer = orjson.loads(final_text(frames))
    jsonschema.validate(answer, schema)
    assert answer == {"title": "Name this thread"}


# -- commands and approvals ----------------------------------------------------------------------


async def start_command(client: Client, command: str, **thread: Any) -> tuple[str, Frame]:
    """A thread whose turn runs `$ command`; returns the thread id and the approval request."""
    thread_id = await start_thread(client, **thread)
    await client.call("turn/start", {"threadId": thread_id, "input": text(f"$ {command}")})
    return thread_id, await client.server_request(APPROVAL)


async def test_command_runs_after_approval_and_streams_its_output(app: AppHarness) -> None:
    client = await app.client()
    thread_id, request = await start_command(client, "echo hi")
    params = request["params"]
    assert "additionalPermissions" not in params
    started = await client.notification("item/started", threadId=thread_id)
    # The user message comes first; then the command item the approval is about.
    command_started = await client.notification("item/started", threadId=thread_id)
    assert started["item"]["type"] == "userMessage"
    item = command_started["item"]
    assert item["type"] == "commandExecution"
    assert item["status"] == "inProgress"
    assert (params["threadId"], params["itemId"], params["command"]) == (
        thread_id,
        item["id"],
        "echo hi",
    )
    assert params["turnId"] == command_started["turnId"]
    waiting = {"type": "active", "activeFlags": ["waitingOnApproval"]}
    await client.notification("thread/status/changed", threadId=thread_id, status=waiting)
    await client.reply(request["id"], {"decision": "accept"})
    frames = await client.turn_frames(thread_id)
    resolved = notifications(frames, "serverRequest/resolved")
    assert resolved == [{"threadId": thread_id, "requestId": request["id"]}]
    output = notifications(frames, "item/commandExecution/outputDelta")
    assert "".join(p["delta"] for p in output) == "hi\n"
    assert {p["itemId"] for p in output} == {item["id"]}
    (command,) = completed_items(frames, "commandExecution")
    assert (command["status"], command["exitCode"], command["aggregatedOutput"]) == (
        "completed",
        0,
        "hi\n",
    )
    assert final_text(frames) == "Command exited with code 0."
    assert completed_turn(frames)["status"] == "completed"


@pytest.mark.parametrize(
    "answer",
    [
        {"result": {"decision": "decline"}},
        {"error": {"code": -32000, "message": "no tools in this thread"}},
    ],
    ids=["decline", "error"],
)
async def test_a_refused_approval_declines_the_command(
    app: AppHarness, answer: dict[str, Any]
) -> None:
    client = await app.client()
    thread_id, request = await start_command(client, "echo never-printed")
    await client.send({"id": request["id"], **answer})
    frames = await client.turn_frames(thread_id)
    assert notifications(frames, "item/commandExecution/outputDelta") == []
    (command,) = completed_items(frames, "commandExecution")
    assert command["status"] == "declined"
    assert final_text(frames) == "Command was declined."
    assert completed_turn(frames)["status"] == "completed"


async def test_accept_for_session_runs_later_commands_without_asking(app: AppHarness) -> None:
    client = await app.client()
    thread_id, request = await start_command(client, "echo first")
    await client.reply(request["id"], {"decision": "acceptForSession"})
    first = await client.turn_frames(thread_id)
    assert final_text(first) == "Command exited with code 0."
    # The same command again runs without asking (Codex: "for this command in this session").
    second = await run_turn(client, thread_id, "$ echo first")
    assert APPROVAL not in methods_of(second)
    (command,) = completed_items(second, "commandExecution")
    assert command["aggregatedOutput"] == "first\n"
    assert final_text(second) == "Command exited with code 0."
    # Another command asks.
    await client.call("turn/start", {"threadId": thread_id, "input": text("$ echo second")})
    again = await client.server_request(APPROVAL)
    assert again["params"]["command"] == "echo second"
    await client.reply(again["id"], {"decision": "decline"})
    await client.turn_frames(thread_id)
    # Only that thread: another thread still asks.
    _, other_request = await start_command(client, "echo other")
    assert other_request["params"]["command"] == "echo other"
    await client.reply(other_request["id"], {"decision": "decline"})


async def test_approval_policy_never_runs_commands_without_asking(app: AppHarness) -> None:
    client = await app.client()
    thread_id = await start_thread(client, approvalPolicy="never")
    frames = await run_turn(client, thread_id, "$ echo unasked")
    assert APPROVAL not in methods_of(frames)
    assert completed_items(frames, "commandExecution")[0]["aggregatedOutput"] == "unasked\n"
    assert final_text(frames) == "Command exited with code 0."


async def test_the_exit_code_of_a_failing_command_is_reported(app: AppHarness) -> None:
    client = await app.client()
    thread_id = await start_thread(client, approvalPolicy="never")
    frames = await run_turn(client, thread_id, "$ exit 3")
    (command,) = completed_items(frames, "commandExecution")
    assert (command["status"], command["exitCode"]) == ("failed", 3)
    assert final_text(frames) == "Command exited with code 3."


async def test_interrupt_kills_a_running_command_and_completes_the_turn_interrupted(
    app: AppHarness,
) -> None:
    client = await app.client()
    thread_id = await start_thread(client, approvalPolicy="never")
    started = await client.call(
        "turn/start", {"threadId": thread_id, "input": text("$ echo running; sleep 30")}
    )
    turn_id = started["turn"]["id"]
    # Spawning (under bubblewrap) happens off the loop: wait until the command really runs.
    await client.wait_for(lambda f: f.get("method") == "item/commandExecution/outputDelta")
    with trio.fail_after(3):
        assert await client.call("turn/interrupt", {"threadId": thread_id, "turnId": turn_id}) == {}
        frames = await client.turn_frames(thread_id)
    turn = completed_turn(frames)
    assert (turn["id"], turn["status"]) == (turn_id, "interrupted")
    (command,) = completed_items(frames, "commandExecution")
    assert command["status"] != "inProgress"
    assert command["processId"] is not None
    with pytest.raises(ProcessLookupError):
        os.kill(int(command["processId"]), 0)
    # The thread is idle again and takes a new turn.
    assert final_text(await run_turn(client, thread_id, "after")) == "You said: after"


async def test_interrupt_while_an_approval_is_pending_completes_the_command_item(
    app: AppHarness,
) -> None:
    client = await app.client()
    thread_id, request = await start_command(client, "echo too-late")
    turn_id = request["params"]["turnId"]
    with trio.fail_after(3):
        assert await client.call("turn/interrupt", {"threadId": thread_id, "turnId": turn_id}) == {}
        frames = await client.turn_frames(thread_id)
    turn = completed_turn(frames)
    assert turn["status"] == "interrupted"
    # The approval is withdrawn: answering it now runs nothing.
    assert len(app.app.processor.server_requests) == 0
    await client.reply(request["id"], {"decision": "accept"})
    await trio.testing.wait_all_tasks_blocked()
    assert client.received("item/commandExecution/outputDelta") == []
    # Every item that started is completed, and the turn reports it.
    started = [p["item"]["id"] for p in notifications(frames, "item/started")]
    completed = {i["id"]: i for i in completed_items(frames)}
    assert set(started) <= set(completed), "an item/started never got its item/completed"
    command = completed[request["params"]["itemId"]]
    assert command["status"] in ("declined", "failed")
    assert command in turn["items"]


async def test_interrupting_a_turn_that_is_not_running_is_refused(app: AppHarness) -> None:
    client = await app.client()
    thread_id = await start_thread(client)
    error = await client.error("turn/interrupt", {"threadId": thread_id, "turnId": "nope"})
    assert error["code"] == -32600


async def test_an_approval_reply_from_a_connection_not_subscribed_is_ignored(
    app: AppHarness,
) -> None:
    owner, stranger = await app.client(), await app.client()
    thread_id, request = await start_command(owner, "echo hi")
    await stranger.reply(request["id"], {"decision": "accept"})
    await trio.testing.wait_all_tasks_blocked()
    assert owner.received("serverRequest/resolved") == []
    assert len(app.app.processor.server_requests) == 1
    await owner.reply(request["id"], {"decision": "decline"})
    frames = await owner.turn_frames(thread_id)
    assert final_text(frames) == "Command was declined."


async def test_a_pending_approval_is_replayed_to_a_connection_that_resumes_the_thread(
    app: AppHarness,
) -> None:
    owner = await app.client()
    thread_id, request = await start_command(owner, "echo resumed")
    owner.disconnect()
    newcomer = await app.client()
    resumed = await newcomer.call("thread/resume", {"threadId": thread_id})
    assert resumed["thread"]["status"] == {"type": "active", "activeFlags": ["waitingOnApproval"]}
    replayed = await newcomer.server_request(APPROVAL)
    assert replayed == request
    await newcomer.reply(replayed["id"], {"decision": "accept"})
    resolved = await newcomer.notification("serverRequest/resolved")
    assert resolved == {"threadId": thread_id, "requestId": request["id"]}
    completed = await newcomer.notification("turn/completed", threadId=thread_id)
    assert completed["turn"]["status"] == "completed"
    assert completed["turn"]["items"][-1]["text"] == "Command exited with code 0."
    assert completed["turn"]["items"][1]["aggregatedOutput"] == "resumed\n"


async def test_turn_start_while_a_turn_is_running_is_refused(app: AppHarness) -> None:
    client = await app.client()
    thread_id, request = await start_command(client, "echo hi")
    error = await client.error("turn/start", {"threadId": thread_id, "input": text("again")})
    assert error["code"] == -32600
    await client.reply(request["id"], {"decision": "decline"})
    frames = await client.turn_frames(thread_id)
    assert final_text(frames) == "Command was declined."
    assert final_text(await run_turn(client, thread_id, "again")) == "You said: again"


async def test_turn_steer_needs_the_running_turns_id_and_adds_a_user_message(
    app: AppHarness,
) -> None:
    client = await app.client()
    thread_id, request = await start_command(client, "echo hi")
    turn_id = request["params"]["turnId"]
    steer = {"threadId": thread_id, "input": text("also this"), "expectedTurnId": "wrong"}
    error = await client.error("turn/steer", steer)
    assert error["code"] == -32600
    steered = await client.call(
        "turn/steer", {**steer, "expectedTurnId": turn_id, "clientUserMessageId": "steer-1"}
    )
    assert steered == {"turnId": turn_id}
    await client.reply(request["id"], {"decision": "accept"})
    frames = await client.turn_frames(thread_id)
    users = completed_items(frames, "userMessage")
    assert users[-1]["content"] == text("also this")
    assert users[-1]["clientId"] == "steer-1"
    assert users[-1] in completed_turn(frames)["items"]
    # With no turn running, steering is refused too.
    error = await client.error("turn/steer", {**steer, "expectedTurnId": turn_id})
    assert error["code"] == -32600


async def test_an_agent_that_raises_fails_the_turn_with_an_error_notification(
    tmp_path: Path,
) -> None:
    agents: dict[str, Agent] = {"failing": FailingAgent(), "echo": EchoAgent()}
    async with open_app(tmp_path / "home", agents) as app:
        client = await app.client()
        thread_id = await start_thread(client)
        frames = await run_turn(client, thread_id, "go")
        (error,) = notifications(frames, "error")
        assert error["threadId"] == thread_id
        assert "the agent broke" in error["error"]["message"]
        assert error["willRetry"] is False
        turn = completed_turn(frames)
        assert turn["status"] == "failed"
        assert turn["error"]["message"] == error["error"]["message"]
        # The message the agent had started is completed with what it had said.
        assert completed_items(frames, "agentMessage")[0]["text"] == "partial "


# -- listing and paging --------------------------------------------------------------------------


async def list_ids(client: Client, **params: Any) -> list[str]:
    result = await client.call("thread/list", params)
    return [t["id"] for t in result["data"]]


async def test_thread_list_filters_by_archived_cwd_and_search_term(
    app: AppHarness, tmp_path: Path
) -> None:
    client = await app.client()
    one, two, three = (tmp_path / name for name in ("one", "two", "three"))
    for path in (one, two, three):
        path.mkdir()
    a = await start_listed_thread(client, cwd=str(one))
    b = await start_listed_thread(client, cwd=str(two))
    c = await start_listed_thread(client, cwd=str(one))
    await client.call("thread/name/set", {"threadId": c, "name": "Special Report"})
    d = await start_thread(client, cwd=str(three))
    await run_turn(client, d, "a needle in the haystack")
    archived = await start_listed_thread(client, cwd=str(one))
    await client.call("thread/archive", {"threadId": archived})
    await start_listed_thread(client, cwd=str(one), ephemeral=True)
    await start_thread(client, cwd=str(one))  # never used: not listed, as by Codex

    assert set(await list_ids(client)) == {a, b, c, d}
    assert await list_ids(client, archived=True) == [archived]
    assert set(await list_ids(client, cwd=str(one))) == {a, c}
    assert set(await list_ids(client, cwd=[str(one), str(two)])) == {a, b, c}
    assert await list_ids(client, searchTerm="special") == [c]
    assert await list_ids(client, searchTerm="NEEDLE") == [d]
    assert await list_ids(client, searchTerm="nothing like it") == []
    await client.call("thread/unarchive", {"threadId": archived})
    assert set(await list_ids(client, cwd=str(one))) == {a, c, archived}
    assert await list_ids(client, archived=True) == []


class FakeClock:
    """Stands in for the `time` module of `thread_state`: whole seconds that only move when told."""

    def __init__(self, now: int) -> None:
        self.now = now

    def time(self) -> float:
        return float(self.now)

    def time_ns(self) -> int:
        return self.now * 1_000_000_000


async def start_listed_thread(client: Client, **params: Any) -> str:
    """A thread with a turn: only those are listed, as by Codex (`first_user_message <> ''`)."""
    thread_id = await start_thread(client, **params)
    await run_turn(client, thread_id, "hello")
    return thread_id


async def five_threads(client: Client, clock: FakeClock) -> list[str]:
    """Five threads created at t=1000..1004 and last updated in the order 2, 0, 4, 1, 3."""
    ids = []
    for second in range(1000, 1005):
        clock.now = second
        ids.append(await start_listed_thread(client))
    for second, index in enumerate((2, 0, 4, 1, 3), start=2000):
        clock.now = second
        await client.call("thread/name/set", {"threadId": ids[index], "name": f"t{index}"})
    return ids


@pytest.mark.parametrize(
    ("sort_key", "direction", "order"),
    [
        ("created_at", "asc", [0, 1, 2, 3, 4]),
        ("created_at", "desc", [4, 3, 2, 1, 0]),
        ("updated_at", "asc", [2, 0, 4, 1, 3]),
        ("updated_at", "desc", [3, 1, 4, 0, 2]),
    ],
)
async def test_thread_list_sorts_and_pages_with_a_cursor(
    app: AppHarness,
    monkeypatch: pytest.MonkeyPatch,
    sort_key: str,
    direction: str,
    order: list[int],
) -> None:
    clock = FakeClock(1000)
    monkeypatch.setattr(thread_state, "time", clock)
    client = await app.client()
    ids = await five_threads(client, clock)
    expected = [ids[i] for i in order]
    sort = {"sortKey": sort_key, "sortDirection": direction}
    assert await list_ids(client, **sort) == expected
    pages: list[list[str]] = []
    cursor = None
    while True:
        result = await client.call("thread/list", {**sort, "limit": 2, "cursor": cursor})
        pages.append([t["id"] for t in result["data"]])
        cursor = result["nextCursor"]
        if cursor is None:
            break
        assert len(pages) < 5, "the cursor never ends"
    assert pages == [expected[0:2], expected[2:4], expected[4:]]


async def test_thread_list_defaults_to_newest_created_first(
    app: AppHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ThreadListParams.sortKey: "defaults to created_at"; sortDirection: "defaults to descending".
    clock = FakeClock(1000)
    monkeypatch.setattr(thread_state, "time", clock)
    client = await app.client()
    ids = await five_threads(client, clock)
    assert await list_ids(client) == ids[::-1]
    assert await list_ids(client, sortDirection="asc") == ids


async def three_turns(client: Client) -> tuple[str, list[dict[str, Any]]]:
    thread_id = await start_thread(client)
    turns = [
        completed_turn(await run_turn(client, thread_id, word)) for word in ("one", "two", "three")
    ]
    return thread_id, turns


async def test_thread_turns_list_pages_and_can_leave_items_out(app: AppHarness) -> None:
    client = await app.client()
    thread_id, turns = await three_turns(client)
    ids = [t["id"] for t in turns]
    first = await client.call("thread/turns/list", {"threadId": thread_id, "limit": 2})
    assert [t["id"] for t in first["data"]] == [ids[2], ids[1]]  # newest first by default
    assert first["data"][0]["items"] == turns[2]["items"]
    rest = await client.call(
        "thread/turns/list", {"threadId": thread_id, "limit": 2, "cursor": first["nextCursor"]}
    )
    assert [t["id"] for t in rest["data"]] == [ids[0]]
    assert rest["nextCursor"] is None
    ascending = await client.call(
        "thread/turns/list", {"threadId": thread_id, "sortDirection": "asc"}
    )
    assert [t["id"] for t in ascending["data"]] == ids
    bare = await client.call(
        "thread/turns/list", {"threadId": thread_id, "itemsView": "notLoaded", "limit": 1}
    )
    (turn,) = bare["data"]
    assert (turn["id"], turn["items"], turn["itemsView"]) == (ids[2], [], "notLoaded")
    assert turn["status"] == "completed"


async def test_thread_items_list_pages_over_every_turns_items(app: AppHarness) -> None:
    client = await app.client()
    thread_id, turns = await three_turns(client)
    expected = [(t["id"], item) for t in turns for item in t["items"]]
    assert len(expected) == 6
    seen: list[tuple[str, dict[str, Any]]] = []
    cursor = None
    for _ in range(3):
        page = await client.call(
            "thread/items/list", {"threadId": thread_id, "limit": 4, "cursor": cursor}
        )
        seen.extend((entry["turnId"], entry["item"]) for entry in page["data"])
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == expected
    newest_first = await client.call(
        "thread/items/list", {"threadId": thread_id, "sortDirection": "desc", "limit": 100}
    )
    assert [(e["turnId"], e["item"]) for e in newest_first["data"]] == expected[::-1]
    one_turn = await client.call(
        "thread/items/list", {"threadId": thread_id, "turnId": turns[1]["id"]}
    )
    assert [e["item"] for e in one_turn["data"]] == turns[1]["items"]
    entry = one_turn["data"][0]
    assert entry["startedAtMs"] <= entry["completedAtMs"]


async def test_thread_fork_copies_the_turns_and_records_the_source(app: AppHarness) -> None:
    client, other = await app.client(), await app.client()
    source, turns = await three_turns(client)
    forked = await client.call("thread/fork", {"threadId": source})
    fork = forked["thread"]
    assert fork["id"] != source
    assert fork["forkedFromId"] == source
    assert [t["items"] for t in fork["turns"]] == [t["items"] for t in turns]
    assert {t["id"] for t in fork["turns"]}.isdisjoint(t["id"] for t in turns)
    assert (await other.notification("thread/started"))["thread"]["id"] == source
    assert (await other.notification("thread/started"))["thread"]["id"] == fork["id"]
    read = await client.call("thread/read", {"threadId": fork["id"], "includeTurns": True})
    assert [t["items"] for t in read["thread"]["turns"]] == [t["items"] for t in turns]
    partial = await client.call("thread/fork", {"threadId": source, "lastTurnId": turns[0]["id"]})
    assert [t["items"] for t in partial["thread"]["turns"]] == [turns[0]["items"]]
    # The fork is a thread of its own: a turn there leaves the source alone.
    await run_turn(client, fork["id"], "only in the fork")
    source_turns = await client.call("thread/read", {"threadId": source, "includeTurns": True})
    assert len(source_turns["thread"]["turns"]) == 3


async def test_thread_queue_add_on_an_idle_thread_starts_a_turn(app: AppHarness) -> None:
    client = await app.client(experimental=True)
    bystander = await app.client()
    thread_id = await start_thread(client)
    queued = await client.call(
        "thread/queue/add",
        {"threadId": thread_id, "clientUserMessageId": "queued-1", "input": text("from the queue")},
    )
    submission = queued["queuedSubmission"]
    assert (submission["clientUserMessageId"], submission["input"]) == (
        "queued-1",
        text("from the queue"),
    )
    assert await bystander.notification("thread/queue/changed") == {"threadId": thread_id}
    frames = await client.turn_frames(thread_id)
    assert final_text(frames) == "You said: from the queue"
    assert completed_items(frames, "userMessage")[0]["clientId"] == "queued-1"


# -- persistence ---------------------------------------------------------------------------------


async def test_threads_survive_a_restart_as_they_were_reported(tmp_path: Path) -> None:
    home = tmp_path / "home"
    async with open_app(home) as app:
        client = await app.client()
        thread_id = await start_thread(client, approvalPolicy="never")
        reported = [
            completed_turn(await run_turn(client, thread_id, message))
            for message in ("hello world", "$ echo persisted")
        ]
        await client.call("thread/name/set", {"threadId": thread_id, "name": "Kept"})
        archived = await start_listed_thread(client)
        await client.call("thread/archive", {"threadId": archived})
    async with open_app(home) as app:
        client = await app.client()
        listed = (await client.call("thread/list", {}))["data"]
        assert [(t["id"], t["name"]) for t in listed] == [(thread_id, "Kept")]
        assert listed[0]["status"] == {"type": "notLoaded"}
        assert listed[0]["preview"] == "hello world"
        assert await list_ids(client, archived=True) == [archived]
        read = await client.call("thread/read", {"threadId": thread_id, "includeTurns": True})
        assert read["thread"]["turns"] == reported
        resumed = await client.call("thread/resume", {"threadId": thread_id})
        assert resumed["approvalPolicy"] == "never"
        frames = await run_turn(client, thread_id, "$ echo again")
        assert APPROVAL not in methods_of(frames)


async def test_a_turn_left_in_progress_by_a_crash_comes_back_interrupted(tmp_path: Path) -> None:
    home = tmp_path / "home"
    async with open_app(home) as app:
        client = await app.client()
        thread_id = await start_thread(client)
        done = completed_turn(await run_turn(client, thread_id, "hello world"))
    # What the database holds if the process died while a second turn ran: the turn row and its
    # user message, status inProgress, no completion time.
    user_item = {"type": "userMessage", "id": "u-2", "clientId": None, "content": text("crash")}
    db = sqlite3.connect(home / "state.sqlite")
    with db:
        db.execute(
            "INSERT INTO turns (id, thread_id, seq, data) VALUES (?, ?, ?, ?)",
            (
                "crashed-turn",
                thread_id,
                1,
                orjson.dumps(
                    {
                        "status": "inProgress",
                        "startedAt": done["startedAt"],
                        "completedAt": None,
                        "durationMs": None,
                        "error": None,
                    }
                ),
            ),
        )
        db.execute(
            "INSERT INTO items (turn_id, seq, id, data) VALUES (?, ?, ?, ?)",
            (
                "crashed-turn",
                0,
                "u-2",
                orjson.dumps({"item": user_item, "startedAtMs": 1, "completedAtMs": 1}),
            ),
        )
    db.close()
    async with open_app(home) as app:
        client = await app.client()
        read = await client.call("thread/read", {"threadId": thread_id, "includeTurns": True})
        first, crashed = read["thread"]["turns"]
        assert first == done
        assert (crashed["id"], crashed["status"]) == ("crashed-turn", "interrupted")
        assert crashed["items"] == [user_item]
        assert crashed["error"] is not None
        assert crashed["completedAt"] is not None
        resumed = await client.call("thread/resume", {"threadId": thread_id})
        assert resumed["thread"]["status"] == {"type": "idle"}
        assert [t["status"] for t in resumed["thread"]["turns"]] == ["completed", "interrupted"]
        frames = await run_turn(client, thread_id, "after the crash")
        assert final_text(frames) == "You said: after the crash"


# -- agents --------------------------------------------------------------------------------------


async def test_a_loaded_agent_is_listed_as_the_default_model_and_picked_by_thread_start(
    tmp_path: Path,
) -> None:
    agents = load_agents(("tests.app.custom_agents:Agent",))
    assert list(agents) == ["custom", "echo"]
    # A class names the agent; the server runs an instance of it.
    assert isinstance(agents["custom"], custom_agents.Agent)
    async with open_app(tmp_path / "home", agents) as app:
        client = await app.client()
        models = (await client.call("model/list", {}))["data"]
        assert [(m["id"], m["isDefault"], m["displayName"]) for m in models] == [
            ("custom", True, "Custom"),
            ("echo", False, "Echo"),
        ]
        custom = await client.call("thread/start", {})
        assert (custom["model"], custom["thread"]["model"]) == ("custom", "custom")
        frames = await run_turn(client, custom["thread"]["id"], "hi")
        assert final_text(frames) == "custom: hi (0 earlier)"
        frames = await run_turn(client, custom["thread"]["id"], "again")
        assert final_text(frames) == "custom: again (1 earlier)"
        echo = await client.call("thread/start", {"model": "echo"})
        assert echo["model"] == "echo"
        assert final_text(await run_turn(client, echo["thread"]["id"], "hi")) == "You said: hi"


async def test_an_unknown_model_is_accepted_and_echoed(app: AppHarness) -> None:
    # Codex accepts any model id; the default agent answers (tests/app/test_model_ids.py).
    client = await app.client()
    started = await client.call("thread/start", {"model": "no-such-model"})
    assert (started["model"], started["thread"]["model"]) == ("no-such-model", "no-such-model")
    frames = await run_turn(client, started["thread"]["id"], "hi")
    assert final_text(frames) == "You said: hi"


# -- the experimental gate -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "params", "message"),
    [
        (
            "thread/start",
            {"mockExperimentalField": "x"},
            "thread/start.mockExperimentalField requires experimentalApi capability",
        ),
        (
            "thread/start",
            {
                "approvalPolicy": {
                    "granular": {"mcp_elicitations": True, "rules": True, "sandbox_approval": True}
                }
            },
            "askForApproval.granular requires experimentalApi capability",
        ),
        (
            "thread/queue/add",
            {"threadId": "t", "clientUserMessageId": "m", "input": text("x")},
            "thread/queue/add requires experimentalApi capability",
        ),
    ],
    ids=["field", "granular", "method"],
)
async def test_experimental_surface_is_refused_without_the_capability(
    app: AppHarness, method: str, params: dict[str, Any], message: str
) -> None:
    stable = await app.client()
    assert await stable.error(method, params) == {"code": -32600, "message": message}
    assert app.threads.loaded == {}


async def test_experimental_surface_is_allowed_with_the_capability(app: AppHarness) -> None:
    client = await app.client(experimental=True)
    granular = {"granular": {"mcp_elicitations": True, "rules": True, "sandbox_approval": True}}
    result = await client.call(
        "thread/start", {"mockExperimentalField": "x", "approvalPolicy": granular}
    )
    assert result["approvalPolicy"] == granular


async def test_thread_start_without_dynamic_tools_allows_without_experimental_api_capability(
    app: AppHarness,
) -> None:
    stable = await app.client()
    result = await stable.call(
        "thread/start", {"dynamicTools": None, "cwd": None, "sandbox": "read-only"}
    )
    assert result["sandbox"] == {"type": "readOnly", "networkAccess": False}
    assert result["thread"]["id"] in app.threads.loaded


async def test_a_turn_counts_as_running_from_its_reply_until_it_completes(
    app: AppHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await app.client()
    thread = await client.call("thread/start", {"cwd": "/tmp"})
    thread_id = thread["thread"]["id"]
    held: list[Any] = []
    monkeypatch.setattr(app.threads, "start_turn_task", held.append)
    await client.call("turn/start", {"threadId": thread_id, "input": text("hello")})
    # Accepted but its task not started yet: a shutdown drain beginning now must wait for it.
    assert app.threads.running_turns == 1
    app.threads.turn_nursery.start_soon(held[0])
    await client.notification("turn/completed", threadId=thread_id)
    assert app.threads.running_turns == 0


async def test_thread_loaded_list_pages_with_its_cursor(app: AppHarness) -> None:
    client = await app.client()
    started = [(await client.call("thread/start", {"cwd": "/tmp"}))["thread"]["id"] for _ in "abc"]
    first = await client.call("thread/loaded/list", {"limit": 2})
    assert first["data"] == sorted(started)[:2]
    assert first["nextCursor"] == sorted(started)[1]
    rest = await client.call("thread/loaded/list", {"limit": 2, "cursor": first["nextCursor"]})
    assert rest == {"data": sorted(started)[2:], "nextCursor": None}
