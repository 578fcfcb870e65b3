"""Scenario 2: broadcast fan-out over unix (appserver only).

A flood turn (`benchmarks.agents.FloodAgent`) streams K deltas of 16 B, 256 B, 4 KiB or 64 KiB to
1, 4 or 16 subscribers of one thread (the creator, who starts the turn, and clients that
`thread/resume`d it). Per subscriber: delivered delta notifications per second and wire bytes
per second, measured from its first delta to its last. One server per repeat; a fresh
ephemeral thread and fresh connections per configuration.
"""

from __future__ import annotations

from typing import Final

import trio

from benchmarks.client import close_all
from benchmarks.flood import flood, flood_args, open_subscribers, resume, start_thread, unsubscribe
from benchmarks.scenarios import Column, Row, Scenario
from benchmarks.servers import Server, Target, running
from benchmarks.settings import Settings
from benchmarks.stats import median

SIZES: Final = (16, 256, 4096, 65536)
SUBSCRIBERS: Final = (1, 4, 16)


def flood_count(settings: Settings, size: int, subscribers: int) -> int:
    """Deltas per turn: about `flood_base` for one subscriber, fewer for many or large ones."""
    factor = max(1, subscribers // 4)
    count = min(settings.flood_base, settings.flood_max_bytes // size) // factor
    return max(count, 32)


def size_label(size: int) -> str:
    return f"{size // 1024} KiB" if size >= 1024 else f"{size} B"


class Broadcast(Scenario):
    name = "broadcast"
    title = "2. Broadcast fan-out over unix (flood agent; appserver only)"
    codex_ok = False
    keys = ("payload", "subscribers")
    columns = (
        Column("deltas", "K deltas"),
        Column("msgs_per_s_per_sub", "msgs/s per subscriber"),
        Column("mb_per_s_per_sub", "MB/s per subscriber", "{:.1f}"),
        Column("msgs_per_s_total", "msgs/s all subscribers"),
        Column("mb_per_s_total", "MB/s all", "{:.1f}"),
        Column("server_cpu", "server CPU %"),
        Column("cpu_us_per_msg", "server CPU us/msg", "{:.0f}"),
        Column("client_cpu", "client CPU %"),
        Column("complete", "all delivered"),
    )
    notes = (
        "Rates are measured per subscriber from its first to its last delta (the final "
        "`item/completed`/`turn/completed`, which carry the whole text, are excluded). MB/s "
        "counts whole notification frames (JSON), not just the payload. `server CPU us/msg` is "
        "the server's CPU time from `turn/start` to the last delta divided by the deltas "
        "delivered (all subscribers); the client (one Python process reading every subscriber) "
        "is often the limit. Codex has no way to generate this load without a model, so only "
        "appserver runs it."
    )

    def budget(self, settings: Settings) -> float:
        return 400.0 if not settings.quick else 120.0

    async def run_once(self, target: Target, settings: Settings) -> list[Row]:
        rows: list[Row] = []
        async with running(target, "unix", extra=flood_args("--log-level", "WARNING")) as server:
            for size in SIZES:
                for subscribers in SUBSCRIBERS:
                    rows.append(await self._one(server, size, subscribers, settings))
        return rows

    async def _one(self, server: Server, size: int, subscribers: int, settings: Settings) -> Row:
        count = flood_count(settings, size, subscribers)
        async with trio.open_nursery() as nursery:
            channels = await open_subscribers(nursery, server, subscribers, raw=True)
            thread_id = await start_thread(channels[0], ephemeral=True)
            async with trio.open_nursery() as resuming:
                for channel in channels[1:]:
                    resuming.start_soon(resume, channel, thread_id)
            result = await flood(
                server, channels[0], channels, thread_id, count, size, time_limit=120.0
            )
            async with trio.open_nursery() as leaving:
                for channel in channels:
                    leaving.start_soon(unsubscribe, channel, thread_id)
            await close_all(channels)
            nursery.cancel_scope.cancel()
        total_rate = result.aggregate_rate
        per_sub = median(result.rates())
        per_sub_bytes = median(result.byte_rates())
        all_bytes = sum(s.wire_bytes for s in result.subscribers)
        all_msgs = sum(s.count for s in result.subscribers)
        return {
            "payload": size_label(size),
            "subscribers": subscribers,
            "deltas": count,
            "msgs_per_s_per_sub": per_sub,
            "mb_per_s_per_sub": None if per_sub_bytes is None else per_sub_bytes / 1e6,
            "msgs_per_s_total": total_rate,
            "mb_per_s_total": (
                None
                if total_rate is None or not all_msgs
                else total_rate * all_bytes / all_msgs / 1e6
            ),
            "server_cpu": None if result.server_cpu is None else result.server_cpu * 100,
            "cpu_us_per_msg": result.cpu_us_per_message,
            "client_cpu": None if result.client_cpu is None else result.client_cpu * 100,
            "complete": all(s.count == count for s in result.subscribers),
            "disconnected": sum(1 for s in result.subscribers if s.closed is not None),
        }
