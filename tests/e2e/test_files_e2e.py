"""An IDE-style client lists, reads, writes and watches files through the real process, over
stdio, the Unix control socket and ws:// alike; every message is checked against the schema."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from tests.e2e.transports import KINDS, Client, Kind, open_client, spawn_server
from tests.schema import schema_for

pytestmark = pytest.mark.e2e


def check_schema(client: Client, methods: dict[object, str]) -> None:
    schema = schema_for(False)
    for message in client.received:
        if "method" in message or "error" in message:
            schema.validate_frame(message)
        elif message.get("id") in methods:
            schema.validate_frame(message, methods[message["id"]])


@pytest.mark.parametrize("kind", KINDS)
async def test_list_read_write_and_watch(kind: Kind, tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "src" / "main.py").write_text("print('hi')\n")
    async with (
        spawn_server(kind, tmp_path / "home") as server,
        open_client(kind, server) as c,
    ):
        await c.initialize()
        methods: dict[object, str] = {}

        async def call(method: str, params: dict[str, object]) -> dict[str, object]:
            request_id = await c.send_request(method, params)
            methods[request_id] = method
            reply = await c.reply_to(request_id)
            assert "result" in reply, reply
            result: dict[str, object] = reply["result"]
            return result

        listing = await call("fs/readDirectory", {"path": str(project / "src")})
        assert listing == {
            "entries": [{"fileName": "main.py", "isDirectory": False, "isFile": True}]
        }
        read = await call("fs/readFile", {"path": str(project / "src" / "main.py")})
        assert base64.b64decode(str(read["dataBase64"])) == b"print('hi')\n"

        watched = await call("fs/watch", {"path": str(project / "src"), "watchId": "src"})
        assert watched == {"path": str(project / "src")}
        data = base64.b64encode(b"print('bye')\n").decode()
        await call(
            "fs/writeFile",
            {"path": str(project / "src" / "main.py"), "dataBase64": data},
        )
        assert (project / "src" / "main.py").read_bytes() == b"print('bye')\n"
        changed = await c.wait_for("fs/changed", lambda p: p.get("watchId") == "src")
        assert changed["params"]["changedPaths"] == [str(project / "src" / "main.py")]

        await call("fs/unwatch", {"watchId": "src"})
        meta = await call("fs/getMetadata", {"path": str(project / "src" / "main.py")})
        assert meta["isFile"] is True
        check_schema(c, methods)


@pytest.mark.parametrize("kind", KINDS)
async def test_session_search_streams_and_a_newer_query_wins(kind: Kind, tmp_path: Path) -> None:
    project = tmp_path / "project"
    for path in ("src/main.rs", "src/lib.rs", "docs/guide.md"):
        (project / path).parent.mkdir(parents=True, exist_ok=True)
        (project / path).write_text("x")
    async with (
        spawn_server(kind, tmp_path / "home") as server,
        open_client(kind, server) as c,
    ):
        await c.initialize(
            {
                "clientInfo": {"name": "ide", "version": "1"},
                "capabilities": {"experimentalApi": True},
            }
        )
        start = {"sessionId": "s", "roots": [str(project)]}
        assert await c.call("fuzzyFileSearch/sessionStart", start) == {}
        await c.wait_for("fuzzyFileSearch/sessionCompleted")
        await c.call("fuzzyFileSearch/sessionUpdate", {"sessionId": "s", "query": "mai"})
        await c.call("fuzzyFileSearch/sessionUpdate", {"sessionId": "s", "query": "guide"})
        done = await c.wait_for(
            "fuzzyFileSearch/sessionCompleted", lambda _: last_query(c) == "guide"
        )
        assert done["params"] == {"sessionId": "s"}
        updates = [m["params"] for m in c.received if m.get("method", "").endswith("Updated")]
        assert updates[-1]["files"][0]["path"] == "docs/guide.md"
        queries = [u["query"] for u in updates]
        assert "mai" not in queries[queries.index("guide") :]
        schema = schema_for(True)
        for message in c.received:
            if "method" in message:
                schema.validate_frame(message)


def last_query(client: Client) -> str | None:
    updates = [m for m in client.received if m.get("method") == "fuzzyFileSearch/sessionUpdated"]
    return updates[-1]["params"]["query"] if updates else None
