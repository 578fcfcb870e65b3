"""The metrics exposition (issue 13 item 15): valid Prometheus text, counters as counted."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from appserver.metrics import LATENCY_BUCKETS, Gauges, Metrics, exposition


def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_an_idle_server_exposes_every_family() -> None:
    text = exposition(Gauges({}, 0, 0), Metrics())
    names = {f.name for f in text_string_to_metric_families(text.decode())}
    assert names == {
        "appserver_connections",
        "appserver_connections_opened",
        "appserver_outbound_queue_bytes",
        "appserver_slow_consumer_disconnects",
        "appserver_overloaded_replies",
        "appserver_turns_running",
        "appserver_turns",
        "appserver_request_duration_seconds",
    }


def test_counters_gauges_and_the_latency_histogram() -> None:
    metrics = Metrics()
    metrics.connections_opened["unix"] += 3
    metrics.slow_consumer_disconnects += 1
    metrics.overloaded_replies += 2
    metrics.turns_finished["completed"] += 4
    metrics.turns_finished["failed"] += 1
    for seconds in (0.0001, 0.003, 0.003, 100.0):
        metrics.observe_request("thread/start", seconds)
    got = samples(exposition(Gauges({"unix": 2, "websocket": 1}, 512, 1), metrics))
    assert got[("appserver_connections", (("origin", "unix"),))] == 2
    assert got[("appserver_connections", (("origin", "websocket"),))] == 1
    assert got[("appserver_connections_opened_total", (("origin", "unix"),))] == 3
    assert got[("appserver_outbound_queue_bytes", ())] == 512
    assert got[("appserver_slow_consumer_disconnects_total", ())] == 1
    assert got[("appserver_overloaded_replies_total", ())] == 2
    assert got[("appserver_turns_running", ())] == 1
    assert got[("appserver_turns_total", (("status", "completed"),))] == 4
    assert got[("appserver_turns_total", (("status", "failed"),))] == 1
    method = ("method", "thread/start")
    bucket = "appserver_request_duration_seconds_bucket"
    assert got[(bucket, (("le", "0.0005"), method))] == 1
    assert got[(bucket, (("le", "0.005"), method))] == 3
    assert got[(bucket, (("le", str(LATENCY_BUCKETS[-1])), method))] == 3
    assert got[(bucket, (("le", "+Inf"), method))] == 4
    assert got[("appserver_request_duration_seconds_count", (method,))] == 4
