"""Agents: the interface, the built-in `echo`, and loading `module:attr` agents."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from appserver.app.agents.base import (
    Agent,
    CommandOutcome,
    FileChangeOutcome,
    McpToolCall,
    MessageStream,
    Option,
    PlanStep,
    Question,
    ReasoningStream,
    ToolResult,
    Turn,
    TurnFailed,
)
from appserver.app.agents.echo import EchoAgent

__all__ = [
    "Agent",
    "AgentError",
    "CommandOutcome",
    "FileChangeOutcome",
    "McpToolCall",
    "MessageStream",
    "Option",
    "PlanStep",
    "Question",
    "ReasoningStream",
    "ToolResult",
    "Turn",
    "TurnFailed",
    "load_agent",
]

BUILT_IN: dict[str, type[Any]] = {"echo": EchoAgent}
#: Built-in agents imported only when asked for (`--agent openai`).
LAZY_BUILT_IN: dict[str, str] = {"openai": "appserver.app.agents.openai:OpenAIAgent"}


#: Installed packages register agents under this entry point group: in pyproject.toml,
#: `[project.entry-points."appserver.agents"]` `myagent = "mypackage.agent:MyAgent"`, then
#: `appserver --agent myagent`.
ENTRY_POINT_GROUP = "appserver.agents"
HOW_TO_FIX = (
    "run appserver from the directory that holds the module (it is searched after the installed "
    "packages), install the module's package into appserver's environment, or register the "
    f"agent under the {ENTRY_POINT_GROUP!r} entry point group"
)


class AgentError(Exception):
    pass


def _entry_point(name: str) -> str | None:
    """The `module:attr` an installed package registered as agent `name`, or None."""
    from importlib.metadata import entry_points  # only for names that are not built in

    found = entry_points(group=ENTRY_POINT_GROUP, name=name)
    return next((ep.value for ep in found), None)


def _import_target(spec: str) -> Any:
    """The object `module:attr` names. The current directory is searched too (after everything
    else), so `appserver --agent my_agent:Agent` works from the agent's directory whether
    appserver was started as `python -m appserver` or as the installed script."""
    module_name, _, attr = spec.partition(":")
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.append(cwd)
    try:
        target: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or module_name
        if module_name == missing or module_name.startswith(missing + "."):
            raise AgentError(
                f"cannot load agent {spec!r}: no module named {missing!r} (looked in the "
                f"installed packages and in {cwd}); {HOW_TO_FIX}"
            ) from exc
        raise AgentError(
            f"cannot load agent {spec!r}: importing {module_name!r} failed: {exc}"
        ) from exc
    except Exception as exc:
        raise AgentError(
            f"cannot load agent {spec!r}: importing {module_name!r} failed: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    try:
        for part in attr.split("."):
            target = getattr(target, part)
    except AttributeError as exc:
        raise AgentError(
            f"cannot load agent {spec!r}: module {module_name!r} has no attribute {attr!r}"
        ) from exc
    return target


def load_agent(spec: str) -> Agent:
    """`echo`, `openai`, or `package.module:attr` naming an agent object, class or factory."""
    spec = LAZY_BUILT_IN.get(spec, spec)
    if spec not in BUILT_IN and ":" not in spec:
        spec = _entry_point(spec) or spec
    if spec in BUILT_IN:
        agent: Any = BUILT_IN[spec]()
    elif ":" in spec:
        target = _import_target(spec)
        # A class (or factory) is called for an instance; a runtime-checkable Protocol would
        # accept the class itself, whose run_turn is unbound.
        is_factory = isinstance(target, type) or (
            callable(target) and not isinstance(target, Agent)
        )
        agent = target() if is_factory else target
    else:
        raise AgentError(
            f"unknown agent {spec!r}; built in: {', '.join([*BUILT_IN, *LAZY_BUILT_IN])}; "
            f"otherwise give `module:attr` or install a package that registers {spec!r} under "
            f"the {ENTRY_POINT_GROUP!r} entry point group"
        )
    if not isinstance(agent, Agent):
        raise AgentError(
            f"{spec!r} is not an agent: it needs name, display_name, description and an "
            "async run_turn(turn)"
        )
    return agent
