"""The v2 methods of the application: threads, turns, and the read-only startup calls."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import attrs

from appserver.app.thread_state import ThreadState, TurnState
from appserver.app.threads import LoadedThread, Threads, new_id, not_loaded
from appserver.app.turns import TurnRun, input_text
from appserver.processor import RequestContext
from appserver.protocol import v2
from appserver.registry import Registry
from appserver.wire.converter import unstructure
from appserver.wire.errors import RpcError

T = TypeVar("T")

DEFAULT_PAGE = 50
MAX_PAGE = 500
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
SORT_FIELDS = {
    "created_at": "created_at",
    "updated_at": "updated_at",
    "recency_at": "updated_at",
    "section_position": "updated_at",
}


def _page_size(limit: int | None) -> int:
    return DEFAULT_PAGE if limit is None or limit <= 0 else min(limit, MAX_PAGE)


def _absolute(path: str | None, default: str) -> str:
    return os.path.abspath(os.path.expanduser(path)) if path else default


def _descending(direction: str | None, default: str) -> bool:
    return (direction or default) == "desc"


def _paginate(
    rows: Sequence[T], key: Callable[[T], Any], cursor: str | None, limit: int | None, desc: bool
) -> tuple[list[T], str | None]:
    """Keyset pages over `rows` sorted by `key` (a tuple ending in a unique id)."""
    ordered = sorted(rows, key=key, reverse=desc)
    if cursor:
        start = next(
            (i for i, row in enumerate(ordered) if _after(key(row), cursor, desc)), len(ordered)
        )
        ordered = ordered[start:]
    size = _page_size(limit)
    page, rest = ordered[:size], ordered[size:]
    return page, (_cursor_of(key(page[-1])) if rest and page else None)


def _cursor_of(key: tuple[Any, ...]) -> str:
    return "|".join(str(part) for part in key)


def _after(key: tuple[Any, ...], cursor: str, desc: bool) -> bool:
    parts = cursor.split("|")
    try:
        mark = tuple(type(k)(p) for k, p in zip(key, parts, strict=True))
    except (ValueError, TypeError):
        raise RpcError.invalid_request(f"invalid cursor: {cursor}") from None
    return key < mark if desc else key > mark


def register(registry: Registry, threads: Threads) -> None:
    method = registry.method

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
        )

    def client_name(ctx: RequestContext) -> str | None:
        info = ctx.connection.session.client_info
        return info.name if info else None

    def announce_started(loaded: LoadedThread) -> Callable[[], Any]:
        async def announce() -> None:
            thread = loaded.state.to_wire(loaded.status())
            await threads.broadcast("thread/started", {"thread": unstructure(thread)})

        return announce

    def apply_overrides(state: ThreadState, params: v2.SessionOverrides) -> bool:
        """Apply the session fields a request overrides; True if anything changed."""
        before = (state.cwd, state.model, state.approval_policy, state.approvals_reviewer)
        before_sandbox = state.sandbox
        if params.cwd:
            state.cwd = _absolute(params.cwd, state.cwd)
        if params.model:
            state.model = threads.agent_for(params.model).name
        if params.approval_policy is not None:
            state.approval_policy = params.approval_policy
        if params.approvals_reviewer:
            state.approvals_reviewer = params.approvals_reviewer
        if params.sandbox in SANDBOX_POLICIES:
            state.sandbox = SANDBOX_POLICIES[params.sandbox]
        after = (state.cwd, state.model, state.approval_policy, state.approvals_reviewer)
        return after != before or state.sandbox != before_sandbox

    # -- threads -----------------------------------------------------------------------------

    @method("thread/start", v2.ThreadStartParams)
    async def thread_start(
        ctx: RequestContext, params: v2.ThreadStartParams
    ) -> v2.ThreadSessionResponse:
        agent = threads.agent_for(params.model)
        state = ThreadState(
            id=new_id(),
            cwd=_absolute(params.cwd, os.getcwd()),
            model=agent.name,
            ephemeral=bool(params.ephemeral),
            originator=client_name(ctx),
            thread_source=params.thread_source,
            source="vscode",
        )
        apply_overrides(state, attrs.evolve(params, cwd=None, model=None))
        await threads.save(state)
        loaded = threads.loaded[state.id] = LoadedThread(state)
        threads.subscribe(loaded, ctx.connection_id)
        ctx.after_reply(announce_started(loaded))
        return session_response(loaded)

    @method("thread/resume", v2.ThreadResumeParams)
    async def thread_resume(
        ctx: RequestContext, params: v2.ThreadResumeParams
    ) -> v2.ThreadSessionResponse:
        loaded = await threads.load(params.thread_id)
        if apply_overrides(loaded.state, params):
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
        apply_overrides(state, params)
        await threads.save(state)
        for turn in state.turns:
            await threads.save_turn(state, turn)
        loaded = threads.loaded[state.id] = LoadedThread(state)
        threads.subscribe(loaded, ctx.connection_id)
        ctx.after_reply(announce_started(loaded))
        return session_response(loaded, include_turns=not params.exclude_turns)

    @method("thread/read", v2.ThreadReadParams)
    async def thread_read(ctx: RequestContext, params: v2.ThreadReadParams) -> dict[str, Any]:
        state, status = await threads.find(params.thread_id)
        return {"thread": state.to_wire(status, include_turns=params.include_turns)}

    @method("thread/list", v2.ThreadListParams)
    async def thread_list(ctx: RequestContext, params: v2.ThreadListParams) -> dict[str, Any]:
        archived = bool(params.archived)
        cwds = params.cwd if isinstance(params.cwd, list) else [params.cwd] if params.cwd else []
        wanted_cwds = {_absolute(c, c) for c in cwds if isinstance(c, str)}
        term = (params.search_term or "").lower()
        rows = [
            (state, status)
            for state, status in await threads.all_threads()
            if not state.ephemeral
            and state.archived == archived
            and (not wanted_cwds or state.cwd in wanted_cwds)
            and (not params.model_providers or "appserver" in params.model_providers)
            and (not params.source_kinds or state.source in params.source_kinds)
            and (not term or term in (state.name or "").lower() or term in state.preview.lower())
        ]
        field = SORT_FIELDS.get(params.sort_key or "created_at", "created_at")
        page, next_cursor = _paginate(
            rows,
            lambda row: (getattr(row[0], field), row[0].id),
            params.cursor,
            params.limit,
            _descending(params.sort_direction, "desc"),
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
        page, next_cursor = _paginate(
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
        page, next_cursor = _paginate(
            state.turns,
            lambda turn: (turn.seq,),
            params.cursor,
            params.limit,
            _descending(params.sort_direction, "desc"),
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
        page, next_cursor = _paginate(
            entries,
            lambda e: (e[0], e[1]),
            cursor,
            params.limit,
            _descending(params.sort_direction, "asc"),
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
            await start_queued(loaded)

        ctx.after_reply(changed)
        return {"queuedSubmission": submission}

    @method("thread/goal/get", v2.ThreadIdParams)
    async def thread_goal_get(ctx: RequestContext, params: v2.ThreadIdParams) -> dict[str, Any]:
        await threads.find(params.thread_id)
        return {"goal": None}

    @method(
        "thread/backgroundTerminals/list",
        v2.ThreadBackgroundTerminalsListParams,
        experimental=True,
    )
    async def thread_background_terminals_list(
        ctx: RequestContext, params: v2.ThreadBackgroundTerminalsListParams
    ) -> dict[str, Any]:
        await threads.find(params.thread_id)
        return {"data": [], "nextCursor": None}

    # -- turns -------------------------------------------------------------------------------

    async def begin_turn(
        loaded: LoadedThread,
        user_input: list[dict[str, Any]],
        *,
        output_schema: Any = None,
        client_user_message_id: str | None = None,
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
        run = TurnRun(
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

    async def start_queued(loaded: LoadedThread) -> None:
        if loaded.active is None and loaded.queue and loaded.state.id in threads.loaded:
            submission = loaded.queue.pop(0)
            run = await begin_turn(
                loaded,
                submission["input"],
                client_user_message_id=submission["clientUserMessageId"],
            )
            threads.start_turn_task(lambda: run_then_drain_queue(run))

    async def run_then_drain_queue(run: TurnRun) -> None:
        await run.run()
        await start_queued(run.loaded)

    @method("turn/start", v2.TurnStartParams)
    async def turn_start(ctx: RequestContext, params: v2.TurnStartParams) -> dict[str, Any]:
        loaded = await threads.load(params.thread_id)
        apply_overrides(loaded.state, params)
        threads.subscribe(loaded, ctx.connection_id)
        run = await begin_turn(
            loaded,
            params.input,
            output_schema=params.output_schema,
            client_user_message_id=params.client_user_message_id,
        )

        async def spawn() -> None:
            threads.start_turn_task(lambda: run_then_drain_queue(run))

        ctx.after_reply(spawn)
        return {"turn": run.turn.to_wire()}

    @method("turn/interrupt", v2.TurnInterruptParams)
    async def turn_interrupt(ctx: RequestContext, params: v2.TurnInterruptParams) -> dict[str, Any]:
        loaded = await threads.load(params.thread_id)
        run = loaded.active
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

    # -- read-only startup calls -------------------------------------------------------------

    @method("account/read")
    def account_read(ctx: RequestContext, params: None) -> dict[str, Any]:
        return {"account": None, "requiresOpenaiAuth": False}

    @method("model/list", v2.ModelListParams)
    def model_list(ctx: RequestContext, params: v2.ModelListParams) -> dict[str, Any]:
        effort = [v2.ReasoningEffortOption("medium", "medium")]
        models = [
            v2.Model(
                id=agent.name,
                model=agent.name,
                display_name=agent.display_name,
                description=agent.description,
                hidden=False,
                is_default=agent.name == threads.default_agent,
                default_reasoning_effort="medium",
                supported_reasoning_efforts=effort,
            )
            for agent in threads.agents.values()
        ]
        return {"data": models, "nextCursor": None}

    @method("config/read")
    def config_read(ctx: RequestContext, params: None) -> dict[str, Any]:
        config = {
            "model": threads.default_agent,
            "model_provider": "appserver",
            "approval_policy": None,
            "sandbox_mode": None,
        }
        return {"config": config, "origins": {}, "layers": None}

    @method("configRequirements/read")
    def config_requirements_read(ctx: RequestContext, params: None) -> dict[str, Any]:
        return {"requirements": None, "supportsIndependentSpeedModes": False}

    @method("collaborationMode/list", experimental=True)
    def collaboration_mode_list(ctx: RequestContext, params: None) -> dict[str, Any]:
        return {"data": []}

    @method("skills/list")
    def skills_list(ctx: RequestContext, params: None) -> dict[str, Any]:
        return {"data": []}

    @method("hooks/list")
    def hooks_list(ctx: RequestContext, params: None) -> dict[str, Any]:
        return {"data": []}

    @method("plugin/installed")
    def plugin_installed(ctx: RequestContext, params: None) -> dict[str, Any]:
        return {"marketplaces": [], "marketplaceLoadErrors": []}

    @method("account/bedrock/checkGovCloudRequirements", experimental=True)
    def bedrock_check(ctx: RequestContext, params: None) -> dict[str, Any]:
        return {"isGovCloud": False, "shouldWarn": False}
