"""Threads and turns end to end, over stdio, the Unix control socket and ws:// alike.

Each test starts the real `python -m appserver` process (see `transports.py`) and talks to it
the way the Codex TUI and the SDKs do (spec README §6, clients.md): the TUI's startup calls, the
echo agent's hello turn and its `$ command` approvals, interruption, the thread methods, which
connection hears what, disconnecting and resuming, persistence across restarts and shutdown on
SIGTERM. A stdio process has exactly one client, so the cases with several clients run over the
two socket transports only.
"""

from __future__ import annotations

import contextlib
import signal
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.e2e.transports import (
    KINDS,
    NO_PARAMS,
    SOCKET_KINDS,
    TIMEOUT,
    Client,
    Kind,
    is_notification,
    is_server_request,
    open_client,
    spawn_server,
)

pytestmark = pytest.mark.e2e

APPROVAL = "item/commandExecution/requestApproval"
#: How long an interrupted or force-stopped turn may take to end.
PROMPTLY = 3.0

DELTAS = frozenset({"item/agentMessage/delta", "item/commandExecution/outputDelta"})

OnRequest = Callable[[dict[str, Any]], Awaitable[None]]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """The threads' cwd: where `$ command`s run."""
    path = tmp_path / "work"
    path.mkdir()
    return path


# -- helpers -------------------------------------------------------------------------------------


def text_input(text: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": text, "text_elements": []}]


async def start_thread(client: Client, cwd: Path, **params: Any) -> str:
    """`thread/start`; returns the id once `thread/started` for it has arrived."""
    result = await client.call("thread/start", {"cwd": str(cwd), **params})
    thread = result["thread"]
    assert thread["cwd"] == str(cwd), result
    assert result["cwd"] == str(cwd), result
    assert thread["status"] == {"type": "idle"}, result
    assert thread["turns"] == [], result
    started = await client.wait_for("thread/started", lambda p: p["thread"]["id"] == thread["id"])
    assert started["params"]["thread"]["cwd"] == str(cwd), started
    thread_id: str = thread["id"]
    return thread_id


async def start_turn(client: Client, thread_id: str, text: str, **params: Any) -> str:
    """`turn/start`; the new turn's id (its notifications are left unread)."""
    result = await client.call(
        "turn/start", {"threadId": thread_id, "input": text_input(text), **params}
    )
    turn = result["turn"]
    assert turn["status"] == "inProgress", result
    assert turn["items"] == [], result
    turn_id: str = turn["id"]
    return turn_id


async def collect_turn(
    client: Client,
    thread_id: str,
    turn_id: str,
    *,
    on_request: OnRequest | None = None,
    within: float = TIMEOUT,
) -> list[dict[str, Any]]:
    """The thread's notifications and server requests up to this turn's `turn/completed`
    (included). Server requests go to `on_request`; without one, a request fails the test."""
    events: list[dict[str, Any]] = []
    try:
        with trio.fail_after(within):
            while True:
                message = await client.next_message()
                params = message.get("params") or {}
                if is_server_request(message):
                    assert on_request is not None, f"unexpected server request: {message}"
                    events.append(message)
                    await on_request(message)
                    continue
                if not is_notification(message) or params.get("threadId") != thread_id:
                    continue
                events.append(message)
                if message["method"] == "turn/completed":
                    assert params["turn"]["id"] == turn_id, message
                    return events
    except trio.TooSlowError:
        raise AssertionError(
            f"{client!r}: turn {turn_id} did not complete within {within}s; {client.recent()}"
        ) from None


def turn_methods(events: list[dict[str, Any]]) -> list[str]:
    """The methods of a turn's messages, status changes left out, runs of deltas collapsed."""
    out: list[str] = []
    for message in events:
        method = message["method"]
        if method == "thread/status/changed" or (method in DELTAS and out and out[-1] == method):
            continue
        out.append(method)
    return out


def turn_stream(events: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    """A turn's messages as (method, params), status changes (broadcast, timing-dependent)
    left out: what every subscriber of the thread must hear alike."""
    return [(m["method"], m["params"]) for m in events if m["method"] != "thread/status/changed"]


def completed_turn(events: list[dict[str, Any]]) -> dict[str, Any]:
    last = events[-1]
    assert last["method"] == "turn/completed", last
    turn: dict[str, Any] = last["params"]["turn"]
    return turn


def of_method(events: list[dict[str, Any]], method: str) -> list[dict[str, Any]]:
    return [m for m in events if m.get("method") == method]


def final_text(turn: dict[str, Any]) -> str:
    messages = [i for i in turn["items"] if i["type"] == "agentMessage"]
    assert messages, turn
    text: str = messages[-1]["text"]
    return text


HELLO_METHODS = [
    "turn/started",
    "item/started",
    "item/completed",
    "item/started",
    "item/agentMessage/delta",
    "item/completed",
    "thread/tokenUsage/updated",
    "turn/completed",
]


def assert_hello_turn(
    events: list[dict[str, Any]], thread_id: str, turn_id: str, text: str
) -> dict[str, Any]:
    """The echo agent's plain-text turn, in Codex's order; returns the completed turn."""
    assert turn_methods(events) == HELLO_METHODS, [m["method"] for m in events]
    for message in events:
        assert message["params"]["threadId"] == thread_id, message
        if message["method"].startswith("item/") or message["method"].startswith("thread/token"):
            assert message["params"]["turnId"] == turn_id, message
    started = of_method(events, "turn/started")[0]["params"]["turn"]
    assert started["id"] == turn_id, started
    assert started["status"] == "inProgress", started

    item_started = of_method(events, "item/started")
    item_completed = of_method(events, "item/completed")
    user, agent = (m["params"]["item"] for m in item_completed)
    assert item_started[0]["params"]["item"]["type"] == "userMessage", item_started
    assert item_started[1]["params"]["item"]["type"] == "agentMessage", item_started
    assert item_started[1]["params"]["item"]["id"] == agent["id"], item_started
    assert user["type"] == "userMessage", user
    assert user["content"] == text_input(text), user
    assert agent["type"] == "agentMessage", agent
    assert agent["phase"] == "final_answer", agent
    expected = f"You said: {text}"
    assert agent["text"] == expected, agent
    for message in item_completed:
        assert isinstance(message["params"]["completedAtMs"], int), message
    for message in item_started:
        assert isinstance(message["params"]["startedAtMs"], int), message

    deltas = of_method(events, "item/agentMessage/delta")
    assert len(deltas) >= 2, f"expected the answer streamed in several deltas: {deltas}"
    assert all(d["params"]["itemId"] == agent["id"] for d in deltas), deltas
    assert "".join(d["params"]["delta"] for d in deltas) == expected, deltas

    usage = of_method(events, "thread/tokenUsage/updated")[0]["params"]["tokenUsage"]
    for key in ("total", "last"):
        assert set(usage[key]) == {
            "totalTokens",
            "inputTokens",
            "cachedInputTokens",
            "outputTokens",
            "reasoningOutputTokens",
        }, usage

    turn = completed_turn(events)
    assert turn["id"] == turn_id, turn
    assert turn["status"] == "completed", turn
    assert turn["error"] is None, turn
    assert turn["items"] == [user, agent], turn
    return turn


async def hello_turn(client: Client, thread_id: str, text: str = "hello world") -> dict[str, Any]:
    turn_id = await start_turn(client, thread_id, text)
    events = await collect_turn(client, thread_id, turn_id)
    return assert_hello_turn(events, thread_id, turn_id, text)


async def command_turn(
    client: Client, thread_id: str, command: str, answer: OnRequest
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A `$ command` turn whose approval is answered by `answer`: (approval, events)."""
    turn_id = await start_turn(client, thread_id, f"$ {command}")
    events = await collect_turn(client, thread_id, turn_id, on_request=answer)
    approvals = [m for m in events if is_server_request(m)]
    assert [m["method"] for m in approvals] == [APPROVAL], events
    approval = approvals[0]
    assert type(approval["id"]) is int, approval
    params = approval["params"]
    assert params["threadId"] == thread_id, approval
    assert params["turnId"] == turn_id, approval
    assert params["command"] == command, approval
    assert isinstance(params["itemId"], str), approval
    assert isinstance(params["startedAtMs"], int), approval
    resolved = of_method(events, "serverRequest/resolved")
    assert [r["params"] for r in resolved] == [
        {"threadId": thread_id, "requestId": approval["id"]}
    ], events
    assert events.index(resolved[0]) > events.index(approval), events
    return approval, events


def command_item(turn: dict[str, Any]) -> dict[str, Any]:
    items = [i for i in turn["items"] if i["type"] == "commandExecution"]
    assert len(items) == 1, turn
    item: dict[str, Any] = items[0]
    return item


def assert_ran(turn: dict[str, Any], command: str, output: str, cwd: Path) -> None:
    """A completed turn whose one command ran and exited 0 with `output`."""
    assert turn["status"] == "completed", turn
    assert [i["type"] for i in turn["items"]] == [
        "userMessage",
        "commandExecution",
        "agentMessage",
    ], turn
    item = command_item(turn)
    assert item["command"] == command, item
    assert item["cwd"] == str(cwd), item
    assert item["status"] == "completed", item
    assert item["exitCode"] == 0, item
    assert item["aggregatedOutput"] == output, item
    assert final_text(turn) == "Command exited with code 0.", turn


def accept(client: Client, *, jsonrpc: bool = False) -> OnRequest:
    async def answer(request: dict[str, Any]) -> None:
        await client.respond(request, {"decision": "accept"}, jsonrpc=jsonrpc)

    return answer


def decline(client: Client) -> OnRequest:
    async def answer(request: dict[str, Any]) -> None:
        await client.respond(request, {"decision": "decline"})

    return answer


async def read_thread(client: Client, thread_id: str) -> dict[str, Any]:
    result = await client.call("thread/read", {"threadId": thread_id, "includeTurns": True})
    thread: dict[str, Any] = result["thread"]
    assert thread["id"] == thread_id, result
    return thread


def turn_messages_for(client: Client, thread_id: str) -> list[dict[str, Any]]:
    """What `client` has received that only a subscriber of `thread_id` may get."""
    return [
        m
        for m in client.received
        if "method" in m
        and (m.get("params") or {}).get("threadId") == thread_id
        and (
            m["method"].startswith(("turn/", "item/", "serverRequest/"))
            or m["method"] == "thread/tokenUsage/updated"
        )
    ]


# -- the TUI's startup -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_every_tui_startup_call_succeeds(kind: Kind, home: Path, work: Path) -> None:
    async with spawn_server(kind, home) as server, open_client(kind, server) as client:
        init = await client.initialize(request_id="initialize")
        assert init["userAgent"].startswith("codex-tui/"), init
        assert init["codexHome"] == str(home), init
        assert init["platformFamily"] == "unix", init
        assert init["platformOs"] == "linux", init
        assert "serverInfo" not in init, init

        cwd = str(work)
        calls: list[tuple[str, Any]] = [
            ("account/read", {}),
            ("model/list", {"includeHidden": True}),
            ("hooks/list", {"cwds": [cwd], "threadId": None}),
            ("account/bedrock/checkGovCloudRequirements", {}),
            ("config/read", {"includeLayers": True, "cwd": "."}),
            ("configRequirements/read", NO_PARAMS),
            ("collaborationMode/list", {}),
            ("skills/list", {"cwds": [cwd], "forceReload": True}),
            ("plugin/installed", {"cwds": [cwd]}),
            ("thread/loaded/list", {}),
            (
                "thread/list",
                {
                    "sortKey": "recency_at",
                    "useStateDbOnly": True,
                    "limit": 10,
                    "sourceKinds": ["exec", "appServer"],
                },
            ),
            (
                "thread/list",
                {"sortKey": "section_position", "useStateDbOnly": True, "limit": 100},
            ),
        ]
        # Pipelined like the TUI: every request is out before the first reply is read.
        ids = []
        for method, params in calls:
            ids.append(f"tui-{method.replace('/', '-')}-{uuid.uuid4()}")
            await client.send_request(method, params, request_id=ids[-1])
        results: dict[str, Any] = {}
        for (method, _), request_id in zip(calls, ids, strict=True):
            reply = await client.reply_to(request_id)
            assert "result" in reply, f"{method}: {reply}"
            results.setdefault(method, reply["result"])

        assert results["account/read"] == {"account": None, "requiresOpenaiAuth": False}
        models = results["model/list"]
        assert models["nextCursor"] is None, models
        assert [m["model"] for m in models["data"] if m["isDefault"]] == ["echo"], models
        for model in models["data"]:
            for key in ("id", "displayName", "description", "hidden", "defaultReasoningEffort"):
                assert key in model, model
            assert model["supportedReasoningEfforts"], model
        assert isinstance(results["hooks/list"]["data"], list)
        assert results["account/bedrock/checkGovCloudRequirements"]["isGovCloud"] is False
        assert isinstance(results["config/read"]["config"], dict)
        assert "requirements" in results["configRequirements/read"]
        assert isinstance(results["collaborationMode/list"]["data"], list)
        assert isinstance(results["skills/list"]["data"], list)
        assert isinstance(results["plugin/installed"]["marketplaces"], list)
        assert results["thread/loaded/list"] == {"data": [], "nextCursor": None}
        assert results["thread/list"]["data"] == []
        assert results["thread/list"]["nextCursor"] is None

        # The TUI's own thread/start: nulls, unknown keys and all.
        started = await client.call(
            "thread/start",
            {
                "cwd": None,
                "model": None,
                "sandbox": "read-only",
                "approvalPolicy": "on-request",
                "threadSource": "user",
                "historyMode": "paginated",
                "dynamicTools": [],
                "environments": None,
            },
            request_id=f"startup-thread-start-{uuid.uuid4()}",
        )
        thread_id = started["thread"]["id"]
        assert started["sandbox"] == {"type": "readOnly", "networkAccess": False}, started
        assert started["approvalPolicy"] == "on-request", started
        await client.wait_for("thread/started", lambda p: p["thread"]["id"] == thread_id)
        loaded = await client.call("thread/loaded/list", {})
        assert loaded["data"] == [thread_id], loaded
        await hello_turn(client, thread_id)
        listed = await client.call(
            "thread/list", {"sortKey": "recency_at", "useStateDbOnly": True, "limit": 10}
        )
        assert [t["id"] for t in listed["data"]] == [thread_id], listed


# -- turns -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_hello_turn(kind: Kind, home: Path, work: Path) -> None:
    async with spawn_server(kind, home) as server, open_client(kind, server) as client:
        await client.initialize()
        result = await client.call("thread/start", {"cwd": str(work)})
        thread = result["thread"]
        assert result["model"] == "echo", result
        assert thread["modelProvider"] == result["modelProvider"], result
        async with contextlib.aclosing(client.notifications()) as stream:
            async for started in stream:
                if started["method"] == "thread/started":
                    break
        assert started["params"]["thread"]["id"] == thread["id"], started
        assert started["params"]["thread"]["cwd"] == str(work), started

        turn = await hello_turn(client, thread["id"])
        stored = await read_thread(client, thread["id"])
        assert stored["turns"] == [turn], stored
        assert stored["preview"] == "hello world", stored
        assert stored["status"] == {"type": "idle"}, stored


@pytest.mark.parametrize("kind", KINDS)
async def test_command_approval_accept_decline_and_jsonrpc_reply(
    kind: Kind, home: Path, work: Path
) -> None:
    async with spawn_server(kind, home) as server, open_client(kind, server) as client:
        await client.initialize()
        thread_id = await start_thread(client, work)

        approval, events = await command_turn(
            client, thread_id, "echo approved-run", accept(client)
        )
        assert approval["params"]["cwd"] == str(work), approval
        output = "".join(
            m["params"]["delta"] for m in of_method(events, "item/commandExecution/outputDelta")
        )
        assert "approved-run" in output, events
        assert all(
            m["params"]["itemId"] == approval["params"]["itemId"]
            for m in of_method(events, "item/commandExecution/outputDelta")
        ), events
        turn = completed_turn(events)
        assert_ran(turn, "echo approved-run", "approved-run\n", work)
        assert command_item(turn)["id"] == approval["params"]["itemId"], turn
        waiting = [
            m
            for m in client.received
            if m.get("method") == "thread/status/changed"
            and m["params"]["status"].get("activeFlags") == ["waitingOnApproval"]
        ]
        assert waiting, "no thread/status/changed with waitingOnApproval"

        second, events = await command_turn(client, thread_id, "echo no", decline(client))
        assert second["id"] != approval["id"], (approval, second)
        assert of_method(events, "item/commandExecution/outputDelta") == [], events
        turn = completed_turn(events)
        assert turn["status"] == "completed", turn
        assert command_item(turn)["status"] == "declined", turn
        assert final_text(turn) == "Command was declined.", turn

        # codex-app-server-sdk answers with `"jsonrpc":"2.0"` in its reply.
        _, events = await command_turn(
            client, thread_id, "echo via-jsonrpc", accept(client, jsonrpc=True)
        )
        assert_ran(completed_turn(events), "echo via-jsonrpc", "via-jsonrpc\n", work)


@pytest.mark.parametrize("kind", KINDS)
async def test_interrupt_ends_a_running_command_turn(kind: Kind, home: Path, work: Path) -> None:
    async with spawn_server(kind, home) as server, open_client(kind, server) as client:
        await client.initialize()
        thread_id = await start_thread(client, work, approvalPolicy="never")
        turn_id = await start_turn(client, thread_id, "$ sleep 30")
        await client.wait_for(
            "item/started", lambda p: p["item"]["type"] == "commandExecution", within=TIMEOUT
        )
        started = trio.current_time()
        reply = await client.request("turn/interrupt", {"threadId": thread_id, "turnId": turn_id})
        assert reply.get("result") == {}, reply
        events = await collect_turn(client, thread_id, turn_id, within=PROMPTLY)
        assert trio.current_time() - started < PROMPTLY
        turn = completed_turn(events)
        assert turn["status"] == "interrupted", turn
        assert command_item(turn)["status"] not in ("inProgress", "completed"), turn

        stored = await read_thread(client, thread_id)
        assert [t["status"] for t in stored["turns"]] == ["interrupted"], stored
        assert stored["status"] == {"type": "idle"}, stored
        # The thread takes another turn afterwards.
        await hello_turn(client, thread_id, "after")


# -- the thread methods ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_thread_list_read_pages_name_archive_delete(
    kind: Kind, home: Path, work: Path
) -> None:
    async with spawn_server(kind, home) as server, open_client(kind, server) as client:
        await client.initialize()
        first_id = await start_thread(client, work)
        first = await hello_turn(client, first_id, "first")
        second = await hello_turn(client, first_id, "second")
        other_id = await start_thread(client, work)
        await hello_turn(client, other_id, "other")

        listed = await client.call("thread/list", {})
        by_id = {t["id"]: t for t in listed["data"]}
        assert set(by_id) == {first_id, other_id}, listed
        assert by_id[first_id]["preview"] == "first", listed
        assert by_id[first_id]["turns"] == [], listed
        assert listed["nextCursor"] is None, listed
        only = await client.call("thread/list", {"searchTerm": "fir"})
        assert [t["id"] for t in only["data"]] == [first_id], only

        thread = await read_thread(client, first_id)
        assert thread["turns"] == [first, second], thread
        bare = await client.call("thread/read", {"threadId": first_id})
        assert bare["thread"]["turns"] == [], bare

        turns = await client.call("thread/turns/list", {"threadId": first_id})
        assert [t["id"] for t in turns["data"]] == [second["id"], first["id"]], turns
        ascending = await client.call(
            "thread/turns/list", {"threadId": first_id, "sortDirection": "asc"}
        )
        assert ascending["data"] == [first, second], ascending
        page = await client.call("thread/turns/list", {"threadId": first_id, "limit": 1})
        assert [t["id"] for t in page["data"]] == [second["id"]], page
        assert page["nextCursor"] is not None, page
        rest = await client.call(
            "thread/turns/list", {"threadId": first_id, "limit": 1, "cursor": page["nextCursor"]}
        )
        assert [t["id"] for t in rest["data"]] == [first["id"]], rest
        assert rest["nextCursor"] is None, rest

        items = await client.call(
            "thread/items/list",
            {"threadId": first_id, "turnId": None, "limit": 100, "sortDirection": "desc"},
        )
        expected = [
            (turn["id"], item) for turn in (second, first) for item in reversed(turn["items"])
        ]
        assert [(e["turnId"], e["item"]) for e in items["data"]] == expected, items
        assert items["data"][0]["item"]["text"] == "You said: second", items
        assert all(isinstance(e["completedAtMs"], int) for e in items["data"]), items
        assert items["nextCursor"] is None, items

        assert await client.call("thread/name/set", {"threadId": first_id, "name": "Named"}) == {}
        renamed = await client.wait_for("thread/name/updated")
        assert renamed["params"] == {"threadId": first_id, "threadName": "Named"}, renamed
        assert (await read_thread(client, first_id))["name"] == "Named"

        assert await client.call("thread/archive", {"threadId": first_id}) == {}
        archived = await client.wait_for("thread/archived")
        assert archived["params"] == {"threadId": first_id}, archived
        active = await client.call("thread/list", {})
        assert [t["id"] for t in active["data"]] == [other_id], active
        shelved = await client.call("thread/list", {"archived": True})
        assert [t["id"] for t in shelved["data"]] == [first_id], shelved

        unarchived = await client.call("thread/unarchive", {"threadId": first_id})
        assert unarchived["thread"]["id"] == first_id, unarchived
        assert unarchived["thread"]["name"] == "Named", unarchived
        notified = await client.wait_for("thread/unarchived")
        assert notified["params"] == {"threadId": first_id}, notified
        active = await client.call("thread/list", {})
        assert {t["id"] for t in active["data"]} == {first_id, other_id}, active

        assert await client.call("thread/delete", {"threadId": other_id}) == {}
        gone = await client.request("thread/read", {"threadId": other_id})
        assert gone.get("error", {}).get("code") == -32600, gone
        active = await client.call("thread/list", {})
        assert [t["id"] for t in active["data"]] == [first_id], active
        loaded = await client.call("thread/loaded/list", {})
        assert loaded["data"] == [first_id], loaded
        assert (await read_thread(client, first_id))["turns"] == [first, second]


# -- several clients -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", SOCKET_KINDS)
async def test_turn_events_go_to_subscribers_only(kind: Kind, home: Path, work: Path) -> None:
    async with (
        spawn_server(kind, home) as server,
        open_client(kind, server, "A") as a,
        open_client(kind, server, "B") as b,
        open_client(kind, server, "C") as c,
    ):
        await a.initialize()
        await b.initialize()
        thread_id = await start_thread(a, work)
        await hello_turn(a, thread_id)

        # B, initialized but not subscribed: thread-wide news only. The round trip is a
        # barrier: everything sent to B during A's turn was queued before B's reply.
        await b.call("thread/loaded/list", {})
        assert "thread/started" in b.methods(), b.received
        assert any(
            m.get("method") == "thread/status/changed" and m["params"]["threadId"] == thread_id
            for m in b.received
        ), b.received
        assert turn_messages_for(b, thread_id) == [], b.received

        # B resumes: from now on it hears the thread's turns too.
        resumed = await b.call("thread/resume", {"threadId": thread_id})
        assert resumed["thread"]["id"] == thread_id, resumed
        assert [t["status"] for t in resumed["thread"]["turns"]] == ["completed"], resumed
        turn_id = await start_turn(a, thread_id, "both")
        seen_by_a = await collect_turn(a, thread_id, turn_id)
        seen_by_b = await collect_turn(b, thread_id, turn_id)
        assert_hello_turn(seen_by_b, thread_id, turn_id, "both")
        assert turn_stream(seen_by_b) == turn_stream(seen_by_a)

        # A thread B never subscribed to stays silent for B.
        other_id = await start_thread(a, work)
        await hello_turn(a, other_id, "only a")
        await b.call("thread/loaded/list", {})
        assert turn_messages_for(b, other_id) == [], b.received

        # A third subscriber; B (a resumer) starts the turn this time.
        async with open_client(kind, server, "D") as d:
            await d.initialize()
            await d.call("thread/resume", {"threadId": thread_id})
            turn_id = await start_turn(b, thread_id, "three")
            seen = [await collect_turn(x, thread_id, turn_id) for x in (a, b, d)]
            assert_hello_turn(seen[0], thread_id, turn_id, "three")
            assert turn_stream(seen[1]) == turn_stream(seen[0])
            assert turn_stream(seen[2]) == turn_stream(seen[0])

        # C never initialized: not one broadcast, not one turn event. Its own round trip
        # (answered `Not initialized`) is the barrier.
        reply = await c.request("thread/loaded/list", {})
        assert reply["error"]["code"] == -32600, reply
        assert c.received == [reply], c.received


@pytest.mark.parametrize("kind", SOCKET_KINDS)
async def test_disconnect_then_resume_replays_the_approval_and_turns_outlive_clients(
    kind: Kind, home: Path, work: Path
) -> None:
    async with spawn_server(kind, home) as server:
        async with open_client(kind, server, "A") as a:
            await a.initialize()
            thread_id = await start_thread(a, work)
            turn_id = await start_turn(a, thread_id, "$ echo x")
            approval = await a.wait_for(APPROVAL)
            await a.aclose()  # disconnects with the approval pending

        async with open_client(kind, server, "B") as b:
            await b.initialize()
            resumed = await b.call("thread/resume", {"threadId": thread_id})
            status = resumed["thread"]["status"]
            assert status == {"type": "active", "activeFlags": ["waitingOnApproval"]}, resumed
            replayed = await b.wait_for(APPROVAL)
            assert replayed["id"] == approval["id"], (approval, replayed)
            assert replayed["params"] == approval["params"], (approval, replayed)
            await b.respond(replayed, {"decision": "accept"})
            events = await collect_turn(b, thread_id, turn_id)
            resolved = of_method(events, "serverRequest/resolved")
            assert [r["params"]["requestId"] for r in resolved] == [approval["id"]], events
            assert_ran(completed_turn(events), "echo x", "x\n", work)

        # A turn keeps running after the client that started it disconnects.
        async with open_client(kind, server, "C") as c:
            await c.initialize()
            thread_id = await start_thread(c, work, approvalPolicy="never")
            turn_id = await start_turn(c, thread_id, "$ sleep 1")
            await c.wait_for("item/started", lambda p: p["item"]["type"] == "commandExecution")
            await c.aclose()

        async with open_client(kind, server, "D") as d:
            await d.initialize()
            resumed = await d.call("thread/resume", {"threadId": thread_id})
            if resumed["thread"]["turns"][-1]["status"] == "inProgress":
                # Subscribed by the resume, so the end of the turn reaches D.
                events = await collect_turn(d, thread_id, turn_id)
                assert_ran(completed_turn(events), "sleep 1", "", work)
            thread = await read_thread(d, thread_id)
            assert [t["id"] for t in thread["turns"]] == [turn_id], thread
            assert_ran(thread["turns"][0], "sleep 1", "", work)


# -- restarts and signals --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_threads_survive_a_restart(kind: Kind, home: Path, work: Path) -> None:
    async with spawn_server(kind, home) as server, open_client(kind, server) as client:
        await client.initialize()
        thread_id = await start_thread(client, work)
        turn = await hello_turn(client, thread_id)
        assert await server.stop() == 0, server.describe()

    async with spawn_server(kind, home) as server, open_client(kind, server) as client:
        await client.initialize()
        listed = await client.call("thread/list", {"sortKey": "recency_at"})
        assert [t["id"] for t in listed["data"]] == [thread_id], listed
        assert listed["data"][0]["preview"] == "hello world", listed
        assert listed["data"][0]["status"] == {"type": "notLoaded"}, listed
        thread = await read_thread(client, thread_id)
        assert thread["cwd"] == str(work), thread
        assert thread["turns"] == [turn], thread
        # And the thread carries on in the new process.
        await client.call("thread/resume", {"threadId": thread_id})
        await hello_turn(client, thread_id, "again")
        assert len((await read_thread(client, thread_id))["turns"]) == 2


@pytest.mark.parametrize("kind", SOCKET_KINDS)
async def test_sigterm_lets_the_running_turn_finish_and_a_second_forces(
    kind: Kind, home: Path, work: Path
) -> None:
    async with spawn_server(kind, home) as server, open_client(kind, server) as client:
        await client.initialize()
        thread_id = await start_thread(client, work, approvalPolicy="never")
        turn_id = await start_turn(client, thread_id, "$ sleep 1")
        await client.wait_for("turn/started")
        server.send_signal(signal.SIGTERM)
        signalled = trio.current_time()
        # The turn's end reaches the client before the server disconnects it and exits.
        rest = await client.read_to_close(within=TIMEOUT)
        completed = [m for m in rest if m.get("method") == "turn/completed"]
        assert [m["params"]["turn"]["status"] for m in completed] == ["completed"], rest
        assert await server.wait_exit(TIMEOUT) == 0, server.describe()
        assert trio.current_time() - signalled < TIMEOUT

    async with spawn_server(kind, home) as server, open_client(kind, server) as client:
        await client.initialize()
        thread = await read_thread(client, thread_id)
        assert [t["id"] for t in thread["turns"]] == [turn_id], thread
        assert_ran(thread["turns"][0], "sleep 1", "", work)

        await client.call("thread/resume", {"threadId": thread_id})
        long_turn = await start_turn(client, thread_id, "$ sleep 30", approvalPolicy="never")
        await client.wait_for("item/started", lambda p: p["item"]["type"] == "commandExecution")
        server.send_signal(signal.SIGTERM)
        await server.wait_not_accepting()
        assert server.returncode is None, f"did not wait for the turn: {server.describe()}"
        server.send_signal(signal.SIGTERM)
        assert await server.wait_exit(PROMPTLY) == 0, server.describe()

    async with spawn_server(kind, home) as server, open_client(kind, server) as client:
        await client.initialize()
        thread = await read_thread(client, thread_id)
        assert [(t["id"], t["status"]) for t in thread["turns"]] == [
            (turn_id, "completed"),
            (long_turn, "interrupted"),
        ], thread
