"""The agent API beyond messages and commands (issue 12 item 1), in process: every `Turn` call
produces Codex's notifications, server requests and persisted items, and every frame a client
receives validates against the Codex schema."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from appserver.app.agents import Agent, Option, PlanStep, Question, Turn
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

Script = Callable[[Turn], Awaitable[None]]


class Scripted:
    """An agent whose turns run whatever script the test set last."""

    name = "scripted"
    display_name = "Scripted"
    description = "Runs the test's script."

    def __init__(self) -> None:
        self.script: Script | None = None
        self.seen: list[Any] = []

    async def run_turn(self, turn: Turn) -> None:
        assert self.script is not None
        await self.script(turn)


@pytest.fixture
def agent() -> Scripted:
    return Scripted()


def agents(agent: Scripted) -> dict[str, Agent]:
    return {"scripted": agent}


async def one_turn(
    app: AppHarness, agent: Scripted, script: Script, *, experimental: bool = False, **thread: Any
) -> tuple[Client, str, list[Frame]]:
    client = await app.client(experimental=experimental)
    thread_id = await start_thread(client, **thread)
    agent.script = script
    frames = await run_turn(client, thread_id, "go")
    client.assert_schema_valid()
    return client, thread_id, frames


async def read_items(client: Client, thread_id: str) -> list[dict[str, Any]]:
    result = await client.call("thread/read", {"threadId": thread_id, "includeTurns": True})
    items: list[dict[str, Any]] = result["thread"]["turns"][-1]["items"]
    return items


# -- reasoning, plans, web search, images -----------------------------------------------------


async def test_reasoning_streams_summary_parts_and_content_and_persists(
    tmp_path: Path, agent: Scripted
) -> None:
    async def script(turn: Turn) -> None:
        reasoning = turn.reasoning()
        await reasoning.summary_delta("Looking ")
        await reasoning.summary_delta("around")
        await reasoning.summary_part()
        await reasoning.summary_delta("Deciding")
        await reasoning.content_delta("raw thoughts")
        await reasoning.finish()
        await turn.say("done", chunks=1)

    async with open_app(tmp_path, agents(agent)) as app:
        client, thread_id, frames = await one_turn(app, agent, script)
        deltas = notifications(frames, "item/reasoning/summaryTextDelta")
        assert [(d["delta"], d["summaryIndex"]) for d in deltas] == [
            ("Looking ", 0),
            ("around", 0),
            ("Deciding", 1),
        ]
        assert [
            p["summaryIndex"] for p in notifications(frames, "item/reasoning/summaryPartAdded")
        ] == [1]
        content = notifications(frames, "item/reasoning/textDelta")
        assert [(c["delta"], c["contentIndex"]) for c in content] == [("raw thoughts", 0)]
        (item,) = completed_items(frames, "reasoning")
        assert item["summary"] == ["Looking around", "Deciding"]
        assert item["content"] == ["raw thoughts"]
        assert {d["itemId"] for d in deltas} == {item["id"]}
    async with open_app(tmp_path, agents(agent)) as app:
        client = await app.client()
        items = await read_items(client, thread_id)
        assert [i["type"] for i in items] == ["userMessage", "reasoning", "agentMessage"]
        assert items[1]["summary"] == ["Looking around", "Deciding"]


async def test_an_unfinished_reasoning_item_completes_with_the_turn(
    tmp_path: Path, agent: Scripted
) -> None:
    async def script(turn: Turn) -> None:
        await turn.reasoning().summary_delta("half a thought")

    async with open_app(tmp_path, agents(agent)) as app:
        _, _, frames = await one_turn(app, agent, script)
        (item,) = completed_items(frames, "reasoning")
        assert item["summary"] == ["half a thought"]
        assert completed_turn(frames)["status"] == "completed"


async def test_update_plan_sends_the_whole_plan_each_time(tmp_path: Path, agent: Scripted) -> None:
    async def script(turn: Turn) -> None:
        await turn.update_plan([("Read the code", "inProgress"), ("Fix it", "pending")], "first")
        await turn.update_plan(
            [PlanStep("Read the code", "completed"), PlanStep("Fix it", "inProgress")]
        )

    async with open_app(tmp_path, agents(agent)) as app:
        _, thread_id, frames = await one_turn(app, agent, script)
        first, second = notifications(frames, "turn/plan/updated")
        assert first["threadId"] == thread_id
        assert first["explanation"] == "first"
        assert first["plan"] == [
            {"step": "Read the code", "status": "inProgress"},
            {"step": "Fix it", "status": "pending"},
        ]
        assert second["explanation"] is None
        assert [s["status"] for s in second["plan"]] == ["completed", "inProgress"]


async def test_web_search_and_image_items(tmp_path: Path, agent: Scripted) -> None:
    async def script(turn: Turn) -> None:
        agent.seen.append(list(turn.images))
        await turn.web_search("trio nurseries")
        await turn.web_search("x", action={"type": "openPage", "url": "https://example.com"})
        await turn.view_image("shot.png")
        await turn.image_generated(result="aGVsbG8=", revised_prompt="a cat")

    async with open_app(tmp_path, agents(agent)) as app:
        # Experimental: tests/schema.py's strict stable schema forbids `type` beside an image's
        # `url` (its anyOf branches get additionalProperties: false), though Codex's allows it.
        client = await app.client(experimental=True)
        thread_id = await start_thread(client, cwd=str(tmp_path))
        agent.script = script
        images = [
            {"type": "image", "url": "https://example.com/a.png"},
            {"type": "localImage", "path": "/tmp/b.png"},
        ]
        await client.call("turn/start", {"threadId": thread_id, "input": text("look") + images})
        frames = await client.turn_frames(thread_id)
        client.assert_schema_valid()
        assert agent.seen == [images]
        first, second = completed_items(frames, "webSearch")
        assert first["query"] == "trio nurseries"
        assert first["action"] == {"type": "search", "query": "trio nurseries"}
        assert second["action"] == {"type": "openPage", "url": "https://example.com"}
        (view,) = completed_items(frames, "imageView")
        assert view["path"] == str(tmp_path / "shot.png")
        (generated,) = completed_items(frames, "imageGeneration")
        assert generated["result"] == "aGVsbG8="
        assert generated["revisedPrompt"] == "a cat"
        started = [p["item"]["type"] for p in notifications(frames, "item/started")]
        assert started.count("webSearch") == 2


# -- MCP-style tool calls --------------------------------------------------------------------


async def test_mcp_tool_call_reports_progress_and_result(tmp_path: Path, agent: Scripted) -> None:
    async def script(turn: Turn) -> None:
        call = await turn.mcp_tool_call("docs", "search", {"q": "trio"})
        await call.progress("searching")
        await call.finish([{"type": "text", "text": "found"}], structured_content={"hits": 1})
        failing = await turn.mcp_tool_call("docs", "fetch", {})
        await failing.fail("no such page")
        await turn.mcp_tool_call("docs", "never_finished")

    async with open_app(tmp_path, agents(agent)) as app:
        _, _, frames = await one_turn(app, agent, script)
        ok, failed, unfinished = completed_items(frames, "mcpToolCall")
        (progress,) = notifications(frames, "item/mcpToolCall/progress")
        assert progress["itemId"] == ok["id"]
        assert progress["message"] == "searching"
        assert ok["status"] == "completed"
        assert ok["result"] == {
            "content": [{"type": "text", "text": "found"}],
            "structuredContent": {"hits": 1},
        }
        assert (ok["server"], ok["tool"], ok["arguments"]) == ("docs", "search", {"q": "trio"})
        assert failed["status"] == "failed"
        assert failed["error"] == {"message": "no such page"}
        assert unfinished["status"] == "failed"
        assert completed_turn(frames)["status"] == "completed"


# -- dynamic tools ---------------------------------------------------------------------------

TOOLS = [
    {
        "type": "function",
        "name": "lookup_ticket",
        "description": "Look a ticket up.",
        "inputSchema": {"type": "object", "properties": {"id": {"type": "string"}}},
    },
    {
        "type": "namespace",
        "name": "crm",
        "description": "CRM tools.",
        "tools": [{"type": "function", "name": "find", "description": "Find.", "inputSchema": {}}],
    },
]


async def test_dynamic_tool_call_round_trip_persists_tools_and_item(
    tmp_path: Path, agent: Scripted
) -> None:
    results: list[Any] = []

    async def script(turn: Turn) -> None:
        results.append(await turn.call_tool("lookup_ticket", {"id": "ABC-1"}))
        results.append(await turn.call_tool("find", {"q": "x"}, namespace="crm"))
        results.append(await turn.call_tool("not_registered", {}))

    async with open_app(tmp_path, agents(agent)) as app:
        client = await app.client(experimental=True)
        thread_id = await start_thread(client, dynamicTools=TOOLS)
        agent.script = script
        await client.call("turn/start", {"threadId": thread_id, "input": text("go")})
        call = await client.server_request("item/tool/call")
        assert call["params"] == {
            "threadId": thread_id,
            "turnId": call["params"]["turnId"],
            "callId": call["params"]["callId"],
            "namespace": None,
            "tool": "lookup_ticket",
            "arguments": {"id": "ABC-1"},
        }
        await client.reply(
            call["id"], {"contentItems": [{"type": "inputText", "text": "open"}], "success": True}
        )
        second = await client.server_request("item/tool/call")
        assert (second["params"]["namespace"], second["params"]["tool"]) == ("crm", "find")
        await client.reply(second["id"], error={"code": -32000, "message": "boom"})
        frames = await client.turn_frames(thread_id)
        client.assert_schema_valid()
        assert results[0].success
        assert results[0].text == "open"
        assert not results[1].success
        assert results[1].text == "dynamic tool request failed"
        assert not results[2].success
        first_item, second_item = completed_items(frames, "dynamicToolCall")
        assert first_item["id"] == call["params"]["callId"]
        assert first_item["status"] == "completed"
        assert first_item["success"] is True
        assert first_item["contentItems"] == [{"type": "inputText", "text": "open"}]
        assert second_item["status"] == "failed"
        assert second_item["namespace"] == "crm"
        resolved = [p["requestId"] for p in notifications(frames, "serverRequest/resolved")]
        assert resolved == [call["id"], second["id"]]
    async with open_app(tmp_path, agents(agent)) as app:
        client = await app.client(experimental=True)
        items = await read_items(client, thread_id)
        assert [i["type"] for i in items].count("dynamicToolCall") == 2
        await client.call("thread/resume", {"threadId": thread_id})

        async def sees_tools(turn: Turn) -> None:
            agent.seen.append(list(turn.dynamic_tools))

        agent.script = sees_tools
        await run_turn(client, thread_id, "again")
        assert agent.seen == [TOOLS]


async def test_a_malformed_tool_answer_is_a_failed_result(tmp_path: Path, agent: Scripted) -> None:
    results: list[Any] = []

    async def script(turn: Turn) -> None:
        results.append(await turn.call_tool("lookup_ticket", {}))

    async with open_app(tmp_path, agents(agent)) as app:
        client = await app.client(experimental=True)
        thread_id = await start_thread(client, dynamicTools=TOOLS)
        agent.script = script
        await client.call("turn/start", {"threadId": thread_id, "input": text("go")})
        call = await client.server_request("item/tool/call")
        await client.reply(call["id"], {"nonsense": True})
        await client.turn_frames(thread_id)
        assert results[0].success is False
        assert results[0].text == "dynamic tool response was invalid"


@pytest.mark.parametrize(
    "tools",
    [
        {"type": "function"},
        [{"type": "function", "description": "no name"}],
        [{"type": "nonsense", "name": "x"}],
        [TOOLS[0], TOOLS[0]],
    ],
)
async def test_bad_dynamic_tools_are_refused(tmp_path: Path, agent: Scripted, tools: Any) -> None:
    async with open_app(tmp_path, agents(agent)) as app:
        client = await app.client(experimental=True)
        error = await client.error("thread/start", {"dynamicTools": tools})
        assert error["code"] == -32600
        assert "dynamicTools" in error["message"]


# -- asking the user -------------------------------------------------------------------------

QUESTIONS = [
    Question(
        id="color",
        header="Colour",
        question="Which colour?",
        options=(Option("red", "warm"), Option("blue", "cold")),
    ),
    Question(id="name", header="Name", question="Your name?", is_other=True),
]


async def test_ask_user_sends_the_questions_and_returns_the_answers(
    tmp_path: Path, agent: Scripted
) -> None:
    answers: list[Any] = []

    async def script(turn: Turn) -> None:
        answers.append(await turn.ask_user(QUESTIONS))

    async with open_app(tmp_path, agents(agent)) as app:
        client = await app.client(experimental=True)
        thread_id = await start_thread(client)
        agent.script = script
        await client.call("turn/start", {"threadId": thread_id, "input": text("go")})
        request = await client.server_request("item/tool/requestUserInput")
        params = request["params"]
        assert params["isBlocking"] is True
        assert params["questions"][0] == {
            "id": "color",
            "header": "Colour",
            "question": "Which colour?",
            "isOther": False,
            "isSecret": False,
            "options": [
                {"label": "red", "description": "warm"},
                {"label": "blue", "description": "cold"},
            ],
        }
        status = await client.notification("thread/status/changed", threadId=thread_id)
        while status["status"].get("activeFlags") != ["waitingOnUserInput"]:
            status = await client.notification("thread/status/changed", threadId=thread_id)
        await client.reply(
            request["id"],
            {"answers": {"color": {"answers": ["blue"]}, "name": {"answers": ["Ada"]}}},
        )
        await client.turn_frames(thread_id)
        client.assert_schema_valid()
        assert answers == [{"color": ["blue"], "name": ["Ada"]}]


async def test_ask_user_without_an_experimental_client_answers_nothing(
    tmp_path: Path, agent: Scripted
) -> None:
    answers: list[Any] = []

    async def script(turn: Turn) -> None:
        answers.append(await turn.ask_user(QUESTIONS))

    async with open_app(tmp_path, agents(agent)) as app:
        client, _, _frames = await one_turn(app, agent, script, experimental=False)
        assert answers == [{}]
        assert not any(f.get("method") == "item/tool/requestUserInput" for f in client.frames)


# -- failing, steering, side turns -----------------------------------------------------------


async def test_fail_ends_the_turn_with_exactly_that_message(
    tmp_path: Path, agent: Scripted
) -> None:
    async def script(turn: Turn) -> None:
        await turn.say("trying", chunks=1)
        turn.fail("the model endpoint refused the key", codex_error_info="unauthorized")

    async with open_app(tmp_path, agents(agent)) as app:
        _, _, frames = await one_turn(app, agent, script)
        (error,) = notifications(frames, "error")
        expected = {
            "message": "the model endpoint refused the key",
            "codexErrorInfo": "unauthorized",
        }
        assert error["error"] == expected
        assert error["willRetry"] is False
        turn = completed_turn(frames)
        assert turn["status"] == "failed"
        assert turn["error"] == expected


async def test_steered_input_reaches_the_waiting_agent(tmp_path: Path, agent: Scripted) -> None:
    async def script(turn: Turn) -> None:
        assert turn.pending_input() == []
        await turn.say("waiting", chunks=1)
        steered = await turn.wait_for_input()
        await turn.say(f"got {steered[0]['text']}", chunks=1)

    async with open_app(tmp_path, agents(agent)) as app:
        client = await app.client()
        thread_id = await start_thread(client)
        agent.script = script
        turn = (await client.call("turn/start", {"threadId": thread_id, "input": text("go")}))[
            "turn"
        ]
        await client.notification("item/completed")  # the user's message
        await client.notification("item/completed")  # "waiting"
        await client.call(
            "turn/steer",
            {"threadId": thread_id, "expectedTurnId": turn["id"], "input": text("more")},
        )
        frames = await client.turn_frames(thread_id)
        assert final_text(frames) == "got more"
        client.assert_schema_valid()


SCHEMA = {
    "type": "object",
    "properties": {"title": {"type": "string", "maxLength": 20}},
    "required": ["title"],
    "additionalProperties": False,
}


async def test_answer_json_answers_a_side_turn(tmp_path: Path, agent: Scripted) -> None:
    async def script(turn: Turn) -> None:
        assert turn.ephemeral
        await turn.answer_json({"title": "Fix the build"})

    async with open_app(tmp_path, agents(agent)) as app:
        client = await app.client(experimental=True)
        thread_id = await start_thread(client, ephemeral=True)
        agent.script = script
        frames = await run_turn(client, thread_id, "title this", outputSchema=SCHEMA)
        assert final_text(frames) == '{"title":"Fix the build"}'
        assert completed_turn(frames)["status"] == "completed"


async def test_answer_json_refuses_an_answer_outside_the_schema(
    tmp_path: Path, agent: Scripted
) -> None:
    async def script(turn: Turn) -> None:
        await turn.answer_json({"title": "x" * 30})

    async with open_app(tmp_path, agents(agent)) as app:
        client = await app.client()
        thread_id = await start_thread(client, ephemeral=True)
        agent.script = script
        frames = await run_turn(client, thread_id, "title this", outputSchema=SCHEMA)
        turn = completed_turn(frames)
        assert turn["status"] == "failed"
        assert turn["error"]["message"].startswith("answer does not match outputSchema at title:")
        assert completed_items(frames, "agentMessage") == []


async def test_an_announced_first_summary_part_is_part_zero(
    tmp_path: Path, agent: Scripted
) -> None:
    async def script(turn: Turn) -> None:
        reasoning = turn.reasoning()
        await reasoning.summary_part()
        await reasoning.summary_delta("first")
        await reasoning.summary_part()
        await reasoning.summary_delta("second")

    async with open_app(tmp_path, agents(agent)) as app:
        _, _, frames = await one_turn(app, agent, script)
        parts = notifications(frames, "item/reasoning/summaryPartAdded")
        assert [p["summaryIndex"] for p in parts] == [0, 1]
        deltas = notifications(frames, "item/reasoning/summaryTextDelta")
        assert [d["summaryIndex"] for d in deltas] == [0, 1]
        assert completed_items(frames, "reasoning")[0]["summary"] == ["first", "second"]


@pytest.mark.parametrize("method", ["item/tool/call", "item/tool/requestUserInput"])
async def test_interrupting_a_turn_waiting_on_the_client_takes_the_request_down(
    tmp_path: Path, agent: Scripted, method: str
) -> None:
    async def script(turn: Turn) -> None:
        if method == "item/tool/call":
            await turn.call_tool("lookup_ticket", {})
        else:
            await turn.ask_user(QUESTIONS)

    async with open_app(tmp_path, agents(agent)) as app:
        client = await app.client(experimental=True)
        thread_id = await start_thread(client, dynamicTools=TOOLS)
        agent.script = script
        started = await client.call("turn/start", {"threadId": thread_id, "input": text("go")})
        request = await client.server_request(method)
        await client.call(
            "turn/interrupt", {"threadId": thread_id, "turnId": started["turn"]["id"]}
        )
        frames = await client.turn_frames(thread_id)
        client.assert_schema_valid()
        assert completed_turn(frames)["status"] == "interrupted"
        resolved = notifications(frames, "serverRequest/resolved")
        assert [r["requestId"] for r in resolved] == [request["id"]]
        if method == "item/tool/call":
            (item,) = completed_items(frames, "dynamicToolCall")
            assert item["status"] == "failed"
