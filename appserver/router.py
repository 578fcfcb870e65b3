"""Outbound routing (Codex `transport.rs` §3): to one connection, or broadcast.

Filters, per connection: notifications the client opted out of (exact method names) and
experimental notifications for clients without `experimentalApi` are dropped; experimental fields
of server requests are stripped for those clients. Delivery: a connection whose queue is full is
disconnected at once when it can be (sockets), so no sender waits on a slow consumer — except
for a large frame (a capped item or a 1 MiB piece of a long answer), which a reader that keeps
reading could not have made room for in time: its sender waits up to `LARGE_FRAME_GRACE` for
room, and only a connection that has not made it by then is disconnected. A stdio connection
makes its sender wait instead. Broadcasts reach only connections that finished
`initialize`. Each message is encoded once per distinct filtered form, not once per connection.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Final

import trio

from appserver.connection import Connection, WriteReceipt
from appserver.metrics import METRICS
from appserver.protocol.experimental import EXPERIMENTAL_NOTIFICATIONS, strip_experimental
from appserver.wire.messages import Message, Notification, Request, encode

log = logging.getLogger(__name__)

#: A frame this large may wait for room in a full socket queue (see the module docstring)...
LARGE_FRAME_BYTES: Final = 64 * 1024
#: ...this long, at most once per frame, before its connection is taken for a slow one.
LARGE_FRAME_GRACE: Final = 2.0


class Router:
    def __init__(self, experimental_notifications: Iterable[str] = EXPERIMENTAL_NOTIFICATIONS):
        self._connections: dict[int, Connection] = {}
        self._experimental_notifications = frozenset(experimental_notifications)

    # -- membership ------------------------------------------------------------------------

    def attach(self, connection: Connection) -> None:
        self._connections[connection.id] = connection

    def detach(self, connection_id: int) -> None:
        self._connections.pop(connection_id, None)

    def get(self, connection_id: int) -> Connection | None:
        return self._connections.get(connection_id)

    def __contains__(self, connection_id: int) -> bool:
        return connection_id in self._connections

    def __len__(self) -> int:
        return len(self._connections)

    @property
    def connections(self) -> list[Connection]:
        return list(self._connections.values())

    def disconnect(self, connection: Connection) -> None:
        self.detach(connection.id)
        connection.disconnect()

    def disconnect_all(self) -> int:
        connections = list(self._connections.values())
        self._connections.clear()
        for connection in connections:
            connection.disconnect()
        return len(connections)

    # -- filters ---------------------------------------------------------------------------

    def skips(self, connection: Connection, message: Message) -> bool:
        if not isinstance(message, Notification):
            return False
        return self._skips_method(connection, message.method)

    def _skips_method(self, connection: Connection, method: str) -> bool:
        session = connection.session
        if method in self._experimental_notifications and not session.experimental_api:
            return True
        return method in session.opt_out_notification_methods

    @staticmethod
    def filtered(connection: Connection, message: Message) -> Message:
        if isinstance(message, Request) and not connection.session.experimental_api:
            params = strip_experimental(message.params)
            if params is not message.params:
                return Request(message.id, message.method, params)
        return message

    # -- delivery --------------------------------------------------------------------------

    async def send(
        self, connection_id: int, message: Message, receipt: WriteReceipt | None = None
    ) -> None:
        """To one connection, whether or not it has initialized (Codex `ToConnection`)."""
        connection = self._connections.get(connection_id)
        if connection is None:
            log.warning("dropping message for disconnected connection: %s", connection_id)
        elif not self.skips(connection, message):
            data = encode(self.filtered(connection, message))
            if connection.offer(data, receipt):
                return
            if not connection.disconnectable:
                await connection.put(data, receipt)
                return
            if not self._may_wait(connection, data):
                self._disconnect_slow(connection)
            elif await self._put_within_grace(connection, data, receipt):
                return
        if receipt is not None:
            receipt.settle(False)

    async def broadcast(self, message: Notification) -> None:
        """To every initialized connection that has not opted out of the method."""
        targets = [c for c in self._connections.values() if c.ready and not self.skips(c, message)]
        if targets:
            await self._fan_out(targets, encode(message))

    async def multicast(self, connection_ids: Iterable[int], message: Notification) -> None:
        """To each of these connections (initialized or not), encoded once."""
        targets = []
        for connection_id in connection_ids:
            connection = self._connections.get(connection_id)
            if connection is not None and not self.skips(connection, message):
                targets.append(connection)
        if targets:
            await self._fan_out(targets, encode(message))

    async def multicast_frame(
        self, connection_ids: Iterable[int], method: str, data: bytes
    ) -> None:
        """`multicast` of a notification of `method` already encoded as `data` (a stream's
        frame, see `StreamFrames`): no message to build or encode per delta."""
        connections = self._connections
        targets = []
        for connection_id in connection_ids:
            connection = connections.get(connection_id)
            if connection is not None and not self._skips_method(connection, method):
                targets.append(connection)
        if targets:
            await self._fan_out(targets, data)

    async def _fan_out(self, targets: list[Connection], data: bytes) -> None:
        waiting: list[Connection] = []
        for connection in targets:
            if connection.offer(data):
                continue
            if connection.disconnectable and not self._may_wait(connection, data):
                self._disconnect_slow(connection)
            else:
                waiting.append(connection)
        for connection in waiting:
            if connection.disconnectable:
                await self._put_within_grace(connection, data)
            else:
                await connection.put(data)

    @staticmethod
    def _may_wait(connection: Connection, data: bytes) -> bool:
        # Behind a sender already waiting for room, a small frame waits its turn too.
        return len(data) >= LARGE_FRAME_BYTES or connection.has_waiting_senders

    async def _put_within_grace(
        self, connection: Connection, data: bytes, receipt: WriteReceipt | None = None
    ) -> bool:
        """Queue on a full socket connection that `_may_wait`, waiting up to
        `LARGE_FRAME_GRACE` for room; False, and the connection cut as slow, if none came."""
        with trio.move_on_after(LARGE_FRAME_GRACE):
            await connection.put(data, receipt)
            return True
        if connection.id in self._connections:
            self._disconnect_slow(connection)
        return False

    def _disconnect_slow(self, connection: Connection) -> None:
        log.warning(
            "disconnecting slow connection after outbound queue filled: %s (%d bytes queued)",
            connection.id,
            connection.queued_bytes,
        )
        METRICS.slow_consumer_disconnects += 1
        self.disconnect(connection)
