"""The `openai` agent in the app, against the local fake endpoint (tests/fake_openai.py):
streaming, tools behind approvals, history, interrupts, errors and retries, model listing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import trio

from appserver.app.agents.echo import EchoAgent
from appserver.app.agents.openai import OpenAIAgent
from appserver.app.agents.openai import agent as agent_module
from tests.app.app_harness import (
    AppHarness,
    Client,
    completed_items,
    completed_turn,
    final_text,
    notifications,
    open_app,
    run_turn,
    start_thread,
    text,
)
from tests.fake_openai import (
    FakeOpenAI,
    Status,
    Stream,
    reasoning_chunks,
    responses_stream,
    serve_fake_openai,
    stream,
    text_chunks,
    tool_stream,
)

APPROVAL = "item/commandExecution/requestApproval"
SCRIPT = {"command": ["bash", "-lc", "echo made > out.txt && cat out.txt"]}
PATCH_APPROVAL = "item/fileChange/requestApproval"


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with serve_fake_openai() as server:
        yield server


def openai_agent(fake: FakeOpenAI, home: Path) -> OpenAIAgent:
    env = {"OPENAI_BASE_URL": fake.base_url, "OPENAI_API_KEY": "sk-test"}
    return OpenAIAgent(home=home, env=env)


@pytest.fixture
async def app(tmp_path: Path, fake: FakeOpenAI) -> AsyncIterator[AppHarness]:
    home = tmp_path / "home"
    async with open_app(home, {"openai": openai_agent(fake, home), "echo": EchoAgent()}) as app:
        yield app


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


async def thread_in(client: Client, workdir: Path, **params: Any) -> str:
    """A thread in `workdir`, which its commands may write to."""
    return await start_thread(client, cwd=str(workdir), sandbox="workspace-write", **params)


def write_config(app: AppHarness, text: str) -> None:
    """Edit HOME/config.toml and reload the server's configuration (as its config writes do)."""
    (app.home / "config.toml").write_text(text)
    app.threads.config.reload()


def tool_messages(request: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in request["messages"] if m["role"] == "tool"]


async def test_a_streamed_answer_with_usage(app: AppHarness, fake: FakeOpenAI, workdir: Path):
    fake.script(stream(text_chunks("Hello from the model", pieces=4), usage=(11, 4)))
    client = await app.client()
    thread_id = await thread_in(client, workdir)
    frames = await run_turn(client, thread_id, "hi there")
    deltas = [p["delta"] for p in notifications(frames, "item/agentMessage/delta")]
    assert len(deltas) >= 4
    assert "".join(deltas) == final_text(frames) == "Hello from the model"
    assert completed_turn(frames)["status"] == "completed"
    (usage,) = notifications(frames, "thread/tokenUsage/updated")
    assert usage["tokenUsage"]["last"]["inputTokens"] == 11
    assert usage["tokenUsage"]["last"]["outputTokens"] == 4
    (request,) = fake.chat_requests()
    assert request["model"] == "fake-model"  # the endpoint's first model: none configured
    assert request["stream"] is True
    assert request["stream_options"] == {"include_usage": True}
    assert request["messages"][0]["role"] == "system"
    assert request["messages"][-1] == {"role": "user", "content": "hi there"}
    assert [t["function"]["name"] for t in request["tools"]] == [
        "shell",
        "apply_patch",
        "update_plan",
    ]
    shell = request["tools"][0]["function"]["parameters"]
    assert shell["properties"]["command"]["type"] == "array"
    assert fake.requests[-1].headers["authorization"] == "Bearer sk-test"
    assert client.assert_schema_valid()


async def test_a_tool_call_asks_runs_and_sends_the_output_back(
    app: AppHarness, fake: FakeOpenAI, workdir: Path
) -> None:
    fake.script(
        tool_stream("shell", SCRIPT, "c1"),
        stream(text_chunks("Created out.txt."), usage=(30, 3)),
    )
    client = await app.client()
    thread_id = await thread_in(client, workdir, approvalPolicy="untrusted")
    await client.call("turn/start", {"threadId": thread_id, "input": text("make a file")})
    request = await client.server_request(APPROVAL)
    assert request["params"]["command"] == "echo made > out.txt && cat out.txt"
    assert not (workdir / "out.txt").exists()
    await client.reply(request["id"], {"decision": "accept"})
    frames = await client.turn_frames(thread_id)
    (command,) = completed_items(frames, "commandExecution")
    assert (workdir / "out.txt").read_text() == "made\n"
    assert command["exitCode"] == 0
    assert final_text(frames) == "Created out.txt."
    second = fake.chat_requests()[1]
    assistant = second["messages"][-2]
    assert assistant["role"] == "assistant"
    assert assistant["tool_calls"][0]["id"] == "c1"
    assert assistant["tool_calls"][0]["function"]["name"] == "shell"
    (result,) = tool_messages(second)
    assert result["tool_call_id"] == "c1"
    output = orjson.loads(result["content"])
    assert output["output"] == "made\n"
    assert output["metadata"]["exit_code"] == 0
    assert client.assert_schema_valid()


async def test_a_declined_command_is_reported_to_the_model(
    app: AppHarness, fake: FakeOpenAI, workdir: Path
) -> None:
    fake.script(
        tool_stream("shell", {"command": ["touch", "nope"]}, "c1"), stream(text_chunks("OK."))
    )
    client = await app.client()
    thread_id = await thread_in(client, workdir, approvalPolicy="untrusted")
    await client.call("turn/start", {"threadId": thread_id, "input": text("touch it")})
    request = await client.server_request(APPROVAL)
    await client.reply(request["id"], {"decision": "decline"})
    frames = await client.turn_frames(thread_id)
    assert not (workdir / "nope").exists()
    assert completed_turn(frames)["status"] == "completed"
    (result,) = tool_messages(fake.chat_requests()[1])
    assert result["content"] == "exec command rejected by user"


@pytest.mark.parametrize(
    ("policy", "arguments", "asks"),
    [
        ("untrusted", {"command": ["ls"]}, False),
        ("untrusted", {"command": ["bash", "-lc", "ls && pwd | wc -l"]}, False),
        ("untrusted", {"command": ["bash", "-lc", "ls > listing"]}, True),
        ("on-request", {"command": ["touch", "x"]}, False),
        ("on-request", {"command": ["touch", "x"], "with_escalated_permissions": True}, True),
        ("never", {"command": ["touch", "x"], "with_escalated_permissions": True}, False),
    ],
)
async def test_when_shell_asks_follows_codex_rules(
    app: AppHarness,
    fake: FakeOpenAI,
    workdir: Path,
    policy: str,
    arguments: dict[str, Any],
    asks: bool,
) -> None:
    fake.script(tool_stream("shell", arguments), stream(text_chunks("done")))
    client = await app.client()
    thread_id = await thread_in(client, workdir, approvalPolicy=policy)
    await client.call("turn/start", {"threadId": thread_id, "input": text("go")})
    if asks:
        request = await client.server_request(APPROVAL)
        if arguments.get("with_escalated_permissions"):
            assert request["params"]["command"] == "touch x"
        await client.reply(request["id"], {"decision": "accept"})
    frames = await client.turn_frames(thread_id)
    assert completed_turn(frames)["status"] == "completed"
    asked = [f for f in client.frames if f.get("method") == APPROVAL]
    assert asked == ([request] if asks else [])
    (command,) = completed_items(frames, "commandExecution")
    assert command["status"] == "completed"


async def test_apply_patch_asks_then_changes_the_file(
    app: AppHarness, fake: FakeOpenAI, workdir: Path
) -> None:
    (workdir / "hello.txt").write_text("hello\nworld\n")
    patch = (
        "*** Begin Patch\n*** Update File: hello.txt\n@@\n hello\n-world\n+there\n*** End Patch\n"
    )
    fake.script(tool_stream("apply_patch", {"input": patch}, "p1"), stream(text_chunks("Edited.")))
    client = await app.client()
    thread_id = await thread_in(client, workdir, approvalPolicy="untrusted")
    await client.call("turn/start", {"threadId": thread_id, "input": text("edit it")})
    request = await client.server_request(PATCH_APPROVAL)
    assert (workdir / "hello.txt").read_text() == "hello\nworld\n"
    await client.reply(request["id"], {"decision": "accept"})
    frames = await client.turn_frames(thread_id)
    assert (workdir / "hello.txt").read_text() == "hello\nthere\n"
    (change,) = completed_items(frames, "fileChange")
    assert change["status"] == "completed"
    (result,) = tool_messages(fake.chat_requests()[1])
    assert result["tool_call_id"] == "p1"
    assert "hello.txt" in result["content"]
    assert final_text(frames) == "Edited."
    assert client.assert_schema_valid()


async def test_update_plan_becomes_turn_plan_updated(
    app: AppHarness, fake: FakeOpenAI, workdir: Path
) -> None:
    plan = {
        "explanation": "two steps",
        "plan": [
            {"step": "read the code", "status": "completed"},
            {"step": "fix the bug", "status": "in_progress"},
        ],
    }
    fake.script(tool_stream("update_plan", plan, "u1"), stream(text_chunks("Planned.")))
    client = await app.client()
    thread_id = await thread_in(client, workdir)
    frames = await run_turn(client, thread_id, "plan it")
    (update,) = notifications(frames, "turn/plan/updated")
    assert update["explanation"] == "two steps"
    assert update["plan"] == [
        {"step": "read the code", "status": "completed"},
        {"step": "fix the bug", "status": "inProgress"},
    ]
    (result,) = tool_messages(fake.chat_requests()[1])
    assert (result["tool_call_id"], result["content"]) == ("u1", "Plan updated")
    assert client.assert_schema_valid()


async def test_bad_tool_arguments_go_back_to_the_model(
    app: AppHarness, fake: FakeOpenAI, workdir: Path
) -> None:
    fake.script(
        tool_stream("shell", "{not json", "b1"),
        tool_stream("no_such_tool", {}, "b2"),
        stream(text_chunks("Sorry.")),
    )
    client = await app.client()
    thread_id = await thread_in(client, workdir)
    frames = await run_turn(client, thread_id, "go")
    assert final_text(frames) == "Sorry."
    first, second = (tool_messages(r)[-1] for r in fake.chat_requests()[1:])
    assert first["content"].startswith("failed to parse function arguments")
    assert second["content"] == "unsupported call: no_such_tool"


async def test_the_second_turn_sends_the_history(
    app: AppHarness, fake: FakeOpenAI, workdir: Path
) -> None:
    fake.script(
        tool_stream("shell", {"command": ["echo", "from-tool"]}, "h1"),
        stream(text_chunks("First answer.")),
        stream(text_chunks("Second answer.")),
    )
    client = await app.client()
    thread_id = await thread_in(client, workdir, approvalPolicy="never")
    await run_turn(client, thread_id, "first question")
    await run_turn(client, thread_id, "second question")
    messages = fake.chat_requests()[-1]["messages"]
    roles = [m["role"] for m in messages]
    assert roles == ["system", "user", "assistant", "tool", "assistant", "user"]
    assert messages[1]["content"] == "first question"
    call = messages[2]["tool_calls"][0]
    assert orjson.loads(call["function"]["arguments"]) == {
        "command": ["bash", "-lc", "echo from-tool"]
    }
    assert messages[3]["tool_call_id"] == call["id"]
    assert orjson.loads(messages[3]["content"])["output"] == "from-tool\n"
    assert messages[4] == {"role": "assistant", "content": "First answer."}
    assert messages[5] == {"role": "user", "content": "second question"}


async def test_interrupt_closes_the_http_stream_and_completes_interrupted(
    app: AppHarness, fake: FakeOpenAI, workdir: Path
) -> None:
    fake.script(stream(text_chunks("partial answer"), hang=True))
    client = await app.client()
    thread_id = await thread_in(client, workdir)
    started = await client.call("turn/start", {"threadId": thread_id, "input": text("go")})
    await client.notification("item/agentMessage/delta")
    assert not fake.client_closed.is_set()
    params = {"threadId": thread_id, "turnId": started["turn"]["id"]}
    assert await client.call("turn/interrupt", params) == {}
    frames = await client.turn_frames(thread_id)
    assert completed_turn(frames)["status"] == "interrupted"
    with trio.fail_after(5):
        await fake.client_closed.wait()
    # The thread takes the next turn.
    assert final_text(await run_turn(client, thread_id, "again")) == "ok"


async def test_unauthorized_fails_the_turn_with_an_error(
    app: AppHarness, fake: FakeOpenAI, workdir: Path
) -> None:
    fake.script(Status(401, {"error": {"message": "Incorrect API key provided"}}))
    client = await app.client()
    thread_id = await thread_in(client, workdir)
    frames = await run_turn(client, thread_id, "hi")
    (error,) = notifications(frames, "error")
    assert "Incorrect API key provided" in error["error"]["message"]
    assert error["error"]["codexErrorInfo"] == "unauthorized"
    assert error["willRetry"] is False
    turn = completed_turn(frames)
    assert turn["status"] == "failed"
    assert turn["error"]["message"] == error["error"]["message"]
    assert len(fake.chat_requests()) == 1  # a 401 is not retried
    assert client.assert_schema_valid()


async def test_a_500_is_retried_then_the_answer_streams(
    app: AppHarness, fake: FakeOpenAI, workdir: Path
) -> None:
    retry_now = {"retry-after-ms": "5"}
    fake.script(
        Status(500, headers=retry_now),
        Status(429, headers=retry_now),
        stream(text_chunks("after retries")),
    )
    client = await app.client()
    thread_id = await thread_in(client, workdir)
    frames = await run_turn(client, thread_id, "hi")
    assert final_text(frames) == "after retries"
    assert completed_turn(frames)["status"] == "completed"
    assert len(fake.chat_requests()) == 3


async def test_the_turn_fails_when_retries_run_out(
    app: AppHarness, fake: FakeOpenAI, workdir: Path
) -> None:
    write_config(app, '[model_providers.openai]\nname = "OpenAI"\nrequest_max_retries = 1\n')
    retry_now = {"retry-after-ms": "5"}
    fake.script(*(Status(503, headers=retry_now) for _ in range(3)))
    client = await app.client()
    thread_id = await thread_in(client, workdir)
    frames = await run_turn(client, thread_id, "hi")
    (error,) = notifications(frames, "error")
    assert error["error"]["codexErrorInfo"] == {
        "responseTooManyFailedAttempts": {"httpStatusCode": 503}
    }
    assert completed_turn(frames)["status"] == "failed"
    assert len(fake.chat_requests()) == 2


async def test_reasoning_deltas_become_a_reasoning_item(
    app: AppHarness, fake: FakeOpenAI, workdir: Path
) -> None:
    fake.script(stream(reasoning_chunks("let me think"), text_chunks("Answer.")))
    client = await app.client()
    thread_id = await thread_in(client, workdir)
    frames = await run_turn(client, thread_id, "why")
    (reasoning,) = completed_items(frames, "reasoning")
    assert reasoning["content"] == ["letmethink"] or "".join(reasoning["content"]) == "letmethink"
    assert final_text(frames) == "Answer."
    items = [p["item"]["type"] for p in notifications(frames, "item/completed")]
    assert items.index("reasoning") < items.index("agentMessage")


async def test_a_side_turn_asks_for_json_without_tools(
    app: AppHarness, fake: FakeOpenAI, workdir: Path
) -> None:
    schema = {
        "type": "object",
        "properties": {"title": {"type": "string"}},
        "required": ["title"],
        "additionalProperties": False,
    }
    fake.script(stream(text_chunks('{"title": "Fix the parser"}')))
    client = await app.client()
    thread_id = await thread_in(client, workdir, ephemeral=True)
    frames = await run_turn(client, thread_id, "name this thread", outputSchema=schema)
    assert orjson.loads(final_text(frames)) == {"title": "Fix the parser"}
    (request,) = fake.chat_requests()
    assert "tools" not in request
    assert request["response_format"]["type"] == "json_schema"
    assert request["response_format"]["json_schema"]["schema"] == schema


async def test_agents_md_goes_into_the_instructions(
    app: AppHarness, fake: FakeOpenAI, workdir: Path
) -> None:
    (workdir / ".git").mkdir()
    (workdir / "AGENTS.md").write_text("Always answer in French.")
    sub = workdir / "pkg"
    sub.mkdir()
    (sub / "AGENTS.md").write_text("Use tabs in this package.")
    client = await app.client()
    thread_id = await thread_in(client, sub)
    await run_turn(client, thread_id, "hi")
    system = fake.chat_requests()[0]["messages"][0]["content"]
    assert system.index("Always answer in French.") < system.index("Use tabs in this package.")
    assert f"<cwd>{sub}</cwd>" in system


async def test_agents_md_is_read_once_per_place_until_it_changes(
    app: AppHarness, fake: FakeOpenAI, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new thread in the same cwd reuses the instructions built for an earlier one while the
    AGENTS.md files are unchanged, and reads them again once they change; a thread keeps the
    instructions of its first turn (Codex reads AGENTS.md once per session)."""
    builds: list[str] = []
    real = agent_module.signed_instructions

    def counted(cwd: str, policy: str) -> Any:
        builds.append(cwd)
        return real(cwd, policy)

    monkeypatch.setattr(agent_module, "signed_instructions", counted)
    (workdir / ".git").mkdir()
    (workdir / "AGENTS.md").write_text("Always answer in French.")
    sub = workdir / "pkg"
    sub.mkdir()
    client = await app.client()

    async def system_of_a_turn(thread_id: str) -> str:
        await run_turn(client, thread_id, "hi")
        content: str = fake.chat_requests()[-1]["messages"][0]["content"]
        return content

    first = await thread_in(client, sub)
    before = await system_of_a_turn(first)
    assert "Always answer in French." in before
    assert await system_of_a_turn(await thread_in(client, sub)) == before
    assert len(builds) == 1
    (sub / "AGENTS.md").write_text("Use tabs in this package.")
    changed = await system_of_a_turn(await thread_in(client, sub))
    assert "Use tabs in this package." in changed
    (workdir / "AGENTS.md").write_text("Always answer in German.")
    edited = await system_of_a_turn(await thread_in(client, sub))
    assert "Always answer in German." in edited
    assert "Use tabs in this package." in edited
    assert len(builds) == 3
    assert await system_of_a_turn(first) == before


async def test_model_list_shows_the_endpoint_models_and_thread_start_uses_one(
    app: AppHarness, fake: FakeOpenAI, workdir: Path
) -> None:
    client = await app.client()
    listed = await client.call("model/list", {})
    ids = [m["id"] for m in listed["data"]]
    assert ids == ["fake-model", "fake-small", "echo"]
    assert [m["id"] for m in listed["data"] if m["isDefault"]] == ["fake-model"]
    assert all(m["hidden"] is False for m in listed["data"])
    started = await client.call("thread/start", {"model": "fake-small", "cwd": str(workdir)})
    assert started["model"] == "fake-small"
    await run_turn(client, started["thread"]["id"], "hi")
    assert fake.chat_requests()[-1]["model"] == "fake-small"
    assert client.assert_schema_valid()


async def test_model_list_still_answers_when_the_endpoint_is_down(tmp_path: Path) -> None:
    agent = OpenAIAgent(home=tmp_path, env={"OPENAI_BASE_URL": "http://127.0.0.1:9/v1"})
    async with open_app(tmp_path / "home", {"openai": agent}) as app:
        client = await app.client()
        with trio.fail_after(2):
            listed = await client.call("model/list", {})
    assert [m["id"] for m in listed["data"]] == ["openai"]


async def test_a_configured_model_is_the_default(
    app: AppHarness, fake: FakeOpenAI, workdir: Path
) -> None:
    write_config(app, 'model = "my-tuned-model"\n')
    client = await app.client()
    listed = await client.call("model/list", {})
    assert [m["id"] for m in listed["data"] if m["isDefault"]] == ["my-tuned-model"]
    thread_id = await thread_in(client, workdir)
    await run_turn(client, thread_id, "hi")
    assert fake.chat_requests()[-1]["model"] == "my-tuned-model"


async def test_steering_reaches_the_model_after_a_tool_call(
    app: AppHarness, fake: FakeOpenAI, workdir: Path
) -> None:
    fake.script(
        tool_stream("shell", {"command": ["touch", "slow"]}, "s1"), stream(text_chunks("Done."))
    )
    client = await app.client()
    thread_id = await thread_in(client, workdir, approvalPolicy="untrusted")
    started = await client.call("turn/start", {"threadId": thread_id, "input": text("go")})
    request = await client.server_request(APPROVAL)
    turn_id = started["turn"]["id"]
    steer = {"threadId": thread_id, "expectedTurnId": turn_id, "input": text("also X")}
    await client.call("turn/steer", steer)
    await client.reply(request["id"], {"decision": "accept"})
    await client.turn_frames(thread_id)
    assert fake.chat_requests()[1]["messages"][-1] == {"role": "user", "content": "also X"}


async def test_the_responses_wire_api(app: AppHarness, fake: FakeOpenAI, workdir: Path) -> None:
    provider = '[model_providers.openai]\nname = "OpenAI"\nwire_api = "responses"\n'
    write_config(app, 'model = "fake-model"\n' + provider)
    fake.script(
        responses_stream(calls=[("r1", "shell", {"command": ["echo", "via responses"]})]),
        responses_stream("All done.", usage=(12, 3)),
    )
    client = await app.client()
    thread_id = await thread_in(client, workdir, approvalPolicy="never")
    frames = await run_turn(client, thread_id, "go")
    assert final_text(frames) == "All done."
    (command,) = completed_items(frames, "commandExecution")
    assert command["aggregatedOutput"] == "via responses\n"
    first, second = fake.responses_requests()
    assert first["input"] == [{"role": "user", "content": "go"}]
    assert "instructions" in first
    assert first["tools"][0]["name"] == "shell"
    output = second["input"][-1]
    assert (output["type"], output["call_id"]) == ("function_call_output", "r1")
    assert orjson.loads(output["output"])["output"] == "via responses\n"
    (usage,) = notifications(frames, "thread/tokenUsage/updated")
    assert usage["tokenUsage"]["last"]["inputTokens"] == 1 + 12  # both requests of the turn


async def test_reasoning_and_text_alternate_as_separate_items(
    app: AppHarness, fake: FakeOpenAI, workdir: Path
) -> None:
    fake.script(
        stream(
            reasoning_chunks("first"),
            text_chunks("One. "),
            reasoning_chunks("second"),
            text_chunks("Two."),
        )
    )
    client = await app.client()
    thread_id = await thread_in(client, workdir)
    frames = await run_turn(client, thread_id, "go")
    kinds = [p["item"]["type"] for p in notifications(frames, "item/completed")]
    assert kinds == ["userMessage", "reasoning", "agentMessage", "reasoning", "agentMessage"]
    fake.script(stream(text_chunks("next")))
    await run_turn(client, thread_id, "next")
    history = fake.chat_requests()[-1]["messages"]
    assert [m["content"] for m in history if m["role"] == "assistant"] == ["One. ", "Two."]
    assert client.assert_schema_valid()


async def test_compact_asks_the_model_for_a_summary_that_later_turns_send(
    app: AppHarness, fake: FakeOpenAI, workdir: Path
) -> None:
    fake.script(
        stream(text_chunks("First answer.")),
        stream(text_chunks("We discussed the parser; next: fix it."), usage=(40, 9)),
        stream(text_chunks("Fixing it.")),
    )
    client = await app.client(experimental=True)
    thread_id = await thread_in(client, workdir)
    await run_turn(client, thread_id, "look at the parser")
    assert await client.call("thread/compact/start", {"threadId": thread_id}) == {}
    frames = await client.turn_frames(thread_id)
    assert completed_turn(frames)["status"] == "completed"
    assert completed_items(frames, "contextCompaction")
    assert not notifications(frames, "item/agentMessage/delta")  # the summary is not a message
    compaction = fake.chat_requests()[1]
    assert "tools" not in compaction
    assert "CONTEXT CHECKPOINT COMPACTION" in compaction["messages"][-1]["content"]
    assert compaction["messages"][1] == {"role": "user", "content": "look at the parser"}
    await run_turn(client, thread_id, "go on")
    later = fake.chat_requests()[2]["messages"]
    assert [m["role"] for m in later] == ["system", "user", "user"]
    assert "We discussed the parser; next: fix it." in later[1]["content"]
    assert later[2] == {"role": "user", "content": "go on"}
    assert client.assert_schema_valid()


async def test_timeout_ms_stops_a_command_the_user_was_not_asked_about(
    app: AppHarness, fake: FakeOpenAI, workdir: Path
) -> None:
    fake.script(
        tool_stream("shell", {"command": ["sleep", "30"], "timeout_ms": 200}, "t1"),
        stream(text_chunks("It timed out.")),
    )
    client = await app.client()
    thread_id = await thread_in(client, workdir, approvalPolicy="never")
    with trio.fail_after(5):
        frames = await run_turn(client, thread_id, "wait")
    (command,) = completed_items(frames, "commandExecution")
    assert command["status"] == "failed"
    (result,) = tool_messages(fake.chat_requests()[1])
    assert orjson.loads(result["content"])["output"] == "command timed out after 200 ms"
    assert completed_turn(frames)["status"] == "completed"


async def test_a_stream_that_breaks_before_any_text_is_requested_again(
    app: AppHarness, fake: FakeOpenAI, workdir: Path
) -> None:
    fake.script(Stream([], abort=True), stream(text_chunks("Second try.")))
    client = await app.client()
    thread_id = await thread_in(client, workdir)
    frames = await run_turn(client, thread_id, "hi")
    assert final_text(frames) == "Second try."
    assert completed_turn(frames)["status"] == "completed"
    assert len(fake.chat_requests()) == 2


async def test_a_stream_that_breaks_after_text_fails_the_turn(
    app: AppHarness, fake: FakeOpenAI, workdir: Path
) -> None:
    fake.script(Stream(text_chunks("Half an ans"), abort=True))
    client = await app.client()
    thread_id = await thread_in(client, workdir)
    frames = await run_turn(client, thread_id, "hi")
    (error,) = notifications(frames, "error")
    assert error["error"]["codexErrorInfo"] == {
        "responseStreamDisconnected": {"httpStatusCode": None}
    }
    assert completed_turn(frames)["status"] == "failed"
    assert final_text(frames) == "Half an ans"  # what was shown stays
    assert len(fake.chat_requests()) == 1
    assert client.assert_schema_valid()


async def test_a_side_turn_answer_in_a_code_fence_is_accepted_and_bad_json_fails(
    app: AppHarness, fake: FakeOpenAI, workdir: Path
) -> None:
    schema = {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]}
    fake.script(
        stream(text_chunks('```json\n{"title": "Fenced"}\n```')),
        stream(text_chunks("Sure! Here is a title: Fenced")),
        stream(text_chunks('{"name": "wrong field"}')),
    )
    client = await app.client()
    thread_id = await thread_in(client, workdir, ephemeral=True)
    frames = await run_turn(client, thread_id, "title", outputSchema=schema)
    assert final_text(frames) == '{"title":"Fenced"}'
    for _ in range(2):
        frames = await run_turn(client, thread_id, "title", outputSchema=schema)
        assert completed_turn(frames)["status"] == "failed"
        assert notifications(frames, "error")


async def test_injected_items_reach_the_model_where_they_were_added(
    app: AppHarness, fake: FakeOpenAI, workdir: Path
) -> None:
    """`thread/inject_items` (the TUI's `/side`) adds to the model-visible history."""
    fake.script(stream(text_chunks("first")), stream(text_chunks("second")))
    client = await app.client()
    thread_id = await thread_in(client, workdir)
    await run_turn(client, thread_id, "one")
    side = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "ctx"}]}
    assert await client.call("thread/inject_items", {"threadId": thread_id, "items": [side]}) == {}
    await run_turn(client, thread_id, "two")
    second = fake.chat_requests()[1]
    conversation = [(m["role"], m["content"]) for m in second["messages"] if m["role"] != "system"]
    assert conversation == [
        ("user", "one"),
        ("assistant", "first"),
        ("user", "ctx"),
        ("user", "two"),
    ]
