"""Issue 13 item 6: big inbound messages on many connections at once stay within the server-wide
inbound budget (the real server, over unix and ws)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import trio

from tests.e2e.transports import Client, Kind, Server, open_client, short_tempdir, spawn_server

pytestmark = pytest.mark.e2e

MIB = 1024 * 1024


@pytest.fixture
def home() -> Iterator[Path]:
    with short_tempdir("asi-") as tmp:
        yield tmp / "home"


CLIENTS = 10
MESSAGE = 8 * MIB
BUDGET = 16 * MIB


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def sample_peak(pid: int, peak: list[int]) -> None:
    while True:
        peak[0] = max(peak[0], rss(pid))
        await trio.sleep(0.005)


@contextlib.asynccontextmanager
async def clients(kind: Kind, server: Server, count: int) -> AsyncIterator[list[Client]]:
    async with contextlib.AsyncExitStack() as stack:
        opened = [
            await stack.enter_async_context(open_client(kind, server, f"c{n}"))
            for n in range(count)
        ]
        for client in opened:
            await client.initialize()
        yield opened


@pytest.mark.parametrize("kind", ["unix", "ws"])
async def test_ten_8_mib_messages_at_once_hold_no_more_than_the_16_mib_budget_allows(
    kind: Kind, home: Path
) -> None:
    pad = "a" * MESSAGE
    async with (
        spawn_server(kind, home, "--inbound-bytes", str(BUDGET)) as server,
        clients(kind, server, CLIENTS) as connected,
    ):
        before = rss(server.process.pid)
        peak = [before]
        answers = []

        async def ask(client: Client) -> None:
            answers.append(await client.call("windowsSandbox/readiness", {"pad": pad}))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(sample_peak, server.process.pid, peak)
            async with trio.open_nursery() as asking:
                for client in connected:
                    asking.start_soon(ask, client)
            nursery.cancel_scope.cancel()
    assert len(answers) == CLIENTS
    # Everything at once would be ~10 x 8.8 MiB; the budget admits two 8 MiB messages at a
    # time, plus the one being decoded (its text) and the replies.
    assert peak[0] - before < 48 * MIB, (peak[0] - before) / MIB
