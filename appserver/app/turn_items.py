"""The items an agent reports besides messages and commands: reasoning, plans, web searches,
images, MCP-style and client (dynamic) tool calls, questions to the user, side-turn answers.

Each follows Codex's lifecycle for its `ThreadItem` variant: `item/started`, the item's own
deltas or server request, then `item/completed` once the item is on disk (`TurnRun`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final, Protocol

import orjson
import trio

from appserver.app.agents.base import (
    PlanStatus,
    PlanStep,
    Question,
    ToolResult,
    TurnFailed,
)
from appserver.app.thread_state import now_ms
from appserver.app.threads import new_id
from appserver.wire.errors import RpcError

if TYPE_CHECKING:
    from appserver.app.turns import TurnRun

IMAGE_INPUT_TYPES: Final = frozenset({"image", "localImage"})
TOOL_REQUEST_FAILED: Final = "dynamic tool request failed"
TOOL_RESPONSE_INVALID: Final = "dynamic tool response was invalid"


class OpenItem(Protocol):
    """An item the agent may leave open; the turn closes it when it ends."""

    finished: bool

    async def close(self) -> None: ...


class Reasoning:
    """A `reasoning` item: summary parts and raw content, streamed."""

    def __init__(self, run: TurnRun) -> None:
        self._run = run
        self.item: dict[str, Any] = {
            "type": "reasoning",
            "id": new_id(),
            "summary": [],
            "content": [],
        }
        self._started_at: int | None = None
        self.finished = False

    async def _start(self) -> None:
        if self._started_at is None:
            self._started_at = now_ms()
            await self._run.item_started(dict(self.item, summary=[], content=[]), self._started_at)

    def _params(self, **extra: Any) -> dict[str, Any]:
        return {**self._run.ids, "itemId": self.item["id"], **extra}

    async def summary_part(self) -> None:
        await self._start()
        summary: list[str] = self.item["summary"]
        summary.append("")
        await self._run.notify(
            "item/reasoning/summaryPartAdded", self._params(summaryIndex=len(summary) - 1)
        )

    async def summary_delta(self, text: str) -> None:
        await self._start()
        summary: list[str] = self.item["summary"]
        if not summary:
            summary.append("")
        summary[-1] += text
        await self._run.notify(
            "item/reasoning/summaryTextDelta",
            self._params(delta=text, summaryIndex=len(summary) - 1),
        )

    async def content_delta(self, text: str) -> None:
        await self._start()
        content: list[str] = self.item["content"]
        if not content:
            content.append("")
        content[-1] += text
        await self._run.notify(
            "item/reasoning/textDelta", self._params(delta=text, contentIndex=len(content) - 1)
        )

    async def finish(self) -> None:
        await self._start()
        if not self.finished:
            self.finished = True
            await self._run.item_completed(self.item, self._started_at)

    async def close(self) -> None:
        await self.finish()


class McpCall:
    """An `mcpToolCall` item the agent runs itself."""

    def __init__(self, run: TurnRun, server: str, tool: str, arguments: Any) -> None:
        self._run = run
        self.item: dict[str, Any] = {
            "type": "mcpToolCall",
            "id": new_id(),
            "server": server,
            "tool": tool,
            "status": "inProgress",
            "arguments": arguments,
            "result": None,
            "error": None,
            "durationMs": None,
        }
        self._started_at = now_ms()
        self._monotonic = time.monotonic()
        self.finished = False

    async def start(self) -> None:
        await self._run.item_started(dict(self.item), self._started_at)

    async def progress(self, message: str) -> None:
        await self._run.notify(
            "item/mcpToolCall/progress",
            {**self._run.ids, "itemId": self.item["id"], "message": message},
        )

    async def _complete(self, **fields: Any) -> None:
        if self.finished:
            return
        self.finished = True
        self.item.update(fields, durationMs=int((time.monotonic() - self._monotonic) * 1000))
        await self._run.item_completed(self.item, self._started_at)

    async def finish(
        self, content: Sequence[dict[str, Any]], *, structured_content: Any = None
    ) -> None:
        result = {"content": list(content), "structuredContent": structured_content}
        await self._complete(status="completed", result=result)

    async def fail(self, message: str) -> None:
        await self._complete(status="failed", error={"message": message})

    async def close(self) -> None:
        await self.fail("the turn ended before the tool call finished")


def plan_params(
    run: TurnRun, steps: Sequence[PlanStep | tuple[str, PlanStatus]], explanation: str | None
) -> dict[str, Any]:
    plan = []
    for entry in steps:
        step = entry if isinstance(entry, PlanStep) else PlanStep(*entry)
        if step.status not in ("pending", "inProgress", "completed"):
            raise ValueError(f"plan step status must be pending, inProgress or completed: {step}")
        plan.append({"step": step.step, "status": step.status})
    return {**run.ids, "explanation": explanation, "plan": plan}


async def single_item(run: TurnRun, item: dict[str, Any]) -> None:
    """An item that starts and completes at once."""
    started = now_ms()
    await run.item_started(dict(item), started)
    await run.item_completed(item, started)


def command_item(command: str, cwd: str, source: str, typed: str | None = None) -> dict[str, Any]:
    """A `commandExecution` item as it starts: `command` as shown, `typed` what its action
    names (the user's own words for a `!cmd`; default `command`)."""
    return {
        "type": "commandExecution",
        "id": new_id(),
        "command": command,
        "cwd": cwd,
        "processId": None,
        "source": source,
        "status": "inProgress",
        "commandActions": [{"type": "unknown", "command": typed or command}],
        "aggregatedOutput": None,
        "exitCode": None,
        "durationMs": None,
    }


def web_search_item(query: str, action: dict[str, Any] | None, results: Any) -> dict[str, Any]:
    return {
        "type": "webSearch",
        "id": new_id(),
        "query": query,
        "action": action if action is not None else {"type": "search", "query": query},
        "results": results,
    }


def image_view_item(cwd: str, path: str) -> dict[str, Any]:
    return {"type": "imageView", "id": new_id(), "path": os.path.join(cwd, path)}


def image_generation_item(
    result: str | None, saved_path: str | None, revised_prompt: str | None
) -> dict[str, Any]:
    return {
        "type": "imageGeneration",
        "id": new_id(),
        "status": "completed",
        "revisedPrompt": revised_prompt,
        # The schema wants `result` (or a `fileId`); a saved-only image has an empty one, as
        # Codex writes during its attachment-store migration.
        "result": result or "",
        "savedPath": saved_path,
    }


# -- server requests ------------------------------------------------------------------------


def _tool_names(specs: Sequence[dict[str, Any]]) -> set[tuple[str | None, str]]:
    names: set[tuple[str | None, str]] = set()
    for spec in specs:
        if spec.get("type") == "namespace":
            for tool in spec.get("tools") or []:
                names.add((spec.get("name"), str(tool.get("name"))))
        else:
            names.add((None, str(spec.get("name"))))
    return names


def _tool_result(result: Any) -> ToolResult:
    if (
        isinstance(result, dict)
        and isinstance(result.get("success"), bool)
        and isinstance(result.get("contentItems"), list)
        and all(isinstance(i, dict) and "type" in i for i in result["contentItems"])
    ):
        return ToolResult(result["success"], tuple(result["contentItems"]))
    return _failed(TOOL_RESPONSE_INVALID)


def _failed(message: str) -> ToolResult:
    return ToolResult(False, ({"type": "inputText", "text": message},))


async def call_tool(run: TurnRun, tool: str, arguments: Any, namespace: str | None) -> ToolResult:
    if (namespace, tool) not in _tool_names(run.dynamic_tools):
        qualified = f"{namespace}.{tool}" if namespace else tool
        return _failed(f"unknown dynamic tool {qualified!r}: the client did not register it")
    call_id = new_id()
    item: dict[str, Any] = {
        "type": "dynamicToolCall",
        "id": call_id,
        "namespace": namespace,
        "tool": tool,
        "arguments": arguments,
        "status": "inProgress",
        "contentItems": None,
        "success": None,
        "durationMs": None,
    }
    started = now_ms()
    began = time.monotonic()
    await run.item_started(dict(item), started)
    params = {
        **run.ids,
        "callId": call_id,
        "namespace": namespace,
        "tool": tool,
        "arguments": arguments,
    }
    outcome = _failed(TOOL_REQUEST_FAILED)
    try:
        reply = await run.server_request("item/tool/call", params, run.loaded.subscribers)
        if reply is not None and reply.error is None:
            outcome = _tool_result(reply.result)
    finally:
        item.update(
            status="completed" if outcome.success else "failed",
            contentItems=list(outcome.content_items),
            success=outcome.success,
            durationMs=int((time.monotonic() - began) * 1000),
        )
        with trio.CancelScope(shield=True):
            await run.item_completed(item, started)
    return outcome


def question_wire(question: Question) -> dict[str, Any]:
    options = question.options
    return {
        "id": question.id,
        "header": question.header,
        "question": question.question,
        "isOther": question.is_other,
        "isSecret": question.is_secret,
        "options": None
        if options is None
        else [{"label": o.label, "description": o.description} for o in options],
    }


def _answers(result: Any) -> dict[str, list[str]]:
    answers = result.get("answers") if isinstance(result, dict) else None
    if not isinstance(answers, dict):
        return {}
    out: dict[str, list[str]] = {}
    for question_id, answer in answers.items():
        values = answer.get("answers") if isinstance(answer, dict) else None
        if isinstance(values, list):
            out[str(question_id)] = [str(v) for v in values]
    return out


async def ask_user(run: TurnRun, questions: Sequence[Question]) -> dict[str, list[str]]:
    targets = run.experimental_subscribers()
    if not targets or not questions:
        return {}
    params = {
        **run.ids,
        "itemId": new_id(),
        "questions": [question_wire(q) for q in questions],
        "isBlocking": True,
        "autoResolutionMs": None,
    }
    reply = await run.server_request(
        "item/tool/requestUserInput", params, targets, waiting="waitingOnUserInput"
    )
    if reply is None or reply.error is not None:
        return {}
    return _answers(reply.result)


# -- side turns -----------------------------------------------------------------------------


def check_against_schema(value: Any, schema: Any) -> None:
    """`TurnFailed` naming the first violation if `value` does not satisfy `schema`."""
    if schema is None:
        return
    import jsonschema  # only side turns pay for it

    validator_class = jsonschema.validators.validator_for(schema)
    try:
        validator_class.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise TurnFailed(f"outputSchema is not a valid JSON Schema: {exc.message}") from exc
    error = jsonschema.exceptions.best_match(validator_class(schema).iter_errors(value))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "the answer"
        raise TurnFailed(f"answer does not match outputSchema at {where}: {error.message}")


def json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def dynamic_tool_specs(value: Any) -> list[dict[str, Any]]:
    """`thread/start`'s `dynamicTools`, checked (`-32600` naming the problem): a list of
    `{"type": "function", "name", …}` or `{"type": "namespace", "name", "tools": […]}`
    objects with unique names."""
    if value is None:
        return []

    def bad(why: str) -> RpcError:
        return RpcError.invalid_request(f"invalid dynamicTools: {why}")

    if not isinstance(value, list):
        raise bad("expected a list of tool specs")
    specs: list[dict[str, Any]] = []
    for spec in value:
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise bad("every tool needs a string name")
        if spec.get("type", "function") == "namespace":
            tools = spec.get("tools")
            if not isinstance(tools, list) or not all(
                isinstance(t, dict) and isinstance(t.get("name"), str) for t in tools
            ):
                raise bad(f"namespace {spec['name']!r} needs a list of named tools")
        elif spec.get("type", "function") != "function":
            raise bad(f"unknown tool type {spec.get('type')!r}")
        specs.append(spec)
    if len({s["name"] for s in specs}) != len(specs):
        raise bad("tool names must be unique")
    return specs
