"""Account, models, config and the inventories the TUI reads at startup."""

from __future__ import annotations

from typing import Any

from appserver.app.threads import Threads
from appserver.processor import RequestContext
from appserver.protocol import v2
from appserver.registry import Registry


def register(registry: Registry, threads: Threads) -> None:
    method = registry.method

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
