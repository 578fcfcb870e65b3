"""The Router against a model: connections come and go, initialize, send, stall and drain.

Each rule that routes runs in one short `trio.run`, so a send that would wait is seen waiting
(`wait_all_tasks_blocked`) rather than timed. Connections have no writer task: the machine plays
the writer and reads queued frames itself (`read_queue`, which reaches into the queue the way the
real writer does), so a connection's queue holds exactly what was routed to it and not yet read.
Every notification carries a sequence number in its params; the model predicts, for every send,
whether the frame is queued, dropped by a filter, makes the router disconnect the connection (a
full disconnectable queue), or makes the sender wait (a full stdio queue, which the machine then
drains, as its writer eventually would).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Literal, ParamSpec

import attrs
import orjson
import trio
from hypothesis import Phase, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule
from trio.testing import wait_all_tasks_blocked

from appserver.connection import Connection, Origin, QueueLimits, WriteReceipt
from appserver.router import Router
from appserver.wire.messages import Notification, encode

METHODS = ("thread/started", "turn/started", "thread/realtime/started")
EXPERIMENTAL = frozenset({"thread/realtime/started"})
UNKNOWN_CONNECTION = -1
OPT_OUTS = st.frozensets(st.sampled_from(METHODS))

Outcome = Literal["queued", "dropped", "disconnected", "waits"]
P = ParamSpec("P")


def in_trio(fn: Callable[P, None]) -> Callable[P, None]:
    """Run a synchronous rule inside a `trio.run`: cancel scopes want a current clock."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        async def main() -> None:
            fn(*args, **kwargs)

        trio.run(main)

    return wrapper


def read_queue(connection: Connection) -> list[bytes]:
    """Take every queued frame, as the connection's writer does when it takes a batch."""
    frames: list[bytes] = []
    while True:
        try:
            data, receipt = connection._receive.receive_nowait()
        except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
            break
        connection.queued_bytes -= len(data)
        if receipt is not None:
            receipt.settle(True)
        frames.append(data)
    connection._space.unpark_all()
    return frames


@attrs.define(eq=False)
class Peer:
    """The model of one connection."""

    connection: Connection
    messages: int
    budget: int
    #: The first sequence number sent after the connection became ready, once it has.
    ready_since: int | None = None
    opt_out: frozenset[str] = frozenset()
    experimental: bool = False
    attached: bool = True
    cancelled: bool = False
    slow: bool = False
    #: (seq, size) of every frame that should be in the queue, in order.
    queue: list[tuple[int, int]] = attrs.Factory(list)
    delivered: list[int] = attrs.Factory(list)

    @property
    def disconnectable(self) -> bool:
        return self.connection.disconnectable

    def skips(self, method: str) -> bool:
        return (method in EXPERIMENTAL and not self.experimental) or method in self.opt_out

    def fits(self, size: int) -> bool:
        queued = sum(s for _, s in self.queue)
        return len(self.queue) < self.messages and (queued == 0 or queued + size <= self.budget)

    def outcome(self, method: str, size: int) -> Outcome:
        if not self.attached or self.skips(method):
            return "dropped"
        if self.fits(size):
            return "queued"
        return "disconnected" if self.disconnectable else "waits"


@attrs.frozen
class Sent:
    method: str
    broadcast: bool


class RouterMachine(RuleBasedStateMachine):
    connections = Bundle("connections")

    def __init__(self) -> None:
        super().__init__()
        self.router = Router(experimental_notifications=EXPERIMENTAL)
        self.peers: dict[int, Peer] = {}
        self.sent: list[Sent] = []

    # -- helpers ---------------------------------------------------------------------------

    def _message(self, method: str, *, broadcast: bool) -> tuple[Notification, int]:
        seq = len(self.sent)
        self.sent.append(Sent(method, broadcast))
        message = Notification(method, {"seq": seq})
        # The router encodes it again; only `emittedAtMs` differs, and not in length.
        return message, len(encode(message))

    def _disconnected(self, peer: Peer) -> None:
        assert peer.connection.id not in self.router
        assert peer.connection.cancel_scope.cancel_called
        peer.attached = False
        peer.cancelled = True

    def _check_cancellations(self) -> None:
        """Only connections the router disconnected are cancelled. (`cancel_called` needs a
        current trio clock, so each rule that runs trio checks it, rather than an invariant.)"""
        for peer in self.peers.values():
            assert peer.connection.cancel_scope.cancel_called == peer.cancelled

    def _drain(self, peer: Peer) -> None:
        frames = [orjson.loads(frame) for frame in read_queue(peer.connection)]
        seqs = [frame["params"]["seq"] for frame in frames]
        assert seqs == [seq for seq, _ in peer.queue]
        for frame in frames:
            self._check_delivery(peer, frame)
        peer.delivered.extend(seqs)
        peer.queue.clear()

    def _check_delivery(self, peer: Peer, frame: dict[str, Any]) -> None:
        seq: int = frame["params"]["seq"]
        sent = self.sent[seq]
        assert frame["method"] == sent.method
        after_initialize = peer.ready_since is not None and seq >= peer.ready_since
        if sent.broadcast:
            assert after_initialize, "a broadcast reached an uninitialized connection"
        if after_initialize:
            assert sent.method not in peer.opt_out, "an opted-out notification was delivered"
        if sent.method in EXPERIMENTAL:
            assert after_initialize, "an experimental notification reached a stable client"
            assert peer.experimental, "an experimental notification reached a stable client"
        if peer.delivered:
            assert seq > peer.delivered[-1], "delivery order differs from send order"

    # -- rules -----------------------------------------------------------------------------

    @initialize(target=connections, opt_out=OPT_OUTS, experimental=st.booleans())
    def connect_ready_stdio(self, opt_out: frozenset[str], experimental: bool) -> int:
        cid = self._connect(disconnectable=False, messages=1, budget=10_000)
        self.initialize_session(cid, opt_out, experimental)
        return cid

    @initialize(target=connections, opt_out=OPT_OUTS, experimental=st.booleans())
    def connect_ready_socket(self, opt_out: frozenset[str], experimental: bool) -> int:
        cid = self._connect(disconnectable=True, messages=2, budget=10_000)
        self.initialize_session(cid, opt_out, experimental)
        return cid

    @rule(
        target=connections,
        disconnectable=st.booleans(),
        messages=st.integers(1, 4),
        budget=st.sampled_from([100, 150, 10_000]),
    )
    def connect(self, disconnectable: bool, messages: int, budget: int) -> int:
        return self._connect(disconnectable, messages, budget)

    def _connect(self, disconnectable: bool, messages: int, budget: int) -> int:
        origin = Origin.WEBSOCKET if disconnectable else Origin.STDIO
        connection = Connection(
            origin, disconnectable=disconnectable, limits=QueueLimits(messages, budget)
        )
        self.router.attach(connection)
        self.peers[connection.id] = Peer(connection, messages, budget)
        return connection.id

    @rule(
        cid=connections,
        opt_out=OPT_OUTS,
        experimental=st.booleans(),
    )
    def initialize_session(self, cid: int, opt_out: frozenset[str], experimental: bool) -> None:
        peer = self.peers[cid]
        if not peer.attached or peer.ready_since is not None:
            return  # capabilities are negotiated once
        session = peer.connection.session
        session.initialized = True
        session.experimental_api = experimental
        session.opt_out_notification_methods = opt_out
        peer.connection.ready = True
        peer.ready_since = len(self.sent)
        peer.opt_out = opt_out
        peer.experimental = experimental

    @rule(
        cid=connections | st.just(UNKNOWN_CONNECTION),
        methods=st.lists(st.sampled_from(METHODS), min_size=1, max_size=3),
    )
    def send_to_one(self, cid: int, methods: list[str]) -> None:
        """A burst of sends to one connection (or to an id that was never attached)."""

        async def run() -> None:
            for method in methods:
                await self._send_to_one(cid, method)
            self._check_cancellations()

        trio.run(run)

    async def _send_to_one(self, cid: int, method: str) -> None:
        peer = self.peers.get(cid)
        message, size = self._message(method, broadcast=False)
        seq = len(self.sent) - 1
        outcome = peer.outcome(method, size) if peer is not None else "dropped"
        event(f"send to one: {outcome}")
        receipt = WriteReceipt()
        finished: list[bool] = []

        async def send() -> None:
            await self.router.send(cid, message, receipt)
            finished.append(True)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(send)
            await wait_all_tasks_blocked()
            if outcome == "waits":
                assert peer is not None
                assert finished == [], "a send to a full stdio queue did not wait"
                assert cid in self.router
                assert not peer.connection.cancel_scope.cancel_called
                self._drain(peer)  # the stdio writer catches up
                await wait_all_tasks_blocked()
            assert finished == [True], "a send waited"
        if outcome == "disconnected":
            assert peer is not None
            self._disconnected(peer)
        if outcome in ("queued", "waits"):
            assert peer is not None
            peer.queue.append((seq, size))
            assert not receipt.settled
        else:
            assert receipt.written is False

    @rule(method=st.sampled_from(METHODS))
    def broadcast(self, method: str) -> None:
        message, size = self._message(method, broadcast=True)
        seq = len(self.sent) - 1
        outcomes = {
            cid: peer.outcome(method, size) if peer.ready_since is not None else "dropped"
            for cid, peer in self.peers.items()
        }
        waiting = [self.peers[cid] for cid, outcome in outcomes.items() if outcome == "waits"]
        for outcome in sorted(set(outcomes.values())):
            event(f"broadcast: {outcome}")

        async def run() -> None:
            finished: list[bool] = []

            async def broadcast() -> None:
                await self.router.broadcast(message)
                finished.append(True)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(broadcast)
                await wait_all_tasks_blocked()
                # Whatever else happens, every connection that does not wait is served by now.
                for cid, outcome in outcomes.items():
                    peer = self.peers[cid]
                    if outcome == "queued":
                        expected = sum(s for _, s in peer.queue) + size
                        assert peer.connection.queued_bytes == expected
                    elif outcome == "disconnected":
                        assert cid not in self.router
                        assert peer.connection.cancel_scope.cancel_called
                if waiting:
                    assert finished == [], "a broadcast to a full stdio queue did not wait"
                    for peer in waiting:
                        self._drain(peer)  # each stdio writer catches up in turn
                        await wait_all_tasks_blocked()
                assert finished == [True], "a broadcast waited"
            for cid, outcome in outcomes.items():
                peer = self.peers[cid]
                if outcome == "disconnected":
                    self._disconnected(peer)
                elif outcome in ("queued", "waits"):
                    peer.queue.append((seq, size))
            self._check_cancellations()

        trio.run(run)

    @rule(cid=connections, slow=st.booleans())
    def set_reader(self, cid: int, slow: bool) -> None:
        """A slow reader stops draining; a reader that is not slow drains what is queued now."""
        peer = self.peers[cid]
        peer.slow = slow
        if peer.attached and not slow:
            self._drain(peer)

    @rule()
    def readers_drain(self) -> None:
        for peer in self.peers.values():
            if peer.attached and not peer.slow:
                self._drain(peer)

    @rule(cid=connections, by_router=st.booleans())
    @in_trio
    def disconnect(self, cid: int, by_router: bool) -> None:
        """By the router (cancels the connection), or from the connection's side (detach)."""
        peer = self.peers[cid]
        if by_router:
            if peer.attached:
                self.router.disconnect(peer.connection)
                self._disconnected(peer)
        else:
            self.router.detach(cid)
            peer.attached = False
        self._check_cancellations()

    # -- invariants ------------------------------------------------------------------------

    @invariant()
    def router_holds_exactly_the_attached_connections(self) -> None:
        attached = {cid for cid, peer in self.peers.items() if peer.attached}
        assert {connection.id for connection in self.router.connections} == attached
        assert len(self.router) == len(attached)
        for cid, peer in self.peers.items():
            assert (cid in self.router) == peer.attached
            assert self.router.get(cid) is (peer.connection if peer.attached else None)

    @invariant()
    def queues_hold_what_the_model_predicts(self) -> None:
        # For a connection that is gone this also says nothing more was queued for it.
        for peer in self.peers.values():
            assert peer.connection.queued_bytes == sum(size for _, size in peer.queue)


# No explain phase: its line tracing makes every `trio.run` very slow while shrinking a failure.
RouterMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    report_multiple_bugs=False,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
)
TestRouterMachine = RouterMachine.TestCase
