"""The agent API end to end, over stdio, the Unix socket and ws:// alike: the example agents run
in the real `appserver` process (`--agent examples.…`), and a client approves a file change and
answers a dynamic tool call and a question as the Codex TUI would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.transports import KINDS, Client, Kind, open_client, spawn_server

pytestmark = pytest.mark.e2e


async def turn_completed(client: Client, thread_id: str) -> dict[str, Any]:
    message = await client.wait_for("turn/completed", lambda p: p["threadId"] == thread_id)
    turn: dict[str, Any] = message["params"]["turn"]
    return turn


def completed(client: Client, item_type: str) -> list[dict[str, Any]]:
    return [
        m["params"]["item"]
        for m in client.received
        if m.get("method") == "item/completed" and m["params"]["item"]["type"] == item_type
    ]


async def start(client: Client, **params: Any) -> str:
    await client.initialize()
    result = await client.call("thread/start", params)
    thread_id: str = result["thread"]["id"]
    return thread_id


async def say(client: Client, thread_id: str, message: str) -> None:
    await client.call(
        "turn/start",
        {"threadId": thread_id, "input": [{"type": "text", "text": message, "text_elements": []}]},
    )


@pytest.mark.parametrize("kind", KINDS)
async def test_a_file_change_is_approved_then_applied(kind: Kind, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    home = tmp_path / "home"
    agent = ("--agent", "examples.patch_agent:PatchAgent")
    async with spawn_server(kind, home, *agent) as server, open_client(kind, server) as client:
        thread_id = await start(
            client, cwd=str(work), sandbox="workspace-write", approvalPolicy="untrusted"
        )
        await say(client, thread_id, "write notes/hello.txt: hi there")
        request = await client.wait_for("item/fileChange/requestApproval")
        assert not (work / "notes/hello.txt").exists()
        await client.respond(request, {"decision": "accept"})
        turn = await turn_completed(client, thread_id)
        assert turn["status"] == "completed"
        assert (work / "notes/hello.txt").read_text() == "hi there\n"
        (item,) = completed(client, "fileChange")
        assert item["status"] == "completed"
        assert item["id"] == request["params"]["itemId"]
        assert "turn/diff/updated" in client.methods()
        assert "turn/plan/updated" in client.methods()
        read = await client.call("thread/read", {"threadId": thread_id, "includeTurns": True})
        items = read["thread"]["turns"][0]["items"]
        assert [i["status"] for i in items if i["type"] == "fileChange"] == ["completed"]


TOOLS = [
    {
        "type": "function",
        "name": "lookup_ticket",
        "description": "Look a ticket up.",
        "inputSchema": {"type": "object", "properties": {"id": {"type": "string"}}},
    }
]


@pytest.mark.parametrize("kind", KINDS)
async def test_a_dynamic_tool_is_called_through_the_client(kind: Kind, tmp_path: Path) -> None:
    async with (
        spawn_server(kind, tmp_path / "home", "--agent", "examples.tool_agent:ToolAgent") as server,
        open_client(kind, server) as client,
    ):
        thread_id = await start(client, dynamicTools=TOOLS)
        await say(client, thread_id, 'lookup_ticket {"id": "ABC-1"}')
        call = await client.wait_for("item/tool/call")
        assert call["params"]["tool"] == "lookup_ticket"
        assert call["params"]["arguments"] == {"id": "ABC-1"}
        await client.respond(
            call, {"contentItems": [{"type": "inputText", "text": "open"}], "success": True}
        )
        turn = await turn_completed(client, thread_id)
        assert turn["status"] == "completed"
        (tool_item,) = completed(client, "dynamicToolCall")
        assert tool_item["success"] is True
        assert completed(client, "agentMessage")[-1]["text"] == "lookup_ticket returned: open"


@pytest.mark.parametrize("kind", KINDS)
async def test_the_agent_asks_the_user(kind: Kind, tmp_path: Path) -> None:
    async with (
        spawn_server(kind, tmp_path / "home", "--agent", "examples.ask_agent:AskAgent") as server,
        open_client(kind, server) as client,
    ):
        thread_id = await start(client)
        await say(client, thread_id, "hello there")
        question = await client.wait_for("item/tool/requestUserInput")
        assert [q["id"] for q in question["params"]["questions"]] == ["style"]
        await client.respond(question, {"answers": {"style": {"answers": ["loud"]}}})
        await turn_completed(client, thread_id)
        assert completed(client, "agentMessage")[-1]["text"] == "HELLO THERE"
