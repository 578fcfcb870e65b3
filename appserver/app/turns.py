"""A running turn: the agent's view of it (`agents.base.Turn`) and everything it reports.

Order of what subscribers hear: `turn/started`, the user's message item, the agent's items
(messages streamed as deltas, commands with their approval and output), `thread/tokenUsage/
updated`, `turn/completed` with every item. An item or turn reported complete has been written
to the store first. Interrupting cancels the agent (a running command's process group is killed)
and completes the turn `interrupted`.
"""

from __future__ import annotations

import codecs
import logging
import sqlite3
import time
from collections.abc import Collection, Sequence
from typing import Any, Final, NoReturn

import orjson
import trio

from appserver import process
from appserver.app import turn_items
from appserver.app.agents.base import (
    Agent,
    CommandOutcome,
    FileChangeOutcome,
    PlanStatus,
    PlanStep,
    Question,
    ToolResult,
    TurnFailed,
)
from appserver.app.file_changes import FileChanges
from appserver.app.notified_text import (
    MAX_ITEM_TEXT_BYTES,
    capped_item,
    capped_turn,
    delta_pieces,
)
from appserver.app.terminals import TERMINALS, Terminal
from appserver.app.thread_state import ItemRecord, TurnState, now_ms, now_s
from appserver.app.threads import LoadedThread, Threads, new_id
from appserver.metrics import METRICS
from appserver.protocol import v2
from appserver.server_requests import Reply
from appserver.wire.messages import StreamFrames

log = logging.getLogger(__name__)

MAX_AGGREGATED_OUTPUT: Final = 1024 * 1024
PERSIST_TIMEOUT: Final = 10.0
#: An agent message's `delta()` yields to other tasks after this many deltas (see there).
DELTAS_PER_YIELD: Final = 16
#: ... and a delta of this many characters counts as one more (a 64 KiB one yields at once).
YIELD_BYTES_PER_DELTA: Final = 4096
ACCEPTING_DECISIONS: Final = frozenset({"accept", "acceptForSession"})
#: What the approval prompt offers (the TUI shows one option per decision); `cancel` stops the
#: turn, as Codex's `Abort`.
COMMAND_DECISIONS: Final = ("accept", "acceptForSession", "cancel")


def _breakdown(input_tokens: int, output_tokens: int) -> dict[str, int]:
    return {
        "totalTokens": input_tokens + output_tokens,
        "inputTokens": input_tokens,
        "cachedInputTokens": 0,
        "outputTokens": output_tokens,
        "reasoningOutputTokens": 0,
    }


def input_text(items: Sequence[dict[str, Any]]) -> str:
    return "\n".join(str(i.get("text", "")) for i in items if i.get("type") == "text")


class CommandOutput:
    """A `commandExecution` item's output as the process writes it: each decoded piece goes out
    as `item/commandExecution/outputDelta`, and the item keeps the first
    `MAX_AGGREGATED_OUTPUT` characters (an `on_output` callback of the process runner)."""

    def __init__(self, run: TurnRun, item_id: str) -> None:
        self._run = run
        self._item_id = item_id
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._parts: list[str] = []
        self._size = 0

    async def __call__(self, stream: str, data: bytes, cap_reached: bool) -> None:
        text = self._decoder.decode(data)
        if self._size < MAX_AGGREGATED_OUTPUT:
            self._parts.append(text)
            self._size += len(text)
        if text:
            run = self._run
            delta = {**run.ids, "itemId": self._item_id, "delta": text}
            await run.notify("item/commandExecution/outputDelta", delta)

    def text(self, *, final: bool = False) -> str:
        """The output so far; `final`: the process has ended (an incomplete character too)."""
        tail = self._decoder.decode(b"", final=True) if final else ""
        return "".join(self._parts) + tail


class StorageError(Exception):
    """The state store refused a write (disk full, read-only home, ...)."""


class _Message:
    def __init__(self, run: TurnRun, phase: str) -> None:
        self._run = run
        self.item: dict[str, Any] = {
            "type": "agentMessage",
            "id": new_id(),
            "text": "",
            "phase": phase,
            "memoryCitation": None,
        }
        self._started_at: int | None = None
        self._parts: list[str] = []
        self.finished = False
        self._frames: StreamFrames | None = None
        self._unyielded = 0

    async def _start(self) -> None:
        if self._started_at is None:
            self._started_at = now_ms()
            await self._run.item_started(dict(self.item), self._started_at)

    async def delta(self, text: str) -> None:
        if self._started_at is None:
            await self._start()
        self._parts.append(text)
        frames = self._frames
        if frames is None:
            fixed = {**self._run.ids, "itemId": self.item["id"]}
            frames = self._frames = StreamFrames("item/agentMessage/delta", fixed, "delta")
        run = self._run
        if len(text) * 4 <= MAX_ITEM_TEXT_BYTES:  # the usual case: one piece, no encoding
            await run.threads.frame_to_subscribers(run.loaded, frames, text)
        else:
            for piece in delta_pieces(text):
                await run.threads.frame_to_subscribers(run.loaded, frames, piece)
        # Always a cancellation point, but a scheduling point only every few deltas: yielding
        # after each one cost a task switch per delta, and each woke the connection's writer
        # for a single frame.
        self._unyielded += 1 + len(text) // YIELD_BYTES_PER_DELTA
        if self._unyielded >= DELTAS_PER_YIELD:
            self._unyielded = 0
            await trio.lowlevel.checkpoint()
        else:
            await trio.lowlevel.checkpoint_if_cancelled()

    async def finish(self) -> str:
        await self._start()
        if not self.finished:
            self.finished = True
            self.item["text"] = "".join(self._parts)
            await self._run.item_completed(self.item, self._started_at)
        return str(self.item["text"])


class TurnRun:
    """One turn of one thread, run in the server's nursery."""

    def __init__(
        self,
        threads: Threads,
        loaded: LoadedThread,
        turn: TurnState,
        agent: Agent,
        user_input: list[dict[str, Any]],
        *,
        output_schema: Any = None,
        client_user_message_id: str | None = None,
    ) -> None:
        self.threads = threads
        self.loaded = loaded
        self.turn = turn
        self.agent = agent
        self._input = user_input
        self._output_schema = output_schema
        self.cancel_scope = trio.CancelScope()
        self.done = trio.Event()
        self._open_messages: list[_Message] = []
        self._usage = (0, 0)
        self._started_monotonic = time.monotonic()
        #: Input the user added with `turn/steer` while the turn was running.
        self.steered: list[dict[str, Any]] = []
        self._unread_steers: list[dict[str, Any]] = []
        self._steered_event = trio.Event()
        #: Items the agent left open (reasoning, MCP calls): closed when the turn ends.
        self._open_items: list[turn_items.OpenItem] = []
        self.file_changes = FileChanges(self)
        #: The user's message item, reported first by `body`.
        self.user_item: dict[str, Any] = {
            "type": "userMessage",
            "id": new_id(),
            "clientId": client_user_message_id,
            "content": user_input,
        }
        self._user_item_at = now_ms()
        #: Its record once `save_accepted` wrote it, until `item_completed` reports it.
        self._saved_ahead: ItemRecord | None = None

    # -- the agent's view --------------------------------------------------------------------

    @property
    def thread_id(self) -> str:
        return self.loaded.state.id

    @property
    def turn_id(self) -> str:
        return self.turn.id

    @property
    def cwd(self) -> str:
        return self.loaded.state.cwd

    @property
    def model(self) -> str:
        return self.loaded.state.model

    @property
    def approval_policy(self) -> Any:
        return self.loaded.state.approval_policy

    @property
    def input(self) -> Sequence[dict[str, Any]]:
        return self._input

    @property
    def text(self) -> str:
        return input_text(self._input)

    @property
    def output_schema(self) -> Any:
        return self._output_schema

    @property
    def history(self) -> Sequence[dict[str, Any]]:
        earlier = [t for t in self.loaded.state.turns if t is not self.turn]
        for index in range(len(earlier) - 1, -1, -1):
            if earlier[index].compaction_summary is not None:
                earlier = earlier[index + 1 :]
                break
        # Fresh objects each time (an agent may change what it gets), parsed from each turn's
        # cached JSON: a fifth of what converting the turns again costs.
        history: list[dict[str, Any]] = orjson.loads(
            b"[" + b",".join([t.wire_json() for t in earlier]) + b"]"
        )
        return history

    @property
    def injected_items(self) -> Sequence[tuple[str | None, dict[str, Any]]]:
        # Copies, as `history`: an agent may change what it gets.
        copied = orjson.loads(orjson.dumps(self.loaded.state.injected()))
        return [(after, item) for after, item in copied]

    @property
    def compaction_summary(self) -> str | None:
        for turn in reversed(self.loaded.state.turns):
            if turn is not self.turn and turn.compaction_summary is not None:
                return turn.compaction_summary
        return None

    def message(self, phase: str = "final_answer") -> _Message:
        stream = _Message(self, phase)
        self._open_messages.append(stream)
        return stream

    async def say(self, text: str, *, chunks: int = 4, phase: str = "final_answer") -> None:
        stream = self.message(phase)
        for part in _split(text, chunks):
            await stream.delta(part)
        await stream.finish()

    async def steer(self, user_input: list[dict[str, Any]], client_id: str | None) -> None:
        """More input from the user while the turn runs (`turn/steer`); the agent sees it in
        `steered`."""
        self.steered.extend(user_input)
        self._unread_steers.extend(user_input)
        self._steered_event.set()
        item = {"type": "userMessage", "id": new_id(), "clientId": client_id, "content": user_input}
        started = now_ms()
        await self.item_started(item, started)
        await self.item_completed(item, started)

    def report_usage(self, input_tokens: int, output_tokens: int) -> None:
        self._usage = (self._usage[0] + input_tokens, self._usage[1] + output_tokens)

    async def run_command(
        self, command: str, *, reason: str | None = None, ask: bool | None = None
    ) -> CommandOutcome:
        state = self.loaded.state
        started = now_ms()
        item = turn_items.command_item(command, state.cwd, "agent")
        await self.item_started(dict(item), started)
        if ask is None:
            ask = state.approval_policy != "never"
        if ask and command not in self.loaded.commands_approved_for_session:
            try:
                decision = await self._ask_approval(item, reason, started)
            except BaseException:
                # Interrupted while waiting: the command never runs; its item still completes.
                item["status"] = "declined"
                with trio.CancelScope(shield=True):
                    await self.item_completed(item, started)
                raise
            if decision == "acceptForSession":
                self.loaded.commands_approved_for_session.add(command)
            if decision not in ACCEPTING_DECISIONS:
                item["status"] = "declined"
                await self.item_completed(item, started)
                if decision == "cancel":
                    self.cancel_scope.cancel()
                    await trio.lowlevel.checkpoint()
                return CommandOutcome(declined=True)
        try:
            exit_code, output = await self._execute(item)
        finally:
            item["durationMs"] = now_ms() - started
            if item["status"] == "inProgress":
                item["status"] = "failed"
            with trio.CancelScope(shield=True):
                await self.item_completed(item, started)
        return CommandOutcome(declined=False, exit_code=exit_code, output=output)

    # -- the agent's view: more input and more items (see `agents.base.Turn`) -----------------

    @property
    def images(self) -> Sequence[dict[str, Any]]:
        return [i for i in self._input if i.get("type") in turn_items.IMAGE_INPUT_TYPES]

    @property
    def dynamic_tools(self) -> Sequence[dict[str, Any]]:
        return self.loaded.state.dynamic_tools

    @property
    def ephemeral(self) -> bool:
        return self.loaded.state.ephemeral

    def pending_input(self) -> list[dict[str, Any]]:
        unread, self._unread_steers = self._unread_steers, []
        self._steered_event = trio.Event()
        return unread

    async def wait_for_input(self) -> list[dict[str, Any]]:
        while not self._unread_steers:
            await self._steered_event.wait()
        return self.pending_input()

    def reasoning(self) -> turn_items.Reasoning:
        stream = turn_items.Reasoning(self)
        self._open_items.append(stream)
        return stream

    async def update_plan(
        self, steps: Sequence[PlanStep | tuple[str, PlanStatus]], explanation: str | None = None
    ) -> None:
        await self.notify("turn/plan/updated", turn_items.plan_params(self, steps, explanation))

    async def apply_patch(self, patch: str, *, reason: str | None = None) -> FileChangeOutcome:
        return await self.file_changes.apply(patch, reason)

    async def call_tool(
        self, tool: str, arguments: Any = None, *, namespace: str | None = None
    ) -> ToolResult:
        return await turn_items.call_tool(self, tool, arguments, namespace)

    async def mcp_tool_call(
        self, server: str, tool: str, arguments: Any = None
    ) -> turn_items.McpCall:
        call = turn_items.McpCall(self, server, tool, arguments)
        self._open_items.append(call)
        await call.start()
        return call

    async def web_search(
        self, query: str, *, action: dict[str, Any] | None = None, results: Any = None
    ) -> None:
        await turn_items.single_item(self, turn_items.web_search_item(query, action, results))

    async def ask_user(self, questions: Sequence[Question]) -> dict[str, list[str]]:
        return await turn_items.ask_user(self, questions)

    async def view_image(self, path: str) -> None:
        await turn_items.single_item(self, turn_items.image_view_item(self.cwd, path))

    async def image_generated(
        self,
        *,
        result: str | None = None,
        saved_path: str | None = None,
        revised_prompt: str | None = None,
    ) -> None:
        item = turn_items.image_generation_item(result, saved_path, revised_prompt)
        await turn_items.single_item(self, item)

    async def answer_json(self, value: Any) -> None:
        turn_items.check_against_schema(value, self._output_schema)
        await self.say(turn_items.json_text(value), chunks=1)

    def fail(self, message: str, *, codex_error_info: Any = None) -> NoReturn:
        raise TurnFailed(message, codex_error_info=codex_error_info)

    # -- server requests ---------------------------------------------------------------------

    def experimental_subscribers(self) -> list[int]:
        """Subscribers that negotiated `experimentalApi` (the only ones sent experimental
        server requests)."""
        router = self.threads.router
        found = []
        for connection_id in self.loaded.subscribers:
            connection = router.get(connection_id)
            if connection is not None and connection.session.experimental_api:
                found.append(connection_id)
        return found

    async def server_request(
        self,
        method: str,
        params: Any,
        targets: Collection[int],
        *,
        waiting: str | None = None,
    ) -> Reply:
        """Ask the thread's clients and wait; `serverRequest/resolved` follows the answer (also
        when the turn is interrupted meanwhile, so clients take the prompt down). `waiting`:
        the thread status flag raised meanwhile (`waitingOnApproval`, `waitingOnUserInput`),
        announced with `thread/status/changed` when it is raised and lowered."""
        loaded = self.loaded
        if waiting is not None:
            loaded.waiting[waiting] += 1
            await self.threads.status_changed(loaded)
        request_id: int | None = None

        def sent(new_id: int) -> None:
            nonlocal request_id
            request_id = new_id

        try:
            return await self.threads.server_requests.request(
                targets, method, params, thread_id=self.thread_id, on_sent=sent
            )
        finally:
            with trio.CancelScope(shield=True):
                if waiting is not None:
                    loaded.waiting[waiting] -= 1
                resolved = {"threadId": self.thread_id, "requestId": request_id}
                await self.notify("serverRequest/resolved", resolved)
                if waiting is not None:
                    await self.threads.status_changed(loaded)

    # -- approvals and processes -------------------------------------------------------------

    async def _ask_approval(self, item: dict[str, Any], reason: str | None, started: int) -> str:
        params = v2.CommandExecutionRequestApprovalParams(
            thread_id=self.thread_id,
            turn_id=self.turn.id,
            item_id=item["id"],
            started_at_ms=started,
            reason=reason,
            command=item["command"],
            cwd=item["cwd"],
            command_actions=item["commandActions"],
            available_decisions=list(COMMAND_DECISIONS),
        )
        reply = await self.server_request(
            "item/commandExecution/requestApproval",
            params,
            self.loaded.subscribers,
            waiting="waitingOnApproval",
        )
        if reply.error is not None or not isinstance(reply.result, dict):
            return "decline"
        decision = reply.result.get("decision")
        if isinstance(decision, dict) and "acceptWithExecpolicyAmendment" in decision:
            return "accept"
        return decision if isinstance(decision, str) else "decline"

    async def _execute(self, item: dict[str, Any]) -> tuple[int, str]:
        """Run the item's command through the process runner under the thread's sandbox
        policy; a command the sandbox refuses fails with the reason as its output."""
        output = CommandOutput(self, item["id"])
        spec = process.Spec(
            argv=["/bin/sh", "-c", item["command"]],
            cwd=item["cwd"],
            sandbox=self.loaded.state.sandbox,
            merge_stderr=True,
            capture=False,
        )
        running: process.Process | None = None
        try:
            async with process.spawn(spec, on_output=output) as running:
                item["processId"] = str(running.pid)
                terminal = Terminal(
                    item["processId"], item["id"], item["command"], item["cwd"], running
                )
                with TERMINALS.track(self.thread_id, terminal):
                    result = await running.wait()
        except (process.SandboxUnavailable, process.PolicyError, OSError) as exc:
            if running is not None:
                raise
            log.warning("command refused in thread %s: %s", self.thread_id, exc)
            item["status"], item["exitCode"] = "failed", -1
            item["aggregatedOutput"] = f"{exc}\n"
            return -1, item["aggregatedOutput"]
        except BaseException:
            if running is not None:
                item["exitCode"] = running.exit_code
            item["aggregatedOutput"] = output.text()
            raise
        text = output.text(final=True)
        item["exitCode"], item["aggregatedOutput"] = result.exit_code, text
        item["status"] = "completed" if result.exit_code == 0 else "failed"
        return result.exit_code, text

    # -- reporting ---------------------------------------------------------------------------

    @property
    def ids(self) -> dict[str, str]:
        return {"threadId": self.thread_id, "turnId": self.turn.id}

    async def notify(self, method: str, params: Any) -> None:
        await self.threads.to_subscribers(self.loaded, method, params)

    async def item_started(self, item: dict[str, Any], started_at: int) -> None:
        item = capped_item(item)
        await self.notify("item/started", {**self.ids, "item": item, "startedAtMs": started_at})

    async def item_completed(self, item: dict[str, Any], started_at: int | None) -> None:
        ahead = self._saved_ahead
        if ahead is not None and item == ahead.item:
            self._saved_ahead = None
        else:
            ahead = None
        if ahead is not None and not self.turn.items:
            # On disk since the turn was accepted: no write of its own. (After another item,
            # e.g. a quick `turn/steer`, it is written in turn, so disk and reports agree.)
            self.turn.items.append(ahead)
            completed = ahead.completed_at_ms
        else:
            completed = now_ms()
            self.turn.items.append(ItemRecord(dict(item), started_at, completed))
            await self._persist()
        await self.notify(
            "item/completed",
            {**self.ids, "item": capped_item(dict(item)), "completedAtMs": completed},
        )

    async def _persist(self) -> None:
        """Write the turn and its items; `StorageError` if that fails (nothing is reported
        complete that is not on disk)."""
        with trio.move_on_after(PERSIST_TIMEOUT) as timeout:
            timeout.shield = True
            ahead = () if self._saved_ahead is None else (self._saved_ahead,)
            try:
                await self.threads.save_turn(self.loaded.state, self.turn, ahead)
            except (sqlite3.Error, OSError) as exc:
                raise StorageError(f"could not save turn {self.turn.id}: {exc}") from exc
        if timeout.cancelled_caught:
            raise StorageError(f"saving turn {self.turn.id} timed out")

    # -- the whole turn ----------------------------------------------------------------------

    async def save_accepted(self) -> None:
        """Write the turn just accepted (before `turn/start` is answered), with the user's
        message when it has input: reporting that item complete, the first thing the turn
        does, then needs no write of its own, so the agent starts one disk sync sooner.
        The in-memory turn gets the item only when it is reported (`turn/started` shows none)."""
        ahead = None
        if self._input:
            ahead = ItemRecord(dict(self.user_item), self._user_item_at, self._user_item_at)
        await self.threads.save_turn(self.loaded.state, self.turn, () if ahead is None else [ahead])
        self._saved_ahead = ahead

    async def run(self) -> None:
        """Run the turn; it was counted as running when it was accepted (`Threads.turn_started`)."""
        log.info(
            "turn %s started in thread %s (agent %s)", self.turn.id, self.thread_id, self.agent.name
        )
        try:
            await self._run()
        finally:
            self.threads.turn_finished()
            self.done.set()
            METRICS.turns_finished[self.turn.status] += 1
            log.info(
                "turn %s %s in thread %s after %d ms",
                self.turn.id,
                self.turn.status,
                self.thread_id,
                (time.monotonic() - self._started_monotonic) * 1000,
            )

    async def _run(self) -> None:
        turn, state = self.turn, self.loaded.state
        error: dict[str, Any] | None = None
        finished = False
        try:
            await self.threads.status_changed(self.loaded)
            await self.notify("turn/started", {"threadId": state.id, "turn": turn.to_wire()})
            with self.cancel_scope:
                try:
                    await self.body(self.user_item, self._user_item_at)
                except StorageError as exc:
                    log.error("turn %s failed: %s", turn.id, exc)
                    error = {"message": str(exc)}
                except TurnFailed as exc:
                    log.info("agent %s failed turn %s: %s", self.agent.name, turn.id, exc.message)
                    error = {"message": exc.message, "codexErrorInfo": exc.codex_error_info}
                except Exception as exc:
                    log.exception("agent %s failed in turn %s", self.agent.name, turn.id)
                    error = {"message": f"agent {self.agent.name} failed: {exc}"}
            status = (
                "interrupted"
                if self.cancel_scope.cancelled_caught
                else "failed"
                if error
                else "completed"
            )
            with trio.CancelScope(shield=True):
                await self._close_messages()
                if error is not None:
                    await self.notify("error", {**self.ids, "error": error, "willRetry": False})
                await self._finish(status, error)
                finished = True
        finally:
            if not finished:
                # Cancelled from outside (a forced shutdown): record the turn as interrupted.
                with trio.move_on_after(PERSIST_TIMEOUT) as cleanup:
                    cleanup.shield = True
                    await self._close_messages()
                    await self._finish("interrupted", error)

    async def body(self, user_item: dict[str, Any], started: int) -> None:
        """What the turn does between `turn/started` and `turn/completed`: the user's message,
        then the agent. Turn-shaped actions (compaction, review, `!cmd`) override it."""
        await self.item_started(user_item, started)
        await self.item_completed(user_item, started)
        await self.agent.run_turn(self)

    async def _close_messages(self) -> None:
        for stream in self._open_messages:
            if not stream.finished:
                await stream.finish()
        for open_item in self._open_items:
            if not open_item.finished:
                await open_item.close()

    async def _finish(self, status: str, error: dict[str, Any] | None) -> None:
        turn, loaded = self.turn, self.loaded
        input_tokens, output_tokens = self._usage
        totals = (loaded.token_totals[0] + input_tokens, loaded.token_totals[1] + output_tokens)
        loaded.token_totals = totals
        await self.notify(
            "thread/tokenUsage/updated",
            {
                **self.ids,
                "tokenUsage": {
                    "total": _breakdown(*totals),
                    "last": _breakdown(input_tokens, output_tokens),
                    "modelContextWindow": None,
                },
            },
        )
        turn.status, turn.error = status, error
        # Ended before reporting the user's message: it goes, as `turn/completed` shows it.
        self._saved_ahead = None
        turn.completed_at = now_s()
        turn.duration_ms = int((time.monotonic() - self._started_monotonic) * 1000)
        loaded.state.touch()
        try:
            await self._persist()
        except StorageError as exc:
            # The turn still ends, but nothing is reported complete that is not on disk (after a
            # restart it reads back as interrupted).
            log.error("%s; the turn ends %s", exc, "failed" if status == "completed" else status)
            if status == "completed":
                turn.status, turn.error = "failed", {"message": str(exc)}
                await self.notify("error", {**self.ids, "error": turn.error, "willRetry": False})
        wire = capped_turn(turn.to_wire())
        await self.notify("turn/completed", {"threadId": loaded.state.id, "turn": wire})
        loaded.active = None
        await self.threads.status_changed(loaded)


def _split(text: str, chunks: int) -> list[str]:
    """`text` in about `chunks` pieces, cut at spaces where possible; never empty pieces."""
    if chunks <= 1 or len(text) < 2:
        return [text]
    words = text.split(" ")
    per = max(1, -(-len(words) // chunks))
    parts = [" ".join(words[i : i + per]) for i in range(0, len(words), per)]
    return [p + " " for p in parts[:-1]] + parts[-1:]
