"""The path from `turn/start` to the agent: the user's message is written with the accepted turn
(before the answer), reported complete before the agent starts and without a write of its own;
`Turn.history` from cached per-turn JSON equals converting the turns afresh."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from appserver.app.agents import Turn
from appserver.app.thread_state import ItemRecord, ThreadState, TurnState
from appserver.app.turns import TurnRun
from appserver.wire.converter import unstructure
from tests.app.app_harness import AppHarness, Client, open_app, start_thread, text


class GateAgent:
    """Calls `on_start(turn)`, waits for `release`, then answers `done`."""

    name = "gate"
    display_name = "Gate"
    description = "Waits to be released."

    def __init__(self, on_start: Callable[[Turn], None] = lambda turn: None) -> None:
        self.on_start = on_start
        self.release = trio.Event()

    async def run_turn(self, turn: Turn) -> None:
        self.on_start(turn)
        await self.release.wait()
        await turn.say("done", chunks=1)


def when_the_turn_task_is_started(app: AppHarness, act: Callable[[], None]) -> None:
    """Run `act` as the accepted turn's task is handed to the nursery: after `turn/start`
    was answered, before the turn did anything."""
    threads = app.threads
    start = threads.start_turn_task

    def hooked(run: Callable[[], Any]) -> None:
        act()
        start(run)

    threads.start_turn_task = hooked  # type: ignore[method-assign]


def copy_state(home: Path, to: Path) -> Path:
    """The state files as they are now: what a crash at this moment leaves on disk."""
    to.mkdir()
    for name in ("state.sqlite", "state.sqlite-wal"):
        if (home / name).exists():
            shutil.copyfile(home / name, to / name)
    return to


async def read_turns(home: Path, thread_id: str) -> list[dict[str, Any]]:
    """The thread's turns as a server restarted on `home` reads them."""
    async with open_app(home) as app:
        client = await app.client()
        read = await client.call("thread/read", {"threadId": thread_id, "includeTurns": True})
        turns: list[dict[str, Any]] = read["thread"]["turns"]
        return turns


def methods(client: Client) -> list[str]:
    """What the client heard, in order: replies as `reply:<method>`, items with their type."""
    out = []
    for frame in client.frames:
        if "method" not in frame:
            out.append(f"reply:{client.methods.get(frame.get('id'))}")
        elif frame["method"] in ("item/started", "item/completed"):
            out.append(f"{frame['method']}:{frame['params']['item']['type']}")
        else:
            out.append(frame["method"])
    return out


async def test_the_user_message_is_on_disk_before_turn_start_is_answered(tmp_path: Path) -> None:
    """A crash right after the answer, before the turn did anything, keeps the user's message:
    a restart reads the turn back interrupted, with the very item later reported complete."""
    home = tmp_path / "home"
    agent = GateAgent()
    async with open_app(home, {"gate": agent}) as app:
        client = await app.client()
        thread_id = await start_thread(client)
        snapshots: list[Path] = []
        when_the_turn_task_is_started(
            app, lambda: snapshots.append(copy_state(home, tmp_path / "crashed"))
        )
        params = {"threadId": thread_id, "input": text("keep me"), "clientUserMessageId": "c-1"}
        started = await client.call("turn/start", params)
        assert started["turn"]["items"] == []
        reported = await client.notification("item/completed")
        agent.release.set()
        await client.turn_frames(thread_id)
    assert len(snapshots) == 1
    (turn,) = await read_turns(snapshots[0], thread_id)
    assert turn["id"] == started["turn"]["id"]
    assert turn["status"] == "interrupted"
    assert turn["items"] == [reported["item"]]
    assert reported["item"]["type"] == "userMessage"
    assert reported["item"]["clientId"] == "c-1"
    assert reported["item"]["content"] == text("keep me")


async def test_the_user_message_is_reported_before_the_agent_starts_and_costs_no_write(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    saves: list[str] = []
    writes_when_the_agent_started: list[int] = []
    agent = GateAgent(lambda turn: writes_when_the_agent_started.append(len(saves)))
    async with open_app(home, {"gate": agent}) as app:
        client = await app.client()
        thread_id = await start_thread(client)
        save_turn = app.threads.save_turn

        async def counting(thread: ThreadState, turn: TurnState, ahead: Any = ()) -> None:
            saves.append(turn.id)
            await save_turn(thread, turn, ahead)

        app.threads.save_turn = counting  # type: ignore[method-assign]
        await client.call("turn/start", {"threadId": thread_id, "input": text("hi")})
        await client.notification("item/completed")
        agent.release.set()
        frames = await client.turn_frames(thread_id)
        assert client.assert_schema_valid() > 0
        (turn,) = await read_turns(home, thread_id)
    assert writes_when_the_agent_started == [1], "only the accepted turn was written before"
    heard = methods(client)
    relevant = ("reply:", "turn/", "item/", "thread/tokenUsage")
    heard = [m for m in heard[heard.index("reply:turn/start") :] if m.startswith(relevant)]
    assert heard == [
        "reply:turn/start",
        "turn/started",
        "item/started:userMessage",
        "item/completed:userMessage",
        "item/started:agentMessage",
        "item/agentMessage/delta",
        "item/completed:agentMessage",
        "thread/tokenUsage/updated",
        "turn/completed",
    ]
    # What was reported is what is on disk, once and in order.
    reported = [f["params"]["item"] for f in frames if f.get("method") == "item/completed"]
    assert turn["items"] == reported
    assert turn["status"] == "completed"


async def test_a_turn_interrupted_before_reporting_the_user_message_keeps_disk_and_report_equal(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    agent = GateAgent()
    async with open_app(home, {"gate": agent}) as app:
        client = await app.client()
        thread_id = await start_thread(client)
        loaded = app.threads.loaded[thread_id]

        def interrupt() -> None:
            run = loaded.active
            assert isinstance(run, TurnRun)
            body = run.body

            async def interrupted_first(user_item: dict[str, Any], started: int) -> None:
                await trio.lowlevel.checkpoint()  # the interrupt lands here
                await body(user_item, started)

            run.body = interrupted_first  # type: ignore[method-assign]
            run.cancel_scope.cancel()

        when_the_turn_task_is_started(app, interrupt)
        await client.call("turn/start", {"threadId": thread_id, "input": text("hi")})
        frames = await client.turn_frames(thread_id)
        completed = frames[-1]["params"]["turn"]
        assert completed["status"] == "interrupted"
        assert completed["items"] == []
        (on_disk,) = await read_turns(home, thread_id)
    assert on_disk["status"] == "interrupted"
    assert on_disk["items"] == completed["items"]


async def test_a_steer_before_the_user_message_is_reported_keeps_both_once(
    tmp_path: Path,
) -> None:
    """`turn/steer` may arrive before the turn reported its user message: both items are on
    disk once, in the order they were reported."""
    home = tmp_path / "home"
    agent = GateAgent()
    async with open_app(home, {"gate": agent}) as app:
        client = await app.client()
        thread_id = await start_thread(client)
        loaded = app.threads.loaded[thread_id]
        steered: list[Any] = []

        def steer() -> None:
            run = loaded.active
            assert run is not None
            app.nursery.start_soon(run.steer, text("also this"), None)
            steered.append(run)

        when_the_turn_task_is_started(app, steer)
        result = await client.call("turn/start", {"threadId": thread_id, "input": text("hi")})
        await client.wait_for(
            lambda f: (
                f.get("method") == "item/completed"
                and f["params"]["item"].get("content") == text("hi")
            )
        )
        agent.release.set()
        await client.turn_frames(thread_id)
        (on_disk,) = await read_turns(home, thread_id)
    assert steered
    # The steer's items may go out before `turn/started`: every frame counts.
    reported = [f["params"]["item"] for f in client.frames if f.get("method") == "item/completed"]
    users = [i for i in reported if i["type"] == "userMessage"]
    assert sorted(u["content"][0]["text"] for u in users) == ["also this", "hi"]
    assert on_disk["id"] == result["turn"]["id"]
    assert on_disk["items"] == reported


# -- Turn.history ---------------------------------------------------------------------------


def uncached_history(turns: list[TurnState], current: TurnState) -> list[dict[str, Any]]:
    """`Turn.history` as it was computed before the cache: every earlier turn converted."""
    earlier = [t for t in turns if t is not current]
    for index in range(len(earlier) - 1, -1, -1):
        if earlier[index].compaction_summary is not None:
            earlier = earlier[index + 1 :]
            break
    return [unstructure(t.to_wire()) for t in earlier]


class HistoryAgent:
    """Compares `turn.history` with the uncached conversion, then changes what it got."""

    name = "history"
    display_name = "History"
    description = "Checks its history."

    def __init__(self, app_ref: list[AppHarness]) -> None:
        self.app_ref = app_ref
        self.compared = 0

    async def run_turn(self, turn: Turn) -> None:
        state = self.app_ref[0].threads.loaded[turn.thread_id].state
        current = next(t for t in state.turns if t.id == turn.turn_id)
        expected = uncached_history(state.turns, current)
        history = turn.history
        assert list(history) == expected
        self.compared += len(expected)
        for old in history:  # an agent may change what it gets; later turns must not see it
            old["items"].clear()
            old["status"] = "changed"
        assert list(turn.history) == expected
        await turn.say(f"turn {len(expected)}: " + "word " * len(expected), chunks=3)

    async def compact(self, turn: Turn) -> str:
        return f"summary of {len(turn.history)} turns"


async def test_history_equals_the_uncached_conversion_on_a_growing_thread(tmp_path: Path) -> None:
    app_ref: list[AppHarness] = []
    agent = HistoryAgent(app_ref)
    async with open_app(tmp_path / "home", {"history": agent}) as app:
        app_ref.append(app)
        client = await app.client()
        thread_id = await start_thread(client)
        for round_ in range(3):
            for index in range(3):
                params = {"threadId": thread_id, "input": text(f"{round_}.{index}")}
                await client.call("turn/start", params)
                await client.turn_frames(thread_id)
            await client.call("thread/compact/start", {"threadId": thread_id})
            await client.turn_frames(thread_id)
        assert client.assert_schema_valid() > 0
    assert agent.compared > 0


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)
items = st.builds(
    lambda kind, extra: {"type": kind, "id": "i", **extra},
    st.sampled_from(["userMessage", "agentMessage", "commandExecution", "reasoning"]),
    st.dictionaries(st.text(min_size=1, max_size=6), json_values, max_size=4),
)
statuses = st.sampled_from(["inProgress", "completed", "interrupted", "failed"])


@settings(max_examples=150, deadline=None)
@given(
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("item"), items),
            st.tuples(st.just("status"), statuses),
            st.tuples(st.just("error"), st.none() | st.dictionaries(st.just("message"), st.text())),
            st.tuples(st.just("completed_at"), st.none() | st.integers(0, 2**40)),
        ),
        max_size=12,
    )
)
def test_a_turns_cached_json_always_equals_converting_it(steps: list[tuple[str, Any]]) -> None:
    """Whatever changes a turn goes through (items, status, error, completion), its JSON read
    between the changes is what converting it afresh gives."""
    turn = TurnState(id="t", seq=0)
    for kind, value in steps:
        if kind == "item":
            turn.items.append(ItemRecord(value, 1, 2))
        elif kind == "status":
            turn.status = value
        elif kind == "error":
            turn.error = value
        else:
            turn.completed_at = value
        assert orjson.loads(turn.wire_json()) == unstructure(turn.to_wire())
