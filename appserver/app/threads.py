"""Threads at run time: which are loaded, who is subscribed, and what everyone is told.

Thread-wide notifications (`thread/started`, `thread/status/changed`, `thread/name/updated`,
`thread/archived`, …) go to every initialized connection; `turn/*`, `item/*` and the thread's
server requests go to its subscribers only: its creator and whoever resumed it, until they
unsubscribe or disconnect. Turns run in the server's nursery, so a subscriber leaving never
stops one; a thread whose last subscriber leaves stays loaded.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final, Protocol

import attrs
import trio

from appserver.app.agents import Agent
from appserver.app.store import StateStore
from appserver.app.thread_state import (
    ItemRecord,
    ThreadState,
    TurnState,
    delete_thread,
    list_threads,
    load_thread,
    save_thread,
    save_turn,
)
from appserver.config import Config
from appserver.router import Router
from appserver.server_requests import ServerRequests
from appserver.wire.errors import RpcError
from appserver.wire.messages import Notification, StreamFrames

log = logging.getLogger(__name__)


def new_id() -> str:
    return str(uuid.uuid4())


def not_loaded(thread_id: str) -> RpcError:
    return RpcError.invalid_request(f"thread not loaded: {thread_id}")


class ActiveTurn(Protocol):
    """What a thread and its handlers use of its running turn (`turns.TurnRun`); a protocol,
    so this module does not import the one that imports it."""

    turn: TurnState
    cancel_scope: trio.CancelScope
    done: trio.Event

    async def steer(self, user_input: list[dict[str, Any]], client_id: str | None) -> None: ...


#: A thread's `activeFlags`, in the order Codex lists them.
WAITING_FLAGS: Final = ("waitingOnApproval", "waitingOnUserInput")


@attrs.define(eq=False)
class LoadedThread:
    state: ThreadState
    subscribers: set[int] = attrs.Factory(set)
    active: ActiveTurn | None = None
    queue: list[dict[str, Any]] = attrs.Factory(list)
    #: `acceptForSession` ("don't ask again for this command in this session", as Codex
    #: caches it): these exact commands run again without asking.
    commands_approved_for_session: set[str] = attrs.Factory(set)
    #: Server requests of the running turn awaiting an answer, by the status flag they raise
    #: (`waitingOnApproval`, `waitingOnUserInput`; see `TurnRun.server_request`).
    waiting: Counter[str] = attrs.Factory(Counter)
    #: Files an `acceptForSession` answer to a file change covers: later patches writing only
    #: these apply without asking.
    patch_paths_approved_for_session: set[str] = attrs.Factory(set)
    #: Token usage over the thread's turns in this process (input, output).
    token_totals: tuple[int, int] = (0, 0)

    def status(self) -> dict[str, Any]:
        if self.active is None:
            return {"type": "idle"}
        flags = [flag for flag in WAITING_FLAGS if self.waiting[flag]]
        return {"type": "active", "activeFlags": flags}


class Threads:
    def __init__(
        self,
        store: StateStore,
        router: Router,
        server_requests: ServerRequests,
        agents: dict[str, Agent],
        default_agent: str,
        turn_nursery: trio.Nursery,
        config: Config,
    ) -> None:
        #: HOME/config.toml and the command line's overrides (appserver.config).
        self.config = config
        self.store = store
        self.router = router
        self.server_requests = server_requests
        self.agents = agents
        self.default_agent = default_agent
        self.turn_nursery = turn_nursery
        self.loaded: dict[str, LoadedThread] = {}
        #: Model id -> the name of the agent whose `list_models` offered it (`model/list`).
        self.model_owners: dict[str, str] = {}
        self._loading = trio.StrictFIFOLock()
        self._running_turns = 0
        self._idle = trio.Event()
        self._idle.set()

    @property
    def running_turns(self) -> int:
        return self._running_turns

    def turn_started(self) -> None:
        self._running_turns += 1
        if self._idle.is_set():
            self._idle = trio.Event()

    def turn_finished(self) -> None:
        self._running_turns -= 1
        if self._running_turns == 0:
            self._idle.set()

    async def wait_idle(self) -> None:
        """Until no turn is running."""
        while self._running_turns:
            await self._idle.wait()

    def interrupt_running(self) -> int:
        """Interrupt every running turn (as `turn/interrupt` does: its subscribers are told it
        completed `interrupted`); returns how many."""
        running = [loaded.active for loaded in self.loaded.values() if loaded.active is not None]
        for run in running:
            run.cancel_scope.cancel()
        return len(running)

    # -- lookup ------------------------------------------------------------------------------

    async def load(self, thread_id: str) -> LoadedThread:
        """The loaded thread, loading it from the store if needed."""
        loaded = self.loaded.get(thread_id)
        if loaded is not None:
            return loaded
        async with self._loading:
            loaded = self.loaded.get(thread_id)
            if loaded is None:
                state = await self.store.run(load_thread, thread_id)
                if state is None:
                    raise not_loaded(thread_id)
                loaded = self.loaded[thread_id] = LoadedThread(state)
        return loaded

    async def find(self, thread_id: str) -> tuple[ThreadState, dict[str, Any]]:
        """A thread and its status, whether or not it is loaded (without loading it)."""
        loaded = self.loaded.get(thread_id)
        if loaded is not None:
            return loaded.state, loaded.status()
        state = await self.store.run(load_thread, thread_id)
        if state is None:
            raise not_loaded(thread_id)
        return state, {"type": "notLoaded"}

    async def all_threads(self) -> list[tuple[ThreadState, dict[str, Any]]]:
        persisted = {t.id: t for t in await self.store.run(list_threads)}
        out = []
        for thread_id, loaded in self.loaded.items():
            persisted.pop(thread_id, None)
            out.append((loaded.state, loaded.status()))
        out.extend((state, {"type": "notLoaded"}) for state in persisted.values())
        return out

    def agent_for(self, model: str | None) -> Agent:
        """The agent named `model`, else the agent whose `model/list` offered it, else the
        default agent: any model id is accepted, as in Codex, and the agent sees it as
        `turn.model`."""
        if model:
            agent = self.agents.get(model) or self.agents.get(self.model_owners.get(model, ""))
            if agent is not None:
                return agent
        return self.agents[self.default_agent]

    # -- persistence -------------------------------------------------------------------------

    async def save(self, thread: ThreadState) -> None:
        await self.store.run(save_thread, thread)

    async def save_turn(
        self, thread: ThreadState, turn: TurnState, ahead: Sequence[ItemRecord] = ()
    ) -> None:
        await self.store.run(save_turn, thread, turn, ahead)

    async def delete(self, thread_id: str) -> bool:
        self.loaded.pop(thread_id, None)
        deleted: bool = await self.store.run(delete_thread, thread_id)
        return deleted

    # -- subscriptions -----------------------------------------------------------------------

    def subscribe(self, loaded: LoadedThread, connection_id: int) -> None:
        loaded.subscribers.add(connection_id)

    def connection_closed(self, connection_id: int) -> None:
        for loaded in self.loaded.values():
            loaded.subscribers.discard(connection_id)

    # -- notifications -----------------------------------------------------------------------

    async def broadcast(self, method: str, params: Any) -> None:
        await self.router.broadcast(Notification(method, params))

    async def to_subscribers(self, loaded: LoadedThread, method: str, params: Any) -> None:
        # The router reads the set before it awaits anything: no copy needed.
        await self.router.multicast(loaded.subscribers, Notification(method, params))

    async def frame_to_subscribers(
        self, loaded: LoadedThread, frames: StreamFrames, value: str
    ) -> None:
        """One frame of a notification stream (an agent's delta) to the thread's subscribers."""
        await self.router.multicast_frame(loaded.subscribers, frames.method, frames.frame(value))

    async def status_changed(self, loaded: LoadedThread) -> None:
        await self.broadcast(
            "thread/status/changed", {"threadId": loaded.state.id, "status": loaded.status()}
        )

    def subscribers_of(self, thread_id: str) -> Iterable[int]:
        loaded = self.loaded.get(thread_id)
        return () if loaded is None else tuple(loaded.subscribers)

    # -- turns -------------------------------------------------------------------------------

    def start_turn_task(self, run: Callable[[], Any]) -> None:
        self.turn_nursery.start_soon(run)
