"""Thread editing: revert, inject items, goals, settings, search, metadata, the queue."""

from __future__ import annotations

from appserver.app.threads import Threads
from appserver.registry import Registry


def register(registry: Registry, threads: Threads) -> None:
    pass
