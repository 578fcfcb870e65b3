"""Scenario 6: one turn end to end over unix (appserver only): `turn/start` → `turn/completed`
with the flood agent streaming 1000 deltas of 16 B (`1000 16`), on a persisted thread. A short
`echo` turn (four deltas) is measured too, for the fixed cost of a turn."""

from __future__ import annotations

import time
from typing import Any, Final

import orjson
import trio

from benchmarks.client import Channel, Closed, close_all
from benchmarks.flood import (
    DELTA_METHOD,
    TURN_START_ID,
    flood_args,
    open_subscribers,
    start_thread,
    turn_start_text,
)
from benchmarks.scenarios import Column, Row, Scenario
from benchmarks.servers import Target, running
from benchmarks.stats import median

TURN_TIMEOUT: Final = 60.0


async def one_turn(channel: Channel, thread_id: str, text: str) -> dict[str, Any]:
    """Start a turn and read until its `turn/completed`; times in seconds from the send."""
    clock = time.perf_counter
    reply = first = last = None
    deltas = 0
    with trio.fail_after(TURN_TIMEOUT):
        started = clock()
        await channel.send(turn_start_text(thread_id, text))
        while True:
            try:
                message = await channel.receive()
            except Closed:
                raise
            now = clock()
            head = message[:64] if isinstance(message, str) else message[:64].decode()
            if DELTA_METHOD in head:
                deltas += 1
                first = first if first is not None else now
                last = now
            elif '"turn/completed"' in head:
                completed = now
                break
            elif reply is None and head.startswith(f'{{"id":{TURN_START_ID}'):
                reply = now
                if "error" in orjson.loads(message):
                    raise RuntimeError(f"turn/start failed: {message!r}")
    return {
        "e2e_ms": (completed - started) * 1000,
        "reply_ms": None if reply is None else (reply - started) * 1000,
        "first_delta_ms": None if first is None else (first - started) * 1000,
        "deltas_per_s": (
            (deltas - 1) / (last - first) if first is not None and last and last > first else None
        ),
        "deltas": deltas,
    }


class TurnEndToEnd(Scenario):
    name = "turn"
    title = "6. A turn end to end over unix (appserver only)"
    codex_ok = False
    keys = ("agent_text",)
    columns = (
        Column("e2e_ms", "turn/start→turn/completed ms", "{:.1f}"),
        Column("e2e_min_ms", "min ms", "{:.1f}"),
        Column("e2e_max_ms", "max ms", "{:.1f}"),
        Column("reply_ms", "→ reply ms", "{:.2f}"),
        Column("first_delta_ms", "→ first delta ms", "{:.2f}"),
        Column("deltas_per_s", "deltas/s"),
        Column("deltas", "deltas"),
    )
    notes = (
        "Medians over the turns of a repeat (then over repeats). The thread is persisted "
        "(not ephemeral): the turn, its items and `turn/completed` go through SQLite first."
    )

    def budget(self, settings: Any) -> float:
        return 120.0

    async def run_once(self, target: Target, settings: Any) -> list[Row]:
        rows: list[Row] = []
        cases = (("flood", settings.turn_text), ("echo", "hello benchmark world"))
        extra = flood_args("--log-level", "WARNING")
        async with running(target, "unix", extra=extra) as server, trio.open_nursery() as nursery:
            (channel,) = await open_subscribers(nursery, server, 1, raw=True)
            for model, text in cases:
                thread_id = await start_thread(channel, ephemeral=False, model=model)
                await one_turn(channel, thread_id, text)  # warm-up
                turns = [await one_turn(channel, thread_id, text) for _ in range(settings.turns)]
                e2e = [t["e2e_ms"] for t in turns]
                row: Row = {"agent_text": f"{model}: {text!r}", "turns": len(turns)}
                for field in ("e2e_ms", "reply_ms", "first_delta_ms", "deltas_per_s"):
                    row[field] = median(t[field] for t in turns)
                row["e2e_min_ms"], row["e2e_max_ms"] = min(e2e), max(e2e)
                row["deltas"] = median(t["deltas"] for t in turns)
                rows.append(row)
            await close_all([channel])
            nursery.cancel_scope.cancel()
        return rows
