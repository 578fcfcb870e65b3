"""Every response, notification and server request appserver sends validates against the Codex
0.169 schema (spec README §6), copied into `tests/fixtures/`.

A client with `experimentalApi` is checked against the full schema; a client without it against
the stable schema made strict (no key the stable schema does not list), which is how "no
experimental field reaches a stable client" is checked. No frame carries `"jsonrpc"`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio.testing

from appserver.app.agents import Agent
from appserver.app.agents.echo import EchoAgent
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
from tests.app.custom_agents import FailingAgent
from tests.schema import FULL, STABLE, SchemaError

APPROVAL = "item/commandExecution/requestApproval"

STABLE_METHODS = {
    "initialize",
    "account/read",
    "model/list",
    "config/read",
    "configRequirements/read",
    "skills/list",
    "hooks/list",
    "plugin/installed",
    "thread/start",
    "thread/resume",
    "thread/fork",
    "thread/read",
    "thread/list",
    "thread/loaded/list",
    "thread/archive",
    "thread/unarchive",
    "thread/delete",
    "thread/name/set",
    "thread/unsubscribe",
    "thread/turns/list",
    "thread/items/list",
    "thread/goal/get",
    "turn/start",
    "turn/interrupt",
    "turn/steer",
}
EXPERIMENTAL_METHODS = {
    "collaborationMode/list",
    "account/bedrock/checkGovCloudRequirements",
    "thread/queue/add",
    "thread/backgroundTerminals/list",
}
NOTIFICATIONS = {
    "thread/started",
    "thread/status/changed",
    "thread/name/updated",
    "thread/archived",
    "thread/unarchived",
    "thread/deleted",
    "thread/closed",
    "thread/queue/changed",
    "turn/started",
    "turn/completed",
    "item/started",
    "item/completed",
    "item/agentMessage/delta",
    "item/commandExecution/outputDelta",
    "thread/tokenUsage/updated",
    "serverRequest/resolved",
    "error",
}


@pytest.fixture
async def app(tmp_path: Path) -> Any:
    agents: dict[str, Agent] = {"echo": EchoAgent(), "failing": FailingAgent()}
    async with open_app(tmp_path / "home", agents) as harness:
        yield harness


async def startup_calls(client: Client, cwd: str) -> None:
    """What the Codex TUI sends before its first thread (clients.md §6.3), as it sends it."""
    await client.call("account/read", {"refreshToken": False})
    await client.call("model/list", {"includeHidden": True, "limit": None, "cursor": None})
    await client.call("config/read", {"includeLayers": True, "cwd": cwd})
    await client.call("configRequirements/read", no_params=True)
    await client.call("skills/list", {"cwds": [cwd], "forceReload": True})
    await client.call("hooks/list", {"cwds": [cwd], "threadId": None})
    await client.call("plugin/installed", {"cwds": [cwd]})
    if client.experimental:
        await client.call("collaborationMode/list", {})
        await client.call("account/bedrock/checkGovCloudRequirements", {})


async def every_method(actor: Client, observer: Client, cwd: str) -> None:
    """Drive every implemented method; `observer` resumes the actor's thread and so hears its
    turns and approvals; whichever client has experimentalApi calls the experimental methods."""
    experimental = actor if actor.experimental else observer
    for client in (actor, observer):
        await startup_calls(client, cwd)

    thread = await actor.call(
        "thread/start",
        {
            "cwd": cwd,
            "approvalPolicy": "on-request",
            "sandbox": "read-only",
            "threadSource": "user",
        },
    )
    thread_id = thread["thread"]["id"]
    await observer.call("thread/resume", {"threadId": thread_id, "excludeTurns": True})
    await actor.call("thread/name/set", {"threadId": thread_id, "name": "Conformance"})
    assert final_text(await run_turn(actor, thread_id, "hello world")) == "You said: hello world"

    # A command: the approval goes to both subscribers; a steer while it waits; then accept.
    await actor.call("turn/start", {"threadId": thread_id, "input": text("$ echo hi")})
    request = await actor.server_request(APPROVAL)
    assert (await observer.server_request(APPROVAL))["id"] == request["id"]
    steer = {"threadId": thread_id, "expectedTurnId": request["params"]["turnId"]}
    await actor.call("turn/steer", {**steer, "input": text("and more")})
    await actor.reply(request["id"], {"decision": "accept"})
    assert final_text(await actor.turn_frames(thread_id)) == "Command exited with code 0."

    # Interrupting a running command.
    never = await start_thread(actor, approvalPolicy="never", cwd=cwd)
    started = await actor.call("turn/start", {"threadId": never, "input": text("$ sleep 30")})
    await actor.wait_for(
        lambda f: (
            f.get("method") == "item/started" and f["params"]["item"]["type"] == "commandExecution"
        )
    )
    await trio.testing.wait_all_tasks_blocked()
    await actor.call("turn/interrupt", {"threadId": never, "turnId": started["turn"]["id"]})
    assert completed_turn(await actor.turn_frames(never))["status"] == "interrupted"

    # A failing agent: an `error` notification.
    failing = await start_thread(actor, model="failing")
    assert completed_turn(await run_turn(actor, failing, "go"))["status"] == "failed"

    # Reading, listing, paging.
    await actor.call("thread/read", {"threadId": thread_id, "includeTurns": True})
    await actor.call("thread/read", {"threadId": thread_id})
    await actor.call("thread/list", {"limit": 1, "sortKey": "created_at"})
    await actor.call(
        "thread/list", {"sourceKinds": ["exec", "appServer"], "sortKey": "recency_at", "limit": 10}
    )
    await actor.call("thread/loaded/list", {})
    await actor.call("thread/turns/list", {"threadId": thread_id, "limit": 1})
    await actor.call(
        "thread/turns/list",
        {"threadId": thread_id, "limit": 5, "sortDirection": "desc", "itemsView": "notLoaded"},
    )
    await actor.call(
        "thread/items/list",
        {"threadId": thread_id, "turnId": None, "limit": 100, "sortDirection": "desc"},
    )
    await actor.call("thread/goal/get", {"threadId": thread_id})

    # Queueing (experimental): on an idle thread it starts a turn at once.
    await experimental.call("thread/backgroundTerminals/list", {"threadId": thread_id})
    await experimental.call(
        "thread/queue/add",
        {"threadId": thread_id, "clientUserMessageId": "q-1", "input": text("queued")},
    )
    assert final_text(await actor.turn_frames(thread_id)) == "You said: queued"

    # Fork, archive, unarchive, unsubscribe (closing the fork), delete.
    fork = (await actor.call("thread/fork", {"threadId": thread_id}))["thread"]["id"]
    await actor.call("thread/archive", {"threadId": never})
    await actor.call("thread/list", {"archived": True})
    await actor.call("thread/unarchive", {"threadId": never})
    await actor.call("thread/unsubscribe", {"threadId": fork})
    await actor.notification("thread/closed", threadId=fork)
    await actor.call("thread/delete", {"threadId": never})
    await actor.notification("thread/deleted", threadId=never)
    await observer.call("thread/read", {"threadId": fork, "includeTurns": True})


@pytest.mark.parametrize("actor_experimental", [True, False], ids=["experimental", "stable"])
async def test_every_method_notification_and_server_request_matches_the_schema(
    app: AppHarness, tmp_path: Path, actor_experimental: bool
) -> None:
    actor = await app.client(experimental=actor_experimental)
    observer = await app.client(experimental=not actor_experimental)
    bystanders = [await app.client(), await app.client(experimental=True)]
    await every_method(actor, observer, str(tmp_path))
    await trio.testing.wait_all_tasks_blocked()

    clients = [actor, observer, *bystanders]
    for client in clients:
        assert client.assert_schema_valid() > 0
    # Coverage: every implemented method answered, every notification and request seen.
    answered = {
        client.methods[f["id"]]
        for client in clients
        for f in client.frames
        if "result" in f and f.get("id") in client.methods
    }
    assert (STABLE_METHODS | EXPERIMENTAL_METHODS) - answered == set()
    seen = {f["method"] for client in clients for f in client.frames if "method" in f}
    assert (NOTIFICATIONS | {APPROVAL}) - seen == set()
    assert not any("error" in f for client in clients for f in client.frames)


async def test_a_stable_client_is_never_sent_an_experimental_field(
    app: AppHarness, tmp_path: Path
) -> None:
    stable = await app.client()
    thread_id = await start_thread(stable, cwd=str(tmp_path))
    await stable.call("turn/start", {"threadId": thread_id, "input": text("$ echo hi")})
    request = await stable.server_request(APPROVAL)
    assert "additionalPermissions" not in request["params"]
    await stable.reply(request["id"], {"decision": "accept"})
    await stable.turn_frames(thread_id)
    await stable.call("thread/read", {"threadId": thread_id, "includeTurns": True})
    await stable.call("thread/list", {})
    await stable.call("account/read", {})
    # The strict stable schema rejects any key it does not list: experimental fields included.
    assert stable.assert_schema_valid() > 10


# -- the validator itself can fail -----------------------------------------------------------------


async def test_the_validator_rejects_experimental_fields_and_missing_required_ones(
    app: AppHarness, tmp_path: Path
) -> None:
    client = await app.client()
    thread_id = await start_thread(client, cwd=str(tmp_path))
    frames = await run_turn(client, thread_id, "hello world")
    started = await client.call("thread/read", {"threadId": thread_id})
    STABLE.validate_response("thread/read", started)
    FULL.validate_response("thread/read", started)

    # `Thread.extra` exists only in the full schema: fine for experimental clients only.
    with_extra = {"thread": {**started["thread"], "extra": None}}
    FULL.validate_response("thread/read", with_extra)
    with pytest.raises(SchemaError, match="extra"):
        STABLE.validate_response("thread/read", with_extra)

    completed = next(f for f in frames if f.get("method") == "item/completed")
    FULL.validate_frame(completed)
    no_time = {
        **completed,
        "params": {k: v for k, v in completed["params"].items() if k != "completedAtMs"},
    }
    with pytest.raises(SchemaError, match="completedAtMs"):
        FULL.validate_frame(no_time)
    with pytest.raises(SchemaError, match="jsonrpc"):
        FULL.validate_frame({"jsonrpc": "2.0", **completed})
    with pytest.raises(SchemaError, match="emittedAtMs"):
        FULL.validate_frame({**completed, "emittedAtMs": "soon"})
    with pytest.raises(SchemaError):
        FULL.validate_response("turn/start", {"turn": {"id": "t", "items": []}})
    with pytest.raises(SchemaError, match="not in the schema"):
        FULL.validate_frame({"method": "no/such/notification", "params": {}})
