"""`appserver --agent openai` end to end, over stdio, the Unix socket and ws://, against the
local fake OpenAI endpoint (tests/fake_openai.py) running in the test process."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import trio

from tests.e2e.transports import KINDS, Client, Kind, open_client, spawn_server
from tests.fake_openai import (
    FakeOpenAI,
    Status,
    serve_fake_openai,
    stream,
    text_chunks,
    tool_stream,
)
from tests.schema import schema_for

pytestmark = pytest.mark.e2e

APPROVAL = "item/commandExecution/requestApproval"
PATCH_APPROVAL = "item/fileChange/requestApproval"


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeOpenAI]:
    async with serve_fake_openai() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-e2e")
        yield server


@pytest.fixture
def work(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


def text_input(text: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": text, "text_elements": []}]


async def start_thread(client: Client, work: Path, **params: Any) -> str:
    params = {"cwd": str(work), "sandbox": "workspace-write", **params}
    result = await client.call("thread/start", params)
    thread_id: str = result["thread"]["id"]
    return thread_id


async def run_turn(
    client: Client, thread_id: str, text: str, answers: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Start a turn and read to its `turn/completed`, answering server requests by method."""
    await client.call("turn/start", {"threadId": thread_id, "input": text_input(text)})
    events: list[dict[str, Any]] = []
    with trio.fail_after(15):
        while True:
            message = await client.next_message()
            events.append(message)
            method = message.get("method")
            if "id" in message and method is not None:
                assert answers is not None, message
                assert method in answers, message
                await client.respond(message, answers[method])
            elif method == "turn/completed" and message["params"]["threadId"] == thread_id:
                return events


def params_of(events: list[dict[str, Any]], method: str) -> list[Any]:
    return [m["params"] for m in events if m.get("method") == method]


def items(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [p["item"] for p in params_of(events, "item/completed") if p["item"]["type"] == kind]


def assert_schema_valid(client: Client) -> None:
    schema = schema_for(True)
    for message in client.received:
        if "method" in message:
            schema.validate_frame(message, None)


@pytest.mark.parametrize("kind", KINDS)
async def test_tool_call_approval_command_answer_then_history(
    kind: Kind, tmp_path: Path, fake: FakeOpenAI, work: Path
) -> None:
    fake.script(
        tool_stream("shell", {"command": ["bash", "-lc", "echo hi > made.txt"]}, "call_a"),
        stream(text_chunks("I made the file."), usage=(50, 5)),
        stream(text_chunks("It says hi.")),
    )
    async with (
        spawn_server(kind, tmp_path / "home", "--agent", "openai") as server,
        open_client(kind, server) as client,
    ):
        await client.initialize()
        thread_id = await start_thread(client, work, approvalPolicy="untrusted")
        accept = {APPROVAL: {"decision": "accept"}}
        events = await run_turn(client, thread_id, "make a file", accept)
        assert (work / "made.txt").read_text() == "hi\n"
        (approval,) = [m for m in events if m.get("method") == APPROVAL]
        assert approval["params"]["command"] == "echo hi > made.txt"
        (command,) = items(events, "commandExecution")
        assert command["exitCode"] == 0
        (message,) = items(events, "agentMessage")
        assert message["text"] == "I made the file."
        deltas = params_of(events, "item/agentMessage/delta")
        assert "".join(d["delta"] for d in deltas) == "I made the file."
        (usage,) = params_of(events, "thread/tokenUsage/updated")
        assert usage["tokenUsage"]["last"]["inputTokens"] == 50
        (tool,) = [m for m in fake.chat_requests()[1]["messages"] if m["role"] == "tool"]
        assert tool["tool_call_id"] == "call_a"
        assert orjson.loads(tool["content"])["metadata"]["exit_code"] == 0

        events = await run_turn(client, thread_id, "what is in it?")
        assert items(events, "agentMessage")[0]["text"] == "It says hi."
        roles = [m["role"] for m in fake.chat_requests()[2]["messages"]]
        assert roles == ["system", "user", "assistant", "tool", "assistant", "user"]
        assert_schema_valid(client)
        server.assert_no_errors()


@pytest.mark.parametrize("kind", KINDS)
async def test_patch_and_plan(kind: Kind, tmp_path: Path, fake: FakeOpenAI, work: Path) -> None:
    (work / "a.txt").write_text("one\n")
    patch = "*** Begin Patch\n*** Update File: a.txt\n@@\n-one\n+two\n*** End Patch\n"
    plan = {"plan": [{"step": "edit a.txt", "status": "in_progress"}]}
    fake.script(
        tool_stream("update_plan", plan),
        tool_stream("apply_patch", {"input": patch}),
        stream(text_chunks("Done.")),
    )
    async with (
        spawn_server(kind, tmp_path / "home", "--agent", "openai") as server,
        open_client(kind, server) as client,
    ):
        await client.initialize()
        thread_id = await start_thread(client, work, approvalPolicy="untrusted")
        events = await run_turn(client, thread_id, "edit", {PATCH_APPROVAL: {"decision": "accept"}})
        assert (work / "a.txt").read_text() == "two\n"
        (update,) = params_of(events, "turn/plan/updated")
        assert update["plan"] == [{"step": "edit a.txt", "status": "inProgress"}]
        (change,) = items(events, "fileChange")
        assert change["status"] == "completed"
        assert_schema_valid(client)


@pytest.mark.parametrize("kind", KINDS)
async def test_interrupt_closes_the_model_stream(
    kind: Kind, tmp_path: Path, fake: FakeOpenAI, work: Path
) -> None:
    fake.script(stream(text_chunks("thinking hard"), hang=True))
    async with (
        spawn_server(kind, tmp_path / "home", "--agent", "openai") as server,
        open_client(kind, server) as client,
    ):
        await client.initialize()
        thread_id = await start_thread(client, work)
        started = await client.call(
            "turn/start", {"threadId": thread_id, "input": text_input("go")}
        )
        await client.wait_for("item/agentMessage/delta")
        interrupt = {"threadId": thread_id, "turnId": started["turn"]["id"]}
        await client.call("turn/interrupt", interrupt)
        completed = await client.wait_for("turn/completed")
        assert completed["params"]["turn"]["status"] == "interrupted"
        with trio.fail_after(5):
            await fake.client_closed.wait()


@pytest.mark.parametrize("kind", KINDS)
async def test_a_killed_server_keeps_the_reported_user_message(
    kind: Kind, tmp_path: Path, fake: FakeOpenAI, work: Path
) -> None:
    """SIGKILL while the model streams: the restarted server reads the turn back
    `interrupted`, with the user's message exactly as it was reported complete."""
    fake.script(stream(text_chunks("thinking hard"), hang=True))
    home = tmp_path / "home"
    async with (
        spawn_server(kind, home, "--agent", "openai") as server,
        open_client(kind, server) as client,
    ):
        await client.initialize()
        thread_id = await start_thread(client, work)
        started = await client.call(
            "turn/start", {"threadId": thread_id, "input": text_input("remember this")}
        )
        reported = await client.wait_for("item/completed")
        await client.wait_for("item/agentMessage/delta")
        server.send_signal(signal.SIGKILL)
        assert await server.wait_exit() == -signal.SIGKILL
    async with (
        spawn_server(kind, home, "--agent", "openai") as server,
        open_client(kind, server) as client,
    ):
        await client.initialize()
        read = await client.call("thread/read", {"threadId": thread_id, "includeTurns": True})
    (turn,) = read["thread"]["turns"]
    assert turn["id"] == started["turn"]["id"]
    assert turn["status"] == "interrupted"
    assert turn["items"] == [reported["params"]["item"]]
    assert turn["items"][0]["content"] == text_input("remember this")


@pytest.mark.parametrize("kind", KINDS)
async def test_auth_error_fails_the_turn_and_500_is_retried(
    kind: Kind, tmp_path: Path, fake: FakeOpenAI, work: Path
) -> None:
    fake.script(
        Status(401, {"error": {"message": "bad key"}}),
        Status(500, headers={"retry-after-ms": "5"}),
        stream(text_chunks("recovered")),
    )
    async with (
        spawn_server(kind, tmp_path / "home", "--agent", "openai") as server,
        open_client(kind, server) as client,
    ):
        await client.initialize()
        thread_id = await start_thread(client, work)
        events = await run_turn(client, thread_id, "hi")
        (error,) = params_of(events, "error")
        assert "bad key" in error["error"]["message"]
        assert error["error"]["codexErrorInfo"] == "unauthorized"
        (completed,) = params_of(events, "turn/completed")
        assert completed["turn"]["status"] == "failed"
        events = await run_turn(client, thread_id, "again")
        assert items(events, "agentMessage")[0]["text"] == "recovered"
        assert len(fake.chat_requests()) == 3
        assert_schema_valid(client)


@pytest.mark.parametrize("kind", KINDS)
async def test_model_list_and_model_ids(
    kind: Kind, tmp_path: Path, fake: FakeOpenAI, work: Path
) -> None:
    async with (
        spawn_server(kind, tmp_path / "home", "--agent", "openai") as server,
        open_client(kind, server) as client,
    ):
        await client.initialize()
        listed = await client.call("model/list", {})
        assert [m["id"] for m in listed["data"]] == ["fake-model", "fake-small", "echo"]
        small = await client.call("thread/start", {"cwd": str(work), "model": "fake-small"})
        assert small["model"] == "fake-small"
        await run_turn(client, small["thread"]["id"], "hi")
        assert fake.chat_requests()[-1]["model"] == "fake-small"
        # An id the endpoint never listed is accepted, echoed and sent as is.
        other = await client.call("thread/start", {"cwd": str(work), "model": "my-finetune"})
        assert other["model"] == "my-finetune"
        await run_turn(client, other["thread"]["id"], "hi")
        assert fake.chat_requests()[-1]["model"] == "my-finetune"
        assert_schema_valid(client)


@pytest.mark.parametrize("kind", KINDS)
async def test_config_toml_names_the_provider_key_and_model(
    kind: Kind, tmp_path: Path, fake: FakeOpenAI, work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # overridden by the file
    monkeypatch.setenv("LOCAL_KEY", "sk-local")
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(
        'model = "configured-model"\n'
        'model_provider = "local"\n'
        "[model_providers.local]\n"
        'name = "local"\n'
        f'base_url = "{fake.base_url}"\n'
        'env_key = "LOCAL_KEY"\n'
    )
    fake.script(stream(text_chunks("from the configured provider")))
    async with (
        spawn_server(kind, home, "--agent", "openai") as server,
        open_client(kind, server) as client,
    ):
        await client.initialize()
        listed = await client.call("model/list", {})
        assert [m["id"] for m in listed["data"] if m["isDefault"]] == ["configured-model"]
        thread_id = await start_thread(client, work)
        events = await run_turn(client, thread_id, "hi")
        assert items(events, "agentMessage")[0]["text"] == "from the configured provider"
        request = fake.requests[-1]
        assert request.headers["authorization"] == "Bearer sk-local"
        assert request.body["model"] == "configured-model"
