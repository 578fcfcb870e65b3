"""Agents for the application tests, loaded as `tests.app.custom_agents:<Name>`."""

from __future__ import annotations

from appserver.app.agents import Turn


class Agent:
    """A custom agent: answers `custom: <text> (<n> earlier)` in one delta."""

    name = "custom"
    display_name = "Custom"
    description = "A test agent loaded with --agent."

    async def run_turn(self, turn: Turn) -> None:
        await turn.say(f"custom: {turn.text} ({len(turn.history)} earlier)", chunks=1)
        turn.report_usage(input_tokens=3, output_tokens=5)


class FailingAgent:
    """Starts a message, then raises: the turn fails with an `error` notification."""

    name = "failing"
    display_name = "Failing"
    description = "Raises in the middle of a message."

    async def run_turn(self, turn: Turn) -> None:
        stream = turn.message()
        await stream.delta("partial ")
        raise RuntimeError("the agent broke")
