"""Thread methods: start, resume, fork, read, list, archive, names, turns and items."""

from __future__ import annotations

from typing import Any

import attrs

from appserver.app.handlers.pagination import descending, paginate
from appserver.app.handlers.sessions import (
    absolute,
    announce_started,
    apply_config,
    apply_overrides,
    client_name,
    request_config_keys,
    session_config,
    session_response,
    start_queued,
)
from appserver.app.thread_state import ThreadState, TurnState
from appserver.app.threads import LoadedThread, Threads, new_id, not_loaded
from appserver.app.turn_items import dynamic_tool_specs
from appserver.processor import RequestContext
from appserver.protocol import v2
from appserver.registry import Registry
from appserver.wire.errors import RpcError

SORT_FIELDS = {
    "created_at": "created_at",
    "updated_at": "updated_at",
    "recency_at": "updated_at",
    "section_position": "updated_at",
}


def register(registry: Registry, threads: Threads) -> None:
    method = registry.method

    @method("thread/start", v2.ThreadStartParams)
    async def thread_start(
        ctx: RequestContext, params: v2.ThreadStartParams
    ) -> v2.ThreadSessionResponse:
        settings = session_config(threads, params.config)
        model = params.model or settings.get("model")
        agent = threads.agent_for(model)
        state = ThreadState(
            id=new_id(),
            cwd=absolute(params.cwd, threads.config.default_cwd),
            model=model or agent.name,
            ephemeral=bool(params.ephemeral),
            originator=client_name(ctx),
            thread_source=params.thread_source,
            source="vscode",
            dynamic_tools=dynamic_tool_specs(params.dynamic_tools),
        )
        keys = ["model_reasoning_effort", "approval_policy", "sandbox_mode"]
        apply_config(state, settings, keys if params.cwd else [*keys, "cwd"])
        apply_overrides(threads, state, attrs.evolve(params, cwd=None, model=None))
        await threads.save(state)
        loaded = threads.loaded[state.id] = LoadedThread(state)
        threads.subscribe(loaded, ctx.connection_id)
        ctx.after_reply(announce_started(threads, loaded))
        return session_response(loaded)

    @method("thread/resume", v2.ThreadResumeParams)
    async def thread_resume(
        ctx: RequestContext, params: v2.ThreadResumeParams
    ) -> v2.ThreadSessionResponse:
        loaded = await threads.load(params.thread_id)
        settings = session_config(threads, params.config)
        before = (loaded.state.reasoning_effort, loaded.state.model)
        apply_config(loaded.state, settings, request_config_keys(params.config))
        changed = before != (loaded.state.reasoning_effort, loaded.state.model)
        if apply_overrides(threads, loaded.state, params) or changed:
            await threads.save(loaded.state)
        threads.subscribe(loaded, ctx.connection_id)

        async def replay() -> None:
            await threads.server_requests.replay(ctx.connection_id, loaded.state.id)

        ctx.after_reply(replay)
        return session_response(loaded, include_turns=not params.exclude_turns)

    @method("thread/fork", v2.ThreadForkParams)
    async def thread_fork(
        ctx: RequestContext, params: v2.ThreadForkParams
    ) -> v2.ThreadSessionResponse:
        source, _ = await threads.find(params.thread_id)
        turns = [t for t in source.turns if t.status != "inProgress"]
        if params.last_turn_id is not None:
            ids = [t.id for t in turns]
            if params.last_turn_id not in ids:
                raise RpcError.invalid_request(f"turn not found: {params.last_turn_id}")
            turns = turns[: ids.index(params.last_turn_id) + 1]
        state = attrs.evolve(
            source,
            id=new_id(),
            name=None,
            archived=False,
            ephemeral=params.ephemeral,
            forked_from_id=source.id,
            originator=client_name(ctx),
            thread_source=params.thread_source or source.thread_source,
            turns=[
                attrs.evolve(t, id=new_id(), seq=i, items=list(t.items))
                for i, t in enumerate(turns)
            ],
        )
        state.touch()
        apply_config(
            state, session_config(threads, params.config), request_config_keys(params.config)
        )
        apply_overrides(threads, state, params)
        await threads.save(state)
        for turn in state.turns:
            await threads.save_turn(state, turn)
        loaded = threads.loaded[state.id] = LoadedThread(state)
        threads.subscribe(loaded, ctx.connection_id)
        ctx.after_reply(announce_started(threads, loaded))
        return session_response(loaded, include_turns=not params.exclude_turns)

    @method("thread/read", v2.ThreadReadParams)
    async def thread_read(ctx: RequestContext, params: v2.ThreadReadParams) -> dict[str, Any]:
        state, status = await threads.find(params.thread_id)
        return {"thread": state.to_wire(status, include_turns=params.include_turns)}

    @method("thread/list", v2.ThreadListParams)
    async def thread_list(ctx: RequestContext, params: v2.ThreadListParams) -> dict[str, Any]:
        archived = bool(params.archived)
        cwds = params.cwd if isinstance(params.cwd, list) else [params.cwd] if params.cwd else []
        wanted_cwds = {absolute(c, c) for c in cwds if isinstance(c, str)}
        term = (params.search_term or "").lower()
        rows = [
            (state, status)
            for state, status in await threads.all_threads()
            if state.listed(archived)
            and (not wanted_cwds or state.cwd in wanted_cwds)
            and (not params.model_providers or "appserver" in params.model_providers)
            and (not params.source_kinds or state.source in params.source_kinds)
            and (not term or term in (state.name or "").lower() or term in state.preview.lower())
        ]
        field = SORT_FIELDS.get(params.sort_key or "created_at", "created_at")
        page, next_cursor = paginate(
            rows,
            lambda row: (getattr(row[0], field), row[0].id),
            params.cursor,
            params.limit,
            descending(params.sort_direction, "desc"),
        )
        return {
            "data": [state.to_wire(status) for state, status in page],
            "nextCursor": next_cursor,
            "backwardsCursor": None,
        }

    @method("thread/loaded/list", v2.ThreadLoadedListParams)
    def thread_loaded_list(
        ctx: RequestContext, params: v2.ThreadLoadedListParams
    ) -> dict[str, Any]:
        page, next_cursor = paginate(
            list(threads.loaded), lambda i: (i,), params.cursor, params.limit, desc=False
        )
        return {"data": page, "nextCursor": next_cursor}

    async def set_archived(
        ctx: RequestContext, thread_id: str, archived: bool
    ) -> tuple[ThreadState, dict[str, Any]]:
        state, status = await threads.find(thread_id)
        state.archived = archived
        state.touch()
        await threads.save(state)
        method = "thread/archived" if archived else "thread/unarchived"
        ctx.after_reply(lambda: threads.broadcast(method, {"threadId": state.id}))
        return state, status

    @method("thread/archive", v2.ThreadIdParams)
    async def thread_archive(ctx: RequestContext, params: v2.ThreadIdParams) -> dict[str, Any]:
        await set_archived(ctx, params.thread_id, True)
        return {}

    @method("thread/unarchive", v2.ThreadIdParams)
    async def thread_unarchive(ctx: RequestContext, params: v2.ThreadIdParams) -> dict[str, Any]:
        state, status = await set_archived(ctx, params.thread_id, False)
        return {"thread": state.to_wire(status)}

    @method("thread/delete", v2.ThreadIdParams)
    async def thread_delete(ctx: RequestContext, params: v2.ThreadIdParams) -> dict[str, Any]:
        loaded = threads.loaded.get(params.thread_id)
        if loaded is not None and loaded.active is not None:
            loaded.active.cancel_scope.cancel()
            await loaded.active.done.wait()
        if not await threads.delete(params.thread_id):
            raise not_loaded(params.thread_id)
        ctx.after_reply(lambda: threads.broadcast("thread/deleted", {"threadId": params.thread_id}))
        return {}

    @method("thread/name/set", v2.ThreadSetNameParams)
    async def thread_name_set(
        ctx: RequestContext, params: v2.ThreadSetNameParams
    ) -> dict[str, Any]:
        state, _ = await threads.find(params.thread_id)
        state.name = params.name
        state.touch()
        await threads.save(state)
        update = {"threadId": state.id, "threadName": params.name}
        ctx.after_reply(lambda: threads.broadcast("thread/name/updated", update))
        return {}

    @method("thread/unsubscribe", v2.ThreadIdParams)
    async def thread_unsubscribe(ctx: RequestContext, params: v2.ThreadIdParams) -> dict[str, Any]:
        loaded = threads.loaded.get(params.thread_id)
        if loaded is None:
            return {"status": "notLoaded"}
        if ctx.connection_id not in loaded.subscribers:
            return {"status": "notSubscribed"}
        loaded.subscribers.discard(ctx.connection_id)
        if not loaded.subscribers and loaded.active is None:
            del threads.loaded[params.thread_id]
            closed = {"threadId": params.thread_id}
            ctx.after_reply(lambda: threads.broadcast("thread/closed", closed))
        return {"status": "unsubscribed"}

    @method("thread/turns/list", v2.ThreadTurnsListParams)
    async def thread_turns_list(
        ctx: RequestContext, params: v2.ThreadTurnsListParams
    ) -> dict[str, Any]:
        state, _ = await threads.find(params.thread_id)
        page, next_cursor = paginate(
            state.turns,
            lambda turn: (turn.seq,),
            params.cursor,
            params.limit,
            descending(params.sort_direction, "desc"),
        )
        view = params.items_view or "full"
        return {
            "data": [turn.to_wire(view) for turn in page],
            "nextCursor": next_cursor,
            "backwardsCursor": None,
        }

    @method("thread/items/list", v2.ThreadItemsListParams)
    async def thread_items_list(
        ctx: RequestContext, params: v2.ThreadItemsListParams
    ) -> dict[str, Any]:
        state, _ = await threads.find(params.thread_id)
        turns: list[TurnState] = state.turns
        if params.turn_id is not None:
            turns = [t for t in turns if t.id == params.turn_id]
            if not turns:
                raise RpcError.invalid_request(f"turn not found: {params.turn_id}")
        entries = [
            (turn.seq, index, turn.id, record)
            for turn in turns
            for index, record in enumerate(turn.items)
        ]
        cursor = params.cursor if isinstance(params.cursor, str) else None
        page, next_cursor = paginate(
            entries,
            lambda e: (e[0], e[1]),
            cursor,
            params.limit,
            descending(params.sort_direction, "asc"),
        )
        data = [
            {
                "turnId": turn_id,
                "item": record.item,
                "startedAtMs": record.started_at_ms,
                "completedAtMs": record.completed_at_ms,
            }
            for _, _, turn_id, record in page
        ]
        return {"data": data, "nextCursor": next_cursor, "backwardsCursor": None}

    @method("thread/queue/add", v2.ThreadQueueAddParams, experimental=True)
    async def thread_queue_add(
        ctx: RequestContext, params: v2.ThreadQueueAddParams
    ) -> dict[str, Any]:
        loaded = await threads.load(params.thread_id)
        submission = {
            "id": new_id(),
            "clientUserMessageId": params.client_user_message_id,
            "input": params.input,
            "responsesapiClientMetadata": params.responsesapi_client_metadata,
        }
        loaded.queue.append(submission)

        async def changed() -> None:
            await threads.broadcast("thread/queue/changed", {"threadId": loaded.state.id})
            await start_queued(threads, loaded)

        ctx.after_reply(changed)
        return {"queuedSubmission": submission}

    @method("thread/goal/get", v2.ThreadIdParams)
    async def thread_goal_get(ctx: RequestContext, params: v2.ThreadIdParams) -> dict[str, Any]:
        state, _ = await threads.find(params.thread_id)
        return {"goal": state.goal}

    # -- turns -------------------------------------------------------------------------------
