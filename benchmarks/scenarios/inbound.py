"""Scenario 9: inbound memory, N connections each sending one big message at once (unix).

Each client initializes, then sends one text frame of SIZE bytes — a valid
`windowsSandbox/readiness` request whose params carry a SIZE-byte string — all N at the same
time, and waits for its reply (or for the server to close the connection: refused). The server's
RSS is sampled every 10 ms. appserver runs twice: with its default inbound budget, and with a
budget large enough for every message at once (what one in-flight message costs).
"""

from __future__ import annotations

import struct
import time
from typing import Any, Final

import trio

from benchmarks.client import Closed, Rpc, connect_unix, open_raw_ws
from benchmarks.scenarios import Column, Row, Scenario
from benchmarks.servers import Server, Target, running

MIB: Final = 1024 * 1024
SAMPLE_SECONDS: Final = 0.01
SETTLE_SECONDS: Final = 1.0
#: appserver's default `--inbound-bytes`.
DEFAULT_BUDGET: Final = 256 * MIB


def big_request(size: int) -> bytes:
    head, tail = b'{"id":2,"method":"windowsSandbox/readiness","params":{"pad":"', b'"}}'
    return head + b"a" * (size - len(head) - len(tail)) + tail


def masked_header(size: int) -> bytes:
    """A client text frame header with a zero masking key (the payload goes as it is)."""
    return struct.pack("!BBQ", 0x81, 0x80 | 127, size) + b"\0\0\0\0"


async def peak_rss(server: Server, stop: trio.Event, peak: list[int]) -> None:
    while not stop.is_set():
        rss = server.rss()
        if rss is not None:
            peak[0] = max(peak[0], rss)
        await trio.sleep(SAMPLE_SECONDS)


class InboundMemory(Scenario):
    name = "inbound"
    title = "9. Inbound memory: N connections x one big message at once (unix)"
    keys = ("run",)
    columns = (
        Column("rss_base_mb", "RSS before MB", "{:.1f}"),
        Column("rss_peak_mb", "RSS peak MB", "{:.1f}", ratio=True),
        Column("in_flight", "messages in flight at most"),
        Column("per_message", "RSS per in-flight message / message", "{:.2f}"),
        Column("answered", "answered"),
        Column("refused", "refused"),
        Column("seconds", "all done s", "{:.1f}"),
    )
    notes = (
        "`RSS per in-flight message / message` = (peak - before) / (messages the budget lets "
        "in at once) / the message size. The budgeted run holds at most budget / size "
        "messages at once; the unbudgeted one (`--inbound-bytes` above N x size) lets all N in. "
        "Codex refuses any frame over 16 MiB (its connection is closed)."
    )

    def budget(self, settings: Any) -> float:
        return 300.0

    async def run_once(self, target: Target, settings: Any) -> list[Row]:
        count, size = settings.inbound_connections, settings.inbound_message_mib * MIB
        runs: list[tuple[str, list[str], int]] = [("default", [], DEFAULT_BUDGET)]
        if target.is_appserver:
            everything = count * size + MIB
            runs.append(("no budget", ["--inbound-bytes", str(everything)], everything))
        rows = []
        for label, extra, budget in runs:
            row = await self._measure(target, extra, count, size)
            in_flight = min(count, max(1, budget // size)) if target.is_appserver else count
            rise = row["rss_peak_mb"] - row["rss_base_mb"]
            row.update(
                run=f"{count} x {size // MIB} MiB, {label}",
                in_flight=in_flight if row["answered"] else None,
                per_message=rise * 1e6 / in_flight / size if row["answered"] else None,
            )
            rows.append(row)
        return rows

    async def _measure(self, target: Target, extra: list[str], count: int, size: int) -> Row:
        payload = big_request(size)
        header = masked_header(len(payload))
        answered = refused = 0
        async with running(target, "unix", extra=extra) as server:
            await trio.sleep(SETTLE_SECONDS)
            base = server.rss() or 0
            peak = [base]
            stop = trio.Event()
            assert server.socket_path is not None
            path = server.socket_path
            channels = []
            for _ in range(count):
                channel = await open_raw_ws(await connect_unix(path))
                await Rpc(channel).initialize("bench-inbound")
                channels.append(channel)

            async def one(channel: Any) -> None:
                nonlocal answered, refused
                try:
                    await channel._stream.send_all(header)
                    await channel._stream.send_all(payload)
                    await channel.receive()
                    answered += 1
                except (Closed, trio.BrokenResourceError, trio.ClosedResourceError):
                    refused += 1

            started = time.perf_counter()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(peak_rss, server, stop, peak)
                async with trio.open_nursery() as senders:
                    for channel in channels:
                        senders.start_soon(one, channel)
                stop.set()
            seconds = time.perf_counter() - started
            for channel in channels:
                await channel.aclose()
        return {
            "rss_base_mb": base / 1e6,
            "rss_peak_mb": peak[0] / 1e6,
            "answered": answered,
            "refused": refused,
            "seconds": seconds,
        }
