"""The TUI's turn-shaped actions and thread editing end to end, over stdio, the Unix control
socket and ws:// alike: `/compact`, `/review`, `!cmd`, Esc Esc rewind, `/goal`, `/model` -> `s`,
the `@` task search, metadata, `/side` and the queue, against the real `python -m appserver`
process; every reply and notification is checked against the Codex 0.169 schema."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.transports import KINDS, Client, Kind, is_notification, open_client, spawn_server
from tests.schema import schema_for

pytestmark = pytest.mark.e2e

SCHEMA = schema_for(True)


def text_input(text: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": text, "text_elements": []}]


async def call(client: Client, method: str, params: dict[str, Any]) -> dict[str, Any]:
    result = await client.call(method, params)
    SCHEMA.validate_response(method, result)
    return result


async def turn_of(client: Client, thread_id: str) -> list[dict[str, Any]]:
    """The thread's notifications up to its next `turn/completed`, each schema-checked."""
    events = []
    while True:
        message = await client.next_message()
        if not is_notification(message):
            continue
        SCHEMA.validate_notification(message)
        if (message.get("params") or {}).get("threadId") != thread_id:
            continue
        events.append(message)
        if message["method"] == "turn/completed":
            return events


def items(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e["params"]["item"] for e in events if e["method"] == "item/completed"]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    for args in (
        ["init", "-q"],
        ["config", "user.email", "t@example.com"],
        ["config", "user.name", "T"],
    ):
        subprocess.run(["git", *args], cwd=path, check=True)
    (path / "a.txt").write_text("one\n")
    subprocess.run(["git", "add", "a.txt"], cwd=path, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "first"], cwd=path, check=True)
    (path / "a.txt").write_text("one\ntwo\n")
    return path


@pytest.mark.parametrize("kind", KINDS)
async def test_compact_review_and_shell_command(kind: Kind, tmp_path: Path, repo: Path) -> None:
    async with spawn_server(kind, tmp_path / "home") as server, open_client(kind, server) as client:
        await client.initialize()
        thread_id = (await call(client, "thread/start", {"cwd": str(repo)}))["thread"]["id"]
        await call(client, "turn/start", {"threadId": thread_id, "input": text_input("hello")})
        await turn_of(client, thread_id)

        assert await call(client, "thread/compact/start", {"threadId": thread_id}) == {}
        compacted = await turn_of(client, thread_id)
        assert [i["type"] for i in items(compacted)] == ["contextCompaction"]

        review = await call(
            client,
            "review/start",
            {"threadId": thread_id, "target": {"type": "uncommittedChanges"}, "delivery": "inline"},
        )
        assert review["reviewThreadId"] == thread_id
        reviewed = items(await turn_of(client, thread_id))
        assert reviewed[0] == {
            **reviewed[0],
            "type": "enteredReviewMode",
            "review": "current changes",
        }
        assert "a.txt (+1 -0)" in reviewed[-2]["review"]
        assert reviewed[-1]["text"] == reviewed[-2]["review"]

        shell = {"threadId": thread_id, "command": "echo from-the-user"}
        assert await call(client, "thread/shellCommand", shell) == {}
        (command,) = items(await turn_of(client, thread_id))
        assert (command["source"], command["aggregatedOutput"]) == ("userShell", "from-the-user\n")
        assert server.returncode is None


@pytest.mark.parametrize("kind", KINDS)
async def test_rewind_goal_settings_search_metadata_and_queue(kind: Kind, tmp_path: Path) -> None:
    async with spawn_server(kind, tmp_path / "home") as server, open_client(kind, server) as client:
        await client.initialize()
        thread_id = (await call(client, "thread/start", {"cwd": str(tmp_path)}))["thread"]["id"]
        turn_ids = []
        for word in ("alpha", "bravo"):
            started = await call(
                client, "turn/start", {"threadId": thread_id, "input": text_input(word)}
            )
            turn_ids.append(started["turn"]["id"])
            await turn_of(client, thread_id)

        reverted = await call(
            client, "thread/revert", {"threadId": thread_id, "beforeTurnId": turn_ids[1]}
        )
        assert [t["id"] for t in reverted["thread"]["turns"]] == turn_ids[:1]
        await client.wait_for("thread/reverted", lambda p: p["threadId"] == thread_id)

        goal = await call(client, "thread/goal/set", {"threadId": thread_id, "objective": "win"})
        assert goal["goal"]["objective"] == "win"
        assert (await call(client, "thread/goal/get", {"threadId": thread_id}))["goal"] == goal[
            "goal"
        ]
        assert await call(client, "thread/goal/clear", {"threadId": thread_id}) == {"cleared": True}

        await call(client, "thread/settings/update", {"threadId": thread_id, "effort": "high"})
        updated = await client.wait_for("thread/settings/updated")
        assert updated["params"]["threadSettings"]["effort"] == "high"
        read = await call(client, "thread/read", {"threadId": thread_id})
        assert read["thread"]["reasoningEffort"] == "high"

        found = await call(client, "thread/search", {"searchTerm": "alpha"})
        assert [r["thread"]["id"] for r in found["data"]] == [thread_id]

        meta = await call(
            client, "thread/metadata/update", {"threadId": thread_id, "gitInfo": {"branch": "b"}}
        )
        assert meta["thread"]["gitInfo"]["branch"] == "b"

        side = {"type": "message", "role": "user", "content": []}
        assert (
            await call(client, "thread/inject_items", {"threadId": thread_id, "items": [side]})
            == {}
        )
        assert (await call(client, "thread/queue/list", {"threadId": thread_id}))["data"] == []
        assert server.returncode is None


@pytest.mark.parametrize("kind", KINDS)
async def test_queue_editing_and_turn_settings_while_a_turn_runs(
    kind: Kind, tmp_path: Path
) -> None:
    async with spawn_server(kind, tmp_path / "home") as server, open_client(kind, server) as client:
        await client.initialize()
        thread_id = (await call(client, "thread/start", {"cwd": str(tmp_path)}))["thread"]["id"]
        turn = await call(
            client, "turn/start", {"threadId": thread_id, "input": text_input("$ echo wait")}
        )
        approval = await client.wait_for("item/commandExecution/requestApproval")
        SCHEMA.validate_server_request(approval)
        assert approval["params"]["availableDecisions"] == ["accept", "acceptForSession", "cancel"]
        settings = {"threadId": thread_id, "turnId": turn["turn"]["id"], "effort": "low"}
        assert await call(client, "turn/settings/update", settings) == {"status": "applied"}

        ids = []
        for word in ("one", "two", "three"):
            added = await call(
                client,
                "thread/queue/add",
                {"threadId": thread_id, "clientUserMessageId": word, "input": text_input(word)},
            )
            ids.append(added["queuedSubmission"]["id"])
        edit = {"threadId": thread_id, "queuedSubmissionId": ids[1], "input": text_input("TWO")}
        assert (await call(client, "thread/queue/update", edit))["queuedSubmission"]["input"] == (
            text_input("TWO")
        )
        order = {"threadId": thread_id, "queuedSubmissionIds": [ids[1], ids[0], ids[2]]}
        assert await call(client, "thread/queue/reorder", order) == {}
        gone = {"threadId": thread_id, "queuedSubmissionId": ids[2]}
        assert await call(client, "thread/queue/delete", gone) == {"deleted": True}
        listed = await call(client, "thread/queue/list", {"threadId": thread_id})
        assert [s["id"] for s in listed["data"]] == [ids[1], ids[0]]

        # `cancel` interrupts the running turn; the queue then drains in its new order.
        await client.respond(approval, {"decision": "cancel"})
        first = await turn_of(client, thread_id)
        assert first[-1]["params"]["turn"]["status"] == "interrupted"
        texts = []
        for _ in range(2):
            events = await turn_of(client, thread_id)
            texts.append([i["text"] for i in items(events) if i["type"] == "agentMessage"][-1])
        assert texts == ["You said: TWO", "You said: one"]
        assert server.returncode is None
