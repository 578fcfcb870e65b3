"""The server's application is built on first use: `initialize` needs none of it, the first
other request builds it once, and shutdown does not build it just to count turns."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import trio
import trio.testing

from appserver.app.store import StateStore
from appserver.registry import Method, Registry
from appserver.server import ServerConfig, build_app, drain_turns, load_agents
from appserver.transport.listen import Stdio
from tests.harness import initialize, open_connection, queued, send


def test_a_registry_runs_its_loader_once_on_the_first_miss() -> None:
    registry = Registry()
    registry.add(Method("here", lambda ctx, params: None))
    calls = []

    def load() -> None:
        calls.append(1)
        registry.add(Method("later", lambda ctx, params: None))

    registry.load_later(load)
    assert registry.get("here") is not None
    assert calls == []
    assert registry.get("later") is not None
    assert registry.get("missing") is None
    assert "unknown variant `missing`" in registry.unknown_variant_message("missing")
    assert sorted(m.name for m in registry) == ["here", "later"]
    assert calls == [1]


async def test_initialize_is_answered_before_the_app_is_built_and_the_next_request_builds_it(
    tmp_path: Path,
) -> None:
    store = StateStore.open(tmp_path / "state.sqlite")
    try:
        async with trio.open_nursery() as nursery:
            config = ServerConfig(listen=Stdio(), home=tmp_path)
            app = build_app(config, store, nursery, load_agents(("echo",)), lazy=True)
            connection = open_connection(app.processor, nursery)
            await initialize(app.processor, connection)
            assert app._threads is None
            assert app.running_turns == 0
            assert await drain_turns(app, 1.0, signals=None)
            assert app._threads is None  # shutdown with nothing loaded loads nothing
            request = {"id": 2, "method": "thread/loaded/list", "params": {}}
            await send(app.processor, connection, request)
            await trio.testing.wait_all_tasks_blocked()
            assert app._threads is not None
            (reply,) = [m for m in queued(connection) if m.get("id") == 2]
            assert "result" in reply, reply
            nursery.cancel_scope.cancel()
    finally:
        store.close()


def test_importing_the_server_does_not_import_the_application() -> None:
    probe = (
        "import sys, appserver.server\n"
        "heavy = [m for m in ('appserver.app.threads', 'appserver.app.handlers', "
        "'appserver.protocol.v2', 'trio_websocket', 'h11', 'wsproto') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]", result.stdout
