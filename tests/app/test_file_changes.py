"""`Turn.apply_patch` in process: the `fileChange` item, when the client is asked
(`item/fileChange/requestApproval`), what the sandbox lets through, `acceptForSession`,
`cancel`, `turn/diff/updated`, and the item after a restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from appserver.app.agents import FileChangeOutcome, Turn
from appserver.app.file_changes import REJECTED_BY_POLICY, REJECTED_BY_USER
from tests.app.app_harness import (
    AppHarness,
    Client,
    Frame,
    completed_items,
    completed_turn,
    notifications,
    open_app,
    start_thread,
    text,
)

APPROVAL = "item/fileChange/requestApproval"


def add(path: str, body: str = "hello") -> str:
    return f"*** Begin Patch\n*** Add File: {path}\n+{body}\n*** End Patch"


class Patcher:
    name = "patcher"
    display_name = "Patcher"
    description = "Applies the patches the test gives it."

    def __init__(self) -> None:
        self.patches: list[str] = []
        self.outcomes: list[FileChangeOutcome] = []

    async def run_turn(self, turn: Turn) -> None:
        for patch in self.patches:
            self.outcomes.append(await turn.apply_patch(patch, reason="test"))


@pytest.fixture
def agent() -> Patcher:
    return Patcher()


async def begin(
    app: AppHarness, agent: Patcher, cwd: Path, patches: list[str], **thread: Any
) -> tuple[Client, str]:
    client = await app.client()
    thread_id = await start_thread(client, cwd=str(cwd), **thread)
    agent.patches = patches
    await client.call("turn/start", {"threadId": thread_id, "input": text("go")})
    return client, thread_id


async def finish(client: Client, thread_id: str) -> list[Frame]:
    frames = await client.turn_frames(thread_id)
    client.assert_schema_valid()
    return frames


def asked(client: Client) -> list[Frame]:
    client.pull()
    return [f for f in client.frames if f.get("method") == APPROVAL]


async def test_untrusted_asks_then_writes_and_reports_the_turn_diff(
    tmp_path: Path, agent: Patcher
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "a.txt").write_text("one\ntwo\n")
    patch = "*** Begin Patch\n*** Update File: a.txt\n@@\n one\n-two\n+TWO\n*** End Patch"
    async with open_app(tmp_path / "home", {"patcher": agent}) as app:
        client, thread_id = await begin(
            app, agent, work, [patch], sandbox="workspace-write", approvalPolicy="untrusted"
        )
        started = await client.notification("item/started")
        while started["item"]["type"] != "fileChange":
            started = await client.notification("item/started")
        assert started["item"]["status"] == "inProgress"
        assert started["item"]["changes"] == [
            {
                "path": str(work / "a.txt"),
                "kind": {"type": "update", "move_path": None},
                "diff": "@@ -1,2 +1,2 @@\n one\n-two\n+TWO\n",
            }
        ]
        request = await client.server_request(APPROVAL)
        assert request["params"]["itemId"] == started["item"]["id"]
        assert request["params"]["reason"] == "test"
        assert (work / "a.txt").read_text() == "one\ntwo\n"  # nothing written before the answer
        await client.reply(request["id"], {"decision": "accept"})
        frames = await finish(client, thread_id)
        assert (work / "a.txt").read_text() == "one\nTWO\n"
        (item,) = completed_items(frames, "fileChange")
        assert item["status"] == "completed"
        (diff,) = notifications(frames, "turn/diff/updated")
        assert diff["diff"] == (
            "diff --git a/a.txt b/a.txt\n--- a/a.txt\n+++ b/a.txt\n"
            "@@ -1,2 +1,2 @@\n one\n-two\n+TWO\n"
        )
        assert agent.outcomes[0].applied
        assert agent.outcomes[0].output == "Success. Updated the following files:\nM a.txt\n"
    async with open_app(tmp_path / "home", {"patcher": agent}) as app:
        client = await app.client()
        result = await client.call("thread/read", {"threadId": thread_id, "includeTurns": True})
        items = result["thread"]["turns"][0]["items"]
        assert [i for i in items if i["type"] == "fileChange"] == [item]


async def test_on_request_applies_inside_the_workspace_without_asking(
    tmp_path: Path, agent: Patcher
) -> None:
    async with open_app(tmp_path / "home", {"patcher": agent}) as app:
        client, thread_id = await begin(
            app,
            agent,
            tmp_path,
            [add("new/b.txt"), add("c.txt")],
            sandbox="workspace-write",
            approvalPolicy="on-request",
        )
        frames = await finish(client, thread_id)
        assert asked(client) == []
        assert (tmp_path / "new/b.txt").read_text() == "hello\n"
        assert [i["status"] for i in completed_items(frames, "fileChange")] == ["completed"] * 2
        last_diff = notifications(frames, "turn/diff/updated")[-1]["diff"]
        assert (
            "diff --git a/c.txt b/c.txt\nnew file mode 100644\n--- /dev/null\n+++ b/c.txt\n"
            in last_diff
        )
        assert "diff --git a/new/b.txt b/new/b.txt\n" in last_diff


async def test_a_declined_patch_writes_nothing(tmp_path: Path, agent: Patcher) -> None:
    async with open_app(tmp_path / "home", {"patcher": agent}) as app:
        client, thread_id = await begin(
            app,
            agent,
            tmp_path,
            [add("x.txt")],
            sandbox="workspace-write",
            approvalPolicy="untrusted",
        )
        request = await client.server_request(APPROVAL)
        await client.reply(request["id"], {"decision": "decline"})
        frames = await finish(client, thread_id)
        assert not (tmp_path / "x.txt").exists()
        assert completed_items(frames, "fileChange")[0]["status"] == "declined"
        assert notifications(frames, "turn/diff/updated") == []
        assert agent.outcomes[0].declined
        assert agent.outcomes[0].output == REJECTED_BY_USER
        assert completed_turn(frames)["status"] == "completed"


async def test_read_only_with_never_refuses_without_asking(tmp_path: Path, agent: Patcher) -> None:
    async with open_app(tmp_path / "home", {"patcher": agent}) as app:
        client, thread_id = await begin(
            app, agent, tmp_path, [add("x.txt")], sandbox="read-only", approvalPolicy="never"
        )
        frames = await finish(client, thread_id)
        assert asked(client) == []
        assert not (tmp_path / "x.txt").exists()
        assert completed_items(frames, "fileChange")[0]["status"] == "declined"
        assert agent.outcomes[0].output == REJECTED_BY_POLICY


async def test_read_only_writes_only_what_the_user_approves(tmp_path: Path, agent: Patcher) -> None:
    async with open_app(tmp_path / "home", {"patcher": agent}) as app:
        client, thread_id = await begin(
            app, agent, tmp_path, [add("x.txt")], sandbox="read-only", approvalPolicy="on-request"
        )
        request = await client.server_request(APPROVAL)
        await client.reply(request["id"], {"decision": "accept"})
        await finish(client, thread_id)
        assert (tmp_path / "x.txt").read_text() == "hello\n"


async def test_protected_paths_in_the_workspace_need_approval(
    tmp_path: Path, agent: Patcher
) -> None:
    (tmp_path / ".git").mkdir()
    async with open_app(tmp_path / "home", {"patcher": agent}) as app:
        client, thread_id = await begin(
            app,
            agent,
            tmp_path,
            [add(".git/hooks/evil")],
            sandbox="workspace-write",
            approvalPolicy="never",
        )
        await finish(client, thread_id)
        assert not (tmp_path / ".git/hooks/evil").exists()
        assert agent.outcomes[0].output == REJECTED_BY_POLICY


async def test_accept_for_session_covers_later_patches_to_the_same_files(
    tmp_path: Path, agent: Patcher
) -> None:
    patches = [add("s.txt", "one"), add("s.txt", "two"), add("other.txt")]
    async with open_app(tmp_path / "home", {"patcher": agent}) as app:
        client, thread_id = await begin(
            app, agent, tmp_path, patches, sandbox="workspace-write", approvalPolicy="untrusted"
        )
        first = await client.server_request(APPROVAL)
        await client.reply(first["id"], {"decision": "acceptForSession"})
        second = await client.server_request(APPROVAL)  # other.txt: not covered
        await client.reply(second["id"], {"decision": "accept"})
        await finish(client, thread_id)
        assert len(asked(client)) == 2
        assert (tmp_path / "s.txt").read_text() == "two\n"
        assert [o.status for o in agent.outcomes] == ["completed"] * 3


async def test_cancel_declines_and_interrupts_the_turn(tmp_path: Path, agent: Patcher) -> None:
    async with open_app(tmp_path / "home", {"patcher": agent}) as app:
        client, thread_id = await begin(
            app,
            agent,
            tmp_path,
            [add("x.txt"), add("y.txt")],
            sandbox="workspace-write",
            approvalPolicy="untrusted",
        )
        request = await client.server_request(APPROVAL)
        await client.reply(request["id"], {"decision": "cancel"})
        frames = await finish(client, thread_id)
        assert completed_turn(frames)["status"] == "interrupted"
        assert [i["status"] for i in completed_items(frames, "fileChange")] == ["declined"]
        assert not (tmp_path / "x.txt").exists()


async def test_a_patch_that_does_not_apply_fails_without_an_item(
    tmp_path: Path, agent: Patcher
) -> None:
    bad = "*** Begin Patch\n*** Update File: missing.txt\n@@\n-a\n+b\n*** End Patch"
    async with open_app(tmp_path / "home", {"patcher": agent}) as app:
        client, thread_id = await begin(app, agent, tmp_path, [bad, "not a patch"])
        frames = await finish(client, thread_id)
        assert completed_items(frames, "fileChange") == []
        assert [o.status for o in agent.outcomes] == ["failed", "failed"]
        assert agent.outcomes[0].output.startswith("Failed to read file to update")
        assert agent.outcomes[1].output.startswith("invalid patch: The first line")
