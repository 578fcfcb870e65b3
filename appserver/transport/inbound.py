"""The server-wide inbound byte budget: how much memory partly received messages may hold.

A WebSocket reader charges a message against the budget before it reads the rest of it, and
gives the charge back once the message was handed on (decoded and dispatched). A message that
arrives whole in one read is never charged: it costs at most one read. While the budget is
spent, readers that need more wait their turn (first come, first served) and read nothing, so
their peers are held back by TCP flow control instead of by the server's memory. Each message
is charged once and its reader holds nothing while it waits, so waiting readers cannot deadlock.
"""

from __future__ import annotations

from collections import deque
from typing import Final

import trio

#: Default budget: four maximum-size messages in flight at once.
DEFAULT_INBOUND_BYTES: Final = 256 * 1024 * 1024


class InboundBudget:
    def __init__(self, limit: int = DEFAULT_INBOUND_BYTES) -> None:
        if limit <= 0:
            raise ValueError("the inbound budget must be positive")
        self.limit = limit
        self.used = 0
        #: The largest `used` ever reached (for diagnostics and tests).
        self.peak = 0
        self._waiting: deque[tuple[int, trio.Event]] = deque()

    def _grant(self, size: int) -> None:
        self.used += size
        self.peak = max(self.peak, self.used)

    def _fits(self, size: int) -> bool:
        # A charge larger than the whole budget still goes through an idle budget.
        return self.used == 0 or self.used + size <= self.limit

    async def acquire(self, size: int) -> None:
        """Wait until `size` bytes may be held; the caller must `release(size)` later."""
        if not self._waiting and self._fits(size):
            self._grant(size)
            await trio.lowlevel.checkpoint()
            return
        entry = (size, trio.Event())
        self._waiting.append(entry)
        try:
            await entry[1].wait()
        except BaseException:
            if entry[1].is_set():
                self.release(size)
            else:
                self._waiting.remove(entry)
                self._wake()
            raise

    def release(self, size: int) -> None:
        self.used -= size
        self._wake()

    def _wake(self) -> None:
        while self._waiting and self._fits(self._waiting[0][0]):
            size, granted = self._waiting.popleft()
            self._grant(size)
            granted.set()

    @property
    def waiting(self) -> int:
        return len(self._waiting)
