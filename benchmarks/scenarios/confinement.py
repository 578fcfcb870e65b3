"""Scenario 10: what confinement adds to a command: `command/exec` of `/bin/true`, one at a time
over ws, under each sandbox policy. `dangerFullAccess` runs the command as is; `readOnly` and
`workspaceWrite` run it under bubblewrap (appserver: `bwrap` directly; Codex: its
`codex-linux-sandbox` helper, which runs bwrap). "added" is the policy's p50 minus the
unconfined p50 of the same server in the same run.

The server's home is under /var/tmp, not /tmp: Codex refuses to create its sandbox helper alias
under a temporary directory and then cannot confine anything.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Final

import trio

from benchmarks.client import Rpc, connect_tcp, open_ws
from benchmarks.scenarios import Column, Row, Scenario
from benchmarks.servers import Target, running
from benchmarks.stats import percentile

POLICIES: Final = (
    ("dangerFullAccess", {"type": "dangerFullAccess"}),
    ("readOnly", {"type": "readOnly"}),
    ("workspaceWrite", {"type": "workspaceWrite"}),
)
WARMUP: Final = 3


class Confinement(Scenario):
    name = "confinement"
    title = "10. Confinement overhead: command/exec of /bin/true per sandbox policy (ws)"
    keys = ("policy",)
    columns = (
        Column("p50_ms", "p50 ms", "{:.1f}", ratio=True),
        Column("p90_ms", "p90 ms", "{:.1f}"),
        Column("added_p50_ms", "added p50 ms", "{:.1f}"),
        Column("exit0_pct", "exit 0 %", "{:.0f}"),
    )
    notes = (
        "Sequential requests after a warm-up; the latency is request to reply, so it includes "
        "the JSON-RPC round trip, the spawn and the wait. exit 0 % checks the command really ran."
    )

    def budget(self, settings: Any) -> float:
        return 180.0

    async def run_once(self, target: Target, settings: Any) -> list[Row]:
        count = 15 if settings.quick else 60
        home = Path(tempfile.mkdtemp(prefix="bench-conf-", dir="/var/tmp"))
        workdir = Path(tempfile.mkdtemp(prefix="bench-conf-cwd-", dir="/var/tmp"))
        rows: list[Row] = []
        try:
            async with running(target, "ws", home=home) as server:
                stream = await connect_tcp(await server.wait_ws_address())
                async with trio.open_nursery() as nursery:
                    channel = await open_ws(nursery, stream)
                    rpc = Rpc(channel)
                    await rpc.initialize("bench-confinement")
                    for name, policy in POLICIES:
                        params = {
                            "command": ["/bin/true"],
                            "cwd": str(workdir),
                            "sandboxPolicy": policy,
                        }
                        latencies: list[float] = []
                        ok = 0
                        for index in range(WARMUP + count):
                            started = time.perf_counter()
                            result = await rpc.request("command/exec", params)
                            elapsed = time.perf_counter() - started
                            if index >= WARMUP:
                                latencies.append(elapsed)
                                ok += result.get("exitCode") == 0
                        rows.append(
                            {
                                "policy": name,
                                "p50_ms": percentile(latencies, 50) * 1000,
                                "p90_ms": percentile(latencies, 90) * 1000,
                                "exit0_pct": 100.0 * ok / count,
                            }
                        )
                    await channel.aclose()
                    nursery.cancel_scope.cancel()
        finally:
            shutil.rmtree(home, ignore_errors=True)
            shutil.rmtree(workdir, ignore_errors=True)
        base = rows[0]["p50_ms"]
        for row in rows:
            row["added_p50_ms"] = row["p50_ms"] - base
        return rows
