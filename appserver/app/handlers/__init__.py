"""Client request handlers, one module per domain."""

from __future__ import annotations

from appserver.app.handlers import (
    catalogs,
    commands,
    config,
    diagnostics,
    file_search,
    files,
    inventories,
    thread_editing,
    threads,
    turn_actions,
    turns,
)
from appserver.app.threads import Threads
from appserver.registry import Registry


def register(registry: Registry, app_threads: Threads) -> None:
    for domain in (
        threads,
        diagnostics,
        turns,
        inventories,
        commands,
        files,
        config,
        turn_actions,
        thread_editing,
        file_search,
        catalogs,
    ):
        domain.register(registry, app_threads)
