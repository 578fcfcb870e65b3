"""Admission control for requests that run as tasks: bounded in total and per connection.

When a request cannot be admitted the client is answered `-32001 Server overloaded; retry
later.` and the request is not run (Codex's bounded transport→processor queue).
"""

from __future__ import annotations

from typing import Final

DEFAULT_MAX_IN_FLIGHT: Final = 4096
#: Codex's CHANNEL_CAPACITY.
DEFAULT_MAX_IN_FLIGHT_PER_CONNECTION: Final = 128


class Ingress:
    def __init__(
        self,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        max_per_connection: int = DEFAULT_MAX_IN_FLIGHT_PER_CONNECTION,
    ) -> None:
        self.max_in_flight = max_in_flight
        self.max_per_connection = max_per_connection
        self.in_flight = 0
        self._per_connection: dict[int, int] = {}

    def try_admit(self, connection_id: int) -> bool:
        mine = self._per_connection.get(connection_id, 0)
        if self.in_flight >= self.max_in_flight or mine >= self.max_per_connection:
            return False
        self.in_flight += 1
        self._per_connection[connection_id] = mine + 1
        return True

    def release(self, connection_id: int) -> None:
        self.in_flight -= 1
        left = self._per_connection[connection_id] - 1
        if left:
            self._per_connection[connection_id] = left
        else:
            del self._per_connection[connection_id]

    def in_flight_for(self, connection_id: int) -> int:
        return self._per_connection.get(connection_id, 0)
