"""Scenario 5: server memory idle, with many idle initialized connections (unix), and after
they leave."""

from __future__ import annotations

import time
from typing import Any, Final

import trio

from benchmarks.client import Channel, Rpc, close_all, connect_unix, open_ws
from benchmarks.scenarios import Column, Row, Scenario
from benchmarks.servers import Server, Target, running, thread_count

OPEN_CONCURRENCY: Final = 50
SETTLE_SECONDS: Final = 1.0
AFTER_SECONDS: Final = 2.0


async def open_idle(nursery: trio.Nursery, server: Server, count: int) -> list[Channel]:
    assert server.socket_path is not None
    path = server.socket_path
    channels: list[Channel] = []
    limit = trio.Semaphore(OPEN_CONCURRENCY)

    async def one() -> None:
        async with limit:
            # A small receive buffer: 1000 idle clients should cost this process little.
            channel = await open_ws(
                nursery, await connect_unix(path), message_queue_size=4, receive_buffer_size=4096
            )
            await Rpc(channel).initialize("bench-idle")
            channels.append(channel)

    async with trio.open_nursery() as opening:
        for _ in range(count):
            opening.start_soon(one)
    return channels


class Memory(Scenario):
    name = "memory"
    title = "5. Memory: idle, with idle initialized connections (unix), after they leave"
    keys = ("connections",)
    columns = (
        Column("rss_idle_mb", "RSS idle MB", "{:.1f}", ratio=True),
        Column("rss_loaded_mb", "RSS with conns MB", "{:.1f}", ratio=True),
        Column("kb_per_conn", "KB per conn", "{:.1f}", ratio=True),
        Column("rss_after_mb", "RSS after they leave MB", "{:.1f}"),
        Column("open_s", "open+init all s", "{:.2f}"),
        Column("threads", "threads"),
    )
    notes = (
        f"RSS idle is read {SETTLE_SECONDS:g} s after the server is ready; with connections, "
        f"{SETTLE_SECONDS:g} s after the last `initialize` reply; after, {AFTER_SECONDS:g} s "
        f"after the last close. Connections are opened {OPEN_CONCURRENCY} at a time."
    )

    def budget(self, settings: Any) -> float:
        return 180.0

    async def run_once(self, target: Target, settings: Any) -> list[Row]:
        count = settings.idle_connections
        async with running(target, "unix") as server:
            await trio.sleep(SETTLE_SECONDS)
            idle = server.rss()
            async with trio.open_nursery() as nursery:
                started = time.perf_counter()
                channels = await open_idle(nursery, server, count)
                opened = time.perf_counter() - started
                await trio.sleep(SETTLE_SECONDS)
                loaded = server.rss()
                threads = thread_count(server.pid)
                await close_all(channels)
                nursery.cancel_scope.cancel()
            await trio.sleep(AFTER_SECONDS)
            after = server.rss()
        per_conn = None
        if idle is not None and loaded is not None:
            per_conn = (loaded - idle) / count / 1024
        return [
            {
                "connections": len(channels),
                "rss_idle_mb": _mb(idle),
                "rss_loaded_mb": _mb(loaded),
                "kb_per_conn": per_conn,
                "rss_after_mb": _mb(after),
                "open_s": opened,
                "threads": threads,
            }
        ]


def _mb(value: int | None) -> float | None:
    return None if value is None else value / 1e6
