"""The agent interface: what a Python author implements to answer turns.

An agent is any object with `name`, `display_name`, `description` and an async
`run_turn(turn)`. The server calls `run_turn` once per turn, in the server's nursery (a client
disconnecting does not stop it); the turn completes when it returns, is `interrupted` when the
client interrupts it (the agent sees `trio.Cancelled`; let it propagate), and `failed` if it
raises. Everything the agent says or does goes through the `Turn` it is given.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import attrs


@attrs.frozen
class CommandOutcome:
    """What became of `Turn.run_command`."""

    declined: bool
    exit_code: int | None = None
    output: str = ""


class MessageStream(Protocol):
    """One agent message being streamed: deltas, then `finish`."""

    async def delta(self, text: str) -> None: ...

    async def finish(self) -> str:
        """Complete the message; returns its whole text."""
        ...


class Turn(Protocol):
    """The running turn, as an agent sees it."""

    @property
    def thread_id(self) -> str: ...

    @property
    def turn_id(self) -> str: ...

    @property
    def cwd(self) -> str: ...

    @property
    def model(self) -> str:
        """The thread's model id as the client chose it (any string; the agent's own name when
        the client chose none)."""
        ...

    @property
    def approval_policy(self) -> Any:
        """The thread's approval policy: `untrusted`, `on-failure`, `on-request`, `never`, or
        a `{"granular": …}` object."""
        ...

    @property
    def input(self) -> Sequence[dict[str, Any]]:
        """The user's input items (`{"type": "text", "text": …}` and others), as sent."""
        ...

    @property
    def text(self) -> str:
        """The text parts of the input, joined with newlines."""
        ...

    @property
    def output_schema(self) -> Any:
        """The JSON Schema the final answer must satisfy, or None."""
        ...

    @property
    def history(self) -> Sequence[dict[str, Any]]:
        """Earlier turns of the thread, oldest first, as `Turn` JSON objects with items."""
        ...

    def message(self, phase: str = "final_answer") -> MessageStream:
        """Start an agent message (emits `item/started`)."""
        ...

    async def say(self, text: str, *, chunks: int = 4, phase: str = "final_answer") -> None:
        """A whole agent message, streamed as about `chunks` deltas."""
        ...

    async def run_command(
        self, command: str, *, reason: str | None = None, ask: bool | None = None
    ) -> CommandOutcome:
        """Run a shell command in the thread's cwd, after the client approves it; its output
        streams to subscribers. `ask=None` asks unless the thread's approval policy is `never`;
        `True`/`False` decide for this command (an agent applying its own rules, as the
        `openai` agent does with Codex's). An earlier `acceptForSession` skips asking."""
        ...

    def report_usage(self, input_tokens: int, output_tokens: int) -> None: ...


@runtime_checkable
class Agent(Protocol):
    name: str
    display_name: str
    description: str

    async def run_turn(self, turn: Turn) -> None: ...
