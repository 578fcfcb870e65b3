"""Thread subscribers and the flood turn, shared by the broadcast, slow-consumer and turn
scenarios (appserver only: the load comes from `benchmarks.agents.FloodAgent`)."""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson
import trio

from benchmarks.client import (
    Channel,
    Closed,
    Rpc,
    connect_unix,
    open_raw_ws,
    open_ws,
    request_text,
)
from benchmarks.servers import Server

FLOOD_AGENT: Final = "benchmarks.agents:FloodAgent"
DELTA_METHOD: Final = "item/agentMessage/delta"
#: The head of a delta notification as appserver encodes it (`method` first).
_DELTA_HEAD: Final = '{"method":"item/agentMessage/delta"'
_COMPLETED: Final = '"turn/completed"'
#: A high request id for `turn/start`, so it never collides with `Rpc` ids.
TURN_START_ID: Final = 1_000_000


def flood_args(*extra: str) -> list[str]:
    return ["--agent", FLOOD_AGENT, *extra]


@dataclass
class Subscriber:
    """What one subscriber saw of one flood turn (perf_counter times)."""

    channel: Channel
    expected: int = 0
    count: int = 0
    wire_bytes: int = 0
    first: float | None = None
    last: float | None = None
    completed: float | None = None
    closed: float | None = None
    #: Notification lag, receive wall time minus `emittedAtMs` (ms), sampled.
    lags_ms: list[float] | None = None

    @property
    def rate(self) -> float | None:
        if self.first is None or self.last is None or self.count < 2 or self.last <= self.first:
            return None
        return (self.count - 1) / (self.last - self.first)

    @property
    def byte_rate(self) -> float | None:
        if self.first is None or self.last is None or self.count < 2 or self.last <= self.first:
            return None
        return self.wire_bytes * (self.count - 1) / self.count / (self.last - self.first)


async def open_subscribers(
    nursery: trio.Nursery, server: Server, count: int, *, raw: bool = False, **ws_options: Any
) -> list[Channel]:
    """`count` initialized connections; `raw` ones parse frames themselves (fast readers)."""
    assert server.socket_path is not None
    path = server.socket_path
    channels: list[Channel] = []

    async def one() -> None:
        stream = await connect_unix(path)
        channel: Channel = (
            await open_raw_ws(stream) if raw else await open_ws(nursery, stream, **ws_options)
        )
        await Rpc(channel).initialize("bench-subscriber")
        channels.append(channel)

    async with trio.open_nursery() as opening:
        for _ in range(count):
            opening.start_soon(one)
    return channels


async def start_thread(channel: Channel, *, ephemeral: bool, model: str | None = None) -> str:
    params: dict[str, Any] = {"ephemeral": ephemeral}
    if model is not None:
        params["model"] = model
    result = await Rpc(channel).request("thread/start", params)
    thread_id: str = result["thread"]["id"]
    return thread_id


async def resume(channel: Channel, thread_id: str) -> None:
    await Rpc(channel).request("thread/resume", {"threadId": thread_id, "excludeTurns": True})


async def unsubscribe(channel: Channel, thread_id: str) -> None:
    try:
        with trio.move_on_after(30):
            await Rpc(channel).request("thread/unsubscribe", {"threadId": thread_id})
    except Closed:
        pass


async def read_turn(
    sub: Subscriber,
    on_all_deltas: Callable[[], None] | None = None,
    lag_every: int = 0,
    *,
    turns: int = 1,
    on_turn_completed: Callable[[int], Awaitable[None]] | None = None,
) -> None:
    """Read until the `turns`-th `turn/completed` (or the channel closes), counting delta
    notifications. `on_turn_completed(n)` runs after the n-th one (the driver starts the next)."""
    clock = time.perf_counter
    completed = 0
    try:
        while True:
            message = await sub.channel.receive()
            now = clock()
            text = message if isinstance(message, str) else message.decode()
            if text.startswith(_DELTA_HEAD) or DELTA_METHOD in text[:64]:
                if sub.first is None:
                    sub.first = now
                sub.last = now
                sub.count += 1
                sub.wire_bytes += len(text)
                if lag_every and sub.count % lag_every == 0 and sub.lags_ms is not None:
                    emitted = orjson.loads(text).get("emittedAtMs")
                    if emitted is not None:
                        sub.lags_ms.append(time.time() * 1000 - emitted)
                if sub.count == sub.expected and on_all_deltas is not None:
                    on_all_deltas()
            elif _COMPLETED in text[:48]:
                completed += 1
                if completed >= turns:
                    sub.completed = now
                    return
                if on_turn_completed is not None:
                    await on_turn_completed(completed)
    except Closed:
        sub.closed = clock()


def turn_start_text(thread_id: str, text: str, request_id: int = TURN_START_ID) -> str:
    params = {"threadId": thread_id, "input": [{"type": "text", "text": text}]}
    return request_text(request_id, "turn/start", params)


@dataclass
class FloodResult:
    subscribers: list[Subscriber]
    started: float
    all_deltas_at: float | None
    cpu_seconds: float | None
    client_cpu_seconds: float | None = None

    def rates(self) -> list[float]:
        return [r for r in (s.rate for s in self.subscribers) if r is not None]

    def byte_rates(self) -> list[float]:
        return [r for r in (s.byte_rate for s in self.subscribers) if r is not None]

    @property
    def aggregate_rate(self) -> float | None:
        firsts = [s.first for s in self.subscribers if s.first is not None]
        lasts = [s.last for s in self.subscribers if s.last is not None]
        total = sum(s.count for s in self.subscribers)
        if not firsts or not lasts or max(lasts) <= min(firsts):
            return None
        return total / (max(lasts) - min(firsts))

    @property
    def server_cpu(self) -> float | None:
        if self.cpu_seconds is None or self.all_deltas_at is None:
            return None
        return self.cpu_seconds / (self.all_deltas_at - self.started)

    @property
    def client_cpu(self) -> float | None:
        if self.client_cpu_seconds is None or self.all_deltas_at is None:
            return None
        return self.client_cpu_seconds / (self.all_deltas_at - self.started)

    @property
    def cpu_us_per_message(self) -> float | None:
        """Server CPU per delivered delta (start of the turn to the last delta anywhere)."""
        delivered = sum(s.count for s in self.subscribers)
        if self.cpu_seconds is None or not delivered:
            return None
        return self.cpu_seconds / delivered * 1e6


async def flood(
    server: Server,
    driver: Channel,
    readers: Sequence[Channel],
    thread_id: str,
    count: int,
    size: int,
    *,
    time_limit: float,
    rate: float = 0.0,
    lag_every: int = 0,
    turns: int = 1,
) -> FloodResult:
    """`driver` (which must be one of `readers`) starts `turns` turns of `count size` flood,
    one after the other; every channel in `readers` is read until the last `turn/completed`."""
    subscribers = [Subscriber(channel, expected=count * turns) for channel in readers]
    if lag_every:
        for sub in subscribers:
            sub.lags_ms = []
    pending = len(subscribers)
    cpu_start = server.cpu()
    client_start = time.process_time()
    done: dict[str, float] = {}

    def one_done() -> None:
        nonlocal pending
        pending -= 1
        if pending == 0:
            done["at"] = time.perf_counter()
            done["client"] = time.process_time() - client_start
            cpu = server.cpu()
            if cpu is not None and cpu_start is not None:
                done["cpu"] = cpu - cpu_start

    text = f"{count} {size}" + (f" {rate:g}" if rate else "")

    async def next_turn(completed: int) -> None:
        await driver.send(turn_start_text(thread_id, text, TURN_START_ID + completed))

    started = time.perf_counter()
    with trio.move_on_after(time_limit):
        async with trio.open_nursery() as nursery:
            for sub in subscribers:
                nursery.start_soon(
                    functools.partial(
                        read_turn,
                        sub,
                        one_done,
                        lag_every,
                        turns=turns,
                        on_turn_completed=next_turn if sub.channel is driver else None,
                    )
                )
            started = time.perf_counter()
            await driver.send(turn_start_text(thread_id, text))
    return FloodResult(subscribers, started, done.get("at"), done.get("cpu"), done.get("client"))
