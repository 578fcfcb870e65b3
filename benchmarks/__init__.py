"""Benchmark harness for appserver and any Codex-compatible app-server command.

    .venv/bin/python -m benchmarks [--quick] [--target appserver|codex|both] [--repeat N]
                                   [--scenario NAME ...]

Every server is a real process spawned from a command template (`servers.py`); the load
clients are trio tasks in this process (`client.py`); each scenario lives in `scenarios/`;
`report.py` prints the tables and writes `benchmarks/results/<timestamp>.json` (and `.md`).
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
