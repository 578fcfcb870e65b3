"""Typed v2 params and results for the methods appserver implements (Codex 0.169 schema).

Params classes declare the fields appserver reads plus every experimental field (so the gate
can refuse them for clients without `experimentalApi`); other fields are ignored. Items, user
inputs, sandbox policies and statuses stay JSON objects: appserver stores and echoes them.
"""

from __future__ import annotations

from typing import Any, Literal

import attrs

from appserver.protocol.ask_for_approval import AskForApproval
from appserver.protocol.experimental import GATED_WHEN_TRUE
from appserver.wire.converter import EXPERIMENTAL_OPTIONAL, OPTIONAL

JsonObject = dict[str, Any]


def _experimental() -> Any:
    return attrs.field(default=None, metadata=EXPERIMENTAL_OPTIONAL)


def _experimental_flag() -> Any:
    """An experimental plain `bool` in Codex: gated only when `true`."""
    return attrs.field(default=None, metadata={**EXPERIMENTAL_OPTIONAL, GATED_WHEN_TRUE: True})


# -- shared output shapes ----------------------------------------------------------------------


@attrs.frozen
class Turn:
    id: str
    items: list[JsonObject]
    status: str
    error: JsonObject | None = None
    started_at: int | None = None
    completed_at: int | None = None
    duration_ms: int | None = None
    items_view: str | None = attrs.field(default=None, metadata=OPTIONAL)


@attrs.frozen
class Thread:
    id: str
    session_id: str
    preview: str
    ephemeral: bool
    model_provider: str
    created_at: int
    updated_at: int
    status: JsonObject
    cwd: str
    cli_version: str
    source: Any
    turns: list[Turn]
    project_id: str | None = None
    forked_from_id: str | None = None
    parent_thread_id: str | None = None
    history_mode: str = "paginated"
    model: str | None = None
    reasoning_effort: str | None = None
    recency_at: int | None = None
    path: str | None = None
    originator: str | None = None
    thread_source: str | None = None
    agent_nickname: str | None = None
    agent_role: str | None = None
    git_info: JsonObject | None = None
    name: str | None = None


@attrs.frozen
class ThreadSessionResponse:
    """The result of thread/start, thread/resume and thread/fork."""

    thread: Thread
    model: str
    model_provider: str
    cwd: str
    approval_policy: Any
    approvals_reviewer: str
    sandbox: JsonObject
    service_tier: str | None = None
    reasoning_effort: str | None = None
    disabled_plugin_ids: list[str] = attrs.Factory(list)
    instruction_sources: list[str] = attrs.Factory(list)


# -- thread params ---------------------------------------------------------------------------

SandboxMode = Literal["read-only", "workspace-write", "danger-full-access"]
ApprovalsReviewer = Literal["user", "auto_review", "guardian_subagent"]


@attrs.frozen(kw_only=True)
class SessionOverrides:
    """The session settings thread/start, thread/resume, thread/fork and turn/start may set."""

    cwd: str | None = None
    model: str | None = None
    approval_policy: AskForApproval | None = None
    approvals_reviewer: ApprovalsReviewer | None = None
    sandbox: SandboxMode | None = None

    def experimental_reason(self) -> str | None:
        return approval_policy_experimental_reason(self.approval_policy)


@attrs.frozen(kw_only=True)
class ThreadStartParams(SessionOverrides):
    #: Config overrides for this session (dotted keys, as `-c`): `model_reasoning_effort`, …
    config: dict[str, Any] | None = None
    model_provider: str | None = None
    ephemeral: bool | None = None
    thread_source: str | None = None
    service_tier: str | None = None
    allow_provider_model_fallback: Any = _experimental_flag()
    daybreak_enabled: Any = _experimental()
    dynamic_tools: Any = _experimental()
    environments: Any = _experimental()
    experimental_raw_events: Any = _experimental_flag()
    history_mode: Any = _experimental()
    mock_experimental_field: Any = _experimental()
    multi_agent_mode: Any = _experimental()
    permissions: Any = _experimental()
    project_id: Any = _experimental()
    runtime_workspace_roots: Any = _experimental()
    selected_capability_roots: Any = _experimental()


@attrs.frozen(kw_only=True)
class ThreadResumeParams(SessionOverrides):
    #: Config overrides for this session (dotted keys, as `-c`): `model_reasoning_effort`, …
    config: dict[str, Any] | None = None
    thread_id: str
    exclude_turns: bool = False
    history: Any = _experimental()
    initial_turns_page: Any = _experimental()
    path: Any = _experimental()
    permissions: Any = _experimental()
    runtime_workspace_roots: Any = _experimental()


@attrs.frozen(kw_only=True)
class ThreadForkParams(SessionOverrides):
    #: Config overrides for this session (dotted keys, as `-c`): `model_reasoning_effort`, …
    config: dict[str, Any] | None = None
    thread_id: str
    ephemeral: bool = False
    exclude_turns: bool = False
    last_turn_id: str | None = None
    thread_source: str | None = None
    attach_to_source: Any = _experimental_flag()
    before_turn_id: Any = _experimental()
    defer_goal_continuation: Any = _experimental_flag()
    experimental_disable_prediction_mcp: Any = _experimental_flag()
    experimental_prediction_mode: Any = _experimental_flag()
    path: Any = _experimental()
    permissions: Any = _experimental()
    runtime_workspace_roots: Any = _experimental()


@attrs.frozen
class ThreadIdParams:
    thread_id: str


@attrs.frozen
class ThreadReadParams:
    thread_id: str
    include_turns: bool = False


@attrs.frozen
class ThreadListParams:
    archived: bool | None = None
    cursor: str | None = None
    limit: int | None = None
    cwd: Any = None
    model_providers: list[str] | None = None
    source_kinds: list[str] | None = None
    search_term: str | None = None
    sort_key: str | None = None
    sort_direction: str | None = None
    ancestor_thread_id: Any = _experimental()
    attached_to_thread_id: Any = _experimental()
    include_attached_threads: Any = _experimental_flag()
    parent_thread_id: Any = _experimental()
    project_id: Any = _experimental()


@attrs.frozen
class ThreadLoadedListParams:
    cursor: str | None = None
    limit: int | None = None


@attrs.frozen
class ThreadSetNameParams:
    thread_id: str
    name: str


@attrs.frozen
class ThreadTurnsListParams:
    thread_id: str
    cursor: str | None = None
    limit: int | None = None
    sort_direction: str | None = None
    items_view: str | None = None


@attrs.frozen
class ThreadItemsListParams:
    thread_id: str
    turn_id: str | None = None
    cursor: Any = None
    limit: int | None = None
    sort_direction: str | None = None


@attrs.frozen
class ThreadQueueAddParams:
    thread_id: str
    client_user_message_id: str
    input: list[JsonObject]
    responsesapi_client_metadata: Any = None


@attrs.frozen
class ThreadBackgroundTerminalsListParams:
    thread_id: str
    cursor: str | None = None
    limit: int | None = None


# -- turn params -----------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class TurnStartParams(SessionOverrides):
    thread_id: str
    input: list[JsonObject]
    output_schema: Any = None
    client_user_message_id: str | None = None
    additional_context: Any = _experimental()
    collaboration_mode: Any = _experimental()
    cyber_access_program: Any = _experimental()
    environments: Any = _experimental()
    multi_agent_mode: Any = _experimental()
    permissions: Any = _experimental()
    sandbox_policy: JsonObject | None = None
    responsesapi_client_metadata: Any = _experimental()
    responsesapi_client_metadata_patch: Any = _experimental()
    runtime_workspace_roots: Any = _experimental()


@attrs.frozen
class TurnInterruptParams:
    thread_id: str
    turn_id: str


@attrs.frozen
class TurnSteerParams:
    thread_id: str
    expected_turn_id: str
    input: list[JsonObject]
    client_user_message_id: str | None = None
    additional_context: Any = _experimental()
    responsesapi_client_metadata: Any = _experimental()
    responsesapi_client_metadata_patch: Any = _experimental()


# -- turn-shaped actions and thread editing (issue 10) ---------------------------------------


@attrs.frozen
class ReviewStartParams:
    thread_id: str
    target: JsonObject
    delivery: str | None = None


@attrs.frozen
class ThreadShellCommandParams:
    thread_id: str
    command: str
    timeout_ms: int | None = None


@attrs.frozen
class ThreadRevertParams:
    thread_id: str
    before_turn_id: str


@attrs.frozen
class ThreadInjectItemsParams:
    thread_id: str
    items: list[Any]


@attrs.frozen
class ThreadGoalSetParams:
    thread_id: str
    objective: str | None = None
    status: str | None = None
    token_budget: int | None = None
    origin: str | None = None


@attrs.frozen
class ThreadGoalClearParams:
    thread_id: str
    origin: str | None = None


@attrs.frozen(kw_only=True)
class ThreadSettingsUpdateParams:
    thread_id: str
    model: str | None = None
    effort: str | None = None
    cwd: str | None = None
    approval_policy: Any = None
    approvals_reviewer: str | None = None
    sandbox_policy: JsonObject | None = None
    permissions: str | None = None
    collaboration_mode: JsonObject | None = None
    service_tier: str | None = None
    summary: str | None = None
    personality: str | None = None

    def experimental_reason(self) -> str | None:
        return approval_policy_experimental_reason(self.approval_policy)


@attrs.frozen(kw_only=True)
class TurnSettingsUpdateParams:
    thread_id: str
    turn_id: str
    model: str | None = None
    effort: str | None = None
    approvals_reviewer: str | None = None
    service_tier: str | None = None
    summary: str | None = None


@attrs.frozen
class ThreadSearchParams:
    search_term: str
    archived: bool | None = None
    cursor: str | None = None
    limit: int | None = None
    sort_key: str | None = None
    sort_direction: str | None = None
    source_kinds: list[str] | None = None


@attrs.frozen
class ThreadMetadataUpdateParams:
    thread_id: str
    git_info: JsonObject | None = None


@attrs.frozen
class ThreadQueueListParams:
    thread_id: str
    cursor: str | None = None
    limit: int | None = None


@attrs.frozen
class ThreadQueueUpdateParams:
    thread_id: str
    queued_submission_id: str
    input: list[JsonObject]
    responsesapi_client_metadata: Any = None


@attrs.frozen
class ThreadQueueDeleteParams:
    thread_id: str
    queued_submission_id: str


@attrs.frozen
class ThreadQueueReorderParams:
    thread_id: str
    queued_submission_ids: list[str]


@attrs.frozen
class ThreadQueueStartParams:
    thread_id: str
    queued_submission_id: str | None = None


# -- server requests -------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class CommandExecutionRequestApprovalParams:
    thread_id: str
    turn_id: str
    item_id: str
    started_at_ms: int
    reason: str | None = None
    command: str | None = None
    cwd: str | None = None
    command_actions: list[JsonObject] | None = None
    available_decisions: list[Any] | None = _experimental()


# -- static methods --------------------------------------------------------------------------


@attrs.frozen
class ModelListParams:
    cursor: str | None = None
    limit: int | None = None
    include_hidden: bool | None = None


@attrs.frozen
class ReasoningEffortOption:
    reasoning_effort: str
    description: str


@attrs.frozen
class Model:
    id: str
    model: str
    display_name: str
    description: str
    hidden: bool
    is_default: bool
    default_reasoning_effort: str
    supported_reasoning_efforts: list[ReasoningEffortOption]
    input_modalities: list[str] = attrs.Factory(lambda: ["text"])
    supports_personality: bool = False
    additional_speed_tiers: list[str] = attrs.Factory(list)
    upgrade: str | None = None


# -- config and inventories (appserver/config.py, handlers/config.py, handlers/inventories.py) --


@attrs.frozen
class ConfigReadParams:
    cwd: str | None = None
    include_layers: bool = False


@attrs.frozen
class ConfigEdit:
    key_path: str
    value: Any
    merge_strategy: Literal["replace", "upsert"]


@attrs.frozen
class ConfigValueWriteParams:
    key_path: str
    value: Any
    merge_strategy: Literal["replace", "upsert"]
    file_path: str | None = None
    expected_version: str | None = None


@attrs.frozen
class ConfigBatchWriteParams:
    edits: list[ConfigEdit]
    file_path: str | None = None
    expected_version: str | None = None
    reload_user_config: bool = False


@attrs.frozen
class CwdsParams:
    """skills/list, hooks/list, plugin/list, plugin/installed: one answer per cwd."""

    cwds: list[str] | None = None
    thread_id: str | None = None


@attrs.frozen
class CursorParams:
    cursor: str | None = None
    limit: int | None = None
    thread_id: str | None = None
    cwd: str | None = None


@attrs.frozen
class ExperimentalFeatureEnablementSetParams:
    enablement: dict[str, bool]


@attrs.frozen
class ThreadMemoryModeSetParams:
    thread_id: str
    mode: Literal["enabled", "disabled"]


@attrs.frozen
class ExternalAgentConfigDetectParams:
    include_home: bool = False
    cwds: list[str] | None = None


def approval_policy_experimental_reason(policy: Any) -> str | None:
    """`askForApproval.granular` is experimental (Codex's reason text)."""
    if isinstance(policy, dict) and "granular" in policy:
        return "askForApproval.granular"
    return None
