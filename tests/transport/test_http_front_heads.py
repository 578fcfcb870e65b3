"""The HTTP front under slow heads: heads split anywhere, spaced deadlines, counted timeouts."""

from __future__ import annotations

import itertools
import logging

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from appserver.transport import http_front
from appserver.transport.http_front import (
    HEAD_DEADLINE_SPACING,
    HEAD_TIMEOUT,
    FrontPolicy,
    PrefixedStream,
    front,
)

HEAD = (
    b"GET /rpc HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


@settings(max_examples=50, deadline=None)
@given(cuts=st.lists(st.integers(min_value=1, max_value=len(HEAD) - 1), unique=True, max_size=12))
def test_a_head_split_at_any_points_is_upgraded_with_every_byte_replayed(cuts: list[int]) -> None:
    early_frame = b"\x81\x85frame"
    wire = HEAD + early_frame
    bounds = [0, *sorted(cuts), len(wire)]

    async def main() -> bytes:
        client, server = trio.testing.memory_stream_pair()

        async def trickle() -> None:
            for start, end in itertools.pairwise(bounds):
                await client.send_all(wire[start:end])
                await trio.testing.wait_all_tasks_blocked()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(trickle)
            upgraded = await front(server, FrontPolicy())
        assert isinstance(upgraded, PrefixedStream)
        prefix, _ = upgraded.unwrap()
        return prefix

    assert trio.run(main) == wire


async def test_head_deadlines_are_never_shorter_than_the_timeout_and_never_bunched() -> None:
    deadlines = http_front._HeadDeadlines()
    now = trio.current_time()
    first, second, third = deadlines.next(), deadlines.next(), deadlines.next()
    assert first >= now + HEAD_TIMEOUT
    assert second - first >= HEAD_DEADLINE_SPACING * 0.999  # float rounding
    assert third - second >= HEAD_DEADLINE_SPACING * 0.999


async def test_a_wave_of_head_timeouts_is_logged_once_with_its_count(
    caplog: pytest.LogCaptureFixture, autojump_clock: trio.testing.MockClock
) -> None:
    deadlines = http_front._HeadDeadlines()
    caplog.set_level(logging.WARNING, logger=http_front.__name__)
    for _ in range(500):
        deadlines.missed("ws")
    await trio.sleep(http_front.HEAD_TIMEOUT_LOG_SECONDS)
    for _ in range(300):
        deadlines.missed("ws")
    messages = [r.getMessage() for r in caplog.records]
    # One line per second at most, each counting the timeouts since the previous line.
    assert messages == [
        "1 ws client(s) sent no request head within 10.0s",
        "500 ws client(s) sent no request head within 10.0s",
    ]


async def test_a_flood_of_new_connections_never_stretches_a_deadline_past_the_slack(
    mock_clock: trio.testing.MockClock,
) -> None:
    deadlines = http_front._HeadDeadlines()
    now = trio.current_time()
    latest = max(deadlines.next() for _ in range(100_000))  # 50 s worth of spacing at once
    assert latest <= now + HEAD_TIMEOUT + http_front.HEAD_DEADLINE_SLACK + 0.001
