"""Run settings: full (`make bench`, < 10 min with both targets) and `--quick` (< 2 min)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    quick: bool
    repeat: int
    #: Scenario 1: warm-up and measured seconds per configuration.
    warmup: float
    duration: float
    #: Scenario 2: deltas per turn for one subscriber, by payload size (scaled down for more).
    flood_base: int
    #: Scenario 2/3: cap on one turn's total payload bytes (the final item carries all of it).
    flood_max_bytes: int
    #: Scenario 3: the stalled-subscriber flood.
    slow_count: int
    slow_size: int
    #: Deltas per second: paced so that the fast subscribers keep up (an unpaced flood
    #: outruns a Python client, and then every subscriber is a slow one).
    slow_rate: float
    slow_queue_bytes: int
    slow_fast_subscribers: int
    #: Scenario 4: launches per mode, and the storm's width.
    startup_launches: int
    storm_width: int
    #: Scenario 5: idle connections.
    idle_connections: int
    #: Scenario 6: turns measured per repeat, and their `K SIZE`.
    turns: int
    turn_text: str = "1000 16"
    #: Scenario 7: connections held by the attacker, and the measured window under attack
    #: (longer than the server's 10 s head deadline).
    attack_connections: int = 2000
    attack_seconds: float = 12.0
    #: Scenario 9: connections, each sending one message of this many MiB at once.
    inbound_connections: int = 20
    inbound_message_mib: int = 60

    @classmethod
    def full(cls, repeat: int = 3) -> Settings:
        return cls(
            quick=False,
            repeat=repeat,
            warmup=1.0,
            duration=2.0,
            flood_base=10000,
            flood_max_bytes=16 * 1024 * 1024,
            slow_count=600,
            slow_size=16384,
            slow_rate=200.0,
            slow_queue_bytes=4 * 1024 * 1024,
            slow_fast_subscribers=10,
            startup_launches=3,
            storm_width=20,
            idle_connections=1000,
            turns=10,
        )

    @classmethod
    def quick_run(cls, repeat: int = 1) -> Settings:
        return cls(
            quick=True,
            repeat=repeat,
            warmup=0.5,
            duration=1.0,
            flood_base=5000,
            flood_max_bytes=4 * 1024 * 1024,
            slow_count=400,
            slow_size=16384,
            slow_rate=200.0,
            slow_queue_bytes=4 * 1024 * 1024,
            slow_fast_subscribers=10,
            startup_launches=1,
            storm_width=20,
            idle_connections=1000,
            turns=3,
        )
