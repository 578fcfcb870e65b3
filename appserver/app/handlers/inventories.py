"""Account, models, config and the inventories the TUI reads at startup."""

from __future__ import annotations

import logging
from typing import Any, Final

import trio

from appserver.app.agents import Agent
from appserver.app.threads import Threads
from appserver.processor import RequestContext
from appserver.protocol import v2
from appserver.registry import Registry

log = logging.getLogger(__name__)


#: How long `model/list` waits for an agent's own model list (a model endpoint's `/models`).
MODEL_LIST_TIMEOUT: Final = 5.0


async def listed_models(agent: Agent) -> tuple[list[str], str | None] | None:
    """The models an agent offers itself (its optional `async list_models()`: ids and the
    default one), or None: the agent is listed as one model under its own name (also when
    its list cannot be had in time, so `model/list` always answers)."""
    list_models = getattr(agent, "list_models", None)
    if list_models is None:
        return None
    with trio.move_on_after(MODEL_LIST_TIMEOUT):
        try:
            ids, default = await list_models()
        except Exception as exc:
            log.warning("model/list: agent %s could not list its models: %s", agent.name, exc)
            return None
        return list(ids), default
    log.warning("model/list: agent %s did not list its models in time", agent.name)
    return None


def register(registry: Registry, threads: Threads) -> None:
    method = registry.method

    @method("account/read")
    def account_read(ctx: RequestContext, params: None) -> dict[str, Any]:
        return {"account": None, "requiresOpenaiAuth": False}

    @method("model/list", v2.ModelListParams)
    async def model_list(ctx: RequestContext, params: v2.ModelListParams) -> dict[str, Any]:
        effort = [v2.ReasoningEffortOption("medium", "medium")]
        models = []
        for agent in threads.agents.values():
            is_default_agent = agent.name == threads.default_agent
            listed = await listed_models(agent)
            if listed is None:
                models.append(
                    v2.Model(
                        id=agent.name,
                        model=agent.name,
                        display_name=agent.display_name,
                        description=agent.description,
                        hidden=False,
                        is_default=is_default_agent,
                        default_reasoning_effort="medium",
                        supported_reasoning_efforts=effort,
                    )
                )
                continue
            ids, default = listed
            for model_id in ids:
                threads.model_owners[model_id] = agent.name
                models.append(
                    v2.Model(
                        id=model_id,
                        model=model_id,
                        display_name=model_id,
                        description=f"{agent.display_name}: {model_id}",
                        hidden=False,
                        is_default=is_default_agent and model_id == default,
                        default_reasoning_effort="medium",
                        supported_reasoning_efforts=effort,
                    )
                )
        return {"data": models, "nextCursor": None}

    @method("plugin/installed")
    def plugin_installed(ctx: RequestContext, params: None) -> dict[str, Any]:
        return {"marketplaces": [], "marketplaceLoadErrors": []}

    @method("account/bedrock/checkGovCloudRequirements", experimental=True)
    def bedrock_check(ctx: RequestContext, params: None) -> dict[str, Any]:
        return {"isGovCloud": False, "shouldWarn": False}
