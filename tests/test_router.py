"""Outbound routing: per-connection filters, broadcast targets, slow consumers (spec §3, §10.6)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import attrs
import orjson
import pytest
import trio
import trio.testing
from trio.testing import wait_all_tasks_blocked

import appserver.router
from appserver.connection import Connection, Origin, QueueLimits, WriteReceipt
from appserver.router import Router
from appserver.wire.converter import EXPERIMENTAL_OPTIONAL, OPTIONAL
from appserver.wire.messages import (
    ErrorObject,
    ErrorResponse,
    Message,
    Notification,
    Request,
    encode,
)

REALTIME_STARTED = "thread/realtime/started"


def connect(
    router: Router,
    *,
    disconnectable: bool = True,
    messages: int = 16,
    ready: bool = True,
    experimental: bool = False,
    opt_out: Iterable[str] = (),
    connection_id: int | None = None,
) -> Connection:
    """A connection attached to `router`; `ready` means it finished `initialize`."""
    origin = Origin.WEBSOCKET if disconnectable else Origin.STDIO
    connection = Connection(
        origin,
        disconnectable=disconnectable,
        limits=QueueLimits(messages),
        connection_id=connection_id,
    )
    if ready:
        connection.session.initialized = True
        connection.session.experimental_api = experimental
        connection.session.opt_out_notification_methods = frozenset(opt_out)
        connection.ready = True
    router.attach(connection)
    return connection


class RecordingWriter:
    def __init__(self) -> None:
        self.calls: list[list[bytes]] = []

    @property
    def frames(self) -> list[bytes]:
        return [frame for batch in self.calls for frame in batch]

    async def __call__(self, frames: Sequence[bytes]) -> None:
        await trio.lowlevel.checkpoint()
        self.calls.append(list(frames))


async def written(connection: Connection) -> list[dict[str, Any]]:
    """Everything queued for `connection`, as its writer writes it (this closes its outbound)."""
    connection.close_outbound()
    writer = RecordingWriter()
    await connection.run_writer(writer)
    return [orjson.loads(frame) for frame in writer.frames]


def methods(frames: list[dict[str, Any]]) -> list[str]:
    return [frame["method"] for frame in frames]


# -- opt-out (exact method names) -------------------------------------------------------------


async def test_to_connection_notification_respects_opt_out_filters() -> None:
    router = Router()
    connection = connect(router, connection_id=7, opt_out={"configWarning"})
    receipt = WriteReceipt()
    await router.send(7, Notification("configWarning", {"summary": "x"}), receipt)
    assert receipt.written is False
    assert await written(connection) == []


async def test_to_connection_notifications_are_dropped_for_opted_out_clients() -> None:
    router = Router()
    connection = connect(router, connection_id=42, opt_out={"configWarning"})
    await router.send(42, Notification("configWarning", {"summary": "x"}))
    assert connection.id in router  # dropping is not disconnecting
    assert await written(connection) == []


async def test_to_connection_notifications_are_preserved_for_non_opted_out_clients() -> None:
    router = Router()
    connection = connect(router, connection_id=42)
    await router.send(42, Notification("configWarning", {"summary": "x"}))
    (frame,) = await written(connection)
    assert frame["method"] == "configWarning"
    assert frame["params"] == {"summary": "x"}


async def test_opt_out_matching_is_exact_and_case_sensitive() -> None:
    router = Router()
    connection = connect(router, opt_out={"configwarning", "thread", "thread/*", "unknown/method"})
    for method in ("configWarning", "thread/started"):
        await router.send(connection.id, Notification(method))
    await router.broadcast(Notification("thread/started"))
    assert methods(await written(connection)) == [
        "configWarning",
        "thread/started",
        "thread/started",
    ]


async def test_opt_out_applies_only_to_notifications() -> None:
    router = Router()
    connection = connect(router, opt_out={"item/tool/call"})
    await router.send(connection.id, Request(1, "item/tool/call", {"x": 1}))
    await router.send(connection.id, ErrorResponse(2, ErrorObject(-32600, "no")))
    frames = await written(connection)
    assert frames == [
        {"id": 1, "method": "item/tool/call", "params": {"x": 1}},
        {"error": {"code": -32600, "message": "no"}, "id": 2},
    ]


async def test_broadcast_skips_opted_out_connections() -> None:
    router = Router()
    opted_out = connect(router, opt_out={"thread/started"})
    other = connect(router, opt_out={"turn/started"})
    await router.broadcast(Notification("thread/started"))
    assert await written(opted_out) == []
    assert methods(await written(other)) == ["thread/started"]


# -- experimental notifications ---------------------------------------------------------------


async def test_experimental_notifications_are_dropped_without_capability() -> None:
    router = Router(experimental_notifications={REALTIME_STARTED})
    connection = connect(router, experimental=False)
    receipt = WriteReceipt()
    await router.send(connection.id, Notification(REALTIME_STARTED, {"threadId": "t"}), receipt)
    await router.broadcast(Notification(REALTIME_STARTED, {"threadId": "t"}))
    assert receipt.written is False
    assert await written(connection) == []


async def test_experimental_notifications_are_preserved_with_capability() -> None:
    router = Router(experimental_notifications={REALTIME_STARTED})
    connection = connect(router, experimental=True)
    await router.send(connection.id, Notification(REALTIME_STARTED, {"threadId": "t"}))
    await router.broadcast(Notification(REALTIME_STARTED, {"threadId": "b"}))
    frames = await written(connection)
    assert methods(frames) == [REALTIME_STARTED, REALTIME_STARTED]
    assert [frame["params"] for frame in frames] == [{"threadId": "t"}, {"threadId": "b"}]


async def test_experimental_notification_reaches_only_capable_connections_in_broadcast() -> None:
    router = Router(experimental_notifications={REALTIME_STARTED})
    stable = connect(router, experimental=False)
    capable = connect(router, experimental=True)
    await router.broadcast(Notification(REALTIME_STARTED))
    await router.broadcast(Notification("thread/started"))
    assert methods(await written(stable)) == ["thread/started"]
    assert methods(await written(capable)) == [REALTIME_STARTED, "thread/started"]


# -- experimental fields of server requests ---------------------------------------------------


@attrs.frozen
class ApprovalParams:
    thread_id: str
    command: str
    available_decisions: Any = attrs.field(default=None, metadata=OPTIONAL)
    additional_permissions: Any = attrs.field(default=None, metadata=EXPERIMENTAL_OPTIONAL)


APPROVAL_METHOD = "item/commandExecution/requestApproval"
PERMISSIONS = {"network": {"enabled": True}}


def approval_request(request_id: int | str = 0) -> Request:
    params = ApprovalParams(
        thread_id="thr_1",
        command="ls",
        available_decisions=["accept", "decline"],
        additional_permissions=PERMISSIONS,
    )
    return Request(request_id, APPROVAL_METHOD, params)


@pytest.mark.parametrize("request_id", [0, "approval-1"])
async def test_command_execution_request_approval_strips_additional_permissions_without_capability(
    request_id: int | str,
) -> None:
    router = Router()
    connection = connect(router, experimental=False)
    request = approval_request(request_id)
    await router.send(connection.id, request)
    (frame,) = await written(connection)
    assert frame == {
        "id": request_id,
        "method": APPROVAL_METHOD,
        "params": {
            "threadId": "thr_1",
            "command": "ls",
            "availableDecisions": ["accept", "decline"],
        },
    }
    # The caller's message is untouched.
    assert isinstance(request.params, ApprovalParams)
    assert request.params.additional_permissions == PERMISSIONS


@pytest.mark.parametrize("request_id", [0, "approval-1"])
async def test_command_execution_request_approval_keeps_additional_permissions_with_capability(
    request_id: int | str,
) -> None:
    router = Router()
    connection = connect(router, experimental=True)
    await router.send(connection.id, approval_request(request_id))
    (frame,) = await written(connection)
    assert frame == {
        "id": request_id,
        "method": APPROVAL_METHOD,
        "params": {
            "threadId": "thr_1",
            "command": "ls",
            "availableDecisions": ["accept", "decline"],
            "additionalPermissions": PERMISSIONS,
        },
    }


async def test_uninitialized_connection_gets_the_stripped_request() -> None:
    router = Router()
    connection = connect(router, ready=False)
    await router.send(connection.id, approval_request())
    (frame,) = await written(connection)
    assert "additionalPermissions" not in frame["params"]


# -- slow consumers ---------------------------------------------------------------------------


async def test_broadcast_does_not_block_on_slow_connection(
    autojump_clock: trio.testing.MockClock,
) -> None:
    router = Router()
    slow = connect(router, messages=1)
    fast = connect(router, messages=1)
    await router.send(slow.id, Notification("original"))  # the slow queue is now full

    # With the autojump clock, waiting on the slow queue would jump straight to the deadline.
    with trio.fail_after(0.1):
        await router.broadcast(Notification("broadcast"))

    assert slow.id not in router
    assert router.get(slow.id) is None
    assert router.connections == [fast]
    assert len(router) == 1
    assert slow.cancel_scope.cancel_called
    assert not fast.cancel_scope.cancel_called
    assert methods(await written(fast)) == ["broadcast"]
    assert methods(await written(slow)) == ["original"]


async def test_to_connection_disconnects_a_full_disconnectable_connection(
    autojump_clock: trio.testing.MockClock,
) -> None:
    router = Router()
    slow = connect(router, messages=1)
    await router.send(slow.id, Notification("original"))
    receipt = WriteReceipt()
    with trio.fail_after(0.1):
        await router.send(slow.id, Notification("overflow"), receipt)
    assert receipt.written is False
    assert slow.id not in router
    assert slow.cancel_scope.cancel_called
    assert methods(await written(slow)) == ["original"]


BIG = "x" * appserver.router.LARGE_FRAME_BYTES


async def test_a_large_frame_waits_for_a_reader_that_keeps_reading(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    router = Router()
    reader = connect(router, messages=1)
    await router.send(reader.id, Notification("queued"))
    writer = RecordingWriter()

    async def read_a_little_later() -> None:
        await trio.sleep(appserver.router.LARGE_FRAME_GRACE / 2)
        await reader.run_writer(writer)

    nursery.start_soon(read_a_little_later)
    start = trio.current_time()
    await router.multicast([reader.id], Notification("big", BIG))
    receipt = WriteReceipt()
    await router.send(reader.id, Notification("big too", BIG), receipt)
    assert trio.current_time() - start < appserver.router.LARGE_FRAME_GRACE
    assert reader.id in router
    assert not reader.cancel_scope.cancel_called
    reader.close_outbound()
    await wait_all_tasks_blocked()
    assert [orjson.loads(frame)["method"] for frame in writer.frames] == [
        "queued",
        "big",
        "big too",
    ]
    assert receipt.written is True


async def test_a_large_frame_gives_a_reader_that_stopped_the_grace_and_no_more(
    autojump_clock: trio.testing.MockClock,
) -> None:
    router = Router()
    stuck = connect(router, messages=1)
    fast = connect(router, messages=4)
    await router.send(stuck.id, Notification("queued"))
    start = trio.current_time()
    await router.multicast([stuck.id, fast.id], Notification("big", BIG))
    assert trio.current_time() - start == pytest.approx(appserver.router.LARGE_FRAME_GRACE)
    assert stuck.id not in router
    assert stuck.cancel_scope.cancel_called
    assert methods(await written(fast)) == ["big"]  # the others had it at once
    with trio.fail_after(0.1):
        await router.send(fast.id, Notification("small"))  # no more waiting


async def test_a_small_frame_behind_a_waiting_large_one_waits_too(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    router = Router()
    reader = connect(router, messages=1)
    await router.send(reader.id, Notification("queued"))
    nursery.start_soon(router.multicast, [reader.id], Notification("big", BIG))
    await wait_all_tasks_blocked()
    nursery.start_soon(router.multicast, [reader.id], Notification("small"))
    await wait_all_tasks_blocked()
    assert reader.id in router  # not cut for the small frame: it waits behind the big one
    writer = RecordingWriter()
    nursery.start_soon(reader.run_writer, writer)
    await wait_all_tasks_blocked()
    reader.close_outbound()
    await wait_all_tasks_blocked()
    assert [orjson.loads(frame)["method"] for frame in writer.frames] == [
        "queued",
        "big",
        "small",
    ]


async def test_to_connection_stdio_waits_instead_of_disconnecting_when_writer_queue_is_full(
    nursery: trio.Nursery,
) -> None:
    router = Router()
    stdio = connect(router, disconnectable=False, messages=1)
    await router.send(stdio.id, Notification("queued"))
    receipt = WriteReceipt()
    done: list[bool] = []

    async def send_second() -> None:
        await router.send(stdio.id, Notification("second"), receipt)
        done.append(True)

    nursery.start_soon(send_second)
    await wait_all_tasks_blocked()
    assert done == []  # waiting for room...
    assert stdio.id in router  # ...not disconnected
    assert not stdio.cancel_scope.cancel_called

    writer = RecordingWriter()
    nursery.start_soon(stdio.run_writer, writer)
    await wait_all_tasks_blocked()
    assert done == [True]
    assert receipt.written is True
    assert [orjson.loads(frame)["method"] for frame in writer.frames] == ["queued", "second"]
    stdio.close_outbound()


async def test_broadcast_serves_everyone_else_before_waiting_for_full_stdio(
    nursery: trio.Nursery,
) -> None:
    router = Router()
    stdio = connect(router, disconnectable=False, messages=1)
    slow = connect(router, messages=1)
    fast = connect(router, messages=4)
    await router.send(stdio.id, Notification("queued"))
    await router.send(slow.id, Notification("queued"))
    done: list[bool] = []

    async def broadcast() -> None:
        await router.broadcast(Notification("broadcast"))
        done.append(True)

    nursery.start_soon(broadcast)
    await wait_all_tasks_blocked()
    assert done == []  # waiting for the stdio queue
    assert slow.id not in router  # but the slow socket is already gone
    assert slow.cancel_scope.cancel_called
    assert stdio.id in router
    assert methods(await written(fast)) == ["broadcast"]  # and the fast one already has it

    writer = RecordingWriter()
    nursery.start_soon(stdio.run_writer, writer)
    await wait_all_tasks_blocked()
    assert done == [True]
    assert [orjson.loads(frame)["method"] for frame in writer.frames] == ["queued", "broadcast"]
    stdio.close_outbound()


# -- initialization and targets ---------------------------------------------------------------


async def test_broadcast_skips_connections_that_are_not_ready() -> None:
    router = Router()
    pending = connect(router, ready=False)
    ready = connect(router)
    await router.broadcast(Notification("thread/started"))
    assert await written(pending) == []
    assert methods(await written(ready)) == ["thread/started"]


async def test_broadcast_follows_the_ready_flag_not_the_session() -> None:
    router = Router()
    connection = connect(router, ready=False)
    connection.session.initialized = True  # initialize handled, its reply not yet queued
    await router.broadcast(Notification("early"))
    connection.ready = True
    await router.broadcast(Notification("late"))
    assert methods(await written(connection)) == ["late"]


async def test_to_connection_send_reaches_an_uninitialized_connection() -> None:
    router = Router()
    connection = connect(router, ready=False)
    receipt = WriteReceipt()
    await router.send(connection.id, Notification("configWarning", {"summary": "x"}), receipt)
    assert not receipt.settled
    assert methods(await written(connection)) == ["configWarning"]
    assert receipt.written is True


async def test_to_connection_send_reaches_only_its_target() -> None:
    router = Router()
    target, other = connect(router), connect(router)
    await router.send(target.id, Notification("configWarning"))
    assert methods(await written(target)) == ["configWarning"]
    assert await written(other) == []


async def test_notification_wire_shape() -> None:
    router = Router()
    connection = connect(router)
    await router.send(connection.id, Notification("thread/started", {"threadId": "t"}))
    await router.send(connection.id, Notification("initialized"))
    first, second = await written(connection)
    assert set(first) == {"method", "params", "emittedAtMs"}
    assert "jsonrpc" not in first
    assert isinstance(first["emittedAtMs"], int)
    assert set(second) == {"method", "emittedAtMs"}


# -- write receipts ---------------------------------------------------------------------------


async def test_write_receipt_settles_false_for_an_unknown_connection() -> None:
    router = Router()
    receipt = WriteReceipt()
    await router.send(12345, Notification("configWarning"), receipt)
    assert receipt.written is False


async def test_write_receipt_settles_false_after_disconnect() -> None:
    router = Router()
    connection = connect(router)
    router.disconnect(connection)
    assert connection.cancel_scope.cancel_called
    assert connection.id not in router
    receipt = WriteReceipt()
    await router.send(connection.id, Notification("configWarning"), receipt)
    assert receipt.written is False
    assert await written(connection) == []


async def test_write_receipt_settles_false_for_a_closed_connection() -> None:
    router = Router()
    connection = connect(router)
    connection.close_outbound()
    receipt = WriteReceipt()
    await router.send(connection.id, Notification("configWarning"), receipt)
    assert receipt.written is False


async def test_write_receipt_settles_true_after_the_write(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    router = Router()
    connection = connect(router)
    receipt = WriteReceipt()
    await router.send(connection.id, Notification("configWarning"), receipt)
    assert not receipt.settled
    writer = RecordingWriter()
    nursery.start_soon(connection.run_writer, writer)
    with trio.fail_after(1):
        assert await receipt.wait() is True
    assert len(writer.frames) == 1
    connection.close_outbound()


# -- membership -------------------------------------------------------------------------------


async def test_detach_and_disconnect_all() -> None:
    router = Router()
    a, b, c = connect(router), connect(router), connect(router)
    assert len(router) == 3
    router.detach(a.id)
    router.detach(a.id)  # idempotent
    assert a.id not in router
    assert not a.cancel_scope.cancel_called  # detaching is not disconnecting
    assert router.disconnect_all() == 2
    assert len(router) == 0
    assert router.connections == []
    assert b.cancel_scope.cancel_called
    assert c.cancel_scope.cancel_called
    await router.broadcast(Notification("after"))
    assert await written(b) == []


async def test_one_broadcast_encodes_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Message] = []

    def counting_encode(message: Message) -> bytes:
        calls.append(message)
        return encode(message)

    monkeypatch.setattr(appserver.router, "encode", counting_encode)
    router = Router()
    connections = [connect(router) for _ in range(3)]
    await router.broadcast(Notification("thread/started", {"threadId": "t"}))
    assert len(calls) == 1
    frames = [await written(connection) for connection in connections]
    assert frames[0] == frames[1] == frames[2]
    assert methods(frames[0]) == ["thread/started"]


# -- pre-encoded stream frames ----------------------------------------------------------------


async def test_multicast_frame_filters_like_multicast_and_disconnects_a_full_socket() -> None:
    router = Router(experimental_notifications={REALTIME_STARTED})
    plain = connect(router)
    opted_out = connect(router, opt_out={"item/agentMessage/delta"})
    no_experimental = connect(router)
    full = connect(router, messages=1)
    await router.send(full.id, Notification("original"))
    frame = encode(Notification("item/agentMessage/delta", {"delta": "a"}))
    ids = {plain.id, opted_out.id, full.id, 999}
    await router.multicast_frame(ids, "item/agentMessage/delta", frame)
    await router.multicast_frame({no_experimental.id}, REALTIME_STARTED, b"{}")
    assert full.id not in router
    assert methods(await written(plain)) == ["item/agentMessage/delta"]
    assert await written(opted_out) == []
    assert await written(no_experimental) == []
    assert methods(await written(full)) == ["original"]
