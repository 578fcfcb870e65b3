"""The processes the server is running on behalf of each thread (its agents' commands, the
user's shell commands), for `thread/backgroundTerminals/list|clean|terminate`.

A process is listed from the moment it starts until it has exited; `terminate` and `clean`
SIGKILL its process group (under bubblewrap: its whole PID namespace). One registry per process
(`TERMINALS`): threads and their ids are process-wide too.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import attrs

from appserver.process import Process


@attrs.define(eq=False)
class Terminal:
    process_id: str
    item_id: str
    command: str
    cwd: str
    process: Process

    def to_wire(self) -> dict[str, Any]:
        return {
            "processId": self.process_id,
            "itemId": self.item_id,
            "command": self.command,
            "cwd": self.cwd,
            "osPid": self.process.pid,
            "cpuPercent": None,
            "rssKb": _rss_kb(self.process.pid),
        }


def _rss_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


class Terminals:
    def __init__(self) -> None:
        self._by_thread: dict[str, dict[str, Terminal]] = {}

    @contextmanager
    def track(self, thread_id: str, terminal: Terminal) -> Iterator[Terminal]:
        """List `terminal` under `thread_id` while the block runs."""
        running = self._by_thread.setdefault(thread_id, {})
        running[terminal.process_id] = terminal
        try:
            yield terminal
        finally:
            if running.get(terminal.process_id) is terminal:
                del running[terminal.process_id]
            if not running:
                self._by_thread.pop(thread_id, None)

    def list(self, thread_id: str) -> list[Terminal]:
        return [t for t in self._by_thread.get(thread_id, {}).values() if t.process.running]

    def terminate(self, thread_id: str, process_id: str) -> bool:
        terminal = self._by_thread.get(thread_id, {}).get(process_id)
        if terminal is None or not terminal.process.running:
            return False
        terminal.process.terminate()
        return True

    def clean(self, thread_id: str) -> int:
        return sum(self.terminate(thread_id, t.process_id) for t in self.list(thread_id))


TERMINALS = Terminals()
