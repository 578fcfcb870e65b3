"""What thread and turn handlers share: session responses, overrides, starting turns."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from appserver.app.thread_state import ThreadState, TurnState
from appserver.app.threads import LoadedThread, Threads, new_id
from appserver.app.turns import TurnRun, input_text
from appserver.processor import RequestContext
from appserver.protocol import v2
from appserver.wire.converter import unstructure
from appserver.wire.errors import RpcError

SANDBOX_POLICIES: dict[str, dict[str, Any]] = {
    "read-only": {"type": "readOnly", "networkAccess": False},
    "workspace-write": {
        "type": "workspaceWrite",
        "writableRoots": [],
        "networkAccess": False,
        "excludeTmpdirEnvVar": False,
        "excludeSlashTmp": False,
    },
    "danger-full-access": {"type": "dangerFullAccess"},
}


def absolute(path: str | None, default: str) -> str:
    return os.path.abspath(os.path.expanduser(path)) if path else default


def session_response(
    loaded: LoadedThread, *, include_turns: bool = True
) -> v2.ThreadSessionResponse:
    state = loaded.state
    return v2.ThreadSessionResponse(
        thread=state.to_wire(loaded.status(), include_turns=include_turns),
        model=state.model,
        model_provider="appserver",
        cwd=state.cwd,
        approval_policy=state.approval_policy,
        approvals_reviewer=state.approvals_reviewer,
        sandbox=state.sandbox,
        service_tier=state.service_tier,
        reasoning_effort=state.reasoning_effort,
    )


def client_name(ctx: RequestContext) -> str | None:
    info = ctx.connection.session.client_info
    return info.name if info else None


def announce_started(threads: Threads, loaded: LoadedThread) -> Callable[[], Any]:
    async def announce() -> None:
        thread = loaded.state.to_wire(loaded.status())
        await threads.broadcast("thread/started", {"thread": unstructure(thread)})

    return announce


def apply_overrides(threads: Threads, state: ThreadState, params: v2.SessionOverrides) -> bool:
    """Apply the session fields a request overrides; True if anything changed."""
    before = (state.cwd, state.model, state.approval_policy, state.approvals_reviewer)
    before_sandbox = state.sandbox
    if params.cwd:
        state.cwd = absolute(params.cwd, state.cwd)
    if params.model:
        state.model = params.model
    if params.approval_policy is not None:
        state.approval_policy = params.approval_policy
    if params.approvals_reviewer:
        state.approvals_reviewer = params.approvals_reviewer
    if params.sandbox in SANDBOX_POLICIES:
        state.sandbox = SANDBOX_POLICIES[params.sandbox]
    after = (state.cwd, state.model, state.approval_policy, state.approvals_reviewer)
    return after != before or state.sandbox != before_sandbox


async def begin_turn(
    threads: Threads,
    loaded: LoadedThread,
    user_input: list[dict[str, Any]],
    *,
    output_schema: Any = None,
    client_user_message_id: str | None = None,
    make_run: Callable[..., TurnRun] = TurnRun,
) -> TurnRun:
    state = loaded.state
    if loaded.active is not None:
        raise RpcError.invalid_request(
            f"thread {state.id} already has a turn in progress ({loaded.active.turn.id}); "
            "use turn/steer or turn/interrupt"
        )
    agent = threads.agent_for(state.model)
    turn = TurnState(id=new_id(), seq=len(state.turns))
    state.turns.append(turn)
    if not state.preview:
        state.preview = input_text(user_input)[:200]
    state.touch()
    run = make_run(
        threads,
        loaded,
        turn,
        agent,
        user_input,
        output_schema=output_schema,
        client_user_message_id=client_user_message_id,
    )
    loaded.active = run
    try:
        await threads.save_turn(state, turn)
    except BaseException:
        state.turns.remove(turn)
        loaded.active = None
        raise
    # Running from now on, before its task starts: a drain beginning meanwhile waits for it.
    threads.turn_started()
    return run


async def start_queued(threads: Threads, loaded: LoadedThread) -> None:
    if loaded.active is None and loaded.queue and loaded.state.id in threads.loaded:
        submission = loaded.queue.pop(0)
        run = await begin_turn(
            threads,
            loaded,
            submission["input"],
            client_user_message_id=submission["clientUserMessageId"],
        )
        threads.start_turn_task(lambda: run_then_drain_queue(threads, run))


async def run_then_drain_queue(threads: Threads, run: TurnRun) -> None:
    await run.run()
    await start_queued(threads, run.loaded)
