"""Scenario 7: a well-behaved client's latency while idle and slowloris connections sit on the
socket.

Per transport (unix, ws): one initialized client runs `windowsSandbox/readiness` closed loop,
first alone (baseline), then while `benchmarks.slowloris` (its own process) holds N connections
open: half half-open, half trickling an HTTP head line per second. The attack window is longer
than the server's 10 s head deadline, so it includes the moment the first wave is cut and
reconnects.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Final

import trio

from benchmarks.client import close_all, measure_load
from benchmarks.scenarios import Column, Row, Scenario
from benchmarks.scenarios.rpc import open_socket_channels
from benchmarks.servers import REPO_ROOT, Server, Target, running
from benchmarks.settings import Settings
from benchmarks.stats import latency_summary_ms

BASELINE_SECONDS: Final = 2.0
READY_TIMEOUT: Final = 60.0


async def start_attack(server: Server, count: int) -> trio.Process:
    if server.socket_path is not None:
        where = ["--unix", os.fspath(server.socket_path)]
    else:
        host, port = await server.wait_ws_address()
        where = ["--tcp", f"{host}:{port}"]
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "benchmarks.slowloris", *where, "--count", str(count)],
        stdout=subprocess.PIPE,
        cwd=os.fspath(REPO_ROOT),
    )
    assert process.stdout is not None
    with trio.fail_after(READY_TIMEOUT):
        seen = b""
        while b"ready" not in seen:
            chunk = await process.stdout.receive_some()
            if not chunk:
                raise RuntimeError("the slowloris process died before it was ready")
            seen += chunk
    return process


async def stop_attack(process: trio.Process) -> int:
    """Kill it; the highest `reconnects=` it reported."""
    process.kill()
    await process.wait()
    reconnects = 0
    assert process.stdout is not None
    with trio.move_on_after(1):
        rest = b""
        while chunk := await process.stdout.receive_some():
            rest += chunk
        for line in rest.decode().splitlines():
            if line.startswith("open="):
                reconnects = int(line.rsplit("=", 1)[1])
    return reconnects


class UnderAttack(Scenario):
    name = "attack"
    title = "7. Under attack: one client's latency while slowloris connections sit on the socket"
    keys = ("transport", "phase")
    columns = (
        Column("rps", "req/s", ratio=True),
        Column("p50_ms", "p50 ms", "{:.3f}"),
        Column("p99_ms", "p99 ms", "{:.2f}", ratio=True),
        Column("max_ms", "max ms", "{:.1f}"),
        Column("server_cpu", "server CPU %"),
        Column("rss_mb", "server RSS MB", "{:.1f}"),
        Column("reconnects", "attacker reconnects"),
    )
    notes = (
        "One client, one request in flight. `attack` rows: N connections held by a separate "
        "process (half never send a byte, half send one HTTP header line per second and never "
        "finish the head); the window outlasts the 10 s head deadline, so it includes the wave "
        "of cuts and reconnects. `reconnects` = connections the server closed during it."
    )

    def budget(self, settings: Settings) -> float:
        return 2 * (BASELINE_SECONDS + settings.attack_seconds + READY_TIMEOUT + 20)

    async def run_once(self, target: Target, settings: Settings) -> list[Row]:
        rows: list[Row] = []
        for transport in ("unix", "ws"):
            async with running(target, transport) as server:
                rows.append(await self._measure(server, "alone", BASELINE_SECONDS, 0))
                attack = await start_attack(server, settings.attack_connections)
                try:
                    row = await self._measure(
                        server,
                        f"{settings.attack_connections} slowloris",
                        settings.attack_seconds,
                        settings.attack_connections,
                    )
                finally:
                    row["reconnects"] = await stop_attack(attack)
                rows.append(row)
        return rows

    async def _measure(self, server: Server, phase: str, seconds: float, attackers: int) -> Row:
        async with trio.open_nursery() as nursery:
            channels = await open_socket_channels(nursery, server, 1)
            result = await measure_load(
                channels, 1, warmup=0.5, duration=seconds, server_cpu=server.cpu
            )
            rss = server.rss()
            await close_all(channels)
            nursery.cancel_scope.cancel()
        return {
            "transport": server.transport,
            "phase": phase,
            "rps": result.rate,
            **latency_summary_ms(result.latencies),
            "server_cpu": None if result.server_cpu is None else result.server_cpu * 100,
            "rss_mb": None if rss is None else rss / 1e6,
            "attackers": attackers,
            "errors": result.errors,
        }
