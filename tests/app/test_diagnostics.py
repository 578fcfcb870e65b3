"""`appserver/metrics` (issue 13 item 15): the metrics for unix and stdio clients."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from appserver.metrics import CONTENT_TYPE
from tests.app.app_harness import open_app, run_turn, start_thread


def values(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_metrics_count_connections_turns_and_request_latency(tmp_path: Path) -> None:
    async with open_app(tmp_path / "home") as app:
        client = await app.client()
        before = values((await client.call("appserver/metrics"))["text"])
        thread_id = await start_thread(client)
        await run_turn(client, thread_id, "hello")
        other = await app.client()
        result = await other.call("appserver/metrics")
        assert result["contentType"] == CONTENT_TYPE
        after = values(result["text"])

    def delta(name: str, **labels: str) -> float:
        key = (name, frozenset(labels.items()))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert after[("appserver_connections", frozenset({("origin", "websocket")}))] == 2
    assert delta("appserver_connections_opened_total", origin="websocket") == 1
    assert delta("appserver_turns_total", status="completed") == 1
    assert after[("appserver_turns_running", frozenset())] == 0
    assert delta("appserver_request_duration_seconds_count", method="thread/start") == 1
    assert delta("appserver_request_duration_seconds_count", method="turn/start") == 1
