"""Scenario 1: request/response throughput and latency of `windowsSandbox/readiness`.

Closed loop over unix, ws and stdio with 1, 10 and 50 concurrent clients (stdio: one process
with 1/10/50 requests in flight, pipelined), plus 1x10 and 1x50 pipelined on one unix
connection. One fresh server per transport per repeat; warm-up, then the measured window.
"""

from __future__ import annotations

from typing import Final

import trio

from benchmarks.client import (
    Channel,
    LineChannel,
    Rpc,
    close_all,
    connect_tcp,
    connect_unix,
    measure_load,
    open_initialized_ws,
)
from benchmarks.scenarios import Column, Row, Scenario
from benchmarks.servers import Server, Target, running
from benchmarks.settings import Settings
from benchmarks.stats import latency_summary_ms

#: (transport, connections, requests in flight per connection)
CONFIGS: Final = (
    ("unix", 1, 1),
    ("unix", 10, 1),
    ("unix", 50, 1),
    ("unix", 1, 10),
    ("unix", 1, 50),
    ("ws", 1, 1),
    ("ws", 10, 1),
    ("ws", 50, 1),
    ("stdio", 1, 1),
    ("stdio", 1, 10),
    ("stdio", 1, 50),
)


async def open_socket_channels(nursery: trio.Nursery, server: Server, count: int) -> list[Channel]:
    """`count` initialized WebSocket connections to a unix or ws server."""
    channels: list[Channel] = []

    async def one() -> None:
        if server.socket_path is not None:
            stream = await connect_unix(server.socket_path)
        else:
            stream = await connect_tcp(await server.wait_ws_address())
        channels.append(await open_initialized_ws(nursery, stream))

    async with trio.open_nursery() as opening:
        for _ in range(count):
            opening.start_soon(one)
    return channels


class RequestResponse(Scenario):
    name = "rpc"
    title = "1. Request/response: windowsSandbox/readiness, closed loop"
    keys = ("transport", "conns_x_inflight")
    notes = (
        "`server CPU us/req` = server CPU time (user+system, all threads, from /proc) over the "
        "measured window divided by the requests answered in it: less sensitive than req/s to "
        "how much CPU the shared machine leaves the server. A/C = appserver / codex."
    )
    columns = (
        Column("rps", "req/s", ratio=True),
        Column("p50_ms", "p50 ms", "{:.3f}"),
        Column("p99_ms", "p99 ms", "{:.3f}"),
        Column("max_ms", "max ms", "{:.1f}"),
        Column("server_cpu", "server CPU %"),
        Column("cpu_us_per_req", "server CPU us/req", "{:.0f}", ratio=True),
        Column("client_cpu", "client CPU %"),
        Column("rss_mb", "server RSS MB", "{:.1f}"),
    )

    def budget(self, settings: Settings) -> float:
        return 60 + len(CONFIGS) * (settings.warmup + settings.duration + 10)

    async def run_once(self, target: Target, settings: Settings) -> list[Row]:
        rows: list[Row] = []
        for transport in ("unix", "ws", "stdio"):
            configs = [c for c in CONFIGS if c[0] == transport]
            async with running(target, transport) as server:
                line: LineChannel | None = None
                if transport == "stdio":
                    process = server.process
                    assert process.stdin is not None
                    assert process.stdout is not None
                    line = LineChannel(process.stdin, process.stdout)
                    await Rpc(line).initialize()
                for _, conns, window in configs:
                    rows.append(await self._measure(server, conns, window, settings, line))
        return rows

    async def _measure(
        self, server: Server, conns: int, window: int, settings: Settings, line: Channel | None
    ) -> Row:
        async with trio.open_nursery() as nursery:
            if line is not None:
                channels: list[Channel] = [line]
            else:
                channels = await open_socket_channels(nursery, server, conns)
            result = await measure_load(
                channels,
                window,
                warmup=settings.warmup,
                duration=settings.duration,
                server_cpu=server.cpu,
            )
            rss = server.rss()
            if line is None:
                await close_all(channels)
            nursery.cancel_scope.cancel()
        summary = latency_summary_ms(result.latencies)
        return {
            "transport": server.transport,
            "conns_x_inflight": f"{conns} x {window}",
            "rps": result.rate,
            **summary,
            "server_cpu": None if result.server_cpu is None else result.server_cpu * 100,
            "cpu_us_per_req": (
                None
                if result.server_cpu is None or not result.requests
                else result.server_cpu * result.seconds / result.requests * 1e6
            ),
            "client_cpu": result.client_cpu * 100,
            "rss_mb": None if rss is None else rss / 1e6,
            "errors": result.errors,
            "requests": result.requests,
        }
