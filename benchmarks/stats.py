"""Small statistics helpers (no numpy on purpose: the harness needs only the project's venv)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence


def percentile(values: Sequence[float], q: float, *, presorted: bool = False) -> float:
    """The `q`-th percentile (0-100), linear interpolation between closest ranks; NaN if empty."""
    if not values:
        return math.nan
    ordered = values if presorted else sorted(values)
    if len(ordered) == 1:
        return float(ordered[0])
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (rank - low))


def latency_summary_ms(latencies: Sequence[float]) -> dict[str, float]:
    """p50, p99 and max of latencies given in seconds, in milliseconds."""
    ordered = sorted(latencies)
    return {
        "p50_ms": percentile(ordered, 50, presorted=True) * 1000,
        "p99_ms": percentile(ordered, 99, presorted=True) * 1000,
        "max_ms": (ordered[-1] * 1000) if ordered else math.nan,
    }


def median(values: Iterable[float | None]) -> float | None:
    """The median of the values that are numbers (None and NaN ignored)."""
    usable = [v for v in values if v is not None and not math.isnan(v)]
    return statistics.median(usable) if usable else None
