"""Scenario 3: slow-consumer isolation over unix (appserver only).

Fast subscribers read a flood turn; in the second run one more subscriber stops reading just
before the turn starts. With `--outbound-queue-bytes` small (4 MiB) the server must disconnect
the stalled one as soon as its queue is full, and the fast ones must not notice. Measured: fast
throughput with and without the stalled one, the time from the stall until the server's
`disconnecting slow connection` log line, what the stalled socket got before EOF once it reads
again, and the server's RSS before, at peak during, and after the turn.
"""

from __future__ import annotations

import re
import time
from typing import Any, Final

import trio

from benchmarks.client import close_all
from benchmarks.flood import (
    Subscriber,
    flood,
    flood_args,
    open_subscribers,
    read_turn,
    resume,
    start_thread,
    unsubscribe,
)
from benchmarks.scenarios import Column, Row, Scenario
from benchmarks.servers import Server, Target, running
from benchmarks.settings import Settings
from benchmarks.stats import median, percentile

_DISCONNECT = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) \S+ \S+: disconnecting slow connection after "
    r"outbound queue filled: (\d+) \((\d+) bytes queued\)",
    re.MULTILINE,
)
RSS_SAMPLE_SECONDS: Final = 0.02
LAG_EVERY: Final = 10


def disconnect_lines(stderr: str) -> list[tuple[float, int, int]]:
    """(wall time, connection id, bytes queued) of every slow-connection disconnect logged."""
    out = []
    for match in _DISCONNECT.finditer(stderr):
        wall = time.mktime(time.strptime(match.group(1), "%Y-%m-%d %H:%M:%S"))
        out.append((wall + int(match.group(2)) / 1000, int(match.group(3)), int(match.group(4))))
    return out


class SlowConsumer(Scenario):
    name = "slow"
    title = "3. Slow-consumer isolation over unix (flood agent; appserver only)"
    codex_ok = False
    keys = ("run",)
    columns = (
        Column("fast_disconnected", "fast cut"),
        Column("fast_msgs_per_s", "fast msgs/s per sub"),
        Column("fast_mb_per_s", "fast MB/s per sub", "{:.1f}"),
        Column("fast_lag_p50_ms", "fast lag p50 ms", "{:.0f}"),
        Column("fast_lag_p99_ms", "fast lag p99 ms", "{:.0f}"),
        Column("fast_complete", "fast got all"),
        Column("stall_to_disconnect_ms", "stall→disconnect ms"),
        Column("queued_at_disconnect_mb", "queued at disconnect MB", "{:.2f}"),
        Column("stalled_deltas_before_eof", "stalled got deltas"),
        Column("stall_to_eof_ms", "stall→EOF seen ms"),
        Column("rss_before_mb", "RSS before MB", "{:.1f}"),
        Column("rss_peak_mb", "RSS peak MB", "{:.1f}"),
        Column("rss_after_mb", "RSS after turns MB", "{:.1f}"),
        Column("rss_left_mb", "RSS after all left MB", "{:.1f}"),
    )
    notes = (
        "Lag = receive wall time minus the notification's `emittedAtMs` (ms resolution), "
        "sampled every 10th delta of every fast subscriber. The stalled client stops reading "
        "right before the first `turn/start` is sent; its disconnect time comes from the "
        "server's log line (ms timestamps); `stall→EOF seen` is when it read again (after the "
        "fast ones finished) and reached the end of the stream. One fresh server per run; RSS "
        "peak is sampled every 20 ms and includes each turn's final `item/completed` and "
        "`turn/completed`, which carry the turn's whole text and are encoded once per "
        "subscriber. The flood is paced and split into turns whose text stays under a third "
        "of the budget; see RESULTS.md for why."
    )

    def budget(self, settings: Settings) -> float:
        return 240.0

    async def run_once(self, target: Target, settings: Settings) -> list[Row]:
        extra = flood_args(
            "--outbound-queue-bytes", str(settings.slow_queue_bytes), "--log-level", "INFO"
        )
        rows = []
        for stalled in (False, True):
            async with running(target, "unix", extra=extra) as server:
                rows.append(await self._one(server, settings, stalled=stalled))
        return rows

    async def _one(self, server: Server, settings: Settings, *, stalled: bool) -> Row:
        fast_count = settings.slow_fast_subscribers
        # Several turns: a turn's `item/completed` and `turn/completed` each carry its whole
        # text, so one turn's text must stay well under the budget or the fast subscribers
        # are cut at its end too.
        size = settings.slow_size
        per_turn = max(1, settings.slow_queue_bytes // 3 // size)
        turns = max(1, settings.slow_count // per_turn)
        peak = [server.rss() or 0]

        async def sample_rss() -> None:
            while True:
                peak[0] = max(peak[0], server.rss() or 0)
                await trio.sleep(RSS_SAMPLE_SECONDS)

        row: Row = {"run": f"{fast_count} fast + 1 stalled" if stalled else f"{fast_count} fast"}
        async with trio.open_nursery() as nursery:
            fast = await open_subscribers(nursery, server, fast_count)
            slow = []
            if stalled:
                # message_queue_size=1: trio-websocket stops reading the socket once one
                # message waits for the application, so the stall reaches the server.
                slow = await open_subscribers(nursery, server, 1, message_queue_size=1)
            thread_id = await start_thread(fast[0], ephemeral=True)
            async with trio.open_nursery() as resuming:
                for channel in [*fast[1:], *slow]:
                    resuming.start_soon(resume, channel, thread_id)
            await trio.sleep(0.2)
            rss_before = server.rss()
            log_offset = len(server.stderr_text())
            nursery.start_soon(sample_rss)
            stall_wall, stall_clock = time.time(), time.perf_counter()
            result = await flood(
                server,
                fast[0],
                fast,
                thread_id,
                per_turn,
                size,
                time_limit=120.0,
                rate=settings.slow_rate,
                lag_every=LAG_EVERY,
                turns=turns,
            )
            stalled_sub = Subscriber(slow[0], expected=per_turn * turns) if slow else None
            if stalled_sub is not None:
                with trio.move_on_after(30):
                    await read_turn(stalled_sub)
            await trio.sleep(0.5)
            rss_after = server.rss()
            async with trio.open_nursery() as leaving:
                for channel in fast:
                    leaving.start_soon(unsubscribe, channel, thread_id)
            await close_all([*fast, *slow])
            nursery.cancel_scope.cancel()
        await trio.sleep(0.5)
        rss_left = server.rss()
        lags = sorted(lag for sub in result.subscribers for lag in (sub.lags_ms or []))
        fast_rate = median(result.rates())
        fast_bytes = median(result.byte_rates())
        disconnects = disconnect_lines(server.stderr_text()[log_offset:])
        row.update(
            {
                "fast_msgs_per_s": fast_rate,
                "fast_mb_per_s": None if fast_bytes is None else fast_bytes / 1e6,
                "fast_lag_p50_ms": percentile(lags, 50, presorted=True),
                "fast_lag_p99_ms": percentile(lags, 99, presorted=True),
                "deltas": per_turn * turns,
                "turns": turns,
                "fast_complete": all(s.count == per_turn * turns for s in result.subscribers),
                "fast_disconnected": sum(1 for s in result.subscribers if s.closed is not None),
                "disconnect_log_lines": len(disconnects),
                "rss_before_mb": _mb(rss_before),
                "rss_peak_mb": _mb(peak[0]),
                "rss_after_mb": _mb(rss_after),
                "rss_left_mb": _mb(rss_left),
            }
        )
        if stalled_sub is not None:
            row.update(self._stalled_fields(stalled_sub, disconnects, stall_wall, stall_clock))
        return row

    @staticmethod
    def _stalled_fields(
        sub: Subscriber,
        disconnects: list[tuple[float, int, int]],
        stall_wall: float,
        stall_clock: float,
    ) -> dict[str, Any]:
        first = disconnects[0] if disconnects else None
        return {
            "stall_to_disconnect_ms": None if first is None else (first[0] - stall_wall) * 1000,
            "queued_at_disconnect_mb": None if first is None else first[2] / 1e6,
            "stalled_deltas_before_eof": sub.count,
            "stall_to_eof_ms": None if sub.closed is None else (sub.closed - stall_clock) * 1000,
            "stalled_saw_completion": sub.completed is not None,
        }


def _mb(value: int | None) -> float | None:
    return None if value is None else value / 1e6
