"""The processor: initialize gate, error order, experimental gate, dispatch, overload.

Ports codex-source-spec §10.1 (overload), and the §10.11/§10.12 cases that need no threads.
"""

from __future__ import annotations

from typing import Any

import attrs
import pytest
import trio
import trio.testing

from appserver.ingress import Ingress
from appserver.processor import RequestContext
from appserver.wire.converter import EXPERIMENTAL_OPTIONAL
from appserver.wire.errors import RpcError
from appserver.wire.messages import Notification
from tests.harness import (
    initialize,
    initialize_params,
    make_processor,
    open_connection,
    queued,
    send,
)

OVERLOADED = {"code": -32001, "message": "Server overloaded; retry later."}


def error(reply: dict[str, Any]) -> dict[str, Any]:
    assert "result" not in reply, reply
    err: dict[str, Any] = reply["error"]
    return err


# -- initialize ------------------------------------------------------------------------------


async def test_initialize_uses_client_info_name_as_originator(nursery: trio.Nursery) -> None:
    processor = make_processor()
    conn = open_connection(processor, nursery)
    reply = await initialize(processor, conn, "codex_vscode")
    result = reply["result"]
    assert set(result) == {"userAgent", "codexHome", "platformFamily", "platformOs"}
    assert result["userAgent"].startswith("codex_vscode/0.169.0 (")
    assert result["userAgent"].endswith("(codex_vscode; 1.0.0)")
    assert result["codexHome"] == "/tmp/appserver-test"
    assert result["platformFamily"] == "unix"
    assert result["platformOs"] == "linux"
    assert conn.session.initialized
    assert conn.ready


@pytest.mark.parametrize("name", ["codex_app_server_daemon", "codex-backend"])
async def test_initialize_probe_does_not_override_originator(
    nursery: trio.Nursery, name: str
) -> None:
    processor = make_processor()
    probe = await initialize(processor, open_connection(processor, nursery), name)
    assert probe["result"]["userAgent"].startswith("appserver/0.169.0 (")
    alpha = await initialize(processor, open_connection(processor, nursery), "alpha")
    assert alpha["result"]["userAgent"].startswith("alpha/")
    beta = await initialize(processor, open_connection(processor, nursery), "beta")
    assert beta["result"]["userAgent"].startswith("alpha/")
    assert beta["result"]["userAgent"].endswith("(beta; 1.0.0)")


async def test_initialize_respects_originator_override_env_var(
    nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CODEX_INTERNAL_ORIGINATOR_OVERRIDE", "codex_originator_via_env_var")
    processor = make_processor()
    reply = await initialize(processor, open_connection(processor, nursery), "codex_vscode")
    assert reply["result"]["userAgent"].startswith("codex_originator_via_env_var/")


async def test_initialize_rejects_invalid_client_name(nursery: trio.Nursery) -> None:
    processor = make_processor()
    conn = open_connection(processor, nursery)
    params = initialize_params("bad\rname")
    await send(processor, conn, {"id": 1, "method": "initialize", "params": params})
    (reply,) = queued(conn)
    assert reply == {
        "error": {
            "code": -32600,
            "message": "Invalid clientInfo.name: 'bad\rname'. Must be a valid HTTP header value.",
        },
        "id": 1,
    }
    assert not conn.session.initialized
    await initialize(processor, conn, "good")
    assert conn.session.initialized


async def test_second_initialize_is_refused_and_capabilities_stay(nursery: trio.Nursery) -> None:
    processor = make_processor()
    conn = open_connection(processor, nursery)
    await initialize(processor, conn, experimentalApi=False)
    params = initialize_params(experimentalApi=True)
    await send(processor, conn, {"id": 2, "method": "initialize", "params": params})
    (reply,) = queued(conn)
    assert reply == {"error": {"code": -32600, "message": "Already initialized"}, "id": 2}
    assert conn.session.experimental_api is False


async def test_request_before_initialize_is_refused(nursery: trio.Nursery) -> None:
    processor = make_processor()
    conn = open_connection(processor, nursery)
    await send(processor, conn, {"id": 1, "method": "windowsSandbox/readiness"})
    assert queued(conn) == [{"error": {"code": -32600, "message": "Not initialized"}, "id": 1}]


async def test_unknown_method_and_bad_params_are_answered_before_the_init_check(
    nursery: trio.Nursery,
) -> None:
    processor = make_processor()
    conn = open_connection(processor, nursery)
    await send(processor, conn, {"id": 1, "method": "nope/nope"})
    await send(processor, conn, {"id": 2, "method": "initialize", "params": {}})
    await send(processor, conn, {"id": 3, "method": "mock/experimentalMethod"})
    unknown, no_client_info, no_params = queued(conn)
    assert error(unknown)["message"].startswith(
        "Invalid request: unknown variant `nope/nope`, expected one of `initialize`, "
    )
    assert error(no_client_info)["message"] == "Invalid request: missing field `clientInfo`"
    assert error(no_params)["message"] == "Invalid request: missing field `params`"
    assert {e["error"]["code"] for e in (unknown, no_client_info, no_params)} == {-32600}


async def test_initialize_with_null_capabilities_and_extra_fields(nursery: trio.Nursery) -> None:
    processor = make_processor()
    conn = open_connection(processor, nursery)
    params = {
        "protocolVersion": "1",
        "clientInfo": {"name": "codex-tui", "title": None, "version": "0.169.0"},
        "capabilities": {
            "requiredHumanApproval": True,
            "experimentalApi": True,
            "requestAttestation": False,
            "optOutNotificationMethods": None,
        },
    }
    request = {"jsonrpc": "2.0", "id": "x", "method": "initialize", "params": params}
    await send(processor, conn, request)
    (reply,) = queued(conn)
    assert "result" in reply
    assert conn.session.experimental_api
    assert conn.session.opt_out_notification_methods == frozenset()


async def test_config_warnings_follow_the_reply_and_respect_opt_out(nursery: trio.Nursery) -> None:
    warning = {"summary": "Invalid configuration; using defaults.", "details": None}
    processor = make_processor(config_warnings=(warning,))
    plain = open_connection(processor, nursery)
    await send(processor, plain, {"id": 1, "method": "initialize", "params": initialize_params()})
    reply, notice = queued(plain)
    assert reply["id"] == 1
    assert notice["method"] == "configWarning"
    assert notice["params"] == warning
    quiet = open_connection(processor, nursery)
    params = initialize_params(optOutNotificationMethods=["configWarning"])
    await send(processor, quiet, {"id": 1, "method": "initialize", "params": params})
    assert [m.get("method") for m in queued(quiet)] == [None]


async def test_broadcast_reaches_a_connection_only_after_initialize(nursery: trio.Nursery) -> None:
    processor = make_processor()
    conn = open_connection(processor, nursery)
    await processor.router.broadcast(Notification("thread/started", {"n": 1}))
    assert queued(conn) == []
    await initialize(processor, conn)
    await processor.router.broadcast(Notification("thread/started", {"n": 2}))
    (notice,) = queued(conn)
    assert notice["params"] == {"n": 2}


async def test_initialized_notification_is_accepted_silently(nursery: trio.Nursery) -> None:
    processor = make_processor()
    conn = open_connection(processor, nursery)
    await send(processor, conn, {"method": "initialized"})
    await initialize(processor, conn)
    await send(processor, conn, {"method": "initialized", "params": {}})
    assert queued(conn) == []


# -- experimental gate -----------------------------------------------------------------------


async def test_mock_experimental_method_requires_experimental_api_capability(
    nursery: trio.Nursery,
) -> None:
    processor = make_processor()
    conn = open_connection(processor, nursery)
    await initialize(processor, conn, experimentalApi=False)
    request = {"id": 1, "method": "mock/experimentalMethod", "params": {"value": "x"}}
    await send(processor, conn, request)
    (reply,) = queued(conn)
    assert reply == {
        "error": {
            "code": -32600,
            "message": "mock/experimentalMethod requires experimentalApi capability",
        },
        "id": 1,
    }


async def test_mock_experimental_method_works_with_capability(nursery: trio.Nursery) -> None:
    processor = make_processor()
    conn = open_connection(processor, nursery)
    await initialize(processor, conn, experimentalApi=True)
    request = {"id": 1, "method": "mock/experimentalMethod", "params": {"value": "x"}}
    await send(processor, conn, request)
    assert queued(conn) == [{"id": 1, "result": {"echoed": "x"}}]


@attrs.frozen
class FieldGatedParams:
    cwd: str | None = None
    mock_experimental_field: str | None = attrs.field(default=None, metadata=EXPERIMENTAL_OPTIONAL)


async def test_experimental_field_requires_capability_unless_null(nursery: trio.Nursery) -> None:
    processor = make_processor()
    processor.registry.method("test/start", FieldGatedParams)(lambda ctx, params: {"ok": True})
    conn = open_connection(processor, nursery)
    await initialize(processor, conn)
    await send(processor, conn, {"id": 1, "method": "test/start", "params": {"cwd": "/"}})
    gated = {"cwd": "/", "mockExperimentalField": "on"}
    await send(processor, conn, {"id": 2, "method": "test/start", "params": gated})
    nulled = {"mockExperimentalField": None}
    await send(processor, conn, {"id": 3, "method": "test/start", "params": nulled})
    allowed, refused, null_is_absent = queued(conn)
    assert allowed == {"id": 1, "result": {"ok": True}}
    assert error(refused)["message"] == (
        "test/start.mockExperimentalField requires experimentalApi capability"
    )
    assert null_is_absent == {"id": 3, "result": {"ok": True}}


# -- dispatch --------------------------------------------------------------------------------


async def test_handler_errors_become_error_replies(nursery: trio.Nursery) -> None:
    processor = make_processor()

    def refuses(ctx: RequestContext, params: None) -> None:
        raise RpcError(-32600, "thread not loaded: t1", {"reason": "x"})

    def crashes(ctx: RequestContext, params: None) -> None:
        raise ValueError("boom")

    processor.registry.method("test/refuses")(refuses)
    processor.registry.method("test/crashes")(crashes)
    conn = open_connection(processor, nursery)
    await initialize(processor, conn)
    await send(processor, conn, {"id": 1, "method": "test/refuses"})
    await send(processor, conn, {"id": 2, "method": "test/crashes"})
    await send(processor, conn, {"id": 3, "method": "windowsSandbox/readiness"})
    refused, crashed, fine = queued(conn)
    assert refused == {
        "error": {"code": -32600, "message": "thread not loaded: t1", "data": {"reason": "x"}},
        "id": 1,
    }
    assert crashed == {"error": {"code": -32603, "message": "boom"}, "id": 2}
    assert fine == {"id": 3, "result": {"status": "notConfigured"}}


async def test_slow_handler_does_not_block_later_requests(nursery: trio.Nursery) -> None:
    processor = make_processor()
    release = trio.Event()

    async def slow(ctx: RequestContext, params: None) -> dict[str, str]:
        await release.wait()
        return {"slow": "done"}

    processor.registry.method("test/slow")(slow)
    conn = open_connection(processor, nursery)
    await initialize(processor, conn)
    await send(processor, conn, {"id": "slow", "method": "test/slow"})
    await send(processor, conn, {"id": "fast", "method": "windowsSandbox/readiness"})
    await trio.testing.wait_all_tasks_blocked()
    assert [r["id"] for r in queued(conn)] == ["fast"]
    release.set()
    await trio.testing.wait_all_tasks_blocked()
    assert queued(conn) == [{"id": "slow", "result": {"slow": "done"}}]
    assert processor.ingress.in_flight == 0


async def test_same_request_id_on_two_connections_routes_independently(
    nursery: trio.Nursery,
) -> None:
    processor = make_processor()
    first, second = open_connection(processor, nursery), open_connection(processor, nursery)
    await initialize(processor, first)
    await send(processor, second, {"id": 77, "method": "windowsSandbox/readiness"})
    await send(processor, first, {"id": 77, "method": "windowsSandbox/readiness"})
    assert queued(first) == [{"id": 77, "result": {"status": "notConfigured"}}]
    assert queued(second) == [{"error": {"code": -32600, "message": "Not initialized"}, "id": 77}]


# -- overload (codex-source-spec §10.1) ------------------------------------------------------


def blocking_method(processor: Any) -> trio.Event:
    release = trio.Event()

    async def slow(ctx: RequestContext, params: None) -> dict[str, bool]:
        await release.wait()
        return {"done": True}

    processor.registry.method("test/slow")(slow)
    return release


async def test_enqueue_incoming_request_returns_overload_error_when_queue_is_full(
    nursery: trio.Nursery,
) -> None:
    processor = make_processor(ingress=Ingress(max_in_flight=1))
    release = blocking_method(processor)
    conn = open_connection(processor, nursery)
    await initialize(processor, conn)
    await send(processor, conn, {"id": 1, "method": "test/slow"})
    await send(processor, conn, {"id": 7, "method": "test/slow"})
    assert queued(conn) == [{"error": OVERLOADED, "id": 7}]
    release.set()
    await trio.testing.wait_all_tasks_blocked()
    assert queued(conn) == [{"id": 1, "result": {"done": True}}]


async def test_overload_is_per_connection_too(nursery: trio.Nursery) -> None:
    processor = make_processor(ingress=Ingress(max_in_flight=100, max_per_connection=1))
    release = blocking_method(processor)
    greedy, other = open_connection(processor, nursery), open_connection(processor, nursery)
    await initialize(processor, greedy)
    await initialize(processor, other)
    await send(processor, greedy, {"id": 1, "method": "test/slow"})
    await send(processor, greedy, {"id": 2, "method": "test/slow"})
    await send(processor, other, {"id": 1, "method": "test/slow"})
    assert queued(greedy) == [{"error": OVERLOADED, "id": 2}]
    assert queued(other) == []
    release.set()


async def test_enqueue_incoming_response_waits_instead_of_dropping_when_queue_is_full(
    nursery: trio.Nursery,
) -> None:
    processor = make_processor(ingress=Ingress(max_in_flight=1))
    release = blocking_method(processor)
    conn = open_connection(processor, nursery)
    await initialize(processor, conn)
    await send(processor, conn, {"id": 1, "method": "test/slow"})
    replies: list[Any] = []

    async def ask() -> None:
        reply = await processor.server_requests.request([conn.id], "item/tool/call", {"q": 1})
        replies.append(reply.result)

    nursery.start_soon(ask)
    await trio.testing.wait_all_tasks_blocked()
    (request,) = queued(conn)
    await send(processor, conn, {"id": request["id"], "result": {"answer": 42}})
    await trio.testing.wait_all_tasks_blocked()
    assert replies == [{"answer": 42}]
    release.set()


async def test_enqueue_incoming_request_does_not_block_when_writer_queue_is_full(
    nursery: trio.Nursery,
) -> None:
    processor = make_processor(ingress=Ingress(max_in_flight=1))
    release = blocking_method(processor)
    conn = open_connection(processor, nursery, messages=2)
    await initialize(processor, conn)
    await send(processor, conn, {"id": 1, "method": "test/slow"})
    await processor.router.send(conn.id, Notification("a"))
    await processor.router.send(conn.id, Notification("b"))
    with trio.move_on_after(1) as waited:
        await send(processor, conn, {"id": 7, "method": "test/slow"})
    assert not waited.cancelled_caught
    # The overload reply is not silently dropped: the slow consumer is disconnected instead.
    assert conn.cancel_scope.cancel_called
    assert conn.id not in processor.router
    assert [m["method"] for m in queued(conn)] == ["a", "b"]
    release.set()


async def test_stdio_overload_reply_waits_for_room_and_is_delivered(
    nursery: trio.Nursery,
) -> None:
    processor = make_processor(ingress=Ingress(max_in_flight=1))
    release = blocking_method(processor)
    conn = open_connection(processor, nursery, disconnectable=False, messages=1)
    await initialize(processor, conn)
    await send(processor, conn, {"id": 1, "method": "test/slow"})
    await processor.router.send(conn.id, Notification("a"))
    done = trio.Event()

    async def reader_sends_request() -> None:
        await send(processor, conn, {"id": 7, "method": "test/slow"})
        done.set()

    nursery.start_soon(reader_sends_request)
    await trio.testing.wait_all_tasks_blocked()
    assert not done.is_set()
    first = queued(conn)
    await trio.testing.wait_all_tasks_blocked()
    assert done.is_set()
    assert [m.get("method") for m in first] == ["a"]
    assert queued(conn) == [{"error": OVERLOADED, "id": 7}]
    assert not conn.cancel_scope.cancel_called
    release.set()


async def test_disconnect_cancels_in_flight_handlers_and_releases_ingress() -> None:
    processor = make_processor()
    started = trio.Event()

    async def forever(ctx: RequestContext, params: None) -> None:
        started.set()
        await trio.sleep_forever()

    processor.registry.method("test/forever")(forever)
    async with trio.open_nursery() as outer:
        with trio.CancelScope() as scope:
            conn = open_connection(processor, outer)
            conn.cancel_scope = scope
            await initialize(processor, conn)
            async with trio.open_nursery() as tasks:
                conn.tasks = tasks
                await send(processor, conn, {"id": 1, "method": "test/forever"})
                await started.wait()
                assert processor.ingress.in_flight == 1
                conn.disconnect()
        assert processor.ingress.in_flight == 0
