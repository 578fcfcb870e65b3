"""Agents that generate load inside the server process.

appserver has no public "broadcast N notifications" method, so the broadcast scenarios flood a
thread through an agent instead: every subscriber of the thread (its creator, and every client
that `thread/resume`d it) receives each delta as an `item/agentMessage/delta` notification.

    appserver --agent benchmarks.agents:FloodAgent --listen unix://   # repo root on PYTHONPATH

Turn text: `K SIZE [RATE]` — stream K deltas of SIZE bytes (ASCII, so bytes == characters),
unpaced by default, or RATE deltas per second. An unpaced flood yields to the scheduler only
where `stream.delta()` does (every 16 deltas, and it is a cancellation point every time), as
an agent reading a fast model stream gets many tokens per read.
"""

from __future__ import annotations

from typing import Final

import trio

from appserver.app.agents import Turn

DEFAULT_COUNT: Final = 1000
DEFAULT_SIZE: Final = 16


def parse_flood(text: str) -> tuple[int, int, float]:
    """`K SIZE [RATE]` → (count, size, rate); missing or bad fields take the defaults."""
    parts = text.split()
    numbers: list[float] = []
    for part in parts[:3]:
        try:
            numbers.append(float(part))
        except ValueError:
            break
    count = int(numbers[0]) if len(numbers) > 0 else DEFAULT_COUNT
    size = int(numbers[1]) if len(numbers) > 1 else DEFAULT_SIZE
    rate = numbers[2] if len(numbers) > 2 else 0.0
    return max(count, 0), max(size, 1), max(rate, 0.0)


def payload(size: int) -> str:
    """`size` printable ASCII characters that JSON encodes without escapes."""
    pattern = "0123456789abcdefghijklmnopqrstuvwxyz"
    return (pattern * (size // len(pattern) + 1))[:size]


class FloodAgent:
    """Set as instance attributes on purpose: appserver's `load_agent` takes a class that has
    `name`, `display_name`, `description` and `run_turn` as class attributes for an agent
    instance (the `runtime_checkable` protocol check passes on the class) and never calls it."""

    def __init__(self) -> None:
        self.name = "flood"
        self.display_name = "Flood"
        self.description = (
            "Benchmark load: the turn text `K SIZE [RATE]` streams K deltas of SIZE bytes."
        )

    async def run_turn(self, turn: Turn) -> None:
        count, size, rate = parse_flood(turn.text)
        delta = payload(size)
        stream = turn.message()
        if rate > 0:
            interval = 1.0 / rate
            start = trio.current_time()
            for index in range(count):
                await stream.delta(delta)
                await trio.sleep_until(start + (index + 1) * interval)
        else:
            for _ in range(count):
                await stream.delta(delta)
        await stream.finish()
        turn.report_usage(input_tokens=1, output_tokens=count)
