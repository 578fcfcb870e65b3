"""Server→client requests (approvals and the like): ids, correlation, replies, cleanup.

Ids are process-unique integers from 0. A reply is accepted only from a connection the request
was sent to (Codex accepts any connection). When the last target of a request goes away the
request fails, unless it belongs to a thread: those stay pending so that a client resuming the
thread can be sent them again (`replay`).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Collection
from typing import Any

import attrs
import trio

from appserver.router import Router
from appserver.wire.errors import INTERNAL_ERROR
from appserver.wire.messages import ErrorObject, ErrorResponse, Request, Response

log = logging.getLogger(__name__)

CONNECTION_CLOSED = ErrorObject(INTERNAL_ERROR, "connection closed before the client replied")


@attrs.frozen
class Reply:
    """A client's answer: exactly one of `result` and `error` is meaningful."""

    result: Any = None
    error: ErrorObject | None = None
    #: The id the request went out with (for `serverRequest/resolved`).
    request_id: int | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@attrs.define(eq=False)
class _Pending:
    request: Request
    targets: set[int]
    thread_id: str | None
    done: trio.Event = attrs.field(factory=trio.Event)
    reply: Reply | None = None

    def settle(self, reply: Reply) -> None:
        if self.reply is None:
            self.reply = attrs.evolve(reply, request_id=int(self.request.id))
            self.done.set()


class ServerRequests:
    def __init__(self, router: Router) -> None:
        self._router = router
        self._ids = itertools.count()
        self._pending: dict[int, _Pending] = {}

    def __len__(self) -> int:
        return len(self._pending)

    async def request(
        self,
        connection_ids: Collection[int],
        method: str,
        params: Any,
        *,
        thread_id: str | None = None,
        on_sent: Callable[[int], None] | None = None,
    ) -> Reply:
        """Send to each connection and wait for the first accepted reply. `on_sent` learns the
        request's id before anything is sent."""
        request_id = next(self._ids)
        if on_sent is not None:
            on_sent(request_id)
        targets = list(connection_ids)
        pending = _Pending(Request(request_id, method, params), set(targets), thread_id)
        self._pending[request_id] = pending
        log.info(
            "asking connection(s) %s: %s (request %s, thread %s)",
            sorted(targets),
            method,
            request_id,
            thread_id,
        )
        try:
            for connection_id in targets:
                await self._router.send(connection_id, pending.request)
            pending.targets &= {c for c in targets if c in self._router}
            if not pending.targets and thread_id is None:
                pending.settle(Reply(error=CONNECTION_CLOSED))
            await pending.done.wait()
            assert pending.reply is not None
            return pending.reply
        finally:
            del self._pending[request_id]

    def resolve(self, connection_id: int, message: Response | ErrorResponse) -> bool:
        pending = self._pending.get(message.id) if type(message.id) is int else None
        if pending is None:
            log.warning("could not find callback for %r", message.id)
            return False
        if connection_id not in pending.targets:
            log.warning(
                "ignoring reply to request %r from connection %s it was not sent to",
                message.id,
                connection_id,
            )
            return False
        if isinstance(message, Response):
            pending.settle(Reply(result=message.result))
            result = message.result
            answer = result.get("decision", result) if isinstance(result, dict) else result
        else:
            pending.settle(Reply(error=message.error))
            answer = f"error {message.error.code} {message.error.message}"
        log.info(
            "connection %s answered %s (request %s): %s",
            connection_id,
            pending.request.method,
            message.id,
            answer,
        )
        return True

    def cancel(self, request_id: int, error: ErrorObject) -> None:
        pending = self._pending.get(request_id)
        if pending is not None:
            pending.settle(Reply(error=error))

    def cancel_thread(self, thread_id: str, error: ErrorObject) -> None:
        for pending in list(self._pending.values()):
            if pending.thread_id == thread_id:
                pending.settle(Reply(error=error))

    def cancel_all(self, error: ErrorObject) -> None:
        for pending in list(self._pending.values()):
            pending.settle(Reply(error=error))

    def connection_closed(self, connection_id: int) -> None:
        for pending in list(self._pending.values()):
            pending.targets.discard(connection_id)
            if not pending.targets and pending.thread_id is None:
                pending.settle(Reply(error=CONNECTION_CLOSED))

    def pending_for_thread(self, thread_id: str) -> list[Request]:
        found = [p for p in self._pending.values() if p.thread_id == thread_id and p.reply is None]
        return [p.request for p in sorted(found, key=lambda p: int(p.request.id))]

    async def replay(self, connection_id: int, thread_id: str) -> None:
        """Send a thread's pending requests, in id order, to a connection that (re)subscribed."""
        for request in self.pending_for_thread(thread_id):
            pending = self._pending[int(request.id)]
            pending.targets.add(connection_id)
            await self._router.send(connection_id, request)
