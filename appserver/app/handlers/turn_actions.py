"""Turn-shaped actions a client asks for: `thread/compact/start`, `review/start`,
`thread/shellCommand`. Each runs as a turn of its own (announced, persisted, interruptible with
`turn/interrupt`), after the thread's running turn if there is one. The TUI exits on any error
reply to these, so once the thread exists they are always answered with a result; what fails
later fails the turn (an `error` notification and a `failed` turn), never the request."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import attrs

from appserver.app.compaction import CompactionRun
from appserver.app.handlers.sessions import announce_started, begin_turn, run_then_drain_queue
from appserver.app.review import ReviewRun
from appserver.app.thread_state import ThreadState
from appserver.app.threads import LoadedThread, Threads, new_id
from appserver.app.turns import TurnRun
from appserver.app.user_shell import UserShellRun
from appserver.processor import RequestContext
from appserver.protocol import v2
from appserver.registry import Registry
from appserver.wire.errors import RpcError

log = logging.getLogger(__name__)

REVIEW_TARGETS = frozenset({"uncommittedChanges", "baseBranch", "commit", "custom"})


async def begin_when_idle(
    threads: Threads,
    loaded: LoadedThread,
    user_input: list[dict[str, Any]],
    make_run: Callable[..., TurnRun],
) -> TurnRun:
    """`begin_turn` once the thread's running turn (if any) has finished."""
    while loaded.active is not None:
        await loaded.active.done.wait()
    # No checkpoint between the check above and begin_turn claiming the thread.
    return await begin_turn(threads, loaded, user_input, make_run=make_run)


def spawn(threads: Threads, run: TurnRun) -> Callable[[], Any]:
    async def start() -> None:
        threads.start_turn_task(lambda: run_then_drain_queue(threads, run))

    return start


async def start_action(
    ctx: RequestContext, threads: Threads, loaded: LoadedThread, make_run: Callable[..., TurnRun]
) -> None:
    """Begin the action's turn now if the thread is idle, else after its running turn (the
    request is answered at once either way, as Codex answers it)."""
    if loaded.active is None:
        ctx.after_reply(spawn(threads, await begin_turn(threads, loaded, [], make_run=make_run)))
        return

    async def later() -> None:
        try:
            run = await begin_when_idle(threads, loaded, [], make_run)
        except Exception:
            log.exception("could not start a %s in thread %s", make_run, loaded.state.id)
            return
        await run_then_drain_queue(threads, run)

    async def wait_in_background() -> None:
        threads.start_turn_task(later)

    ctx.after_reply(wait_in_background)


def register(registry: Registry, threads: Threads) -> None:
    method = registry.method

    @method("thread/compact/start", v2.ThreadIdParams)
    async def thread_compact_start(
        ctx: RequestContext, params: v2.ThreadIdParams
    ) -> dict[str, Any]:
        loaded = await threads.load(params.thread_id)
        threads.subscribe(loaded, ctx.connection_id)
        await start_action(ctx, threads, loaded, CompactionRun)
        return {}

    @method("thread/shellCommand", v2.ThreadShellCommandParams)
    async def thread_shell_command(
        ctx: RequestContext, params: v2.ThreadShellCommandParams
    ) -> dict[str, Any]:
        if not params.command.strip():
            raise RpcError.invalid_request("command must not be empty")
        loaded = await threads.load(params.thread_id)
        threads.subscribe(loaded, ctx.connection_id)

        def make_run(*args: Any, **kwargs: Any) -> UserShellRun:
            run = UserShellRun(*args, **kwargs)
            run.command, run.timeout_ms = params.command, params.timeout_ms
            return run

        await start_action(ctx, threads, loaded, make_run)
        return {}

    @method("review/start", v2.ReviewStartParams)
    async def review_start(ctx: RequestContext, params: v2.ReviewStartParams) -> dict[str, Any]:
        target = params.target
        kind = target.get("type")
        if kind not in REVIEW_TARGETS:
            raise RpcError.invalid_request(f"unknown review target type: {kind}")
        required = {"baseBranch": "branch", "commit": "sha", "custom": "instructions"}.get(kind)
        if required and not str(target.get(required) or "").strip():
            raise RpcError.invalid_request(f"review target {kind} needs a non-empty {required}")
        parent = await threads.load(params.thread_id)
        if params.delivery == "detached":
            loaded = await detached_review_thread(threads, parent.state)
            ctx.after_reply(announce_started(threads, loaded))
        else:
            loaded = parent
        threads.subscribe(loaded, ctx.connection_id)

        def make_run(*args: Any, **kwargs: Any) -> ReviewRun:
            run = ReviewRun(*args, **kwargs)
            run.target = dict(target)
            return run

        run = await begin_when_idle(threads, loaded, [], make_run)
        ctx.after_reply(spawn(threads, run))
        return {"turn": run.turn.to_wire(), "reviewThreadId": loaded.state.id}


async def detached_review_thread(threads: Threads, parent: ThreadState) -> LoadedThread:
    """A new thread for a detached review: the parent's settings, no turns."""
    state = attrs.evolve(
        parent,
        id=new_id(),
        name=None,
        preview="",
        archived=False,
        forked_from_id=parent.id,
        goal=None,
        turns=[],
    )
    state.touch()
    state.created_at = state.updated_at
    await threads.save(state)
    loaded = threads.loaded[state.id] = LoadedThread(state)
    return loaded
