"""Agents: the interface, the built-in `echo`, and loading `module:attr` agents."""

from __future__ import annotations

import importlib
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


class AgentError(Exception):
    pass


def load_agent(spec: str) -> Agent:
    """`echo`, `openai`, or `package.module:attr` naming an agent object, class or factory."""
    spec = LAZY_BUILT_IN.get(spec, spec)
    if spec in BUILT_IN:
        agent: Any = BUILT_IN[spec]()
    elif ":" in spec:
        module_name, _, attr = spec.partition(":")
        try:
            target: Any = importlib.import_module(module_name)
            for part in attr.split("."):
                target = getattr(target, part)
        except (ImportError, AttributeError) as exc:
            raise AgentError(f"cannot load agent {spec!r}: {exc}") from exc
        # A class (or factory) is called for an instance; a runtime-checkable Protocol would
        # accept the class itself, whose run_turn is unbound.
        is_factory = isinstance(target, type) or (
            callable(target) and not isinstance(target, Agent)
        )
        agent = target() if is_factory else target
    else:
        raise AgentError(f"unknown agent {spec!r}; built in: {', '.join([*BUILT_IN, *LAZY_BUILT_IN])}")
    if not isinstance(agent, Agent):
        raise AgentError(
            f"{spec!r} is not an agent: it needs name, display_name, description and an "
            "async run_turn(turn)"
        )
    return agent
