"""Server→client requests: ids, correlation, who may answer, cleanup when connections go."""

from __future__ import annotations

from typing import Any

import attrs
import trio
import trio.testing

from appserver.server_requests import CONNECTION_CLOSED, Reply
from appserver.wire.converter import EXPERIMENTAL_OPTIONAL
from tests.harness import initialize, make_processor, open_connection, queued, send


async def ask(processor: Any, targets: list[int], out: list[Reply], **kw: Any) -> None:
    out.append(await processor.server_requests.request(targets, "item/tool/call", {"x": 1}, **kw))


async def test_ids_are_process_unique_integers_from_zero(nursery: trio.Nursery) -> None:
    processor = make_processor()
    a, b = open_connection(processor, nursery), open_connection(processor, nursery)
    replies: list[Reply] = []
    nursery.start_soon(ask, processor, [a.id], replies)
    await trio.testing.wait_all_tasks_blocked()
    nursery.start_soon(ask, processor, [b.id], replies)
    await trio.testing.wait_all_tasks_blocked()
    (first,), (second,) = queued(a), queued(b)
    assert (first["id"], second["id"]) == (0, 1)
    assert first == {"id": 0, "method": "item/tool/call", "params": {"x": 1}}
    await send(processor, b, {"id": 1, "result": {"ok": 2}})
    await send(processor, a, {"id": 0, "error": {"code": -32000, "message": "no"}})
    await trio.testing.wait_all_tasks_blocked()
    by_id = {r.request_id: r for r in replies}  # the two waiters wake in either order
    assert by_id[1].result == {"ok": 2}
    assert by_id[0].error is not None
    assert by_id[0].error.message == "no"
    assert len(processor.server_requests) == 0


async def test_reply_from_a_connection_it_was_not_sent_to_is_ignored(
    nursery: trio.Nursery,
) -> None:
    processor = make_processor()
    target, stranger = open_connection(processor, nursery), open_connection(processor, nursery)
    replies: list[Reply] = []
    nursery.start_soon(ask, processor, [target.id], replies)
    await trio.testing.wait_all_tasks_blocked()
    (request,) = queued(target)
    await send(processor, stranger, {"id": request["id"], "result": {"decision": "accept"}})
    await trio.testing.wait_all_tasks_blocked()
    assert replies == []
    await send(processor, target, {"jsonrpc": "2.0", "id": request["id"], "result": {"d": 1}})
    await trio.testing.wait_all_tasks_blocked()
    assert replies == [Reply(result={"d": 1}, request_id=request["id"])]


async def test_unknown_reply_ids_are_ignored(nursery: trio.Nursery) -> None:
    processor = make_processor()
    conn = open_connection(processor, nursery)
    await initialize(processor, conn)
    await send(processor, conn, {"id": 99, "result": {}})
    await send(processor, conn, {"id": "99", "error": {"code": 1, "message": "x"}})
    await send(processor, conn, {"id": 1, "method": "windowsSandbox/readiness"})
    assert queued(conn) == [{"id": 1, "result": {"status": "notConfigured"}}]


async def test_request_fails_when_its_last_connection_closes(nursery: trio.Nursery) -> None:
    processor = make_processor()
    a, b = open_connection(processor, nursery), open_connection(processor, nursery)
    replies: list[Reply] = []
    nursery.start_soon(ask, processor, [a.id, b.id], replies)
    await trio.testing.wait_all_tasks_blocked()
    processor.connection_closed(a)
    await trio.testing.wait_all_tasks_blocked()
    assert replies == []
    processor.connection_closed(b)
    await trio.testing.wait_all_tasks_blocked()
    assert replies == [Reply(error=CONNECTION_CLOSED, request_id=0)]
    assert len(processor.server_requests) == 0


async def test_request_to_a_gone_connection_fails_at_once(nursery: trio.Nursery) -> None:
    processor = make_processor()
    replies: list[Reply] = []
    with trio.fail_after(1):
        await ask(processor, [12345], replies)
    assert replies == [Reply(error=CONNECTION_CLOSED, request_id=0)]


async def test_thread_requests_stay_pending_and_replay_in_id_order(nursery: trio.Nursery) -> None:
    processor = make_processor()
    owner = open_connection(processor, nursery)
    replies: list[Reply] = []
    nursery.start_soon(ask, processor, [owner.id], replies)
    await trio.testing.wait_all_tasks_blocked()
    first_pending: list[Reply] = []

    async def thread_ask(out: list[Reply]) -> None:
        out.append(
            await processor.server_requests.request(
                [owner.id], "item/commandExecution/requestApproval", {"n": 1}, thread_id="t1"
            )
        )

    second_pending: list[Reply] = []
    nursery.start_soon(thread_ask, first_pending)
    await trio.testing.wait_all_tasks_blocked()
    nursery.start_soon(thread_ask, second_pending)
    await trio.testing.wait_all_tasks_blocked()
    sent = [m["id"] for m in queued(owner)]
    processor.connection_closed(owner)
    await trio.testing.wait_all_tasks_blocked()
    assert replies == [Reply(error=CONNECTION_CLOSED, request_id=sent[0])]  # not thread-scoped
    assert first_pending == second_pending == []  # thread-scoped: still pending
    resumer = open_connection(processor, nursery)
    await processor.server_requests.replay(resumer.id, "t1")
    replayed = [m["id"] for m in queued(resumer)]
    assert replayed == sorted(replayed) == sent[1:]
    await send(processor, resumer, {"id": replayed[1], "result": {"decision": "decline"}})
    await send(processor, resumer, {"id": replayed[0], "result": {"decision": "accept"}})
    await trio.testing.wait_all_tasks_blocked()
    assert first_pending == [Reply(result={"decision": "accept"}, request_id=replayed[0])]
    assert second_pending == [Reply(result={"decision": "decline"}, request_id=replayed[1])]


@attrs.frozen
class ApprovalParams:
    command: str
    additional_permissions: Any = attrs.field(default=None, metadata=EXPERIMENTAL_OPTIONAL)


async def test_experimental_fields_are_stripped_per_connection(nursery: trio.Nursery) -> None:
    processor = make_processor()
    stable, experimental = open_connection(processor, nursery), open_connection(processor, nursery)
    await initialize(processor, stable, experimentalApi=False)
    await initialize(processor, experimental, experimentalApi=True)
    params = ApprovalParams("ls", {"network": True})

    async def approval() -> None:
        await processor.server_requests.request(
            [stable.id, experimental.id], "item/commandExecution/requestApproval", params
        )

    nursery.start_soon(approval)
    await trio.testing.wait_all_tasks_blocked()
    (plain,), (full,) = queued(stable), queued(experimental)
    assert plain["params"] == {"command": "ls"}
    assert full["params"] == {"command": "ls", "additionalPermissions": {"network": True}}
    assert plain["id"] == full["id"]
    nursery.cancel_scope.cancel()
