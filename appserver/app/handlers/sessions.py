"""What thread and turn handlers share: session responses, overrides, starting turns."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from appserver.app.thread_state import ThreadState, TurnState
from appserver.app.threads import LoadedThread, Threads, new_id
from appserver.app.turns import TurnRun, input_text
from appserver.config import ConfigError, apply_override, validate
from appserver.processor import RequestContext
from appserver.protocol import v2
from appserver.sandbox.policy import PolicyError, parse_policy
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


#: Keys of a request's `config` that a session honours (others are accepted and ignored).
SESSION_CONFIG_KEYS = ("model", "model_reasoning_effort", "approval_policy", "sandbox_mode", "cwd")


def session_config(threads: Threads, request_config: dict[str, Any] | None) -> dict[str, Any]:
    """The configuration a session starts from: HOME/config.toml < command-line flags < the
    request's `config` (dotted keys, as Codex applies them). Refuses values Codex would refuse."""
    effective = threads.config.effective()
    for key, value in (request_config or {}).items():
        apply_override(effective, key, value)
    try:
        validate(effective)
    except ConfigError as exc:
        raise RpcError.invalid_request(f"invalid config: {exc.message.strip()}") from None
    return effective


def sandbox_policy(mode: str, settings: dict[str, Any]) -> dict[str, Any]:
    """The wire SandboxPolicy of `sandbox_mode`, with `[sandbox_workspace_write]` applied."""
    policy = dict(SANDBOX_POLICIES[mode])
    workspace = settings.get("sandbox_workspace_write")
    if mode == "workspace-write" and isinstance(workspace, dict):
        policy["writableRoots"] = list(workspace.get("writable_roots") or [])
        policy["networkAccess"] = bool(workspace.get("network_access", False))
        policy["excludeTmpdirEnvVar"] = bool(workspace.get("exclude_tmpdir_env_var", False))
        policy["excludeSlashTmp"] = bool(workspace.get("exclude_slash_tmp", False))
    return policy


#: The built-in `permissions` profile ids (`default_permissions`) and the sandbox mode of each.
PERMISSION_PROFILE_MODES: dict[str, str] = {
    ":read-only": "read-only",
    ":workspace": "workspace-write",
    ":danger-full-access": "danger-full-access",
}


def profile_sandbox(profile: str, settings: dict[str, Any]) -> dict[str, Any]:
    """The wire SandboxPolicy a `permissions` profile id selects."""
    mode = PERMISSION_PROFILE_MODES.get(profile)
    if mode is None:
        known = ", ".join(PERMISSION_PROFILE_MODES)
        raise RpcError.invalid_request(f"unknown permissions profile `{profile}`; known: {known}")
    return sandbox_policy(mode, settings)


def checked_sandbox_policy(wire: Any) -> dict[str, Any]:
    """A client's `sandboxPolicy` object, refused (-32600) unless it is one the runner enforces."""
    try:
        parse_policy(wire)
    except PolicyError as exc:
        raise RpcError.invalid_request(f"invalid sandboxPolicy: {exc}") from None
    return dict(wire)


def apply_config(state: ThreadState, settings: dict[str, Any], keys: Iterable[str]) -> None:
    """Apply `keys` of `settings` (session_config) to a thread; explicit params come after."""
    wanted = set(keys)
    if "model" in wanted and isinstance(settings.get("model"), str):
        state.model = settings["model"]
    if "model_reasoning_effort" in wanted and settings.get("model_reasoning_effort"):
        state.reasoning_effort = settings["model_reasoning_effort"]
    if "approval_policy" in wanted and settings.get("approval_policy") is not None:
        state.approval_policy = settings["approval_policy"]
    if "sandbox_mode" in wanted and settings.get("sandbox_mode") in SANDBOX_POLICIES:
        state.sandbox = sandbox_policy(settings["sandbox_mode"], settings)
    if "cwd" in wanted and isinstance(settings.get("cwd"), str):
        state.cwd = absolute(settings["cwd"], state.cwd)


def apply_collaboration_mode(state: ThreadState, mode: dict[str, Any]) -> None:
    """turn/start's `collaborationMode` (Plan or Default): kept for later turns and settings;
    its `settings.model` / `settings.reasoning_effort` take precedence, as in Codex."""
    state.collaboration_mode = mode
    settings = mode.get("settings")
    if isinstance(settings, dict):
        if isinstance(settings.get("model"), str) and settings["model"]:
            state.model = settings["model"]
        if isinstance(settings.get("reasoning_effort"), str) and settings["reasoning_effort"]:
            state.reasoning_effort = settings["reasoning_effort"]


def request_config_keys(request_config: dict[str, Any] | None) -> set[str]:
    """The honoured keys a request's `config` sets (for resume and fork, which keep the
    thread's own settings otherwise)."""
    return {key.split(".", 1)[0] for key in request_config or {}} & set(SESSION_CONFIG_KEYS)


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
        state.sandbox = sandbox_policy(params.sandbox, threads.config.effective())
    permissions = getattr(params, "permissions", None)
    if isinstance(permissions, str):
        state.sandbox = profile_sandbox(permissions, threads.config.effective())
    wire_policy = getattr(params, "sandbox_policy", None)
    if wire_policy is not None:
        state.sandbox = checked_sandbox_policy(wire_policy)
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
        await run.save_accepted()
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
