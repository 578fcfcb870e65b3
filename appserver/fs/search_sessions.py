"""`fuzzyFileSearch` and its sessions: indexes, running queries, cancellation, streaming.

A one-shot search lists its roots (an index younger than `INDEX_REUSE_SECONDS` is reused, so an
IDE asking at every keystroke does not walk the tree each time) and answers the best
`MATCH_LIMIT`; a newer request with the same `cancellationToken` cancels it (it answers no
files). A session lists its roots once, when it starts (then `sessionUpdated` with the empty
query and `sessionCompleted`, as Codex), and every `sessionUpdate` runs over that list: the
previous query of the session is cancelled, the new one streams `sessionUpdated` snapshots
(the first as soon as anything has scored, then at most one per `SNAPSHOT_SECONDS`, never an
empty one before the last) and ends with `sessionCompleted`. Notifications go only to the
connection that owns the session; its sessions end with it. The work runs in worker threads,
one bounded step at a time (a chunk of the scan or a batch), so a cancellation takes effect
within one step.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

import attrs
import trio

from appserver.fs.file_index import FileIndex, build_index
from appserver.fs.file_search import MATCH_LIMIT, QueryRun
from appserver.router import Router
from appserver.wire.errors import RpcError
from appserver.wire.messages import Notification

log = logging.getLogger(__name__)

INDEX_REUSE_SECONDS: Final = 3.0
SNAPSHOT_SECONDS: Final = 0.05
MAX_CACHED_ROOTS: Final = 8
UPDATED: Final = "fuzzyFileSearch/sessionUpdated"
COMPLETED: Final = "fuzzyFileSearch/sessionCompleted"
NO_ROOTS: Final = (
    "failed to start fuzzy file search session: at least one search directory is required"
)


@attrs.define(eq=False)
class _Session:
    connection_id: int
    session_id: str
    roots: list[str]
    indexes: list[FileIndex] = attrs.Factory(list)
    ready: trio.Event = attrs.Factory(trio.Event)
    query: trio.CancelScope | None = None
    queried: bool = False
    closed: bool = False


class FileSearches:
    def __init__(self, router: Router, nursery: trio.Nursery) -> None:
        self._router = router
        self._nursery = nursery
        self._sessions: dict[tuple[int, str], _Session] = {}
        self._tokens: dict[str, trio.CancelScope] = {}
        self._cache: dict[str, tuple[float, FileIndex]] = {}
        self._hooked: list[Callable[[int], None]] | None = None

    def follow_connections(self, closed_hooks: list[Callable[[int], None]]) -> None:
        if self._hooked is not closed_hooks:
            closed_hooks.append(self.connection_closed)
            self._hooked = closed_hooks

    # -- one-shot ------------------------------------------------------------------------------

    async def search(
        self, query: str, roots: Sequence[str], cancellation_token: str | None
    ) -> list[dict[str, Any]]:
        if not roots or not query.strip():
            return []
        scope = trio.CancelScope()
        if cancellation_token is not None:
            previous = self._tokens.get(cancellation_token)
            if previous is not None:
                previous.cancel()
            self._tokens[cancellation_token] = scope
        try:
            with scope:
                indexes = [await self._cached_index(root) for root in roots]
                run = QueryRun(query, indexes, MATCH_LIMIT)
                while not await trio.to_thread.run_sync(run.step):
                    pass
                return run.results()
            return []  # cancelled by a newer request with the same token
        finally:
            if cancellation_token is not None and self._tokens.get(cancellation_token) is scope:
                del self._tokens[cancellation_token]

    async def _cached_index(self, root: str) -> FileIndex:
        now = time.monotonic()
        for stale in [
            key for key, (built, _) in self._cache.items() if now - built >= INDEX_REUSE_SECONDS
        ]:
            del self._cache[stale]  # listings are not kept past their reuse window
        cached = self._cache.get(root)
        if cached is not None:
            return cached[1]
        index = await trio.to_thread.run_sync(build_index, root)
        self._cache[root] = (time.monotonic(), index)
        while len(self._cache) > MAX_CACHED_ROOTS:
            del self._cache[min(self._cache, key=lambda k: self._cache[k][0])]
        return index

    # -- sessions ------------------------------------------------------------------------------

    def start(self, connection_id: int, session_id: str, roots: list[str]) -> None:
        """Register the session (replacing one with the same id); `load` lists its roots."""
        if not roots:
            raise RpcError.internal(NO_ROOTS)
        key = (connection_id, session_id)
        previous = self._sessions.pop(key, None)
        if previous is not None:
            self._close(previous)
        self._sessions[key] = _Session(connection_id, session_id, roots)

    async def load(self, connection_id: int, session_id: str) -> None:
        """After the sessionStart reply: list the roots in the background."""
        session = self._sessions.get((connection_id, session_id))
        if session is not None:
            self._nursery.start_soon(self._load, session)

    def update(self, connection_id: int, session_id: str, query: str) -> _Session:
        session = self._sessions.get((connection_id, session_id))
        if session is None:
            raise RpcError.invalid_request(f"fuzzy file search session not found: {session_id}")
        if session.query is not None:
            session.query.cancel()  # a newer query replaces the running one
        session.query = trio.CancelScope()
        session.queried = True
        return session

    async def run_update(self, session: _Session, query: str) -> None:
        """After the sessionUpdate reply: run the query in the background."""
        scope = session.query
        if scope is not None:
            self._nursery.start_soon(self._run, session, query, scope)

    def stop(self, connection_id: int, session_id: str) -> None:
        session = self._sessions.pop((connection_id, session_id), None)
        if session is not None:
            self._close(session)

    def connection_closed(self, connection_id: int) -> None:
        for key in [key for key in self._sessions if key[0] == connection_id]:
            self._close(self._sessions.pop(key))

    def _close(self, session: _Session) -> None:
        session.closed = True
        if session.query is not None:
            session.query.cancel()

    async def _load(self, session: _Session) -> None:
        try:
            for root in session.roots:
                session.indexes.append(await trio.to_thread.run_sync(build_index, root))
        except Exception:
            log.exception("fuzzy file search: listing %s failed", session.roots)
        finally:
            session.ready.set()
        if not session.queried:
            await self._notify(session, UPDATED, {"query": "", "files": []})
            await self._notify(session, COMPLETED, {})

    async def _run(self, session: _Session, query: str, scope: trio.CancelScope) -> None:
        with scope:
            await session.ready.wait()
            if scope.cancel_called:
                return
            if not query.strip():
                await self._notify(session, UPDATED, {"query": query, "files": []})
                await self._notify(session, COMPLETED, {})
                return
            run = QueryRun(query, session.indexes, MATCH_LIMIT)
            sent: list[dict[str, Any]] | None = None
            last = 0.0
            while True:
                done, files, now = await trio.to_thread.run_sync(
                    _step_and_snapshot, run, bool(sent), last
                )
                if scope.cancel_called:
                    return  # a newer query took over while this step ran: say nothing more
                if files is not None and (files != sent or (done and sent is None)):
                    await self._notify(session, UPDATED, {"query": query, "files": files})
                    sent, last = files, now
                if done:
                    break
            if not scope.cancel_called:
                await self._notify(session, COMPLETED, {})

    async def _notify(self, session: _Session, method: str, params: dict[str, Any]) -> None:
        if session.closed:
            return
        params = {"sessionId": session.session_id, **params}
        await self._router.send(session.connection_id, Notification(method, params))


def _step_and_snapshot(
    run: QueryRun, shown: bool, last: float
) -> tuple[bool, list[dict[str, Any]] | None, float]:
    """One step of `run` (in a worker thread), and its results when a snapshot is due: the
    first as soon as something has scored, then at most one per `SNAPSHOT_SECONDS`, and the
    final one. An intermediate snapshot is never empty."""
    done = run.step()
    now = time.monotonic()
    if done or (run.has_results and (not shown or now - last >= SNAPSHOT_SECONDS)):
        return done, run.results(), now
    return done, None, now
