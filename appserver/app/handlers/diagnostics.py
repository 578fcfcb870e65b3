"""`appserver/metrics`: the server's metrics for clients of any transport (an appserver
extension, namespaced so it cannot collide with a Codex method; `GET /metrics` serves the same
text on the ws:// listener)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from appserver.app.threads import Threads
from appserver.metrics import CONTENT_TYPE, Gauges, exposition
from appserver.processor import RequestContext
from appserver.registry import Registry


def gauges(threads: Threads) -> Gauges:
    connections = threads.router.connections
    by_origin = Counter(connection.origin.value for connection in connections)
    queued = sum(connection.queued_bytes for connection in connections)
    return Gauges(by_origin, queued, threads.running_turns)


def register(registry: Registry, threads: Threads) -> None:
    @registry.method("appserver/metrics")
    def metrics(ctx: RequestContext, params: None) -> dict[str, Any]:
        return {"contentType": CONTENT_TYPE, "text": exposition(gauges(threads)).decode()}
