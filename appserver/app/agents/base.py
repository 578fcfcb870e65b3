"""The agent interface: what a Python author implements to answer turns.

An agent is any object with `name`, `display_name`, `description` and an async
`run_turn(turn)`. The server calls `run_turn` once per turn, in the server's nursery (a client
disconnecting does not stop it); the turn completes when it returns, is `interrupted` when the
client interrupts it (the agent sees `trio.Cancelled`; let it propagate), and `failed` if it
raises. Everything the agent says or does goes through the `Turn` it is given.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, NoReturn, Protocol, runtime_checkable

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


class TurnFailed(Exception):
    """Raise it (or call `Turn.fail`) to end the turn `failed` with exactly this message: an
    `error` notification `{"error": {"message": …}, "willRetry": false}`, then `turn/completed`
    with status `failed` and the same error. `codex_error_info` is Codex's `CodexErrorInfo`
    (`"unauthorized"`, `"badRequest"`, `{"httpConnectionFailed": {…}}`, …) or None."""

    def __init__(self, message: str, *, codex_error_info: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.codex_error_info = codex_error_info


PlanStatus = Literal["pending", "inProgress", "completed"]


@attrs.frozen
class PlanStep:
    """One step of `Turn.update_plan` (Codex's `TurnPlanStep`)."""

    step: str
    status: PlanStatus = "pending"


@attrs.frozen
class FileChangeOutcome:
    """What became of `Turn.apply_patch`.

    `status` is the `fileChange` item's: `completed` (every change written), `declined` (the
    client said no, or the policy refused without asking), `failed` (the patch did not parse,
    did not apply, or a write failed; nothing is half-applied within one file). `changes` are
    the item's `FileUpdateChange` objects (absolute `path`, `kind`, `diff`); `output` is the
    text Codex's `apply_patch` tool returns to the model (`Success. Updated the following
    files:` …, or the error)."""

    status: Literal["completed", "declined", "failed"]
    changes: tuple[dict[str, Any], ...] = ()
    output: str = ""

    @property
    def applied(self) -> bool:
        return self.status == "completed"

    @property
    def declined(self) -> bool:
        return self.status == "declined"


@attrs.frozen
class ToolResult:
    """A client's answer to `Turn.call_tool` (`DynamicToolCallResponse`): `content_items` are
    `{"type": "inputText", "text": …}` / `{"type": "inputImage", "imageUrl": …}` objects."""

    success: bool
    content_items: tuple[dict[str, Any], ...] = ()

    @property
    def text(self) -> str:
        """The text items, joined with newlines."""
        return "\n".join(
            str(i.get("text", "")) for i in self.content_items if i.get("type") == "inputText"
        )


@attrs.frozen
class Option:
    """A choice offered by a `Question`."""

    label: str
    description: str = ""


@attrs.frozen
class Question:
    """One question of `Turn.ask_user` (Codex's `ToolRequestUserInputQuestion`). `is_other`
    lets the user type a free answer besides the options; `is_secret` hides what is typed."""

    id: str
    question: str
    header: str = ""
    options: tuple[Option, ...] | None = None
    is_other: bool = False
    is_secret: bool = False


class ReasoningStream(Protocol):
    """One `reasoning` item being streamed. The summary is a list of parts (a new part starts
    with `summary_part`, `item/reasoning/summaryPartAdded`), each streamed with
    `item/reasoning/summaryTextDelta`; the raw content with `item/reasoning/textDelta`."""

    async def summary_delta(self, text: str) -> None: ...

    async def summary_part(self) -> None:
        """Start the next summary part and announce it (`summaryPartAdded`); a delta before any
        part starts part 0 silently."""
        ...

    async def content_delta(self, text: str) -> None: ...

    async def finish(self) -> None:
        """Complete the item (`item/completed` with `summary` and `content`)."""
        ...


class McpToolCall(Protocol):
    """One `mcpToolCall` item in progress (started by `Turn.mcp_tool_call`)."""

    async def progress(self, message: str) -> None:
        """`item/mcpToolCall/progress`."""
        ...

    async def finish(
        self, content: Sequence[dict[str, Any]], *, structured_content: Any = None
    ) -> None:
        """Complete it with an MCP `CallToolResult` (`content` blocks such as
        `{"type": "text", "text": …}`)."""
        ...

    async def fail(self, message: str) -> None:
        """Complete it `failed` with `{"error": {"message": …}}`."""
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
        """Earlier turns of the thread, oldest first, as `Turn` JSON objects with items. After a
        compaction (`thread/compact/start`) only the turns after the latest compaction: the
        ones before it are represented by `compaction_summary`."""
        ...

    @property
    def injected_items(self) -> Sequence[tuple[str | None, dict[str, Any]]]:
        """Raw Responses API items a client added to the thread's model-visible history
        (`thread/inject_items`, the TUI's `/side`), oldest first, each with the id of the
        earlier turn it came after (None: before the first turn)."""
        ...

    @property
    def compaction_summary(self) -> str | None:
        """The summary the latest compaction produced (what `Agent.compact` returned), standing
        for every turn before it; None if the thread was never compacted."""
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

    # -- more input --------------------------------------------------------------------------

    @property
    def images(self) -> Sequence[dict[str, Any]]:
        """The image items of the input (`{"type": "image", "url": …}` or
        `{"type": "localImage", "path": …}`), as sent."""
        ...

    @property
    def dynamic_tools(self) -> Sequence[dict[str, Any]]:
        """The tools the client registered at `thread/start` (`dynamicTools`, Codex's
        `DynamicToolSpec` objects: `{"type": "function", "name", "description", "inputSchema"}`
        or a `namespace` of them); call one with `call_tool`."""
        ...

    @property
    def ephemeral(self) -> bool:
        """True for a side turn's thread (never written to disk; see `answer_json`)."""
        ...

    def pending_input(self) -> list[dict[str, Any]]:
        """Input the user added with `turn/steer` since the last call (oldest first); empty if
        none. Never blocks."""
        ...

    async def wait_for_input(self) -> list[dict[str, Any]]:
        """Wait until the user steers (`turn/steer`), then return what `pending_input` would."""
        ...

    # -- more items --------------------------------------------------------------------------

    def reasoning(self) -> ReasoningStream:
        """Start a `reasoning` item (emits `item/started`)."""
        ...

    async def update_plan(
        self, steps: Sequence[PlanStep | tuple[str, PlanStatus]], explanation: str | None = None
    ) -> None:
        """Send the whole current plan: `turn/plan/updated` (the TUI shows it as a checklist).
        Call again with the updated steps; each call replaces the plan."""
        ...

    async def apply_patch(self, patch: str, *, reason: str | None = None) -> FileChangeOutcome:
        """Apply a patch in Codex's `apply_patch` format (`*** Begin Patch` …, see
        `appserver.app.patch`) as a `fileChange` item, relative paths from the thread's cwd.

        The client is asked (`item/fileChange/requestApproval`) when the thread's approval
        policy says so (Codex's rules: `untrusted` always; otherwise only for writes outside
        what the sandbox allows, which `never` refuses); `acceptForSession` approves later
        patches to the same files. The files are written, then `turn/diff/updated` carries the
        turn's unified diff. Never raises for a bad patch: see the outcome."""
        ...

    async def call_tool(
        self, tool: str, arguments: Any = None, *, namespace: str | None = None
    ) -> ToolResult:
        """Call a client-registered dynamic tool: a `dynamicToolCall` item and the
        `item/tool/call` server request; a client error or malformed answer is a failed result
        (`success=False`), as in Codex."""
        ...

    async def mcp_tool_call(self, server: str, tool: str, arguments: Any = None) -> McpToolCall:
        """Report a call to an MCP-style tool the agent runs itself: starts an `mcpToolCall`
        item; finish it with the returned handle (an unfinished one fails at turn end)."""
        ...

    async def web_search(
        self, query: str, *, action: dict[str, Any] | None = None, results: Any = None
    ) -> None:
        """Report a web search the agent made: a `webSearch` item (`action` is Codex's
        `WebSearchAction`, default `{"type": "search", "query": query}`)."""
        ...

    async def ask_user(self, questions: Sequence[Question]) -> dict[str, list[str]]:
        """Ask the user (`item/tool/requestUserInput`, experimental: only clients with
        `experimentalApi` are asked) and wait. Returns the answers by question id; `{}` when
        nobody could answer or the client refused."""
        ...

    async def view_image(self, path: str) -> None:
        """An `imageView` item: the agent looked at the image at `path` (relative to cwd)."""
        ...

    async def image_generated(
        self,
        *,
        result: str | None = None,
        saved_path: str | None = None,
        revised_prompt: str | None = None,
    ) -> None:
        """An `imageGeneration` item: `result` is the image (base64 or a data URL),
        `saved_path` where it was written."""
        ...

    async def answer_json(self, value: Any) -> None:
        """Answer a side turn: check `value` against `output_schema` (a `TurnFailed` naming
        the first violation if it does not satisfy it), then send it as the final agent
        message, as compact JSON."""
        ...

    def fail(self, message: str, *, codex_error_info: Any = None) -> NoReturn:
        """End the turn `failed` with this message (raises `TurnFailed`)."""
        ...


@runtime_checkable
class Agent(Protocol):
    """Besides `run_turn`, an agent may define optional hooks for the turn-shaped actions a
    client asks for; without them the defaults in `agents.hooks` apply:

    - `async def compact(self, turn) -> str` (`thread/compact/start`, the TUI's `/compact`):
      return a summary of `turn.history`; later turns see it as `turn.compaction_summary` and
      only the turns after it in `turn.history`.
    - `async def review(self, turn, target) -> str` (`review/start`, `/review`): return the review
      text. `target` is the `ReviewTarget` JSON (`uncommittedChanges`, `baseBranch`, `commit`,
      `custom`); `turn.text` is the review prompt, and the diff under review (gathered with git)
      is in `turn.input` as a second text item.

    Both run inside a turn and may use everything `Turn` offers (`say`, `run_command`, ...).
    """

    name: str
    display_name: str
    description: str

    async def run_turn(self, turn: Turn) -> None: ...
