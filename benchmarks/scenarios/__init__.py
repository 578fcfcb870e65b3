"""The scenarios (issue 6). Each one runs once per repeat per target and returns rows: dicts of
key fields (what was measured) and metrics (numbers). The runner tags rows with the target and
repeat, and the report takes medians over repeats per key and target."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks.servers import Target
from benchmarks.settings import Settings

Row = dict[str, Any]


@dataclass(frozen=True)
class Column:
    """One metric column of a scenario's table."""

    key: str
    header: str
    fmt: str = "{:.0f}"
    #: Show the appserver/codex ratio of this metric next to it (when both targets ran).
    ratio: bool = False


class Scenario:
    name: str = ""
    title: str = ""
    #: Whether a plain Codex-compatible server (no appserver agents or flags) can run it.
    codex_ok: bool = True
    #: Fields that identify a row (shown first, rows grouped by them).
    keys: Sequence[str] = ()
    columns: Sequence[Column] = ()
    notes: str = ""

    def budget(self, settings: Settings) -> float:
        """Seconds one `run_once` may take before it is cancelled."""
        return 120.0

    async def run_once(self, target: Target, settings: Settings) -> list[Row]:
        raise NotImplementedError


def all_scenarios() -> list[Scenario]:
    from benchmarks.scenarios.attack import UnderAttack
    from benchmarks.scenarios.broadcast import Broadcast
    from benchmarks.scenarios.confinement import Confinement
    from benchmarks.scenarios.inbound import InboundMemory
    from benchmarks.scenarios.memory import Memory
    from benchmarks.scenarios.openai_agent import OpenAIAgentScenario
    from benchmarks.scenarios.rpc import RequestResponse
    from benchmarks.scenarios.slow_consumer import SlowConsumer
    from benchmarks.scenarios.startup import Startup
    from benchmarks.scenarios.turn import TurnEndToEnd

    return [
        RequestResponse(),
        Broadcast(),
        SlowConsumer(),
        Startup(),
        Memory(),
        TurnEndToEnd(),
        UnderAttack(),
        InboundMemory(),
        OpenAIAgentScenario(),
        Confinement(),
    ]
