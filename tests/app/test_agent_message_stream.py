"""An agent message's `delta()`: a cancellation point every time, a scheduling point often
enough that an agent that never yields by itself neither starves other requests nor escapes an
interrupt."""

from __future__ import annotations

from pathlib import Path

import trio

from appserver.app.agents import Agent, Turn
from appserver.app.turns import DELTAS_PER_YIELD
from tests.app.app_harness import (
    completed_items,
    completed_turn,
    notifications,
    open_app,
    start_thread,
    text,
)

#: Far more deltas than the test could read before the interrupt arrives.
ENDLESS = 10_000_000


class TightLoopAgent:
    """Streams deltas without ever awaiting anything but `delta()`."""

    name = "tight"
    display_name = "Tight loop"
    description = "Streams until interrupted."

    async def run_turn(self, turn: Turn) -> None:
        stream = turn.message()
        for _ in range(ENDLESS):
            await stream.delta("x")


async def test_a_tight_delta_loop_lets_requests_through_and_is_interrupted(
    tmp_path: Path,
) -> None:
    agents: dict[str, Agent] = {"tight": TightLoopAgent()}
    async with open_app(tmp_path / "home", agents) as app:
        client = await app.client()
        thread_id = await start_thread(client)
        with trio.fail_after(30):
            started = await client.call("turn/start", {"threadId": thread_id, "input": text("go")})
            turn_id = started["turn"]["id"]
            # The client reads deltas while the agent streams...
            for _ in range(10 * DELTAS_PER_YIELD):
                await client.notification("item/agentMessage/delta")
            # ... and its requests are answered.
            assert await client.call("thread/loaded/list", {}) == {
                "data": [thread_id],
                "nextCursor": None,
            }
            await client.call("turn/interrupt", {"threadId": thread_id, "turnId": turn_id})
            frames = await client.turn_frames(thread_id)
    assert completed_turn(frames)["status"] == "interrupted"
    deltas = notifications(frames, "item/agentMessage/delta")
    assert 10 * DELTAS_PER_YIELD <= len(deltas) < ENDLESS
    (message,) = completed_items(frames, "agentMessage")
    assert message["text"] == "x" * len(deltas)
