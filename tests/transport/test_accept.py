"""The accept loop under fd exhaustion (issue 13 item 8): one log line per episode, not a
traceback per retry, and accepting resumes by itself."""

from __future__ import annotations

import errno
import logging
from typing import Any

import pytest
import trio
import trio.testing

from appserver.transport.accept import ACCEPT_RETRY_SECONDS, serve_listeners


class FlakyListener(trio.abc.Listener[trio.abc.Stream]):
    """Fails `accept` with EMFILE `failures` times, then hands out in-memory streams."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts = 0
        self.accepted = 0

    async def accept(self) -> trio.abc.Stream:
        await trio.lowlevel.checkpoint()
        self.attempts += 1
        if self.failures:
            self.failures -= 1
            raise OSError(errno.EMFILE, "Too many open files")
        if self.accepted >= 2:
            await trio.sleep_forever()
        self.accepted += 1
        _client, server = trio.testing.memory_stream_pair()
        return server

    async def aclose(self) -> None:
        await trio.lowlevel.checkpoint()


async def test_emfile_is_logged_once_per_episode_and_accepting_resumes(
    caplog: pytest.LogCaptureFixture, autojump_clock: Any
) -> None:
    listener = FlakyListener(failures=50)
    handled: list[trio.abc.Stream] = []
    both = trio.Event()

    async def handler(stream: trio.abc.Stream) -> None:
        handled.append(stream)
        if len(handled) == 2:
            both.set()

    caplog.set_level(logging.INFO, logger="appserver.transport.accept")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve_listeners, handler, [listener], nursery)
        await both.wait()
        nursery.cancel_scope.cancel()
    records = [r for r in caplog.records if r.name == "appserver.transport.accept"]
    assert [r.levelno for r in records] == [logging.WARNING, logging.INFO], records
    assert "EMFILE" in records[0].getMessage()
    assert records[0].exc_info is None  # no traceback
    assert "50" in records[1].getMessage()
    assert listener.attempts == 53  # 50 refused, 2 accepted, 1 waiting
    assert trio.current_time() == pytest.approx(50 * ACCEPT_RETRY_SECONDS)


async def test_other_accept_errors_propagate() -> None:
    class Broken(FlakyListener):
        async def accept(self) -> trio.abc.Stream:
            await trio.lowlevel.checkpoint()
            raise OSError(errno.EBADF, "Bad file descriptor")

    async def handler(stream: trio.abc.Stream) -> None:
        raise AssertionError("never called")

    with pytest.RaisesGroup(OSError, flatten_subgroups=True):
        async with trio.open_nursery() as nursery:
            await serve_listeners(handler, [Broken(0)], nursery)
