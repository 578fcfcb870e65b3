"""The README's example agent loads through `--agent module:attr` and satisfies the interface."""

from __future__ import annotations

from appserver.app.agents import Agent
from appserver.server import load_agents


def test_example_agent_loads_first_with_echo_after_it() -> None:
    agents = load_agents(("examples.shout_agent:ShoutAgent",))
    assert list(agents) == ["shout", "echo"]
    assert isinstance(agents["shout"], Agent)
