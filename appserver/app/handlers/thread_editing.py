"""Thread editing: `thread/revert` (the TUI's Esc Esc rewind), `thread/inject_items` (`/side`),
goals, session settings, `thread/search` (the `@` task search), metadata and the queue.

Everything that changes a thread is saved before the reply; thread-wide announcements
(`thread/goal/*`, `thread/settings/updated`, `thread/reverted`, `thread/queue/changed`) follow
the reply, as in Codex.
"""

from __future__ import annotations

from typing import Any

from appserver.app.handlers.pagination import descending, paginate
from appserver.app.handlers.sessions import (
    absolute,
    begin_turn,
    checked_sandbox_policy,
    profile_sandbox,
    run_then_drain_queue,
)
from appserver.app.thread_state import ThreadState, drop_turns, now_s, search_items
from appserver.app.threads import LoadedThread, Threads
from appserver.processor import RequestContext
from appserver.protocol import v2
from appserver.registry import Registry
from appserver.wire.errors import RpcError

GOAL_STATUSES = frozenset(
    {"active", "paused", "blocked", "usageLimited", "budgetLimited", "complete"}
)
SNIPPET_CHARS = 120
DEFAULT_COLLABORATION_MODE = "default"


def thread_settings(state: ThreadState) -> dict[str, Any]:
    """Codex's `ThreadSettings` for `thread/settings/updated`."""
    mode = state.collaboration_mode or {
        "mode": DEFAULT_COLLABORATION_MODE,
        "settings": {"model": state.model, "reasoning_effort": state.reasoning_effort},
    }
    settings = dict(mode.get("settings") or {})
    settings.setdefault("developer_instructions", None)
    return {
        "cwd": state.cwd,
        "approvalPolicy": state.approval_policy,
        "approvalsReviewer": state.approvals_reviewer,
        "sandboxPolicy": state.sandbox,
        "model": state.model,
        "modelProvider": "appserver",
        "serviceTier": state.service_tier,
        "effort": state.reasoning_effort,
        "summary": state.reasoning_summary,
        "personality": state.personality,
        "collaborationMode": {
            "mode": mode.get("mode", DEFAULT_COLLABORATION_MODE),
            "settings": settings,
        },
        "disabledPluginIds": [],
    }


def apply_turn_settings(
    state: ThreadState,
    *,
    model: str | None,
    effort: str | None,
    approvals_reviewer: str | None,
    service_tier: str | None,
    summary: str | None,
) -> None:
    """What `thread/settings/update` and `turn/settings/update` both change (None: keep)."""
    if model:
        state.model = model
    if effort is not None:
        state.reasoning_effort = effort
    if approvals_reviewer:
        state.approvals_reviewer = approvals_reviewer
    if service_tier is not None:
        state.service_tier = service_tier
    if summary is not None:
        state.reasoning_summary = summary


def snippet(text: str, term: str) -> str:
    """About `SNIPPET_CHARS` of `text` around the first occurrence of `term`."""
    flat = " ".join(text.split())
    at = flat.lower().find(term.lower())
    if at < 0 or len(flat) <= SNIPPET_CHARS:
        return flat[:SNIPPET_CHARS]
    start = max(0, at - SNIPPET_CHARS // 3)
    return flat[start : start + SNIPPET_CHARS]


def register(registry: Registry, threads: Threads) -> None:
    method = registry.method

    async def announce_settings(loaded: LoadedThread) -> None:
        await threads.broadcast(
            "thread/settings/updated",
            {"threadId": loaded.state.id, "threadSettings": thread_settings(loaded.state)},
        )

    # -- rewind and side items -------------------------------------------------------------

    @method("thread/revert", v2.ThreadRevertParams)
    async def thread_revert(ctx: RequestContext, params: v2.ThreadRevertParams) -> dict[str, Any]:
        loaded = await threads.load(params.thread_id)
        state = loaded.state
        ids = [t.id for t in state.turns]
        if params.before_turn_id not in ids:
            raise RpcError.invalid_request(f"turn not found: {params.before_turn_id}")
        if loaded.active is not None:
            raise RpcError.invalid_request(
                f"thread {state.id} has a turn in progress; interrupt it before reverting"
            )
        cut = ids.index(params.before_turn_id)
        dropped = state.turns[cut:]
        state.turns = state.turns[:cut]
        state.touch()
        try:
            await threads.store.run(drop_turns, state, [t.id for t in dropped])
        except BaseException:
            state.turns.extend(dropped)
            raise
        reverted = {"threadId": state.id}
        ctx.after_reply(lambda: threads.to_subscribers(loaded, "thread/reverted", reverted))
        return {
            "thread": state.to_wire(loaded.status(), include_turns=True),
            "turnsBackwardsCursor": None,
            "itemsBackwardsCursor": None,
        }

    @method("thread/inject_items", v2.ThreadInjectItemsParams)
    async def thread_inject_items(
        ctx: RequestContext, params: v2.ThreadInjectItemsParams
    ) -> dict[str, Any]:
        if not all(isinstance(item, dict) for item in params.items):
            raise RpcError.invalid_request("items must be JSON objects")
        loaded = await threads.load(params.thread_id)
        loaded.state.inject(params.items)
        loaded.state.touch()
        await threads.save(loaded.state)
        return {}

    # -- goals -----------------------------------------------------------------------------

    @method("thread/goal/set", v2.ThreadGoalSetParams)
    async def thread_goal_set(
        ctx: RequestContext, params: v2.ThreadGoalSetParams
    ) -> dict[str, Any]:
        loaded = await threads.load(params.thread_id)
        state = loaded.state
        if params.status is not None and params.status not in GOAL_STATUSES:
            raise RpcError.invalid_request(f"unknown goal status: {params.status}")
        objective = (params.objective or "").strip()
        now = now_s()
        goal = dict(state.goal) if state.goal else None
        if goal is None or (objective and objective != goal["objective"]):
            if not objective:
                raise RpcError.invalid_request("a new goal needs an objective")
            goal = {
                "threadId": state.id,
                "objective": objective,
                "status": "active",
                "tokenBudget": None,
                "tokensUsed": 0,
                "timeUsedSeconds": 0,
                "createdAt": now,
                "updatedAt": now,
            }
        if params.status is not None:
            goal["status"] = params.status
        if params.token_budget is not None:
            goal["tokenBudget"] = params.token_budget
        goal["updatedAt"] = now
        state.goal = goal
        state.touch()
        await threads.save(state)
        updated = {"threadId": state.id, "turnId": None, "goal": goal}
        ctx.after_reply(lambda: threads.broadcast("thread/goal/updated", updated))
        return {"goal": goal}

    @method("thread/goal/clear", v2.ThreadGoalClearParams)
    async def thread_goal_clear(
        ctx: RequestContext, params: v2.ThreadGoalClearParams
    ) -> dict[str, Any]:
        loaded = await threads.load(params.thread_id)
        state = loaded.state
        cleared = state.goal is not None
        if cleared:
            state.goal = None
            state.touch()
            await threads.save(state)
            notice = {"threadId": state.id}
            ctx.after_reply(lambda: threads.broadcast("thread/goal/cleared", notice))
        return {"cleared": cleared}

    # -- settings --------------------------------------------------------------------------

    @method("thread/settings/update", v2.ThreadSettingsUpdateParams, experimental=True)
    async def thread_settings_update(
        ctx: RequestContext, params: v2.ThreadSettingsUpdateParams
    ) -> dict[str, Any]:
        loaded = await threads.load(params.thread_id)
        state = loaded.state
        mode = params.collaboration_mode
        mode_settings = (mode or {}).get("settings") or {}
        apply_turn_settings(
            state,
            model=params.model or mode_settings.get("model"),
            effort=params.effort
            if params.effort is not None
            else mode_settings.get("reasoning_effort") or None,
            approvals_reviewer=params.approvals_reviewer,
            service_tier=params.service_tier,
            summary=params.summary,
        )
        if params.cwd:
            state.cwd = absolute(params.cwd, state.cwd)
        if params.approval_policy is not None:
            state.approval_policy = params.approval_policy
        if params.sandbox_policy is not None:
            state.sandbox = checked_sandbox_policy(params.sandbox_policy)
        if params.permissions is not None:
            state.sandbox = profile_sandbox(params.permissions, threads.config.effective())
        if mode is not None:
            state.collaboration_mode = mode
        if params.personality is not None:
            state.personality = params.personality
        state.touch()
        await threads.save(state)
        ctx.after_reply(lambda: announce_settings(loaded))
        return {}

    @method("turn/settings/update", v2.TurnSettingsUpdateParams, experimental=True)
    async def turn_settings_update(
        ctx: RequestContext, params: v2.TurnSettingsUpdateParams
    ) -> dict[str, Any]:
        loaded = await threads.load(params.thread_id)
        if loaded.active is None or loaded.active.turn.id != params.turn_id:
            return {"status": "targetUnavailable"}
        state = loaded.state
        apply_turn_settings(
            state,
            model=params.model,
            effort=params.effort,
            approvals_reviewer=params.approvals_reviewer,
            service_tier=params.service_tier,
            summary=params.summary,
        )
        state.touch()
        await threads.save(state)
        ctx.after_reply(lambda: announce_settings(loaded))
        return {"status": "applied"}

    # -- search and metadata ---------------------------------------------------------------

    @method("thread/search", v2.ThreadSearchParams, experimental=True)
    async def thread_search(ctx: RequestContext, params: v2.ThreadSearchParams) -> dict[str, Any]:
        term = params.search_term.strip()
        archived = bool(params.archived)
        matches = await threads.store.run(search_items, term) if term else {}
        rows = []
        for state, status in await threads.all_threads():
            if not state.listed(archived):
                continue
            if params.source_kinds and state.source not in params.source_kinds:
                continue
            titles = [t for t in (state.name or "", state.preview) if term.lower() in t.lower()]
            if titles:
                rows.append((state, status, snippet(titles[0], term)))
            elif state.id in matches:
                rows.append((state, status, snippet(matches[state.id], term)))
        field = {"created_at": "created_at"}.get(params.sort_key or "", "updated_at")
        page, next_cursor = paginate(
            rows,
            lambda row: (getattr(row[0], field), row[0].id),
            params.cursor,
            params.limit,
            descending(params.sort_direction, "desc"),
        )
        return {
            "data": [{"thread": s.to_wire(st), "snippet": snip} for s, st, snip in page],
            "nextCursor": next_cursor,
            "backwardsCursor": None,
        }

    @method("thread/metadata/update", v2.ThreadMetadataUpdateParams)
    async def thread_metadata_update(
        ctx: RequestContext, params: v2.ThreadMetadataUpdateParams
    ) -> dict[str, Any]:
        state, status = await threads.find(params.thread_id)
        if params.git_info is not None:
            current = dict(state.git_info or {"sha": None, "branch": None, "originUrl": None})
            for key in ("sha", "branch", "originUrl"):
                if key in params.git_info:
                    current[key] = params.git_info[key]
            state.git_info = current if any(current.values()) else None
            state.touch()
            await threads.save(state)
        return {"thread": state.to_wire(status)}

    # -- the queue -------------------------------------------------------------------------

    def queued(loaded: LoadedThread, submission_id: str) -> dict[str, Any]:
        for submission in loaded.queue:
            if submission["id"] == submission_id:
                return submission
        raise RpcError.invalid_request(f"queued submission not found: {submission_id}")

    def queue_changed(ctx: RequestContext, loaded: LoadedThread) -> None:
        changed = {"threadId": loaded.state.id}
        ctx.after_reply(lambda: threads.broadcast("thread/queue/changed", changed))

    @method("thread/queue/list", v2.ThreadQueueListParams, experimental=True)
    async def thread_queue_list(
        ctx: RequestContext, params: v2.ThreadQueueListParams
    ) -> dict[str, Any]:
        loaded = await threads.load(params.thread_id)
        positions = {s["id"]: i for i, s in enumerate(loaded.queue)}
        page, next_cursor = paginate(
            loaded.queue,
            lambda s: (positions[s["id"]],),
            params.cursor,
            params.limit,
            desc=False,
        )
        return {"data": page, "nextCursor": next_cursor}

    @method("thread/queue/update", v2.ThreadQueueUpdateParams, experimental=True)
    async def thread_queue_update(
        ctx: RequestContext, params: v2.ThreadQueueUpdateParams
    ) -> dict[str, Any]:
        loaded = await threads.load(params.thread_id)
        submission = queued(loaded, params.queued_submission_id)
        submission["input"] = params.input
        if params.responsesapi_client_metadata is not None:
            submission["responsesapiClientMetadata"] = params.responsesapi_client_metadata
        queue_changed(ctx, loaded)
        return {"queuedSubmission": submission}

    @method("thread/queue/delete", v2.ThreadQueueDeleteParams, experimental=True)
    async def thread_queue_delete(
        ctx: RequestContext, params: v2.ThreadQueueDeleteParams
    ) -> dict[str, Any]:
        loaded = await threads.load(params.thread_id)
        before = len(loaded.queue)
        loaded.queue[:] = [s for s in loaded.queue if s["id"] != params.queued_submission_id]
        deleted = len(loaded.queue) < before
        if deleted:
            queue_changed(ctx, loaded)
        return {"deleted": deleted}

    @method("thread/queue/reorder", v2.ThreadQueueReorderParams, experimental=True)
    async def thread_queue_reorder(
        ctx: RequestContext, params: v2.ThreadQueueReorderParams
    ) -> dict[str, Any]:
        loaded = await threads.load(params.thread_id)
        current = [s["id"] for s in loaded.queue]
        if sorted(params.queued_submission_ids) != sorted(current):
            raise RpcError.invalid_request(
                "queuedSubmissionIds must list every queued submission exactly once"
            )
        by_id = {s["id"]: s for s in loaded.queue}
        loaded.queue[:] = [by_id[i] for i in params.queued_submission_ids]
        queue_changed(ctx, loaded)
        return {}

    @method("thread/queue/start", v2.ThreadQueueStartParams, experimental=True)
    async def thread_queue_start(
        ctx: RequestContext, params: v2.ThreadQueueStartParams
    ) -> dict[str, Any]:
        loaded = await threads.load(params.thread_id)
        if not loaded.queue:
            raise RpcError.invalid_request(f"thread {loaded.state.id} has nothing queued")
        submission = (
            queued(loaded, params.queued_submission_id)
            if params.queued_submission_id
            else loaded.queue[0]
        )
        if loaded.active is not None:
            raise RpcError.invalid_request(
                f"thread {loaded.state.id} already has a turn in progress"
            )
        run = await begin_turn(
            threads,
            loaded,
            submission["input"],
            client_user_message_id=submission["clientUserMessageId"],
        )
        loaded.queue.remove(submission)
        threads.subscribe(loaded, ctx.connection_id)
        queue_changed(ctx, loaded)

        async def spawn() -> None:
            threads.start_turn_task(lambda: run_then_drain_queue(threads, run))

        ctx.after_reply(spawn)
        return {"turn": run.turn.to_wire()}
