"""Turn methods: start, interrupt, steer."""

from __future__ import annotations

from typing import Any

from appserver.app.handlers.sessions import (
    apply_collaboration_mode,
    apply_overrides,
    begin_turn,
    run_then_drain_queue,
)
from appserver.app.threads import Threads
from appserver.processor import RequestContext
from appserver.protocol import v2
from appserver.registry import Registry
from appserver.wire.errors import RpcError


def register(registry: Registry, threads: Threads) -> None:
    method = registry.method

    @method("turn/start", v2.TurnStartParams)
    async def turn_start(ctx: RequestContext, params: v2.TurnStartParams) -> dict[str, Any]:
        loaded = await threads.load(params.thread_id)
        apply_overrides(threads, loaded.state, params)
        if isinstance(params.collaboration_mode, dict):
            apply_collaboration_mode(loaded.state, params.collaboration_mode)
        threads.subscribe(loaded, ctx.connection_id)
        run = await begin_turn(
            threads,
            loaded,
            params.input,
            output_schema=params.output_schema,
            client_user_message_id=params.client_user_message_id,
        )

        async def spawn() -> None:
            threads.start_turn_task(lambda: run_then_drain_queue(threads, run))

        ctx.after_reply(spawn)
        return {"turn": run.turn.to_wire()}

    @method("turn/interrupt", v2.TurnInterruptParams)
    async def turn_interrupt(ctx: RequestContext, params: v2.TurnInterruptParams) -> dict[str, Any]:
        loaded = await threads.load(params.thread_id)
        run = loaded.active
        if not params.turn_id:
            # The TUI sends an empty turnId when it closes a side conversation without knowing
            # which turn runs: interrupt whatever runs, and nothing is not an error.
            if run is not None:
                run.cancel_scope.cancel()
            return {}
        if run is None or run.turn.id != params.turn_id:
            raise RpcError.invalid_request(
                f"no turn {params.turn_id} in progress in thread {params.thread_id}"
            )
        run.cancel_scope.cancel()
        return {}

    @method("turn/steer", v2.TurnSteerParams)
    async def turn_steer(ctx: RequestContext, params: v2.TurnSteerParams) -> dict[str, Any]:
        loaded = await threads.load(params.thread_id)
        run = loaded.active
        if run is None or run.turn.id != params.expected_turn_id:
            raise RpcError.invalid_request(
                f"expectedTurnId {params.expected_turn_id} is not the turn in progress"
            )
        await run.steer(params.input, params.client_user_message_id)
        return {"turnId": run.turn.id}
