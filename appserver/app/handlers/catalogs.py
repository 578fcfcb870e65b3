"""What a client lists and toggles besides threads: collaboration modes, skills, hooks, plugins,
permission profiles, MCP servers, experimental features, model providers, realtime voices,
memory, logout. Shapes are Codex 0.169's; each answer is what appserver really has (no skills,
hooks, plugins or MCP servers of its own: one empty entry per cwd asked, as Codex answers for an
empty home), so the TUI shows a clean screen.
"""

from __future__ import annotations

from typing import Any, Final

from appserver import features
from appserver.app.handlers.config import write
from appserver.app.handlers.sessions import PERMISSION_PROFILE_MODES
from appserver.app.threads import Threads
from appserver.config import Edit
from appserver.processor import RequestContext
from appserver.protocol import v2
from appserver.registry import Registry
from appserver.wire.errors import RpcError
from appserver.wire.messages import Notification

#: Codex's presets (`collaborationMode/list` of the 0.169 server): Plan and Default.
COLLABORATION_MODES: Final = (
    {"name": "Plan", "mode": "plan", "model": None, "reasoning_effort": "medium"},
    {"name": "Default", "mode": "default", "model": None, "reasoning_effort": None},
)
#: The built-in permission profiles (`default_permissions`), all allowed: the ones a thread's
#: `permissions` can select.
PERMISSION_PROFILES: Final = tuple(PERMISSION_PROFILE_MODES)
NO_REALTIME: Final = "voice conversations are not available: appserver runs no realtime sessions"
#: `thread/realtime/listVoices` as Codex 0.169 answers it.
REALTIME_VOICES: Final = {
    "v1": ["juniper", "maple", "spruce", "ember", "vale", "breeze", "arbor", "sol", "cove"],
    "v2": ["alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar"],
    "v3": [
        *("juniper", "maple", "spruce", "ember", "vale", "breeze", "arbor", "sol", "cove"),
        *("aube", "bubbie", "haetsal", "hanul", "himari", "leher", "miko", "neer", "porto"),
        *("rindo", "rio", "rivage", "selva", "sonna", "tinta", "viola"),
    ],
    "defaultV1": "cove",
    "defaultV2": "marin",
}


def page(items: list[Any], cursor: str | None, limit: int | None) -> dict[str, Any]:
    """An offset-cursor page (`data`, `nextCursor`), as Codex pages these lists."""
    start = 0
    if cursor is not None:
        if not cursor.isdigit():
            raise RpcError.invalid_request(f"invalid cursor: {cursor}")
        start = int(cursor)
    end = len(items) if not limit else start + limit
    return {"data": items[start:end], "nextCursor": str(end) if end < len(items) else None}


def provider_summary(provider_id: str, table: dict[str, Any]) -> dict[str, Any]:
    env_key = table.get("env_key")
    auth = {"mode": "environmentVariable", "envKey": env_key} if env_key else {"mode": "none"}
    return {
        "id": provider_id,
        "name": table.get("name") or provider_id,
        "canEdit": True,
        "baseUrl": table.get("base_url"),
        "settings": {"type": "customGateway", "auth": auth},
    }


def register(registry: Registry, threads: Threads) -> None:
    method = registry.method
    config = threads.config

    async def cwds_of(params: v2.CwdsParams) -> list[str]:
        """The cwds asked, else the thread's, else the default for new threads."""
        if params.cwds:
            return list(params.cwds)
        if params.thread_id:
            state, _ = await threads.find(params.thread_id)
            return [state.cwd]
        return [config.default_cwd]

    @method("collaborationMode/list", experimental=True)
    def collaboration_mode_list(ctx: RequestContext, params: None) -> dict[str, Any]:
        return {"data": [dict(mode) for mode in COLLABORATION_MODES]}

    @method("skills/list", v2.CwdsParams)
    async def skills_list(ctx: RequestContext, params: v2.CwdsParams) -> dict[str, Any]:
        cwds = await cwds_of(params)
        return {"data": [{"cwd": cwd, "skills": [], "errors": []} for cwd in cwds]}

    @method("hooks/list", v2.CwdsParams)
    async def hooks_list(ctx: RequestContext, params: v2.CwdsParams) -> dict[str, Any]:
        cwds = await cwds_of(params)
        entries = [{"cwd": cwd, "hooks": [], "warnings": [], "errors": []} for cwd in cwds]
        return {"data": entries}

    @method("plugin/list", v2.CwdsParams)
    def plugin_list(ctx: RequestContext, params: v2.CwdsParams) -> dict[str, Any]:
        return {"marketplaces": [], "marketplaceLoadErrors": [], "featuredPluginIds": []}

    @method("permissionProfile/list", v2.CursorParams)
    def permission_profile_list(ctx: RequestContext, params: v2.CursorParams) -> dict[str, Any]:
        profiles = [{"id": p, "description": None, "allowed": True} for p in PERMISSION_PROFILES]
        return page(profiles, params.cursor, params.limit)

    @method("mcpServerStatus/list", v2.CursorParams)
    def mcp_server_status_list(ctx: RequestContext, params: v2.CursorParams) -> dict[str, Any]:
        return page([], params.cursor, params.limit)

    @method("experimentalFeature/list", v2.CursorParams)
    def experimental_feature_list(ctx: RequestContext, params: v2.CursorParams) -> dict[str, Any]:
        return page(features.listed(config.features), params.cursor, params.limit)

    @method("experimentalFeature/enablement/set", v2.ExperimentalFeatureEnablementSetParams)
    async def experimental_feature_enablement_set(
        ctx: RequestContext, params: v2.ExperimentalFeatureEnablementSetParams
    ) -> dict[str, Any]:
        # Known features are written to config.toml's [features]; unknown names are ignored
        # and left out of the answer, as Codex leaves them out.
        applied = {k: v for k, v in params.enablement.items() if features.known(k)}
        if applied:
            edits = [Edit(f"features.{name}", value) for name, value in applied.items()]
            await write(config, edits, None, None)
        return {"enablement": applied}

    @method("externalAgentConfig/detect", v2.ExternalAgentConfigDetectParams)
    def external_agent_config_detect(
        ctx: RequestContext, params: v2.ExternalAgentConfigDetectParams
    ) -> dict[str, Any]:
        # appserver imports no other agent's configuration: nothing to offer.
        return {"items": [], "connectors": []}

    @method("modelProvider/list")
    def model_provider_list(ctx: RequestContext, params: None) -> dict[str, Any]:
        providers = [provider_summary(pid, t) for pid, t in config.model_providers.items()]
        if "openai" not in config.model_providers:
            providers.append(
                {
                    "id": "openai",
                    "name": "OpenAI",
                    "canEdit": False,
                    "baseUrl": None,
                    "settings": {"type": "openai"},
                }
            )
        return {
            "data": providers,
            "defaultProviderId": config.model_provider or "openai",
            "canChangeDefault": True,
        }

    @method("account/logout")
    def account_logout(ctx: RequestContext, params: None) -> dict[str, Any]:
        return {}  # appserver keeps no account: there is nothing to sign out of

    @method("thread/realtime/listVoices", experimental=True)
    def realtime_list_voices(ctx: RequestContext, params: None) -> dict[str, Any]:
        return {"voices": dict(REALTIME_VOICES)}

    @method("thread/realtime/start", v2.ThreadIdParams, experimental=True)
    async def realtime_start(ctx: RequestContext, params: v2.ThreadIdParams) -> dict[str, Any]:
        # As Codex answers a session that cannot connect: accepted, then an error and a close,
        # so the client says why and ends the voice UI instead of failing the request.
        await threads.find(params.thread_id)
        thread_id = params.thread_id

        async def unavailable() -> None:
            for name, payload in (
                ("thread/realtime/error", {"threadId": thread_id, "message": NO_REALTIME}),
                ("thread/realtime/closed", {"threadId": thread_id, "reason": NO_REALTIME}),
            ):
                await threads.router.multicast([ctx.connection_id], Notification(name, payload))

        ctx.after_reply(unavailable)
        return {}

    @method("thread/realtime/stop", v2.ThreadIdParams, experimental=True)
    def realtime_stop(ctx: RequestContext, params: v2.ThreadIdParams) -> dict[str, Any]:
        return {}  # no realtime session ever runs here: stopping is a no-op

    @method("memory/status", experimental=True)
    def memory_status(ctx: RequestContext, params: None) -> dict[str, Any]:
        return {"v2ConsolidatedThreads": 0, "v2Ready": True}

    @method("memory/reset", experimental=True)
    def memory_reset(ctx: RequestContext, params: None) -> dict[str, Any]:
        return {}

    @method("thread/memoryMode/set", v2.ThreadMemoryModeSetParams, experimental=True)
    async def memory_mode_set(
        ctx: RequestContext, params: v2.ThreadMemoryModeSetParams
    ) -> dict[str, Any]:
        await threads.find(params.thread_id)
        return {}

    @method("thread/memory/read", v2.ThreadIdParams, experimental=True)
    async def memory_read(ctx: RequestContext, params: v2.ThreadIdParams) -> dict[str, Any]:
        await threads.find(params.thread_id)
        return {"summary": None}
