"""fuzzyFileSearch and its sessions through the application (texts and shapes: Codex 0.169)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from tests.app.app_harness import Client, open_app


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    for path in (
        "src/main.rs",
        "src/deep/mod_main.rs",
        "build/main.o",
        "README.md",
        ".hmain",
    ):
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text("x")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    (root / ".gitignore").write_text("build/\n")
    return root


def ranked(files: list[dict[str, Any]]) -> list[tuple[str, int]]:
    return [(f["path"], f["score"]) for f in files]


async def test_one_shot_search_ranks_like_codex(tmp_path: Path, project: Path) -> None:
    async with open_app(tmp_path / "home") as app:
        c = await app.client()
        result = await c.call("fuzzyFileSearch", {"query": "main", "roots": [str(project)]})
        assert ranked(result["files"]) == [
            ("src/main.rs", 65645),
            ("src/deep/mod_main.rs", 65640),
            (".hmain", 65612),
        ]
        assert result["files"][0] == {
            "root": str(project),
            "path": "src/main.rs",
            "match_type": "file",
            "file_name": "main.rs",
            "score": 65645,
            "indices": [4, 5, 6, 7],
        }
        directory = await c.call("fuzzyFileSearch", {"query": "src", "roots": [str(project)]})
        assert directory["files"][0]["match_type"] == "directory"
        for params in (
            {"query": "", "roots": [str(project)]},
            {"query": "main", "roots": []},
            {"query": "main", "roots": [str(tmp_path / "missing")]},
        ):
            assert await c.call("fuzzyFileSearch", params) == {"files": []}
        assert c.assert_schema_valid()


async def test_a_newer_request_with_the_same_token_cancels_the_older(
    tmp_path: Path, project: Path
) -> None:
    async with open_app(tmp_path / "home") as app:
        c = await app.client()
        params = {"query": "main", "roots": [str(project)], "cancellationToken": "t"}
        for request_id in ("first", "second"):
            c.methods[request_id] = "fuzzyFileSearch"
            await c.send({"id": request_id, "method": "fuzzyFileSearch", "params": params})
            await trio.testing.wait_all_tasks_blocked()  # the first has started its search
        replies = {}
        for request_id in ("first", "second"):
            reply = await c.wait_for(lambda f, i=request_id: f.get("id") == i)  # type: ignore[misc]
            replies[request_id] = reply["result"]["files"]
        assert replies["second"]  # the newest one answers
        assert replies["first"] in (
            [],
            replies["second"],
        )  # the older one, unless it had finished
        assert c.assert_schema_valid()


async def session_frames(c: Client, session_id: str) -> list[dict[str, Any]]:
    """Notifications of the session, up to and including its next sessionCompleted."""
    frames = []
    while True:
        frame = await c.wait_for(
            lambda f: (
                f.get("method", "").startswith("fuzzyFileSearch/session")
                and f["params"]["sessionId"] == session_id
            )
        )
        frames.append(frame)
        if frame["method"] == "fuzzyFileSearch/sessionCompleted":
            return frames


async def test_session_streams_results_and_completes(tmp_path: Path, project: Path) -> None:
    async with open_app(tmp_path / "home") as app:
        c, other = (
            await app.client(experimental=True),
            await app.client(experimental=True),
        )
        params = {"sessionId": "s", "roots": [str(project)]}
        assert await c.call("fuzzyFileSearch/sessionStart", params) == {}
        started = await session_frames(c, "s")
        assert [f["params"] for f in started] == [
            {"sessionId": "s", "query": "", "files": []},
            {"sessionId": "s"},
        ]
        assert (
            await c.call("fuzzyFileSearch/sessionUpdate", {"sessionId": "s", "query": "main"}) == {}
        )
        frames = await session_frames(c, "s")
        final = frames[-2]["params"]
        assert final["query"] == "main"
        assert ranked(final["files"])[0] == ("src/main.rs", 65645)
        assert all(f["params"]["files"] for f in frames[:-1])  # never an empty snapshot
        await c.call("fuzzyFileSearch/sessionUpdate", {"sessionId": "s", "query": "zzz"})
        assert [f["params"].get("files") for f in await session_frames(c, "s")] == [
            [],
            None,
        ]  # no match: only the final, empty snapshot
        await c.call("fuzzyFileSearch/sessionUpdate", {"sessionId": "s", "query": ""})
        assert [f["params"].get("files") for f in await session_frames(c, "s")] == [
            [],
            None,
        ]
        assert await c.call("fuzzyFileSearch/sessionStop", {"sessionId": "s"}) == {}
        assert await c.error("fuzzyFileSearch/sessionUpdate", {"sessionId": "s", "query": "x"}) == {
            "code": -32600,
            "message": "fuzzy file search session not found: s",
        }
        assert await c.call("fuzzyFileSearch/sessionStop", {"sessionId": "s"}) == {}
        assert other.received("fuzzyFileSearch/sessionUpdated") == []
        assert c.assert_schema_valid()


async def test_a_newer_query_replaces_the_running_one(tmp_path: Path, project: Path) -> None:
    async with open_app(tmp_path / "home") as app:
        c = await app.client(experimental=True)
        await c.call("fuzzyFileSearch/sessionStart", {"sessionId": "s", "roots": [str(project)]})
        await session_frames(c, "s")
        await c.call("fuzzyFileSearch/sessionUpdate", {"sessionId": "s", "query": "mai"})
        await c.call("fuzzyFileSearch/sessionUpdate", {"sessionId": "s", "query": "src"})
        frames = await session_frames(c, "s")
        queries = [f["params"]["query"] for f in frames if "query" in f["params"]]
        assert queries[-1] == "src"
        assert "mai" not in queries[queries.index("src") :]  # nothing of the old one after
        assert frames[-2]["params"]["files"][0]["path"] == "src"
        assert c.assert_schema_valid()


async def test_session_errors_and_gating(tmp_path: Path, project: Path) -> None:
    async with open_app(tmp_path / "home") as app:
        stable = await app.client()
        assert await stable.error(
            "fuzzyFileSearch/sessionStart", {"sessionId": "s", "roots": [str(project)]}
        ) == {
            "code": -32600,
            "message": "fuzzyFileSearch/sessionStart requires experimentalApi capability",
        }
        c = await app.client(experimental=True)
        assert await c.error("fuzzyFileSearch/sessionStart", {"sessionId": "s", "roots": []}) == {
            "code": -32603,
            "message": "failed to start fuzzy file search session: "
            "at least one search directory is required",
        }
