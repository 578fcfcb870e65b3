"""Server metrics: plain counters on the hot paths, Prometheus text when someone reads them.

The hot paths only add to integers and dicts (one trio thread, no locks, no library call).
`exposition()` turns them, together with gauges read at that moment, into the Prometheus text
format with `prometheus_client`, imported on first use so a server nobody scrapes never loads
it. Read through `GET /metrics` on the ws:// listener and the `appserver/metrics` request.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

#: Request latency bucket bounds, in seconds.
LATENCY_BUCKETS: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)
#: What `exposition()` returns (Prometheus text format 0.0.4).
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"


class _Histogram:
    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.total += seconds

    def cumulative(self) -> list[tuple[str, float]]:
        out, running = [], 0
        for bound, count in zip([*map(str, LATENCY_BUCKETS), "+Inf"], self.counts, strict=True):
            running += count
            out.append((bound, float(running)))
        return out


class Metrics:
    def __init__(self) -> None:
        self.connections_opened: Counter[str] = Counter()
        self.slow_consumer_disconnects = 0
        self.overloaded_replies = 0
        self.turns_finished: Counter[str] = Counter()
        self.request_latency: dict[str, _Histogram] = {}

    def observe_request(self, method: str, seconds: float) -> None:
        histogram = self.request_latency.get(method)
        if histogram is None:
            histogram = self.request_latency[method] = _Histogram()
        histogram.observe(seconds)


#: The process's metrics (one server per process).
METRICS: Final = Metrics()


class Gauges:
    """What is read at scrape time rather than counted."""

    def __init__(
        self, connections: Mapping[str, int], queued_bytes: int, running_turns: int
    ) -> None:
        self.connections = connections
        self.queued_bytes = queued_bytes
        self.running_turns = running_turns


def _families(metrics: Metrics, gauges: Gauges) -> Iterator[Metric]:
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
    )

    connections = GaugeMetricFamily(
        "appserver_connections", "Open client connections.", labels=["origin"]
    )
    for origin, count in sorted(gauges.connections.items()):
        connections.add_metric([origin], count)
    yield connections
    opened = CounterMetricFamily(
        "appserver_connections_opened", "Client connections opened.", labels=["origin"]
    )
    for origin, count in sorted(metrics.connections_opened.items()):
        opened.add_metric([origin], count)
    yield opened
    yield GaugeMetricFamily(
        "appserver_outbound_queue_bytes",
        "Bytes queued for writing, over all connections.",
        value=gauges.queued_bytes,
    )
    yield CounterMetricFamily(
        "appserver_slow_consumer_disconnects",
        "Connections cut because their outbound byte budget filled.",
        value=metrics.slow_consumer_disconnects,
    )
    yield CounterMetricFamily(
        "appserver_overloaded_replies",
        "Requests answered -32001 (admission bound reached).",
        value=metrics.overloaded_replies,
    )
    yield GaugeMetricFamily(
        "appserver_turns_running", "Turns running now.", value=gauges.running_turns
    )
    turns = CounterMetricFamily("appserver_turns", "Turns finished.", labels=["status"])
    for status, count in sorted(metrics.turns_finished.items()):
        turns.add_metric([status], count)
    yield turns
    latency = HistogramMetricFamily(
        "appserver_request_duration_seconds",
        "Time from dispatching a request to queueing its reply.",
        labels=["method"],
    )
    for method, histogram in sorted(metrics.request_latency.items()):
        latency.add_metric([method], histogram.cumulative(), sum_value=histogram.total)
    yield latency


def exposition(gauges: Gauges, metrics: Metrics = METRICS) -> bytes:
    """The metrics in the Prometheus text format (`CONTENT_TYPE`)."""
    from prometheus_client.exposition import generate_latest
    from prometheus_client.registry import Collector, CollectorRegistry

    class _Snapshot(Collector):
        def collect(self) -> Iterator[Metric]:
            return _families(metrics, gauges)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot())
    text: Any = generate_latest(registry)
    return bytes(text)
